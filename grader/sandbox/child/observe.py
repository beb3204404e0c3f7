"""Notebook-mode observation: module forward calls, parameters and their .grad, namespace arrays (the
top level, and one level inside containers and the student's objects: bpg_names).

Standalone on purpose: shipped as source into the sandbox (as bpg_observe) and run in the child that runs
student code; imports only the standard library, numpy and torch. Nothing here may raise into student
code: every probe of a student object is guarded, and what cannot be read is left out.

Arrays are sent as float64, content-addressed (equal arrays share one key 'a<N>', numbered in order of
first sight, so the same notebook gives the same keys), at most MAX_ELEMENTS elements each, within a
quota per kind of record and a byte budget; what is left out is noted once.
"""

import hashlib

import bpg_names
import numpy as np
import torch

MAX_ELEMENTS = 100_000
_NUMPY_DTYPES = frozenset(
    {
        torch.float64,
        torch.float32,
        torch.float16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    }
)
QUOTAS = {
    "forward": 96,
    "grads": 80,
    "namespace": 80,
    "graph": 32,
    "draws": 32,
}  # arrays kept per kind of record; 320 in all
MAX_SENT = 1024  # arrays sent in all, superseded "last calls" included (the grader drops those)
FIRST_CALLS = 3  # per module instance, plus the last
MAX_ENTRIES = 1000  # namespace entries per run


def _plain(value):
    """A read-only float64-convertible view of a tensor or numeric numpy value, or None."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.layout != torch.strided or value.device.type != "cpu":
            return None
        return value if value.numel() <= MAX_ELEMENTS else None
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        return array if array.dtype.kind in "biuf" and array.size <= MAX_ELEMENTS else None
    return None


def float64(value) -> np.ndarray | None:
    """A contiguous float64 copy of a tensor or numeric numpy value (never sharing memory), or None."""
    try:
        plain = _plain(value)
        if plain is None:
            return None
        if isinstance(plain, torch.Tensor):
            plain = plain.detach().resolve_conj().resolve_neg().to(torch.float64).numpy()
        return np.array(plain, dtype=np.float64, copy=True, order="C")
    except Exception:
        return None


def fingerprint(value) -> tuple | None:
    """A cheap identity of a value's content (dtype, shape, hash of its raw bytes), or None."""
    try:
        plain = _plain(value)
        if plain is None:
            return None
        grad = isinstance(plain, torch.Tensor) and plain.requires_grad
        if isinstance(plain, torch.Tensor):
            dtype, shape = str(plain.dtype), tuple(plain.shape)
            plain = plain.detach()
            if plain.is_contiguous() and not plain.is_conj() and not plain.is_neg() and plain.dtype in _NUMPY_DTYPES:
                raw = plain.numpy()  # the common case, without four more tensor ops (run ~100 times a notebook)
            else:
                raw = plain.resolve_conj().resolve_neg().reshape(-1).contiguous().view(torch.uint8).numpy()
        else:
            dtype, shape = plain.dtype.str, plain.shape
            raw = np.ascontiguousarray(plain.reshape(-1)).view(np.uint8)
        return dtype, shape, grad, hashlib.blake2b(raw, digest_size=16).digest()
    except Exception:
        return None


def _copy(value):
    """A copy of a tensor small enough to observe, taken now (later in-place updates do not reach it);
    a numpy copy where possible, cheaper than Tensor.clone in a training loop."""
    if not isinstance(value, torch.Tensor):
        return None
    try:
        if value.numel() > MAX_ELEMENTS:
            return None
        plain = value.detach()
        try:
            return plain.numpy().copy()  # complex values are dropped later, by float64
        except (RuntimeError, TypeError):  # conjugate or negative views, bfloat16, sparse, not on the CPU
            return plain.clone() if _plain(plain) is not None else None
    except Exception:
        return None


class Store:
    """Content-addressed float64 arrays waiting to be sent with the current cell."""

    def __init__(self, budget_bytes: int, notes):
        self.keys, self.pending, self.notes = {}, {}, notes
        self.used, self.budget = dict.fromkeys(QUOTAS, 0), budget_bytes

    def room(self, kind: str, count: int) -> bool:
        """Whether `count` more arrays of this kind fit the quota (noted once when they do not)."""
        if self.used[kind] + count <= QUOTAS[kind]:
            return True
        self.notes.add(
            f"observation capped: at most {QUOTAS[kind]} arrays of {kind} records are kept; later ones were left out",
            per_cell=False,
        )
        return False

    def add(self, array: np.ndarray | None, kind: str) -> str | None:
        if array is None:
            return None
        digest = hashlib.blake2b(repr(array.shape).encode() + array.tobytes(), digest_size=16).digest()
        if digest in self.keys:
            return self.keys[digest]
        if not self.room(kind, 1) or len(self.keys) >= MAX_SENT:
            return None
        if array.nbytes + 128 > self.budget:
            self.notes.add(
                "observation capped: the size limit for results was reached; later arrays were left out", per_cell=False
            )
            return None
        key = f"a{len(self.keys)}"
        self.keys[digest], self.pending[key] = key, array
        self.used[kind] += 1
        self.budget -= array.nbytes + 128
        return key

    def take(self) -> dict:
        taken, self.pending = self.pending, {}
        return taken


class Observer:
    """Records what the notebook computes; `after_cell` returns the records of one cell."""

    def __init__(self, store: Store, notes):
        self.store, self.notes = store, notes
        self.cell, self.depth = 0, 0
        self.instances: dict[int, tuple[int, torch.nn.Module]] = {}  # id -> (number, module kept alive)
        self.counts: dict[int, int] = {}
        self.calls: list = []  # (module, record) of the current cell
        self.last: dict[int, tuple] = {}  # number -> (module, record, input, params, output), copies
        self.flushed: dict[int, int] = {}  # number -> arrays its latest flushed "last call" added
        self.grad_prints: dict[int, tuple] = {}
        self.prints: dict[str, tuple] = {}
        self.entries = 0

    def install(self) -> None:
        """Record every top-level module call of this run from now on (see _observed_call)."""
        _ACTIVE[0] = self

    def _number(self, module) -> int:
        entry = self.instances.get(id(module))
        if entry is None or entry[1] is not module:
            entry = self.instances[id(module)] = (len(self.instances), module)
        return entry[0]

    def _before(self, module, args, kwargs):
        """(module, record, room, None) for one of the first calls, whose arrays are stored now;
        (module, record, input copy, parameter copies) for a later one, which may become the last."""
        try:
            number = self._number(module)
            index = self.counts.get(number, 0)
            self.counts[number] = index + 1
            first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
            params = [(n, p) for n, p in module.named_parameters()]
            record = {
                "cell": self.cell,
                "module": type(module).__name__,
                "variable": None,
                "instance": number,
                "index": index,
                "input": None,
                "output": None,
                "params": {},
            }
            if index < FIRST_CALLS:
                room = self.store.room("forward", len(params) + 2)
                if room:  # else the call is still counted, without arrays
                    record["input"] = self.store.add(float64(first), "forward")
                    record["params"] = {n: k for n, p in params if (k := self.store.add(float64(p), "forward"))}
                return module, record, room, None
            return module, record, _copy(first), [(n, _copy(p)) for n, p in params]
        except Exception:
            return None

    def _after(self, started, output) -> None:
        if started is None:
            return
        module, record, room_or_input, params = started
        try:
            out = output
            if isinstance(output, (tuple, list)):
                out = next((o for o in output if isinstance(o, torch.Tensor)), None)
            if params is None:
                record["output"] = self.store.add(float64(out), "forward") if room_or_input else None
                self.calls.append((module, record))
            else:
                self.last[record["instance"]] = (module, record, room_or_input, params, _copy(out))
        except Exception:
            pass

    def _flush_last(self) -> None:
        """The latest call (4th or later) of each instance becomes a record; superseded ones never are."""
        for number in sorted(self.last):
            module, record, first, params, out = self.last[number]
            self.store.used["forward"] -= self.flushed.pop(number, 0)  # the grader keeps only the latest
            before = len(self.store.keys)
            if self.store.room("forward", len(params) + 2):
                record["input"] = self.store.add(float64(first), "forward")
                record["params"] = {n: k for n, p in params if (k := self.store.add(float64(p), "forward"))}
                record["output"] = self.store.add(float64(out), "forward")
            self.flushed[number] = len(self.store.keys) - before
            self.calls.append((module, record))
        self.last = {}

    def _names(self, namespace: dict) -> tuple[list, dict]:
        """(name, value) pairs to examine and the modules among them (bpg_names.namespace_names)."""
        return bpg_names.namespace_names(namespace, self.notes)

    def pairs(self, namespace: dict) -> list:
        """The (name, value) pairs of `namespace` the observer examines after a cell (the provenance fork
        examines the same ones)."""
        return self._names(namespace)[0]

    def fingerprints(self) -> dict:
        """A copy of each name's fingerprint when it was last sent: what the fork compares against."""
        return dict(self.prints)

    def after_cell(self, namespace: dict) -> dict:
        """Records of the cell that just ran, and the arrays they need that were not sent before."""
        self._flush_last()
        pairs, modules = self._names(namespace)
        calls = []
        for module, record in self.calls:
            record["variable"] = modules.get(id(module), (None,))[0]
            calls.append(record)
        self.calls = []
        grads = [s for name, module in modules.values() if (s := self._grads(name, module)) is not None]
        entries = [e for name, value in pairs if (e := self._entry(name, value)) is not None]
        return {"forward_calls": calls, "grads": grads, "namespace": entries}

    def _grads(self, name: str, module) -> dict | None:
        try:
            params = list(module.named_parameters())
            if not params:
                return None
            prints = tuple((n, fingerprint(p), p.grad is not None and fingerprint(p.grad)) for n, p in params)
            number = self._number(module)
            if self.grad_prints.get(number) == prints:
                return None
            self.grad_prints[number] = prints
            with_grad = [(n, p.grad) for n, p in params if p.grad is not None]
            snapshot = {
                "cell": self.cell,
                "variable": name,
                "module": type(module).__name__,
                "instance": number,
                "params": {},
                "grads": {},
            }
            if self.store.room("grads", len(params) + len(with_grad)):
                snapshot["params"] = {n: k for n, p in params if (k := self.store.add(float64(p), "grads"))}
                snapshot["grads"] = {n: k for n, g in with_grad if (k := self.store.add(float64(g), "grads"))}
            return snapshot
        except Exception:
            return None

    def _entry(self, name: str, value) -> dict | None:
        if not isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
            return None
        seen = fingerprint(value)
        if seen is None or self.prints.get(name) == seen:
            return None
        if self.entries >= MAX_ENTRIES:
            self.notes.add(f"observation capped: at most {MAX_ENTRIES} namespace values are kept", per_cell=False)
            return None
        key = self.store.add(float64(value), "namespace")
        if key is None:
            return None
        self.prints[name] = seen
        self.entries += 1
        tensor = isinstance(value, torch.Tensor)
        return {
            "cell": self.cell,
            "name": name,
            "array": key,
            "kind": "tensor" if tensor else "ndarray",
            "requires_grad": tensor and bool(value.requires_grad),
            "dtype": str(value.dtype).removeprefix("torch.") if tensor else str(np.asarray(value).dtype),
        }


# torch.nn.Module.__call__ is wrapped once, in the worker, when this module is loaded there: patching a
# class in each child would write to every nn.Module subclass (type caches) and copy those pages after
# each fork. Until a notebook run installs its Observer, the wrapper only passes calls through.
_ACTIVE: list = [None]
_original_call = torch.nn.Module.__call__


def _observed_call(module, *args, **kwargs):
    observer = _ACTIVE[0]
    if observer is None or observer.depth:
        return _original_call(module, *args, **kwargs)
    observer.depth += 1
    started, output = observer._before(module, args, kwargs), None
    try:
        output = _original_call(module, *args, **kwargs)
        return output
    finally:
        observer.depth -= 1
        observer._after(started, output)


torch.nn.Module.__call__ = _observed_call
