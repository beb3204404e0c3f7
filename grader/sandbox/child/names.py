"""Which names of a notebook's namespace reach which values: the top level, one level inside plain
containers (dict, list, tuple), and the attributes of objects of classes the student defined.

Standalone on purpose: shipped as source into the sandbox (as bpg_names) and run in the child that runs
student code; imports only numpy and torch. Nothing here may raise into student code. Objects are read
through object.__getattribute__(obj, "__dict__") and dict.items, so a class's own __getattr__, properties
or __iter__ are not called for this.

Names read as they would in the notebook: "grads['dW1']", "out[2]", "net.dW1", "model.grads['dW1']". What
is examined is capped per value (MAX_ITEMS) and per call (MAX_NAMES, MAX_ATTRIBUTES), so a namespace
flooded with names or objects costs a bounded time after each cell.
"""

import numpy as np
import torch

MAX_NAMES = 2000  # top-level names examined for arrays and containers after a cell
MAX_ITEMS = 200  # items examined one level inside a dict, list or tuple, or attributes of one object
MAX_ATTRIBUTES = 500  # attributes examined in all, inside the student's objects, after a cell
STUDENT_MODULE = "submission"  # the notebook's namespace module (runner.py): where the student's classes live
ARRAYS = (torch.Tensor, np.ndarray, np.generic)


def _items(value) -> tuple[list, bool]:
    """Up to MAX_ITEMS (label, item) pairs one level inside a plain container, and whether there were more."""
    pairs = (
        dict.items(value)
        if isinstance(value, dict)
        else enumerate(list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value))
    )
    found = []
    for key, item in pairs:
        if len(found) >= MAX_ITEMS:
            return found, True
        if isinstance(key, (str, int)) and not isinstance(key, bool):
            found.append((f"[{key!r}]" if isinstance(key, str) else f"[{key}]", item))
    return found, False


def _attributes(value, limit: int) -> tuple[list, int, bool] | None:
    """(label, item) pairs of the arrays among the first `limit` instance attributes of an object whose class
    the student defined (attributes holding a dict, list or tuple: the arrays one level inside it), how many
    attributes were examined, and whether there were more; None for any other value.

    The student's nn.Module subclasses count: their plain tensor attributes (self.dW1 = ...) are in
    __dict__, while registered parameters, buffers and submodules live in underscore-named dicts, skipped."""
    try:
        if isinstance(value, type) or type(value).__module__ != STUDENT_MODULE:
            return None
        attributes = object.__getattribute__(value, "__dict__")
    except Exception:
        return None
    if type(attributes) is not dict:
        return None
    found, examined = [], 0
    for key, item in dict.items(attributes):
        if examined >= limit:
            return found, examined, True
        examined += 1
        if type(key) is not str or key.startswith("_"):
            continue
        if isinstance(item, ARRAYS):
            found.append((f".{key}", item))
        elif type(item) in (list, tuple) or isinstance(item, dict):
            inside, _ = _items(item)
            found += [(f".{key}{label}", inner) for label, inner in inside if isinstance(inner, ARRAYS)]
    return found, examined, False


def namespace_names(namespace: dict, notes) -> tuple[list, dict]:
    """(name, value) pairs to examine (top level, then one level inside containers and the student's
    objects) and the torch.nn.Module values among them, by id, with their first name.

    Arrays, containers and objects are examined for the first MAX_NAMES names only; modules at the top
    level are looked for among all names, so a flood of variables cannot hide the student's net."""
    pairs, late, modules, budget = [], [], {}, MAX_ATTRIBUTES
    for position, (name, value) in enumerate(list(namespace.items())):
        if not isinstance(name, str) or name.startswith("_"):
            continue
        if position >= MAX_NAMES:
            if not late:
                notes.add(f"only the first {MAX_NAMES} names of the namespace were examined for arrays", per_cell=False)
            late.append((name, value))
            continue
        pairs.append((name, value))
        try:
            if type(value) in (list, tuple) or isinstance(value, dict):
                items, more = _items(value)
            elif budget > 0 and (inside := _attributes(value, min(MAX_ITEMS, budget))) is not None:
                items, examined, more = inside
                budget -= examined
                if budget <= 0:
                    notes.add(
                        f"only the first {MAX_ATTRIBUTES} attributes of the notebook's objects were "
                        f"examined for arrays",
                        per_cell=False,
                    )
            else:
                continue
            pairs += [(name + label, item) for label, item in items]
            if more:
                notes.add(f"only the first {MAX_ITEMS} items of {name!r} were examined")
        except Exception:
            continue
    for name, value in pairs + late:
        if isinstance(value, torch.nn.Module):
            modules.setdefault(id(value), (name, value))
    return pairs, modules
