"""Notebook-mode watch on autograd's entry points: the first backward's graph and the counterfactual run.

Standalone on purpose: shipped as source into the sandbox (as bpg_provenance) and run in the child that
runs student code; imports only the standard library, numpy, torch and its shipped siblings.

bpg_runner wraps Tensor.backward, torch.autograd.backward and torch.autograd.grad once in the worker; in a
notebook run they call Watch (through bpg_runner._AUTOGRAD_HOOK) with the original function and its
arguments. Nested entries (Tensor.backward calls torch.autograd.backward) pass straight through.

The counterfactual run (docs/architecture.md, "Provenance"): at the first autograd call of the notebook
the process forks. The fork answers that call, and every later one, with autograd's gradients scaled by
a factor only the grader chose, runs the rest of the notebook with its output discarded and its files in
a private copy of the work directory, and hands back what its namespace and files then held. The parent
waits for it (bounded), then goes on exactly as if nothing had happened. A reported value that is the
factor times its value in the parent's run was copied from autograd; one that is unchanged does not
depend on autograd. Values computed before the first autograd call are the same in both by construction.

How autograd's answers are scaled (`scaled`, also what a contract scratch call's rerun runs under, see
bpg_serve): at the one place every autograd entry point reaches the engine, torch.autograd's
`_engine_run_backward`, wrapped once here when the worker loads this module. The seed gradients it is
given are multiplied by the factor, so every gradient the engine produces, `.grad` or returned, is
`factor` times the true one whichever way the engine was reached: Tensor.backward, torch.autograd.grad,
an alias of either, their `__wrapped__` originals behind bpg_runner's guards, torch.autograd.functional.
Only a direct call of the C++ engine (`Variable._execution_engine.run_backward`) goes around it.
"""

import gc
import json
import os
import select
import shutil
import signal
import struct
import sys
import time

import bpg_graph
import numpy as np
import torch

FORK_DIR = ".bpg_counterfactual"  # inside the work directory; dot-folders are never collected as files
MAX_FORK_BYTES = 8 << 20  # what the fork may hand back (arrays and files)
MAX_FORK_FILE = 1 << 20
MAX_ENTRIES = 600


# The factor every gradient autograd produces is scaled by in this process now; None: autograd untouched.
_FACTOR: list = [None]


def _scaling(original):
    """torch.autograd's `_engine_run_backward` with its seed gradients (the first argument after the
    outputs) multiplied by _FACTOR[0] when it is set. Scaling the seeds, not the roots, needs no new graph
    node and no shape check (an explicit `gradient=` makes autograd import torch.fx's symbolic shapes)."""
    if getattr(original, "_bpg_scaling", False):  # loaded twice in one process (tests): wrap once
        return original

    def run_backward(outputs, grads, *args, **kwargs):
        factor = _FACTOR[0]
        if factor is not None:
            grads = tuple(g * factor if isinstance(g, torch.Tensor) else g for g in grads)
        return original(outputs, grads, *args, **kwargs)

    run_backward._bpg_scaling = True
    return run_backward


torch.autograd._engine_run_backward = torch.autograd.graph._engine_run_backward = _scaling(
    torch.autograd.graph._engine_run_backward
)


class scaled:
    """Every gradient autograd produces inside the block is `factor` times the true one (see the module
    docstring); the previous factor is back afterwards."""

    def __init__(self, factor: float):
        self.factor = float(factor)

    def __enter__(self) -> "scaled":
        self.saved, _FACTOR[0] = _FACTOR[0], self.factor
        return self

    def __exit__(self, *exc_info) -> bool:
        _FACTOR[0] = self.saved
        return False


class Watch:
    """Sees every top-level autograd call of one notebook run; forks the counterfactual run at the first."""

    def __init__(self, session, store, notes, factor: float | None):
        self.session, self.notes, self.factor = session, notes, factor
        self.graph = bpg_graph.GraphRecorder(store, notes)
        self.depth, self.calls = 0, 0
        self.fork: Fork | None = None  # set in the forked process only
        self.fork_cell: int | None = None

    def __call__(self, what: str, original, args: tuple, kwargs: dict):
        if self.depth:
            return original(*args, **kwargs)
        self.depth += 1
        try:
            first = self.calls == 0
            self.calls += 1
            if self.fork is not None or (first and self.factor is not None and self._forked()):
                return original(*args, **kwargs)  # in the fork: the engine scales every answer (_FACTOR)
            if not first:
                return original(*args, **kwargs)
            state = self.graph.before(what, args, kwargs)
            result = original(*args, **kwargs)
            self.graph.after(state, result)
            return result
        finally:
            self.depth -= 1

    def _forked(self) -> bool:
        """Fork the counterfactual run: True in the fork, False in the parent once the fork is done."""
        session = self.session
        self.fork_cell = session.current[0] if session.current else None
        for stream in (sys.stdout, session.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        try:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
        except OSError as exc:
            self.notes.add(
                f"the provenance run could not start ({exc.strerror}); provenance was not checked", per_cell=False
            )
            return False
        if pid == 0:
            os.close(read_fd)
            _FACTOR[0] = self.factor  # for the rest of this process's life
            self.fork = Fork(session, write_fd)
            return True
        os.close(write_fd)
        payload = _collect(pid, read_fd, session.fork_seconds)
        shutil.rmtree(os.path.join(session.workdir, FORK_DIR), ignore_errors=True)
        if payload is None:
            self.notes.add("the provenance run did not finish in time; provenance was not checked", per_cell=False)
        else:
            session.channel.send_counterfactual(payload, self.fork_cell or 0, self.factor)
        return False


def _collect(pid: int, fd: int, seconds: float) -> bytes | None:
    """Everything the fork wrote to fd, if it exited cleanly within `seconds` (else it is killed)."""
    deadline, chunks, size = time.monotonic() + seconds, [], 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_FORK_BYTES + (1 << 20):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks) if os.waitstatus_to_exitcode(status) == 0 else None


def _repoint_files(workdir: str, copy: str) -> None:
    """Open files of the work directory now point at their copies (same offset), in this process only."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in fds:
        try:
            fd = int(name)
            target = os.readlink(f"/proc/self/fd/{fd}")
            if not target.startswith(workdir + "/") or target.startswith(copy + "/"):
                continue
            flags = {0: os.O_RDONLY, 1: os.O_WRONLY, 2: os.O_RDWR}[
                int(open(f"/proc/self/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8) & 3
            ]
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            replacement = os.open(os.path.join(copy, os.path.relpath(target, workdir)), flags)
            os.lseek(replacement, offset, os.SEEK_SET)
            os.dup2(replacement, fd)
            os.close(replacement)
        except (OSError, ValueError, IndexError, KeyError):
            continue


class Fork:
    """The forked process's side: silence, a private work directory, namespace values after each cell."""

    def __init__(self, session, write_fd: int):
        self.session, self.fd = session, write_fd
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        workdir = session.workdir
        self.dir = os.path.join(workdir, FORK_DIR)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.copytree(
            workdir, self.dir, symlinks=True, ignore=lambda folder, names: [FORK_DIR] if folder == workdir else []
        )
        _repoint_files(workdir, self.dir)
        os.chdir(self.dir)
        session.use_workdir(self.dir)
        # Only what differs from the real run's last values before this cell is kept (the grader reads the
        # rest from the real run), and no garbage collection: this process is short-lived, and a collection
        # would write to every object's page, copying memory the fork shares with its parent.
        self.entries, self.arrays, self.size, self.printed = [], {}, 0, {}
        self.prints = session.observer.fingerprints()
        gc.disable()

    def after_cell(self, cell: int, pairs: list, printed: str = "") -> None:
        """Keep what the cell printed (the grader reads gradients a notebook only printed, and tells
        autograd's from the student's by whether they moved), and each namespace value that is new or changed
        since the last cell (float64 copies)."""
        if printed and self.size + len(printed) <= MAX_FORK_BYTES // 2:
            self.printed[str(cell)], self.size = printed, self.size + len(printed)
        observe = sys.modules["bpg_observe"]
        for name, value in pairs:
            if not isinstance(value, (torch.Tensor, np.ndarray, np.generic)) or len(self.entries) >= MAX_ENTRIES:
                continue
            fingerprint = observe.fingerprint(value)
            if fingerprint is None or self.prints.get(name) == fingerprint:
                continue
            array = observe.float64(value)
            if array is None or self.size + array.nbytes > MAX_FORK_BYTES // 2:
                continue
            self.prints[name] = fingerprint
            key = f"c{len(self.arrays)}"
            self.arrays[key], self.size = array, self.size + array.nbytes
            self.entries.append({"cell": cell, "name": name, "array": key})

    def finish(self) -> None:
        """Hand the namespace values and the files back to the parent, then end this process."""
        try:
            files, chunks, room = {}, [], MAX_FORK_BYTES - self.size
            notebook = sys.modules["bpg_notebook"]
            for name, path, size in notebook._walk(self.dir):
                data = notebook._read(path, min(MAX_FORK_FILE, room)) if size <= min(MAX_FORK_FILE, room) else None
                if data is not None:
                    files[name], room = len(data), room - len(data)
                    chunks.append(data)
            specs = {k: {"name": f"v{i}", "shape": list(a.shape)} for i, (k, a) in enumerate(self.arrays.items())}
            head = {"entries": self.entries, "arrays": specs, "files": files, "stdout": self.printed}
            head = json.dumps(head, ensure_ascii=True).encode()
            raw = b"".join(a.astype("<f8", copy=False).tobytes(order="C") for a in self.arrays.values())
            out = struct.pack(">Q", len(head)) + head + struct.pack(">Q", len(raw)) + raw + b"".join(chunks)
            view = memoryview(out)
            while view:
                view = view[os.write(self.fd, view) :]
            os.close(self.fd)
        finally:
            self.session.real_exit(0)
