"""Where a notebook keeps the student's own gradients when no file holds them: its variables and objects.

By name first (dW1, dL_dw1, grad_w1, W1_grad, grads['W1'], my_grads['dW1'], net.dW1), then by value: the
arrays closest to the reference, in either layout. Never autograd's .grad or a weight taken as it is, never
(by value alone) a tensor that requires grad; a candidate the counterfactual run shows copied from autograd
is passed over for one that is not.
"""

import re
from typing import Any

import numpy as np

from grader.compare import align
from grader.notebook.provenance import Follows, entry_again, follows
from grader.sandbox import RunResult

_NAME = re.compile(
    r"^(?P<pre>d|dl_?d|dloss_?d|grad_?|g|delta_?)?(?P<kind>[wb])(?P<layer>\d+)(?P<post>_?grad|_?gradient)?$"
)
_KEY = re.compile(r"^(?P<outer>.*)\[['\"]?(?P<inner>[^'\"\]]+)['\"]?\]$")


def gradient_name(name: str) -> str | None:
    """`dW1` for names like dW1, dL_dW1, grad_w1, W1_grad, grads['W1'], my_grads['dW1'] or net.dW1; else None."""
    keyed = _KEY.match(name)
    outer, inner = (keyed.group("outer"), keyed.group("inner")) if keyed else ("", name)
    if not keyed and "." in name:  # an attribute of the student's object: net.dW1
        outer, inner = name.rsplit(".", 1)
    match = _NAME.match(re.sub(r"[^a-z0-9_]", "", inner.lower()))
    if not match:
        return None
    if not (match.group("pre") or match.group("post") or "grad" in outer.lower()):
        return None  # a bare W1 is the weight, not its gradient
    return f"d{match.group('kind').upper() if match.group('kind') == 'w' else 'b'}{match.group('layer')}"


def is_copy(value: np.ndarray, copies: list[np.ndarray]) -> bool:
    """Whether `value` is one of `copies` exactly, in either layout (a .grad, or a weight, taken as it is)."""
    return any(
        (value.shape == c.shape and np.array_equal(value, c))
        or (value.ndim == 2 and value.T.shape == c.shape and np.array_equal(value.T, c))
        for c in copies
    )


def where(name: str) -> str:
    """How a namespace name reads in a report: 'variable dW1', "variable grads['W1']", 'attribute dW1 of `net`'."""
    owner, dot, attribute = name.rpartition(".")
    if dot and owner and "[" not in attribute:
        return f"attribute {attribute} of `{owner}`"
    return f"variable {name}"


def scratch_variable(
    run: RunResult,
    key: str,
    shape: tuple[int, ...],
    expected: np.ndarray,
    autograd: list[np.ndarray],
    weights: list[np.ndarray],
) -> tuple[Any, str, bool] | None:
    """The namespace entry that holds the student's own `key`: named like it (earliest cell first), else the
    closest by value; whether it requires grad does not matter (tensor ops on parameters carry it), where it
    came from does. A candidate the counterfactual run shows copied from autograd is passed over for one that
    is not; when every candidate was copied, the first is returned with copied=True."""
    size = int(np.prod(shape))
    named = [(e, "") for e in run.namespace if gradient_name(e.name) == key and run.arrays[e.array].size == size]
    candidates = named + [(e, " (found by its value)") for e in by_value(run, expected, [*autograd, *weights])]
    copied = None
    for entry, how in candidates:
        again = entry_again(run, entry.name, entry.cell)
        if (
            run.counterfactual is not None
            and follows(run.arrays[entry.array], again, run.counterfactual.factor) == Follows.autograd
        ):
            copied = copied or (entry, how, True)
            continue
        return entry, how, False
    return copied


def same_size(run: RunResult, key: str, expected: np.ndarray, excluded: list[np.ndarray]) -> list:
    """Namespace entries the size of `key` that may hold the student's own value of it: named like it first,
    then the others closest to `expected` in either layout first (as values are found when no file holds
    them); never a copy of autograd's .grad or of a weight (either layout)."""
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0

    def distance(value: np.ndarray) -> float:
        value = (
            value.reshape(expected.shape)
            if value.shape != expected.shape and value.T.shape != expected.shape
            else value
        )
        layouts = [
            v for v in (value, value.T if value.ndim == 2 else None) if v is not None and v.shape == expected.shape
        ]
        return min((float(np.max(np.abs(v - expected), initial=0.0)) / scale for v in layouts), default=np.inf)

    entries = [
        e
        for e in run.namespace
        if run.arrays[e.array].size == expected.size and not is_copy(run.arrays[e.array], excluded)
    ]
    return sorted(entries, key=lambda e: (gradient_name(e.name) != key, distance(run.arrays[e.array])))


def by_value(run: RunResult, expected: np.ndarray, excluded: list[np.ndarray]) -> list:
    """Namespace entries whose value is within a factor of `expected` (either layout), closest first; arrays
    equal to `excluded` ones (autograd's .grad, the weights themselves) are never taken for scratch work, nor
    tensors that require grad: by value alone, those are the forward pass's (prediction, loss, activations),
    and a gradient computed with tensor operations on the parameters is found by its name instead."""
    ranked = []
    scale = float(np.max(np.abs(expected))) or 1.0
    for entry in run.namespace:
        value = run.arrays[entry.array]
        if entry.requires_grad or value.size != expected.size or is_copy(value, excluded):
            continue
        aligned, _ = align(value, expected, allow_transposed=True)
        if aligned is None:
            continue
        error = float(np.max(np.abs(aligned - expected))) / scale
        if error < 1.0:
            ranked.append((error, entry))
    return [entry for _, entry in sorted(ranked, key=lambda pair: pair[0])]
