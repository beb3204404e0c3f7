"""Turns whatever a graded function returned into float64 arrays, lists of strings, and problems.

Standalone on purpose: shipped as source into the sandbox and run in the child that also runs student
code; imports only the standard library, numpy and torch. Sizes are checked before anything is copied,
so a 10^9-element view (np.broadcast_to, Tensor.expand) is rejected without allocating it.
"""

import numpy as np
import torch

MAX_KEYS = 2000
MAX_DEPTH = 4


def _text(value: object, limit: int = 2000) -> str:
    try:
        text = str(value)
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not break the runner
        text = f"<{type(value).__name__} that cannot be printed>"
    return text if len(text) <= limit else text[:limit] + " …"


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f"a string ({_text(repr(value), 60)})"
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} with shape {value.shape}"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _detach(value: object, depth: int = 0) -> object:
    """Replace tensors inside nested lists/tuples with float64 numpy arrays so np.asarray can stack them."""
    if isinstance(value, torch.Tensor):
        plain = value.detach().cpu().resolve_conj().resolve_neg()
        return plain.to(torch.complex128 if plain.is_complex() else torch.float64).numpy()  # keeps bfloat16 readable
    if isinstance(value, (list, tuple)) and depth < 32:
        return [_detach(item, depth + 1) for item in value]
    return value


class Converter:
    """Turns a returned value into float64 arrays, lists of strings, and a problem per key that failed."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.values, self.texts, self.problems = {}, {}, {}

    def add(self, key: str, value: object, depth: int = 0) -> None:
        if len(self.values) + len(self.texts) + len(self.problems) >= MAX_KEYS:
            self.problems.setdefault("…", f"more than {MAX_KEYS} returned values; the rest were ignored")
            return
        if isinstance(value, dict) and depth < MAX_DEPTH:
            for sub_key, sub_value in value.items():
                name = _text(sub_key, 200)
                self.add(f"{key}.{name}" if key else name, sub_value, depth + 1)
            return
        if isinstance(value, (list, tuple, set, frozenset)) and value and all(isinstance(v, str) for v in value):
            items = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
            self.texts[key] = [_text(v, 1000) for v in items[:10000]]
            return
        try:
            array = self._array(value)
        except MemoryError:
            self.problems[key] = "too large to send back within the memory limit; return smaller arrays"
            return
        if isinstance(array, str):
            self.problems[key] = array
        else:
            self.values[key] = array

    def _array(self, value: object):
        """A float64 array, or a string saying what was expected and what was found."""
        expected = "expected a number, a numpy array or a torch tensor"
        if value is None or isinstance(value, (str, bytes)):
            return f"{expected}; found {_describe(value)}"
        if isinstance(value, torch.Tensor):
            if value.is_complex():
                return f"{expected} of real numbers; found a complex tensor"
            if not self._fits(value.numel()):
                return self._too_large(value.numel())
            try:
                return value.detach().cpu().resolve_conj().resolve_neg().to(torch.float64).numpy().copy()
            except (RuntimeError, TypeError) as exc:
                return f"{expected}; found a tensor that cannot be read ({_text(exc, 200)})"
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                return f"{expected}; found an integer too large for a float ({_text(value, 40)})"
        if isinstance(value, (bool, float, np.generic, np.ndarray, list, tuple)):
            if isinstance(value, (list, tuple)):
                try:
                    value = np.asarray(_detach(value))
                except (ValueError, TypeError, RuntimeError) as exc:
                    return f"{expected}; found a {type(value).__name__} that is not a rectangular array ({_text(exc, 200)})"
            array = np.asarray(value)
            if array.dtype.kind == "c":
                return f"{expected} of real numbers; found complex values (dtype {array.dtype})"
            if array.dtype.kind not in "biuf":
                return f"{expected}; found {_describe(array)}"
            if not self._fits(array.size):
                return self._too_large(array.size)
            try:
                return array.astype(np.float64, copy=True)
            except OverflowError:
                return f"{expected}; found an integer too large for a float"
        return f"{expected}; found {_describe(value)}"

    def _fits(self, count: int) -> bool:
        if count * 8 > self.budget:
            return False
        self.budget -= count * 8
        return True

    def _too_large(self, count: int) -> str:
        return (f"too large: {count} elements ({count * 8 / 2 ** 20:.1f} MiB as float64), more than the "
                f"{max(self.budget, 0) / 2 ** 20:.1f} MiB left for results; return only the requested quantities")
