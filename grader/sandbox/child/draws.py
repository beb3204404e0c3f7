"""Notebook-mode record of the random draws that build dropout masks, so that dropout training is graded on
exactly the masks the student's run drew (grader/notebook/kinds/dropout.py replays it with them).

Standalone on purpose: shipped as source into the sandbox (as bpg_draws) and run in the child that runs
student code; imports only the standard library, numpy and torch. Nothing here may raise into student code
or change what it computes: every wrapper calls the original with the same arguments, consumes the same
random numbers and returns its result untouched; recording is guarded.

Recorded, per cell, in the order drawn (consecutive draws of one function, shape and probability are
stacked into one array (count, *shape)):
- torch.nn.functional.dropout (nn.Dropout calls it) and torch.dropout: the keep-mask the call applied,
  1 where the output kept its input, 0 where it zeroed it (an input of exactly 0 tells nothing: 1), with
  its drop probability p and `training`;
- numpy.random.binomial (with its success probability as p), rand, random, random_sample, uniform: the
  numbers drawn, from which a mask is built (`rand(…) > p`); small draws only.

The wrappers are installed once, in the worker, when this module is loaded there (like bpg_observe's
Module.__call__): patching in each child would copy those pages after each fork. Until a notebook run
activates a Recorder, they only pass calls through.
"""

import functools

import numpy as np
import torch
import torch.nn.functional as F

MAX_ELEMENTS = 4096  # per draw: a mask of a hidden layer, not a data set
MAX_STACKED = 100_000  # elements per stacked array (the grader's cap on one array)
MAX_DRAWS = 20_000  # per run
NUMPY = ("binomial", "rand", "random", "random_sample", "uniform")


class Recorder:
    """The draws of the cell that is running; `take()` hands them over as records with their arrays."""

    def __init__(self, store, notes):
        self.store, self.notes = store, notes
        self.groups: list[dict] = []
        self.total, self.depth = 0, 0

    def add(self, function: str, values, p, training) -> None:
        """One draw (a tensor or numpy array), kept as float64, stacked onto the last group when it matches."""
        try:
            if self.total >= MAX_DRAWS:
                self.notes.add(f"more than {MAX_DRAWS} random draws: later ones were not recorded", per_cell=False)
                return
            array = np.array(values, dtype=np.float64, copy=True)
            if array.size == 0 or array.size > MAX_ELEMENTS:
                return
            p = float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) and np.isfinite(p) else None
            key = (function, array.shape, p, training)
            last = self.groups[-1] if self.groups else None
            if last is None or last["key"] != key or (len(last["arrays"]) + 1) * array.size > MAX_STACKED:
                last = {"key": key, "arrays": []}
                self.groups.append(last)
            last["arrays"].append(array)
            self.total += 1
        except Exception:
            pass

    def take(self) -> list:
        """Records of the cell's draws: function, p, training, shape of one draw, count, array key."""
        records, groups, self.groups = [], self.groups, []
        for group in groups:
            function, shape, p, training = group["key"]
            key = self.store.add(np.stack(group["arrays"]), "draws")
            if key is None:
                continue
            records.append(
                {
                    "cell": max(1, int(self.notes.cell)),
                    "function": function,
                    "p": p,
                    "training": training,
                    "shape": list(shape),
                    "count": len(group["arrays"]),
                    "array": key,
                }
            )
        return records


def activate(store, notes) -> Recorder:
    """Record the draws of this run from now on."""
    recorder = Recorder(store, notes)
    _ACTIVE[0] = recorder
    return recorder


def _kept(before, output) -> np.ndarray:
    """1 where dropout kept its input, 0 where it zeroed it; 1 where the input was 0 (nothing to tell)."""
    before = before.detach().to(torch.float64)
    output = output.detach().to(torch.float64)
    return ((output != 0) | (before == 0)).to(torch.float64).numpy()


def _wrap_dropout(original, function: str):
    @functools.wraps(original)
    def dropout(input, p=0.5, training=True, inplace=False):
        recorder = _ACTIVE[0]
        if recorder is None or recorder.depth or not isinstance(input, torch.Tensor):
            return original(input, p, training, inplace)
        recorder.depth += 1
        try:
            small = input.numel() <= MAX_ELEMENTS and input.layout == torch.strided and input.device.type == "cpu"
            before = input.detach().clone() if small and inplace else input
            output = original(input, p, training, inplace)
            if small and isinstance(output, torch.Tensor) and output.shape == input.shape:
                recorder.add(function, _kept(before, output), p, bool(training))
            return output
        finally:
            recorder.depth -= 1

    return dropout


def _wrap_torch_dropout(original):
    @functools.wraps(original)
    def dropout(input, p, train):
        recorder = _ACTIVE[0]
        if recorder is None or recorder.depth or not isinstance(input, torch.Tensor):
            return original(input, p, train)
        recorder.depth += 1
        try:
            output = original(input, p, train)
            if input.numel() <= MAX_ELEMENTS and isinstance(output, torch.Tensor) and output.shape == input.shape:
                recorder.add("torch.dropout", _kept(input, output), p, bool(train))
            return output
        finally:
            recorder.depth -= 1

    return dropout


def _wrap_numpy(original, name: str):
    @functools.wraps(original)
    def draw(*args, **kwargs):
        result = original(*args, **kwargs)
        recorder = _ACTIVE[0]
        if recorder is not None and not recorder.depth and isinstance(result, np.ndarray):
            p = kwargs.get("p", args[1] if len(args) > 1 else None) if name == "binomial" else None
            recorder.add(f"numpy.random.{name}", result, p, None)
        return result

    return draw


_ACTIVE: list = [None]
F.dropout = _wrap_dropout(F.dropout, "torch.nn.functional.dropout")
torch.dropout = _wrap_torch_dropout(torch.dropout)
for _name in NUMPY:
    setattr(np.random, _name, _wrap_numpy(getattr(np.random, _name), _name))
