"""Bounded memo tables for what every student of a class shares: trials, the answer key, mutant values.

A class is graded against one rubric, so the trials, the reference's values on them and the catalogued
mutants' values are the same for every submission, and are computed once per class instead of once per
student. Tables are bounded (cleared when full) and
their values are never modified by their users (trial arrays are made read-only to enforce it).

`remember` keys on plain values. `remember_for` keys on the identity of long-lived objects (a rubric
model, a task model, which pydantic does not hash) and keeps them alive with the value, so an id can
never be reused for another object while its entry exists.
"""

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_SIZE = 20000


def remember(table: dict, key: tuple, compute: Callable[[], T], size: int = _SIZE) -> T:
    """`table[key]`, computed by `compute()` the first time; at most `size` entries are kept."""
    value = table.get(key)
    if value is None:
        value = compute()
        if len(table) >= size:
            table.clear()
        table[key] = value
    return value


def remember_for(table: dict, owners: tuple, key: tuple, compute: Callable[[], T], size: int = _SIZE) -> T:
    """The same, for values that belong to `owners` (compared by identity) and `key`."""
    entry = remember(table, (*map(id, owners), *key), lambda: (owners, compute()), size)
    if any(kept is not owner for kept, owner in zip(entry[0], owners)):  # unreachable while entries hold owners
        raise RuntimeError("memo entry belongs to another object")
    return entry[1]
