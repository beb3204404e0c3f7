"""Making each job's fork cheap: warm-ups run once in the worker, and its memory in 2 MB pages.

Standalone on purpose: shipped as source into the sandbox (as bpg_warm) with worker.py; imports only the
standard library, numpy and torch. Everything here runs in the worker, on our own code and data, before
the children it speeds up are forked; each function is only a speed-up, so any failure is ignored.
"""

import ctypes

import numpy as np
import torch

LIBC = ctypes.CDLL(None, use_errno=True)


def warm_up() -> None:
    """Do once here what every child would otherwise do first (lazy imports inside numpy and torch)."""
    np.frombuffer(np.zeros(2).astype("<f8", copy=False).tobytes(), dtype=np.float64).astype(np.float64)
    torch.random.default_generator.manual_seed(0)
    np.random.seed(0)
    torch.zeros(2, dtype=torch.float32).double().numpy()


def warm_common_ops() -> None:
    """Run once, here, what student code commonly runs first (tensors from numpy, nn.Module subclasses and
    nn.Linear, sigmoid/relu/tanh, losses, backward, printing arrays and tensors, seeding): each child would
    otherwise pay the first use again (lazy imports, caches filled on first call). Our own code on our own
    data, before any job's child exists; only a speed-up, so any failure is ignored."""
    saved = np.get_printoptions()
    try:
        rng = np.random.default_rng(0)
        a = rng.random((4, 2))
        np.random.rand(2)
        np.random.randn(2)
        x, y = torch.tensor(a), torch.from_numpy(a).float()

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(2, 1)

            def forward(self, v):
                return torch.sigmoid(self.fc(v))

        net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 1))
        single = Net()
        for v in (x.float(), y):
            out = net(v) + single(v)
            (((out - 1) ** 2).sum() + torch.nn.functional.mse_loss(out, torch.zeros_like(out))).backward()
        w = torch.rand(3, 2, requires_grad=True, dtype=torch.float64)
        h = torch.relu(x @ w.T) + torch.tanh(x @ w.T) + torch.sigmoid(x @ w.T).pow(2)
        (h.mean() + h.sum()).backward()
        for text in (repr(w), repr(w.grad), str(net), repr(a), str(a), repr(x.detach().numpy())):
            len(text)
        float(h.sum().item())
        w.grad.numpy().tolist()
        np.set_printoptions(precision=8)
        torch.set_printoptions(precision=8)
        torch.manual_seed(0)
    except Exception:
        pass
    finally:
        np.set_printoptions(**saved)
        torch.set_printoptions(profile="default")


def warm_optimizers(mentioned: bool) -> bool:
    """Build and step one optimizer here when a job's source mentions one ("optim", as the grader tells:
    the worker never reads a job): its first use fills torch.optim's lazy parts, which every child would
    otherwise fill again (torch._dynamo itself is not imported for it, see dynamo.py). Done lazily, so
    workers whose jobs never use one never pay for it."""
    if not mentioned:
        return False
    try:
        weight = torch.nn.Parameter(torch.ones(2))
        optimizer = torch.optim.SGD([weight], lr=0.1)
        (weight * weight).sum().backward()
        optimizer.step()
    except Exception:
        pass
    return True


def huge_pages() -> None:
    """Back the worker's private anonymous memory (~150 MB once torch is imported) with 2 MB pages where
    the kernel can (MADV_COLLAPSE, Linux 6.1+): a fork then copies a few hundred page-table entries
    instead of ~36,000, and a child's fork and exit cost about a third as much CPU. A write in a child
    still copies only 4 KB. Only a speed-up: any failure leaves memory as it was."""
    huge, madvise = 2 << 20, LIBC.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    try:
        with open("/proc/self/maps") as maps:
            regions = [line.split() for line in maps]
    except OSError:
        return
    for fields in regions:
        if fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue
        start, end = (int(value, 16) for value in fields[0].split("-"))
        start, end = -(-start // huge) * huge, end // huge * huge
        if end - start >= huge and madvise(start, end - start, 14) == 0:  # MADV_HUGEPAGE
            madvise(start, end - start, 25)  # MADV_COLLAPSE
