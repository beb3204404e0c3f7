"""Runs one submission inside the jailed child: cells top to bottom, then each graded call, results out.

Standalone on purpose: shipped as source into the sandbox, imports only the standard library, numpy,
torch and its sibling bpg_convert (convert.py), never `grader` or `reference`. Everything here runs in
the child that also runs student code, so nothing it produces is trusted: the grader validates every
frame (see grader/sandbox/wire.py).

Result channel (fd 3), length-prefixed frames in this order:
    {"kind": "cells", ...}                              how executing the cells ended
    {"kind": "start", "id"} {"kind": "call", ...} raw    per call, in job order (raw: the values, float64 bytes)
    {"kind": "done"}
A call that never sends its "call" frame (killed, exited) is still known to have started. In notebook
mode (Job.observe) bpg_notebook (notebook.py) runs the cells instead of run_cells, and its per-cell and
files frames come before the "cells" frame, which is then always "ok".

The module namespace is called "submission", not "__main__", so a student's
`if __name__ == "__main__":` block (their own experiments, plots, input()) does not run under grading.
"""

import difflib
import functools
import io
import json
import linecache
import os
import random
import struct
import sys
import time
import traceback
import types

import numpy as np
import torch
from bpg_convert import Converter, _describe, _text

OUR_FILES = frozenset({"<sandbox runner>", "<sandbox worker>", "<sandbox jail>", "<sandbox convert>",
                       "<sandbox notebook>", "<sandbox observe>", "<sandbox shims>", "<sandbox dynamo>",
                       "<sandbox graph>", "<sandbox provenance>", "<sandbox places>", "<sandbox missing>",
                       "<sandbox gpu>"})
MAX_TEXT = 20000


def _frame(fd: int, payload: bytes) -> None:
    view = memoryview(struct.pack(">Q", len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


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
    except BaseException:  # noqa: BLE001
        return _text(f"{type(exc).__name__}: {_text(exc)}", MAX_TEXT)


def _where(exc: BaseException, cell_file: str):
    """Line of the cell's top-level code that was running when exc escaped."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == cell_file and tb.tb_frame.f_code.co_name == "<module>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def run_cells(cells: list, filename: str, namespace: dict) -> dict:
    """Execute the cells in order in namespace; stop at the first that fails and say where."""
    single = len(cells) == 1 and filename.endswith(".py")
    names = set()
    for number, source in enumerate(cells, 1):
        cell_file = filename if single else f"<cell {number}>"
        names.add(cell_file)
        linecache.cache[cell_file] = (len(source), None, source.splitlines(True), cell_file)
        base = {"kind": "cells", "cell": number, "line": None, "error_type": "", "error": "", "traceback": "",
                "exit_code": None}
        try:
            code = compile(source, cell_file, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            text = "".join(traceback.format_exception_only(type(exc), exc))
            return dict(base, status="syntax_error", line=getattr(exc, "lineno", None), error_type=type(exc).__name__,
                        error=_text(getattr(exc, "msg", exc)), traceback=_text(text, MAX_TEXT))
        try:
            exec(code, namespace)  # noqa: S102 - this is the point of the sandbox
        except SystemExit as exc:
            code_value = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            return dict(base, status="exited", line=_where(exc, cell_file), exit_code=code_value,
                        error_type="SystemExit", error=_text(exc.code))
        except BaseException as exc:  # noqa: BLE001
            status = "memory_limit" if _is_memory_error(exc) else "import_error"
            return dict(base, status=status, line=_where(exc, cell_file), error_type=type(exc).__name__,
                        error=_text(exc), traceback=_student_traceback(exc, names))
    return {"kind": "cells", "status": "ok", "cell": None, "line": None, "error_type": "", "error": "",
            "traceback": "", "exit_code": None, "student_files": sorted(names)}


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
            raise RuntimeError(f"from scratch: {what} is not allowed in {function}; compute the gradients with "
                               f"your own backward pass (numpy or tensor operations), not with autograd")
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
    callables = [k for k, v in namespace.items()
                 if not k.startswith("__") and callable(v) and not isinstance(v, types.ModuleType)]
    return difflib.get_close_matches(name, callables, n=3, cutoff=0.6)


def run_call(call: dict, namespace: dict, arrays: dict, converter: Converter, student_files: set) -> dict:
    """Call one graded function on fresh copies of its inputs; never raises."""
    name = call["function"]
    result = {"kind": "call", "id": call["id"], "status": "ok", "error_type": "", "error": "", "traceback": "",
              "suggestions": [], "found": "", "memory": False, "seconds": 0.0}
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
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        result["seconds"] = time.perf_counter() - started
        return dict(result, status="raised", error_type=type(exc).__name__, error=_text(exc),
                    traceback=_student_traceback(exc, student_files), memory=_is_memory_error(exc))
    result["seconds"] = time.perf_counter() - started
    if value is None or isinstance(value, (str, bytes)) or not isinstance(
            value, (dict, list, tuple, set, frozenset, bool, int, float, np.generic, np.ndarray, torch.Tensor)):
        return dict(result, status="bad_return", found=_describe(value))
    converter.add("", value)
    return dict(result, found=_describe(value))


def _fresh_stdio() -> None:
    """Line-buffered text streams straight on fds 1 and 2, as in a terminal (nothing inherited from the worker)."""
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)


def _prepare(header: dict, blob: bytes, workdir: str) -> tuple[dict, types.ModuleType]:
    """Fresh stdio, environment, inputs, seeds and module namespace for the student's code."""
    _fresh_stdio()
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": "/tmp" if workdir == "/job" else workdir, "LANG": "C.UTF-8",
                       "PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
                       "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    arrays = {}
    for name, shape, offset in header["arrays"]:  # raw float64 bytes from the grader (trusted input)
        count = int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(blob, dtype="<f8", count=count, offset=offset).reshape(shape)
    seed = int(header["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.random.default_generator.manual_seed(seed)  # what torch.manual_seed does on a CPU-only build
    for name, offset, size in header.get("files", []):  # input files, before any student code runs
        with open(os.path.join(workdir, name), "xb") as handle:
            handle.write(blob[offset:offset + size])
    module = types.ModuleType("submission")
    module.__file__ = os.path.join(workdir, header["filename"])
    sys.modules["submission"] = module
    sys.argv = [header["filename"]]
    return arrays, module


def _execute(header: dict, blob: bytes, arrays: dict, module: types.ModuleType, result_fd: int, workdir: str) -> None:
    """Cells, then calls, streaming one frame per step so a later kill loses only the unfinished step.

    In notebook mode (header "observe") bpg_notebook runs the cells and streams its own frames first."""
    if header.get("observe"):
        inputs = {name: blob[offset:offset + size] for name, offset, size in header.get("files", [])}
        cells = sys.modules["bpg_notebook"].run(header, module.__dict__, result_fd, workdir, inputs)
    else:
        cells = run_cells(header["cells"], header["filename"], module.__dict__)
    student_files, sent = set(cells.pop("student_files", [])), cells.pop("sent", 0)
    _send(result_fd, cells)
    if cells["status"] != "ok":
        return
    converter = Converter(max(0, (int(header["limits"]["result_mb"]) << 20) - sent))
    for call in header["calls"]:
        _send(result_fd, {"kind": "start", "id": call["id"]})
        converter.values, converter.texts, converter.problems = {}, {}, {}
        result = run_call(call, module.__dict__, arrays, converter, student_files)
        specs, data = _pack(converter.values)
        _send(result_fd, dict(result, values=specs, texts=converter.texts, problems=converter.problems))
        _frame(result_fd, data)


def main(header: dict, blob: bytes, result_fd: int, workdir: str, control_fd: int) -> None:
    """Run the job described by header, write its frames to result_fd, and end the process.

    Exit codes of our own: 71 when preparing failed (before any student code: a sandbox error), 72 when
    the results could not be produced after student code ran (typically it replaced numpy or json parts).
    Student code can exit with 71 too, so "prepared" goes to the worker on control_fd, which is closed
    before any student code runs: a 71 after it is the student's own exit.
    """
    try:
        arrays, module = _prepare(header, blob, workdir)
        os.write(control_fd, b'{"prepared": true}\n')
        os.close(control_fd)
    except BaseException:  # noqa: BLE001
        os.write(2, f"sandbox runner failed before student code:\n{traceback.format_exc()}".encode())
        os._exit(71)
    try:
        _execute(header, blob, arrays, module, result_fd, workdir)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - the student may have closed or replaced it
                pass
        _send(result_fd, {"kind": "done"})
    except BaseException as exc:  # noqa: BLE001
        os.write(2, f"\n[grader: results could not be sent back: {_text(exc, 300)}]\n".encode())
        os._exit(72)
    os._exit(0)
