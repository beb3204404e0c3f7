"""The child's life after the fork: read its job, run the cells, answer the grader's requests, exit.

Standalone on purpose: shipped as source into the sandbox (as bpg_serve) and run in the child that also
runs student code; imports only the standard library, numpy, torch and its shipped siblings. The
channels and the threat model are described in runner.py. The worker passes this process the grader's
pipes without reading them (worker.py): the job arrives on fd 5 only now, after the fork, so the warm
worker that forked it never held a byte of any job.

Requests on fd 5, after the header and the files' bytes (the grader sends them once the "cells" frame
reached it; they are read one at a time, each when its call starts):
    {"kind": "call", "nonce", "call": {id, function, args, scratch, returns}, "arrays": [[name, shape, offset]],
     "factor": null | f}  then the raw float64 bytes of that call's arrays
    {"kind": "done", "nonce"}
A call with a factor is a scratch call's rerun, asked for just before or just after the call itself (the
grader draws which): it runs under bpg_provenance.scaled(factor). Each answer
is the call's frame with the request's nonce and its raw values, written at once.
"""

import contextlib
import io
import json
import math
import os
import random
import struct
import sys
import traceback
import types

import bpg_provenance
import numpy as np
import torch
from bpg_convert import Converter, _text
from bpg_runner import _pack, _send, flush_streams, run_call, run_cells

HEADER = struct.Struct(">Q")


def read_exact(fd: int, size: int) -> bytes:
    """Exactly `size` bytes from a blocking fd; EOFError when the grader closed it first."""
    buffer, got = bytearray(size), 0
    view = memoryview(buffer)
    while got < size:
        count = os.readv(fd, [view[got:]])
        if not count:
            raise EOFError("the grader closed the job pipe")
        got += count
    return bytes(buffer)


def read_frame(fd: int) -> bytes:
    return read_exact(fd, HEADER.unpack(read_exact(fd, HEADER.size))[0])


def _framed(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def _write(fd: int, data: bytes) -> None:
    """All of `data` (an answer's two frames: written at once, so the grader wakes once per answer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fresh_stdio() -> None:
    """Line-buffered text streams straight on fds 1 and 2, as in a terminal (nothing inherited from the worker)."""
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )


def _prepare(header: dict, blob: bytes, workdir: str) -> types.ModuleType:
    """Fresh stdio, environment, input files, seeds and module namespace for the student's code."""
    _fresh_stdio()
    os.environ.clear()
    os.environ.update(
        {
            "HOME": workdir,
            "TMPDIR": "/tmp" if workdir == "/job" else workdir,
            "LANG": "C.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
    )
    seed = int(header["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.random.default_generator.manual_seed(seed)  # what torch.manual_seed does on a CPU-only build
    for name, offset, size in header.get("files", []):  # input files, before any student code runs
        with open(os.path.join(workdir, name), "xb") as handle:
            handle.write(blob[offset : offset + size])
    module = types.ModuleType("submission")
    module.__file__ = os.path.join(workdir, header["filename"])
    sys.modules["submission"] = module
    sys.argv = [header["filename"]]
    return module


def _execute(header: dict, blob: bytes, module: types.ModuleType, result_fd: int, workdir: str, job_fd: int) -> None:
    """Cells, then the grader's requests, streaming one frame per step so a later kill loses only the
    unfinished step. In notebook mode (header "observe") bpg_notebook runs the cells and streams its own
    frames first."""
    if header.get("observe"):
        inputs = {name: blob[offset : offset + size] for name, offset, size in header.get("files", [])}
        cells = sys.modules["bpg_notebook"].run(header, module.__dict__, result_fd, workdir, inputs)
    else:
        cells = run_cells(header["cells"], header["filename"], module.__dict__)
    student_files, sent = set(cells.pop("student_files", [])), cells.pop("sent", 0)
    _send(result_fd, cells)
    if cells["status"] == "ok":  # otherwise the grader asks for nothing
        converter = Converter(max(0, (int(header["limits"]["result_mb"]) << 20) - sent))
        answer(job_fd, result_fd, module.__dict__, converter, student_files)


def answer(job_fd: int, result_fd: int, namespace: dict, converter: Converter, student_files: set) -> None:
    """Answer each request with its nonce until the grader says it is done (see the module docstring)."""
    while True:
        request = json.loads(read_frame(job_fd))
        if request["kind"] == "done":
            _send(result_fd, {"kind": "done", "nonce": request["nonce"]})
            return
        raw, call, factor = read_frame(job_fd), request["call"], request.get("factor")
        arrays = {  # the grader's own shapes: math.prod of a few ints, not numpy's reduction machinery
            name: np.frombuffer(raw, dtype="<f8", count=math.prod(shape), offset=offset).reshape(shape)
            for name, shape, offset in request["arrays"]
        }
        converter.reset(call.get("returns"))  # the quantities the grader reads from this call, if it said
        with bpg_provenance.scaled(factor) if factor is not None else contextlib.nullcontext():
            result = run_call(call, namespace, arrays, converter, student_files)
        del raw, arrays, factor  # this call's inputs and factor are gone before the next request
        specs, data = _pack(converter.values)
        answer = dict(result, values=specs, texts=converter.texts, problems=converter.problems, nonce=request["nonce"])
        _write(result_fd, _framed(json.dumps(answer, ensure_ascii=True, allow_nan=True).encode()) + _framed(data))


def main(result_fd: int, workdir: str, control_fd: int, job_fd: int) -> None:
    """Read the job on job_fd, run it, answer the requests, write frames to result_fd, end the process.

    Exit codes of our own: 71 when preparing failed (before any student code: a sandbox error), 72 when
    the results could not be produced after student code ran (typically it replaced numpy or json parts,
    or closed a pipe). Student code can exit with 71 too, so "prepared" goes to the worker on control_fd,
    which is closed before any student code runs: a 71 after it is the student's own exit.
    """
    try:
        header = json.loads(read_frame(job_fd))
        blob = read_frame(job_fd)
        module = _prepare(header, blob, workdir)
        os.write(control_fd, b'{"prepared": true}\n')
        os.close(control_fd)
    except BaseException:
        os.write(2, f"sandbox runner failed before student code:\n{traceback.format_exc()}".encode())
        os._exit(71)
    try:
        _execute(header, blob, module, result_fd, workdir, job_fd)
    except BaseException as exc:
        os.write(2, f"\n[grader: results could not be sent back: {_text(exc, 300)}]\n".encode())
        os._exit(72)
    finally:
        flush_streams()
    os._exit(0)
