"""Turns whatever a graded function returned into float64 arrays, lists of strings, and problems.

Standalone on purpose: shipped as source into the sandbox and run in the child that also runs student
code; imports only the standard library, numpy and torch. Sizes are checked before anything is copied,
so a 10^9-element view (np.broadcast_to, Tensor.expand) is rejected without allocating it.

When the grader says what it reads (`returns`: the contract's quantity names, each with the shape it
must have, or None for a list of strings such as autograd_graph's node names), only those keys are
kept: every other key is dropped here, in the child, with its name noted (at most MAX_IGNORED of them),
and a value that is not what its quantity needs (a list of strings as dW1) becomes a problem that
names the quantity, what was expected and what was found. Texts and problems together are capped at
MAX_TEXT_CHARS characters per call, so the frame the grader decodes stays small whatever was returned
(DESIGN §5, sandbox properties 8 and 9).
"""

import numpy as np
import torch

MAX_KEYS = 2000
MAX_DEPTH = 4
MAX_TEXT_CHARS = 1 << 16  # characters of texts, problems and keys one call sends back (wire.CallFrame.MAX_BYTES)
MAX_IGNORED = 20  # returned keys that are no quantity, named one by one; the rest are counted (wire.py)
OVERFLOW = "…"  # the problem key that counts what was left out


def _text(value: object, limit: int = 2000) -> str:
    try:
        text = str(value)
    except BaseException:
        text = f"<{type(value).__name__} that cannot be printed>"
    return text if len(text) <= limit else text[:limit] + " …"


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f"a string ({_text(repr(value), 60)})"
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} with shape {value.shape}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return _describe_items(value)
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _describe_items(value) -> str:
    """'a list of 10 strings', 'a tuple of 3 items, 2 of them strings', 'an empty list'."""
    name = type(value).__name__
    if not value:
        return f"an empty {name}"
    strings = sum(isinstance(item, str) for item in value)
    article = "an" if name[:1].lower() in "aeiou" else "a"
    if strings == len(value):
        return f"{article} {name} of {len(value)} string{'s' if len(value) > 1 else ''}"
    if strings:
        return f"{article} {name} of {len(value)} items, {strings} of them strings"
    return f"{article} {name} of {len(value)} item{'s' if len(value) > 1 else ''}"


def _shape_text(shape: list) -> str:
    return "a number" if not shape else f"an array of numbers of shape {tuple(shape)}"


class _Expected:
    """'dW1: expected an array of numbers of shape (10, 2)', written only when a message needs it (most
    returned values are fine, and every call of every job would build it)."""

    __slots__ = ("name", "shape")

    def __init__(self, name: str, shape: list):
        self.name, self.shape = name, shape

    def __str__(self) -> str:
        return f"{self.name}: expected {_shape_text(self.shape)}"


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

    def __init__(self, budget_bytes: int, returns: dict | None = None):
        self.budget = budget_bytes
        self.reset(returns)

    def reset(self, returns: dict | None = None) -> None:
        """Start the next call. `returns` maps each quantity name the grader reads to the shape it must have
        (a list of ints; None: a list of strings); None keeps every key (tests, tools)."""
        self.returns = returns
        self.values, self.texts, self.problems = {}, {}, {}
        self.chars = 0

    def add(self, key: str, value: object, depth: int = 0) -> None:
        if not key and not depth:  # a call's returned value: the budget in characters is this call's
            self.chars = self._recorded()
            if self.returns is not None:
                self._add_returned(value)
                return
        if len(self.values) + len(self.texts) + len(self.problems) >= MAX_KEYS:
            self._problem(OVERFLOW, f"more than {MAX_KEYS} returned values; the rest were ignored")
            return
        if isinstance(value, dict) and depth < MAX_DEPTH:
            for sub_key, sub_value in value.items():
                name = _text(sub_key, 200)
                self.add(f"{key}.{name}" if key else name, sub_value, depth + 1)
            return
        if isinstance(value, (list, tuple, set, frozenset)) and value and all(isinstance(v, str) for v in value):
            self._add_texts(key, value, key or "the returned list")
            return
        self._add_array(key, value, "expected a number, a numpy array or a torch tensor", "")

    def _recorded(self) -> int:
        """Characters of what this call has recorded so far (nothing, unless added to by hand)."""
        return (
            sum(map(len, self.values))
            + sum(len(k) + sum(map(len, v)) for k, v in self.texts.items())
            + sum(len(k) + len(v) for k, v in self.problems.items())
        )

    def _add_returned(self, value: object) -> None:
        """The value a contract function returned: only the quantities the grader reads."""
        names = list(self.returns)
        if not isinstance(value, dict):
            if len(names) == 1:  # e.g. autograd_graph_nodes() returns the list itself
                self._add_quantity(names[0], value)
            else:
                self._problem("", f"expected a dict with the keys {', '.join(names)}, found {_describe(value)}")
            return
        ignored = 0
        for key, item in value.items():
            if isinstance(key, str) and key in self.returns:
                self._add_quantity(key, item)
            elif ignored < MAX_IGNORED:  # a key that is no string is named with its type: never a quantity's name
                ignored += 1
                name = _text(key, 100) if isinstance(key, str) else f"{_text(key, 80)} ({type(key).__name__})"
                self._problem(name, "not a quantity this task asks for; ignored")
            else:
                ignored += 1
        if ignored > MAX_IGNORED:
            self._problem(OVERFLOW, f"{ignored - MAX_IGNORED} more keys that are not quantities of this task; ignored")

    def _add_quantity(self, name: str, value: object) -> None:
        shape = self.returns[name]
        if shape is None:
            if isinstance(value, (list, tuple, set, frozenset)) and value and all(isinstance(v, str) for v in value):
                self._add_texts(name, value, name)
            else:
                self._problem(name, f"{name}: expected a list of strings, found {_describe(value)}")
            return
        expected = _Expected(name, shape)
        if isinstance(value, (list, tuple, set, frozenset)) and any(isinstance(v, str) for v in value):
            self._problem(name, f"{expected}, found {_describe(value)}")
            return
        self._add_array(name, value, expected, f"{name}: ")

    def _add_texts(self, key: str, value, what: str) -> None:
        items = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
        texts = [_text(v, 1000) for v in items[:10000]]
        chars = sum(map(len, texts))
        if self.chars + chars > MAX_TEXT_CHARS:
            self._problem(
                key,
                f"{what}: {len(items)} strings ({chars} characters), more than the grader reads "
                f"({MAX_TEXT_CHARS} characters per call); return only the requested names",
            )
            return
        self.chars += chars
        self.texts[key] = texts

    def _add_array(self, key: str, value: object, expected: "str | _Expected", prefix: str) -> None:
        try:
            array = self._array(value, expected)
        except MemoryError:
            self._problem(key, f"{prefix}too large to send back within the memory limit; return smaller arrays")
            return
        if isinstance(array, str):
            self._problem(key, array if array.startswith(prefix) else prefix + array)
        elif self.chars + len(key) > MAX_TEXT_CHARS:
            self._overflow()
        else:
            self.chars += len(key)
            self.values[key] = array

    def _problem(self, key: str, message: str) -> None:
        """Record a problem, within MAX_TEXT_CHARS: past it, one last problem says the rest were left out."""
        if self.chars + len(key) + len(message) > MAX_TEXT_CHARS:
            self._overflow()
            return
        self.chars += len(key) + len(message)
        self.problems[key] = message

    def _overflow(self) -> None:
        self.problems.setdefault(
            OVERFLOW,
            f"more returned keys, texts and problems than the grader reads "
            f"({MAX_TEXT_CHARS} characters in all); the rest were left out",
        )

    def _array(self, value: object, expected: "str | _Expected"):
        """A float64 array, or a string saying what was expected and what was found."""
        if value is None or isinstance(value, (str, bytes)):
            return f"{expected}, found {_describe(value)}"
        if isinstance(value, torch.Tensor):
            if value.is_complex():
                return f"{expected} of real numbers, found a complex tensor"
            if not self._fits(value.numel()):
                return self._too_large(value.numel())
            try:
                return value.detach().cpu().resolve_conj().resolve_neg().to(torch.float64).numpy().copy()
            except (RuntimeError, TypeError) as exc:
                return f"{expected}, found a tensor that cannot be read ({_text(exc, 200)})"
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                return f"{expected}, found an integer too large for a float ({_text(value, 40)})"
        if isinstance(value, (bool, float, np.generic, np.ndarray, list, tuple)):
            if isinstance(value, (list, tuple)):
                try:
                    value = np.asarray(_detach(value))
                except (ValueError, TypeError, RuntimeError, RecursionError) as exc:
                    return f"{expected}, found a {type(value).__name__} that is not a rectangular array ({_text(exc, 200)})"
            array = np.asarray(value)
            if array.dtype.kind == "c":
                return f"{expected} of real numbers, found complex values (dtype {array.dtype})"
            if array.dtype.kind not in "biuf":
                return f"{expected}, found {_describe(array)}"
            if not self._fits(array.size):
                return self._too_large(array.size)
            try:
                return array.astype(np.float64, copy=True)
            except OverflowError:
                return f"{expected}, found an integer too large for a float"
        return f"{expected}, found {_describe(value)}"

    def _fits(self, count: int) -> bool:
        if count * 8 > self.budget:
            return False
        self.budget -= count * 8
        return True

    def _too_large(self, count: int) -> str:
        return (
            f"too large: {count} elements ({count * 8 / 2**20:.1f} MiB as float64), more than the "
            f"{max(self.budget, 0) / 2**20:.1f} MiB left for results; return only the requested quantities"
        )
