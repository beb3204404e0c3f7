"""Runs one submission inside the jailed child: cells top to bottom, then each call the grader asks for.

Standalone on purpose: shipped as source into the sandbox, imports only the standard library, numpy,
torch and its sibling bpg_convert (convert.py), never `grader` or `reference`. Everything here runs in
the child that also runs student code, so nothing it produces is trusted: the grader validates every
frame (grader/sandbox/wire.py, channel.py). bpg_serve (serve.py) reads the job and drives this module.

Channels (DESIGN §5, properties 6 and 8). After the fork the child reads its job itself on fd 5, a pipe
of its own from the grader: a header (cells, seed, limits, input files' layout) and the files' bytes;
no call and no array. Once the "cells" frame reached it, the grader sends the requests on the same pipe:
per call its id, function, arguments and only its own arrays, with a fresh nonce; a scratch call twice,
once with autograd's gradients scaled by a factor drawn for that request (bpg_provenance.scaled), that
rerun just before or just after the graded call as the grader drew for the call; then "done". The child
reads and answers them one at a time. Frames on fd 3:
    {"kind": "cells", ...}                       how executing the cells ended
    {"kind": "call", ..., "nonce"} raw           one answer per request, in order (raw: float64 values)
    {"kind": "done", "nonce"}                    answers the grader's last request
In notebook mode (Job.observe) bpg_notebook runs the cells instead of run_cells, and its per-cell and
files frames come before the "cells" frame, which is then always "ok".

Threat model. Student code runs in this process with the runner's own powers: it can read and replace
anything here (this module's `_SCRATCH` guard and its wrappers' `__wrapped__`, the converter, the
frames on the stack), write any bytes to fd 3, read fd 5, fork, and exit at any moment. What it cannot
do, and why the scheme holds anyway:
- Answer a call before the grader asked for it: every answer must carry the nonce of its request, and a
  request is sent only after the "cells" frame arrived, so a result stream written while the cells run
  (a whole forged run, "17 of 17") fails validation at its first answer: result_invalid, 0 points. The
  grader accepts exactly one answer per request, in order, with the contract's quantity names only.
- Reach another call's inputs from its frames: only the running call's arrays are in this process's
  objects (a request is read when its call starts); and nothing of another job ever was: the warm
  worker never reads a job (worker.py), so no earlier student's data is in its memory.
- Use autograd in a scratch call unseen: with the guard switched off from inside (`_SCRATCH[0] = None`,
  `torch.autograd.grad.__wrapped__`, an alias), the rerun's gradients come back scaled by the grader's
  factor wherever the engine is reached, and a result that follows it scores 0 with the evidence
  (grader/scratch_effect.py). The factors exist only from the end of the cells on.
What remains, inherent to one process: code that rewrites the runner can still answer a request it has
received with anything (as a defined function could: it gains nothing a correct function would not);
code that reads fd 5 itself sees the requests still waiting there, its own job's later inputs, which its
functions are given anyway (the hidden trials' requests are sent only after every public call was answered
and its output read, and what the child does from then on is never shown early: grader/sandbox/drive.py);
code that recognises the rerun (by reading the factor from bpg_provenance or from the job pipe, or by
measuring it with finite differences) can hide autograd from it (remembering its inputs is not enough: when
the rerun comes first, the answer it would hand in again is the scaled one); a call through
the C++ engine itself (`Variable._execution_engine.run_backward`) is not scaled. The static scan
(grader/scan.py) still flags such code for a person to read.

The module namespace is called "submission", not "__main__", so a student's
`if __name__ == "__main__":` block (their own experiments, plots, input()) does not run under grading.
"""

import difflib
import functools
import json
import linecache
import os
import struct
import sys
import time
import traceback
import types

import numpy as np
import torch
from bpg_convert import Converter, _describe, _text

OUR_FILES = frozenset(
    {
        "<sandbox runner>",
        "<sandbox worker>",
        "<sandbox jail>",
        "<sandbox convert>",
        "<sandbox notebook>",
        "<sandbox observe>",
        "<sandbox shims>",
        "<sandbox dynamo>",
        "<sandbox graph>",
        "<sandbox provenance>",
        "<sandbox places>",
        "<sandbox missing>",
        "<sandbox gpu>",
        "<sandbox draws>",
    }
)
MAX_TEXT = 20000


def _frame(fd: int, payload: bytes) -> None:
    view = memoryview(struct.pack(">Q", len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _pack(arrays: dict) -> tuple[dict, bytes]:
    """Specs (name, shape) for float64 arrays, and their raw bytes one after another in the same order:
    the grader reads them back with np.frombuffer, nothing to parse (float64 is checked by the converter)."""
    specs = {key: {"name": f"v{i}", "shape": list(array.shape)} for i, (key, array) in enumerate(arrays.items())}
    return specs, b"".join(array.astype("<f8", copy=False).tobytes(order="C") for array in arrays.values())


def _send(fd: int, message: dict) -> None:
    _frame(fd, json.dumps(message, ensure_ascii=True, allow_nan=True).encode())


def _is_memory_error(exc: BaseException) -> bool:
    """True for MemoryError and torch's allocator failures, following the exception chain."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError) or "can't allocate memory" in _text(exc, 500):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _student_traceback(exc: BaseException, student_files: set) -> str:
    """The traceback from the first frame of student code on, without any frame of the sandbox's own."""
    try:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename not in student_files:
            tb = tb.tb_next
        te = traceback.TracebackException(type(exc), exc, tb, limit=50)
        pending = [te]
        while pending:
            item = pending.pop()
            item.stack = traceback.StackSummary.from_list([f for f in item.stack if f.filename not in OUR_FILES])
            pending += [x for x in (item.__cause__, item.__context__) if x is not None]
        return _text("".join(te.format()), MAX_TEXT)
    except BaseException:
        return _text(f"{type(exc).__name__}: {_text(exc)}", MAX_TEXT)


def _where(exc: BaseException, cell_file: str):
    """Line of the cell's top-level code that was running when exc escaped."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == cell_file and tb.tb_frame.f_code.co_name == "<module>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def compiled(source: str, cell_file: str) -> tuple:
    """(the cell's code, {}), or (None, the record fields of a cell that does not compile)."""
    try:
        return compile(source, cell_file, "exec", dont_inherit=True), {}
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:  # the last two: nested too deeply
        text = "".join(traceback.format_exception_only(type(exc), exc))
        return None, {
            "status": "syntax_error",
            "line": getattr(exc, "lineno", None),
            "error_type": type(exc).__name__,
            "error": _text(getattr(exc, "msg", exc)) or "nested too deeply for Python's parser",
            "traceback": _text(text, MAX_TEXT),
        }


def exited(exc: SystemExit, cell_file: str) -> dict:
    """The record fields of a cell that called sys.exit()."""
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return {
        "status": "exited",
        "line": _where(exc, cell_file),
        "exit_code": code,
        "error_type": "SystemExit",
        "error": _text(exc.code),
    }


def run_cells(cells: list, filename: str, namespace: dict) -> dict:
    """Execute the cells in order in namespace; stop at the first that fails and say where."""
    single = len(cells) == 1 and filename.endswith(".py")
    names = set()
    for number, source in enumerate(cells, 1):
        cell_file = filename if single else f"<cell {number}>"
        names.add(cell_file)
        linecache.cache[cell_file] = (len(source), None, source.splitlines(True), cell_file)
        base = {
            "kind": "cells",
            "cell": number,
            "line": None,
            "error_type": "",
            "error": "",
            "traceback": "",
            "exit_code": None,
        }
        code, failed = compiled(source, cell_file)
        if code is None:
            return dict(base, **failed)
        try:
            exec(code, namespace)
        except SystemExit as exc:
            return dict(base, **exited(exc, cell_file))
        except BaseException as exc:
            status = "memory_limit" if _is_memory_error(exc) else "import_error"
            return dict(
                base,
                status=status,
                line=_where(exc, cell_file),
                error_type=type(exc).__name__,
                error=_text(exc),
                traceback=_student_traceback(exc, names),
            )
    return cells_ran(names)


def cells_ran(student_files) -> dict:
    """The "cells" frame of code that ran to its end (`student_files`: the files its code came from)."""
    return {
        "kind": "cells",
        "status": "ok",
        "cell": None,
        "line": None,
        "error_type": "",
        "error": "",
        "traceback": "",
        "exit_code": None,
        "student_files": sorted(student_files),
    }


# The scratch function running now, in a child; None otherwise. Autograd's entry points are wrapped once,
# where this module is loaded (the worker, before any fork), and refuse while it is set: assigning
# torch.Tensor.backward for each call instead wrote to the Tensor class and its subclasses in every child
# (type caches), copying those pages after each fork.
_SCRATCH: list = [None]
# Notebook mode: bpg_observe's Observer.autograd(what, original, args, kwargs) sees every autograd entry
# (the first backward's graph, the counterfactual run's fork point); None otherwise: a plain pass-through.
_AUTOGRAD_HOOK: list = [None]


def _guarded(what: str, original):
    if getattr(original, "_bpg_guarded", False):  # loaded twice in one process (tests): wrap once
        return original

    @functools.wraps(original)
    def guarded(*args, **kwargs):
        function = _SCRATCH[0]
        if function is not None:
            raise RuntimeError(
                f"from scratch: {what} is not allowed in {function}; compute the gradients with "
                f"your own backward pass (numpy or tensor operations), not with autograd"
            )
        hook = _AUTOGRAD_HOOK[0]
        if hook is not None:
            return hook(what, original, args, kwargs)
        return original(*args, **kwargs)

    guarded._bpg_guarded = True
    return guarded


torch.Tensor.backward = _guarded("Tensor.backward()", torch.Tensor.backward)
torch.autograd.backward = _guarded("torch.autograd.backward()", torch.autograd.backward)
torch.autograd.grad = _guarded("torch.autograd.grad()", torch.autograd.grad)


class ScratchMode:
    """Autograd off and its entry points refusing, for one call; restored afterwards."""

    def __init__(self, function: str):
        self.function = function

    def __enter__(self):
        self.saved = (torch.is_grad_enabled(), _SCRATCH[0])
        torch.set_grad_enabled(False)
        _SCRATCH[0] = self.function

    def __exit__(self, *exc_info):
        enabled, _SCRATCH[0] = self.saved
        torch.set_grad_enabled(enabled)
        return False


def _suggestions(name: str, namespace: dict) -> list:
    callables = [
        k
        for k, v in namespace.items()
        if not k.startswith("__") and callable(v) and not isinstance(v, types.ModuleType)
    ]
    return difflib.get_close_matches(name, callables, n=3, cutoff=0.6)


def run_call(call: dict, namespace: dict, arrays: dict, converter: Converter, student_files: set) -> dict:
    """Call one graded function on fresh copies of its inputs, then flush stdout and stderr, so what it
    printed is in the grader's pipes before its answer is (the grader reads them up to the last public
    answer before it sends any hidden input: grader/sandbox/drive.py); never raises."""
    try:
        return _run_call(call, namespace, arrays, converter, student_files)
    finally:
        flush_streams()


def flush_streams() -> None:
    """Flush sys.stdout and sys.stderr, whatever the student made of them (never raises)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _run_call(call: dict, namespace: dict, arrays: dict, converter: Converter, student_files: set) -> dict:
    name = call["function"]
    result = {
        "kind": "call",
        "id": call["id"],
        "status": "ok",
        "error_type": "",
        "error": "",
        "traceback": "",
        "suggestions": [],
        "found": "",
        "memory": False,
        "seconds": 0.0,
    }
    if name not in namespace:
        return dict(result, status="missing_function", suggestions=_suggestions(name, namespace))
    function = namespace[name]
    if not callable(function):
        return dict(result, status="not_callable", found=_describe(function))
    args = []
    for arg in call["args"]:
        if isinstance(arg, str):
            args.append(arrays[arg].copy())
        elif isinstance(arg, dict):
            args.append({k: arrays[v].copy() for k, v in arg.items()})
        else:
            args.append(arg)
    started = time.perf_counter()
    try:
        if call.get("scratch"):
            with ScratchMode(name):
                value = function(*args)
        else:
            value = function(*args)
    except BaseException as exc:
        result["seconds"] = time.perf_counter() - started
        return dict(
            result,
            status="raised",
            error_type=type(exc).__name__,
            error=_text(exc),
            traceback=_student_traceback(exc, student_files),
            memory=_is_memory_error(exc),
        )
    result["seconds"] = time.perf_counter() - started
    if (
        value is None
        or isinstance(value, (str, bytes))
        or not isinstance(
            value, (dict, list, tuple, set, frozenset, bool, int, float, np.generic, np.ndarray, torch.Tensor)
        )
    ):
        return dict(result, status="bad_return", found=_describe(value))
    converter.add("", value)
    return dict(result, found=_describe(value))
