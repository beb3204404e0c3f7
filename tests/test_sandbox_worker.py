"""The warm worker and the runner end to end: values, calls, tracebacks, scratch mode, restarts."""

import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
import torch

from grader.limits import Limits
from grader.sandbox import Call, CallStatus, Job, RunStatus, Sandbox

NEEDS_BWRAP = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
LIMITS = Limits(wall_seconds=10)
PARAMS = {"W1": "W1", "b1": "b1"}
RNG = np.random.default_rng(3)
ARRAYS = {"x": RNG.normal(size=(1, 2)), "y": np.array([[0.5]]), "W1": RNG.normal(size=(3, 2)), "b1": RNG.normal(size=3)}

TORCH_SUBMISSION = '''
import numpy as np
import torch

def torch_gradients(x, y, params):
    W1 = torch.tensor(params["W1"], requires_grad=True)
    b1 = torch.tensor(params["b1"], requires_grad=True)
    prediction = torch.sigmoid(torch.tensor(x) @ W1.T + b1).sum()
    loss = (prediction - torch.tensor(y).sum()) ** 2
    loss.backward()
    return {"loss": loss, "dW1": W1.grad, "db1": b1.grad.numpy(), "nodes": [type(loss.grad_fn).__name__]}

def scratch_gradients(x, y, params):
    return torch_gradients(x, y, params)

def mutate(x, params):
    params["W1"] *= 0
    x[...] = 7
    return {"x": x}

def read_back(x, params):
    return {"x": x, "W1": params["W1"]}
'''


def expected_torch_gradients():
    W1 = torch.tensor(ARRAYS["W1"], requires_grad=True)
    b1 = torch.tensor(ARRAYS["b1"], requires_grad=True)
    prediction = torch.sigmoid(torch.tensor(ARRAYS["x"]) @ W1.T + b1).sum()
    loss = (prediction - torch.tensor(ARRAYS["y"]).sum()) ** 2
    loss.backward()
    return loss.item(), W1.grad.numpy(), b1.grad.numpy()


def run(sandbox, source, calls, **kwargs):
    return sandbox.run(Job(filename="a1.py", cells=[source], arrays=ARRAYS, calls=calls, **kwargs), LIMITS)


def test_a_contract_submission_returns_its_tensors_as_exact_float64_values(bwrap_sandbox):
    result = run(bwrap_sandbox, TORCH_SUBMISSION, [Call(id="t", function="torch_gradients", args=["x", "y", PARAMS])])
    assert result.status == RunStatus.ok, result.detail
    call = result.calls["t"]
    loss, dW1, db1 = expected_torch_gradients()
    assert call.values["loss"].dtype == np.float64 and call.values["loss"].shape == ()
    assert call.values["loss"] == loss
    np.testing.assert_array_equal(call.values["dW1"], dW1)
    np.testing.assert_array_equal(call.values["db1"], db1)
    assert call.texts["nodes"] == ["PowBackward0"]
    assert call.seconds > 0


def test_scratch_calls_cannot_use_autograd_and_autograd_is_back_for_the_next_call(bwrap_sandbox):
    calls = [Call(id="s", function="scratch_gradients", args=["x", "y", PARAMS], scratch=True),
             Call(id="t", function="torch_gradients", args=["x", "y", PARAMS])]
    result = run(bwrap_sandbox, TORCH_SUBMISSION, calls)
    scratch = result.calls["s"]
    assert scratch.status == CallStatus.raised
    assert "from scratch: Tensor.backward() is not allowed in scratch_gradients" in scratch.message
    assert "in torch_gradients" in scratch.traceback and "<sandbox" not in scratch.traceback
    assert result.calls["t"].status == CallStatus.ok


def test_every_call_gets_fresh_inputs_even_when_an_earlier_call_changed_them_in_place(bwrap_sandbox):
    calls = [Call(id="m", function="mutate", args=["x", PARAMS]), Call(id="r", function="read_back", args=["x", PARAMS])]
    result = run(bwrap_sandbox, TORCH_SUBMISSION, calls)
    np.testing.assert_array_equal(result.calls["m"].values["x"], np.full((1, 2), 7.0))
    np.testing.assert_array_equal(result.calls["r"].values["x"], ARRAYS["x"])
    np.testing.assert_array_equal(result.calls["r"].values["W1"], ARRAYS["W1"])


def test_numbers_lists_and_nested_dicts_are_converted_under_their_keys(bwrap_sandbox):
    source = ("import numpy as np, torch\ndef f(scale, n):\n"
              "    return {'n': n, 'scale': scale, 'list': [[1, 2], [3, 4]], 'tensors': [torch.ones(2), torch.zeros(2)],"
              " 'grads': {'dW1': np.ones((2, 2), dtype=np.float32)}, 'flag': True}\n"
              "def bare():\n    return np.arange(3)\n")
    calls = [Call(id="f", function="f", args=[0.5, 3]), Call(id="bare", function="bare")]
    result = run(bwrap_sandbox, source, calls)
    values = result.calls["f"].values
    assert values["n"] == 3.0 and values["scale"] == 0.5 and values["flag"] == 1.0
    np.testing.assert_array_equal(values["list"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(values["tensors"], [[1, 1], [0, 0]])
    assert values["grads.dW1"].dtype == np.float64
    np.testing.assert_array_equal(result.calls["bare"].values[""], [0, 1, 2])


def test_an_exception_in_a_call_is_raised_with_the_students_frames_only(bwrap_sandbox):
    source = "def inner(v):\n    return v['missing']\n\ndef f(x, params):\n    return inner(params)\n"
    result = run(bwrap_sandbox, source, [Call(id="f", function="f", args=["x", PARAMS])])
    call = result.calls["f"]
    assert result.status == RunStatus.ok
    assert call.status == CallStatus.raised
    assert call.message.startswith("f(x, {W1, b1}) raised KeyError: 'missing'.")
    assert call.traceback.startswith("Traceback (most recent call last):\n  File \"a1.py\", line 5, in f")
    assert 'File "a1.py", line 2, in inner' in call.traceback and "sandbox" not in call.traceback


def test_the_namespace_is_named_submission_so_main_blocks_do_not_run(bwrap_sandbox):
    source = "ran = 0\nif __name__ == '__main__':\n    ran = 1\ndef f():\n    return {'ran': ran, 'name': [__name__]}\n"
    call = run(bwrap_sandbox, source, [Call(id="f", function="f")]).calls["f"]
    assert call.values["ran"] == 0 and call.texts["name"] == ["submission"]


def test_the_same_job_gives_the_same_random_numbers_in_every_slot_and_every_time(bwrap_sandbox):
    source = ("import random, numpy as np, torch\n"
              "def f():\n    return {'np': np.random.rand(3), 'torch': torch.rand(3), 'py': random.random(),"
              " 'set': [str(s) for s in {'a', 'b', 'c', 'd'}]}\n")
    results = [run(bwrap_sandbox, source, [Call(id="f", function="f")]).calls["f"] for _ in range(4)]
    for other in results[1:]:
        for key in ("np", "torch", "py"):
            np.testing.assert_array_equal(other.values[key], results[0].values[key])
        assert other.texts == results[0].texts
    seeded = run(bwrap_sandbox, source, [Call(id="f", function="f")], seed=1).calls["f"]
    assert not np.array_equal(seeded.values["np"], results[0].values["np"])


def test_jobs_run_in_parallel_from_several_threads(bwrap_sandbox):
    source = "def f(n):\n    return {'n': n}\n"
    found = {}

    def one(n):
        found[n] = run(bwrap_sandbox, source, [Call(id="f", function="f", args=[n])]).calls["f"].values["n"]

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == {n: n for n in range(8)}


def test_a_worker_that_died_is_restarted_and_the_job_still_runs(bwrap_sandbox):
    victim = bwrap_sandbox._workers[0]
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    for _ in bwrap_sandbox._workers:  # the dead worker's slot is among them
        result = run(bwrap_sandbox, "def f():\n    return 1.5\n", [Call(id="f", function="f")])
        assert result.status == RunStatus.ok, result.detail
        assert result.calls["f"].values[""] == 1.5
    assert all(worker.alive() for worker in bwrap_sandbox._workers)


@NEEDS_BWRAP
def test_a_sandbox_can_be_used_without_a_with_block_and_closed_explicitly():
    sandbox = Sandbox(jobs=1, mode="bwrap")
    try:
        assert run(sandbox, "def f():\n    return 2\n", [Call(id="f", function="f")]).calls["f"].values[""] == 2
    finally:
        sandbox.close()
    assert not sandbox._workers[0].alive()


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (read from /proc), to check later that none is left."""
    found, pending = set(), [pid]
    while pending:
        parent = pending.pop()
        for task in os.listdir(f"/proc/{parent}/task") if os.path.isdir(f"/proc/{parent}/task") else []:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as listing:
                    children = {int(child) for child in listing.read().split()}
            except OSError:
                continue
            pending += list(children - found)
            found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@NEEDS_BWRAP
def test_closing_a_sandbox_in_the_middle_of_a_job_ends_the_job_and_every_process_it_started():
    sandbox = Sandbox(jobs=1, mode="bwrap")
    slow = "import subprocess, time\nsubprocess.Popen(['sleep', '300'])\ntime.sleep(300)\n"
    limits = Limits(wall_seconds=120, cpu_seconds=120)
    done = []
    thread = threading.Thread(target=lambda: done.append(sandbox.run(Job(filename="slow.py", cells=[slow]), limits)))
    try:
        assert run(sandbox, "def f():\n    return 1\n", [Call(id="f", function="f")]).status == RunStatus.ok
        worker = sandbox._workers[0]
        assert worker.namespace_pid is not None
        thread.start()
        deadline = time.monotonic() + 30
        while len(_descendants(worker.process.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # bwrap's init, the worker, the job's child, and its `sleep`
        inside = _descendants(worker.process.pid)
        assert len(inside) >= 4, inside
    finally:
        sandbox.close()
    thread.join(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in inside) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in inside)
    assert done and done[0].status != RunStatus.ok


@NEEDS_BWRAP
def test_a_sandbox_launched_early_waits_for_its_worker_on_entry_and_is_killed_at_once_if_never_used():
    """`check` launches its worker before importing the grader's stages; an early error must not wait for it."""
    sandbox = Sandbox(jobs=1, mode="bwrap").launch()
    worker = sandbox._workers[0]
    assert worker.alive() and not worker.ready
    with sandbox:
        assert worker.ready
        assert run(sandbox, "def f():\n    return 3\n", [Call(id="f", function="f")]).calls["f"].values[""] == 3
    unused = Sandbox(jobs=1, mode="bwrap").launch()
    process = unused._workers[0].process
    unused.close()
    assert process.returncode == -signal.SIGKILL  # killed, not left to finish importing torch and then exit


def test_autograd_imported_by_name_before_the_call_is_refused_in_a_scratch_call_too(bwrap_sandbox):
    """`from torch.autograd import grad` at the top of the file binds the function before any call: the
    sandbox guards autograd's entry points themselves, not only the names a call looks up."""
    source = ("import torch\nfrom torch.autograd import grad\n"
              "def scratch_gradients(x, y, params):\n"
              "    w = torch.tensor(params['W1'], requires_grad=True)\n"
              "    with torch.enable_grad():\n"
              "        return {'dW1': grad((w * 2).sum(), w)[0]}\n")
    result = run(bwrap_sandbox, source, [Call(id="s", function="scratch_gradients", args=["x", "y", PARAMS], scratch=True)])
    assert result.calls["s"].status == CallStatus.raised
    assert "from scratch: torch.autograd.grad() is not allowed in scratch_gradients" in result.calls["s"].message


def test_from_the_second_job_on_printing_and_randomness_are_as_in_a_fresh_interpreter(bwrap_sandbox):
    """From its second job a worker warms common torch and numpy operations (its own code, once); no job
    may see a trace of it: default print options, and the same seeded random numbers in every job."""
    source = ("import numpy as np, torch\n"
              "print(np.array([1 / 3]), torch.tensor([1 / 3]), np.random.rand(2), torch.rand(2))\n")
    outputs = [run(bwrap_sandbox, source, []).stdout for _ in range(3)]
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].startswith(f"{np.array([1 / 3])} {torch.tensor([1 / 3])} ")
