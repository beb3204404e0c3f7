"""torch._dynamo imported only when a job needs it, not whenever a job builds an optimizer.

Standalone on purpose: shipped as source into the sandbox (as bpg_dynamo) with worker.py; imports only
the standard library and torch, and is installed once in the worker before any child is forked.

Why: every torch.optim optimizer calls `torch._dynamo.disable(fn, recursive, wrapping=False)` (through
torch._disable_dynamo, from its constructor on) and `torch._dynamo.graph_break()` in every step. The
first of those imports torch._dynamo, ~830 modules with sympy, seconds of CPU paid by each worker
on its first optimizer job, and by a one-job `check` or Gradescope run of such a notebook in full.

What: until something needs more, `torch._dynamo` is a stand-in module that serves exactly those two
calls as eager torch does them (outside torch.compile, disabling dynamo for a function changes nothing
and graph_break() does nothing). Anything else — torch.compile, torch.compiler.disable, any other name,
a submodule, `__path__` or `__file__` — imports the real torch._dynamo first and forgets the functions
served so far (torch._disable_dynamo re-wraps them with the real one at their next call), so from then
on the job sees torch exactly as it is.
"""

import importlib
import sys
import threading
import types
import weakref
from collections.abc import Callable

import torch

NAME = "torch._dynamo"
_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """The stand-in: `disable` and `graph_break` for torch's own eager calls; the real module for the rest."""

    def __getattr__(self, name: str) -> object:
        return getattr(real(), name)


_STAND_IN = _Deferred(NAME)  # __spec__ stays None: `import torch._dynamo` reads it on every import
_SERVED: "weakref.WeakSet" = weakref.WeakSet()


def _disable(
    fn: Callable | None = None, recursive: bool = True, *, reason: str | None = None, wrapping: bool = True
) -> Callable:
    """torch._disable_dynamo's own call (a function, wrapping=False, no reason) returns the function as
    it is; any other form (a decorator factory, torch.compiler.disable), or any call once the real module
    is being imported, is the real one's."""
    if fn is None or not callable(fn) or wrapping or reason is not None or sys.modules.get(NAME) is not _STAND_IN:
        return real().disable(fn, recursive, reason=reason, wrapping=wrapping)
    try:
        _SERVED.add(fn)
    except TypeError:  # not weakly referable: hand it to the real module instead
        return real().disable(fn, recursive, reason=reason, wrapping=wrapping)
    return fn


def _graph_break(msg: str = "") -> None:
    """As in eager torch: nothing (it only means something while dynamo traces)."""


_STAND_IN.disable = _disable
_STAND_IN.graph_break = _graph_break


def install() -> bool:
    """Put the stand-in in place of torch._dynamo, unless the real one is already imported."""
    with _LOCK:
        if NAME in sys.modules:
            return False
        sys.modules[NAME] = _STAND_IN
        torch._dynamo = _STAND_IN
        return True


def real() -> types.ModuleType:
    """The real torch._dynamo, imported now if the stand-in is still in place.

    The lock only covers taking the stand-in out: the import itself runs under Python's own module locks,
    so a thread that needs the module while another imports it waits there, as for any import."""
    with _LOCK:
        swapped = sys.modules.get(NAME) is _STAND_IN
        if swapped:
            del sys.modules[NAME]
            if torch.__dict__.get("_dynamo") is _STAND_IN:
                del torch._dynamo
    try:
        module = importlib.import_module(NAME)
    except BaseException:
        if swapped:  # torch._dynamo cannot be imported here: optimizers keep their two calls answered
            sys.modules.setdefault(NAME, _STAND_IN)
        raise
    if swapped:
        for fn in list(_SERVED):
            fn.__dict__.pop("__dynamo_disable", None)  # torch._disable_dynamo caches per function
        _SERVED.clear()
    return module
