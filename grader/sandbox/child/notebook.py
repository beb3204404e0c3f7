"""Notebook mode in the child: every cell in order in one namespace, going on after a cell fails, with
the shims (shims.py) and the observer (observe.py) installed, results streamed cell by cell.

Standalone on purpose: shipped as source into the sandbox (as bpg_notebook) and run in the child that
runs student code; imports only the standard library, numpy, torch and its shipped siblings.

Frames it writes to the result channel, before the usual "cells" frame (see runner.py):
    {"kind": "cell", <record>, "forward_calls", "grads", "namespace", "notes", "arrays"}  raw
        one pair per cell, sent as soon as the cell ran and was observed
    {"kind": "files", "files": {name: size}, "skipped": {name: size}, "notes"}  raw bytes
        after the last cell: the files in the work directory, bytes concatenated in "files" order
os._exit() called by the notebook's own process sends the running cell's frame and the files first and
then exits with the student's code. A kill (time, CPU or memory limit, a signal, or posix._exit) loses the
cell that was running and the files; everything sent before stays.
"""

import io
import json
import linecache
import os
import stat
import sys
import time

import bpg_draws
import bpg_gpu
import bpg_missing
import bpg_observe
import bpg_places
import bpg_provenance
import bpg_shims
from bpg_convert import _text
from bpg_runner import (
    _frame,
    _is_memory_error,
    _pack,
    _student_traceback,
    _where,
    cells_ran,
    compiled,
    exited,
)

STDOUT_KEEP = 16000  # characters of each cell's stdout kept in its record (two printed sets of gradients fit)
MAX_FILE = 1 << 20
MAX_FILES_TOTAL = 8 << 20
MAX_FILE_ENTRIES = 200
MAX_DEPTH = 4
SLACK = 512 << 10  # JSON beyond Limits.result_mb the channel may use (the worker allows 1 MiB)
_dumps = json.dumps  # bound before student code can replace them


class Tee(io.TextIOBase):
    """sys.stdout during one cell: writes through to the real stream and keeps the first characters."""

    def __init__(self, stream):
        self.stream, self.kept, self.size = stream, [], 0

    def write(self, text):
        count = self.stream.write(text)
        if self.size < STDOUT_KEEP:
            self.kept.append(text[: STDOUT_KEEP - self.size])
        self.size += len(text)
        return count

    def flush(self):
        self.stream.flush()

    def fileno(self):
        return self.stream.fileno()

    def isatty(self):
        return False

    def writable(self):
        return True

    def __getattr__(self, name):  # buffer, reconfigure, line_buffering, ...: the real stream's
        return getattr(self.stream, name)

    @property
    def encoding(self):
        return self.stream.encoding

    @property
    def errors(self):
        return self.stream.errors

    def text(self) -> str:
        kept = "".join(self.kept)
        return kept + (f"\n[… {self.size - STDOUT_KEEP} more characters]" if self.size > STDOUT_KEEP else "")


class Channel:
    """The result pipe, counting what was sent so the whole stream stays under the grader's cap."""

    def __init__(self, fd: int, capacity: int):
        self.fd, self.capacity, self.sent = fd, capacity, 0

    def send(self, payload: bytes) -> None:
        self.sent += len(payload) + 8
        _frame(self.fd, payload)

    def cell(self, frame: dict, arrays: bytes) -> None:
        """A cell frame and its arrays; texts and then records are dropped if they would not fit."""
        payload = _dumps(frame, ensure_ascii=True, allow_nan=True).encode()
        if self.sent + len(payload) + len(arrays) > self.capacity:
            frame = dict(
                frame,
                stdout="",
                traceback="",
                error=frame["error"][:200],
                notes=frame["notes"]
                + [f"cell {frame['cell']}: output and traceback left out: the size limit for results was reached"],
            )
            payload = _dumps(frame, ensure_ascii=True, allow_nan=True).encode()
        if self.sent + len(payload) + len(arrays) > self.capacity:
            frame = dict(frame, forward_calls=[], grads=[], namespace=[], notes=frame["notes"][-1:])
            payload = _dumps(frame, ensure_ascii=True, allow_nan=True).encode()
        self.send(payload)
        self.send(arrays)

    def send_counterfactual(self, payload: bytes, cell: int, factor: float) -> None:
        """What the counterfactual run handed back (validated by the grader), if it fits the results cap."""
        frame = _dumps({"kind": "counterfactual", "cell": cell, "factor": factor}).encode()
        if self.sent + len(frame) + len(payload) + (1 << 20) > self.capacity:
            return
        self.send(frame)
        self.send(payload)


def _read(path: str, limit: int) -> bytes | None:
    """Up to limit bytes of a regular file (None if it is not one, cannot be read, or is longer)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) if size <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _walk(root: str) -> list:
    """(name relative to root with '/', path, size) of regular files, sorted; dot-directories skipped."""
    found, pending = [], [(root, "", 0)]
    while pending and len(found) < MAX_FILE_ENTRIES:
        folder, prefix, depth = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            name = prefix + entry.name
            try:
                name.encode("utf-8")
                if entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH and not entry.name.startswith("."):
                        pending.append((entry.path, name + "/", depth + 1))
                elif entry.is_file(follow_symlinks=False) and len(found) < MAX_FILE_ENTRIES:
                    found.append((name, entry.path, entry.stat(follow_symlinks=False).st_size))
            except (OSError, UnicodeError):
                continue
    return sorted(found)


class Session:
    """One notebook run: cells, observation, frames."""

    def __init__(self, header: dict, namespace: dict, result_fd: int, workdir: str, inputs: dict):
        limit = int(header["limits"]["result_mb"]) << 20
        self.cells, self.filename, self.namespace = header["cells"], header["filename"], namespace
        self.workdir, self.inputs, self.names = workdir, inputs, set()
        self.channel = Channel(result_fd, limit + SLACK)
        self.notes = bpg_shims.install(workdir)
        self.observer = bpg_observe.Observer(bpg_observe.Store(limit * 3 // 4, self.notes), self.notes)
        self.observer.install()
        self.draws = bpg_draws.activate(self.observer.store, self.notes)  # dropout masks, numpy draws
        self.places = bpg_places.Places(self.names, lambda: self.current)
        self.missing = bpg_missing.install(self.places)  # after the shims' finder: the last on sys.meta_path
        self.gpu = bpg_gpu.activate(self.cells, self.places)
        limits = header["limits"]
        self.fork_seconds = max(2.0, min(10.0, 0.2 * float(limits.get("wall_seconds", 30))))
        self.watch = bpg_provenance.Watch(self, self.observer.store, self.notes, header.get("counterfactual"))
        sys.modules["bpg_runner"]._AUTOGRAD_HOOK[0] = self.watch
        self.stdout, self.tee, self.current, self.started = sys.stdout, None, None, 0.0
        self.pid, self.exiting, self.real_exit = os.getpid(), False, os._exit
        os._exit = self.hard_exit

    def use_workdir(self, workdir: str) -> None:
        """Files are read and written in `workdir` from now on (the counterfactual run's private copy)."""
        self.workdir = workdir
        paths = self.notes.paths
        paths.workdir = os.path.realpath(workdir)
        paths.roots = (paths.workdir, *bpg_shims.EXEMPT)

    def cell_file(self, number: int) -> str:
        single = len(self.cells) == 1 and self.filename.endswith(".py")
        return self.filename if single else f"<cell {number}>"

    def run_cell(self, number: int, source: str) -> None:
        cell_file = self.cell_file(number)
        self.names.add(cell_file)
        linecache.cache[cell_file] = (len(source), None, source.splitlines(True), cell_file)
        self.notes.cell = self.observer.cell = number
        self.current, self.tee = (number, cell_file), Tee(self.stdout)
        sys.stdout = self.tee
        record = _record(number)
        self.started = time.perf_counter()
        code, failed = compiled(source, cell_file)
        record.update(failed)
        if code is not None:
            try:
                exec(code, self.namespace)
            except SystemExit as exc:
                record.update(exited(exc, cell_file))
            except BaseException as exc:
                record.update(
                    status="raised",
                    line=_where(exc, cell_file),
                    error_type=type(exc).__name__,
                    error=_text(exc),
                    traceback=_student_traceback(exc, self.names),
                    memory=_is_memory_error(exc),
                )
                if isinstance(exc, ModuleNotFoundError) and isinstance(exc.name, str):
                    record["missing_module"] = _text(exc.name, 200)
                if isinstance(exc, NameError) and isinstance(getattr(exc, "name", None), str):
                    record["name_errors"] = [_text(exc.name, 200)]
        self.finish(record)

    def finish(self, record: dict) -> None:
        """Observe after the cell and send its frame."""
        record["seconds"] = max(0.0, time.perf_counter() - self.started)
        record.update(missing_modules=self.missing.take(), gpu_request=self.gpu.take() if self.gpu else None)
        try:
            self.tee.flush()
        except BaseException:
            pass
        record["stdout"] = self.tee.text()
        sys.stdout = self.stdout
        fork = self.watch.fork
        if fork is not None:  # the counterfactual run: values only, sent once at the end
            try:
                fork.after_cell(record["cell"], self.observer.pairs(self.namespace), record["stdout"])
            except Exception:
                pass
            return
        try:
            observed = self.observer.after_cell(self.namespace)
        except Exception as exc:
            observed = {"forward_calls": [], "grads": [], "namespace": []}
            self.notes.add(f"observation failed after this cell ({type(exc).__name__})")
        observed["backward"] = self.watch.graph.take(self.namespace)
        observed["draws"] = self.draws.take()
        arrays = self.observer.store.take()
        specs, data = _pack(arrays)
        frame = dict(record, **observed, notes=self.notes.take(), arrays=specs)
        self.channel.cell(frame, data)

    def hard_exit(self, code) -> None:
        """os._exit from a cell: send what was observed, then exit (only in this process, only once)."""
        if self.watch.fork is not None and not self.exiting:  # the counterfactual run: its values, then exit
            self.exiting = True
            try:
                if self.current is not None:
                    printed = self.tee.text() if self.tee is not None else ""
                    self.watch.fork.after_cell(self.current[0], self.observer.pairs(self.namespace), printed)
            finally:
                self.watch.fork.finish()
        if os.getpid() == self.pid and self.current is not None and isinstance(code, int) and not self.exiting:
            self.exiting = True
            try:
                number, cell_file = self.current
                frame, line = sys._getframe(1), None
                while frame is not None:
                    if frame.f_code.co_filename == cell_file and frame.f_code.co_name == "<module>":
                        line = frame.f_lineno
                    frame = frame.f_back
                self.finish(
                    dict(
                        _record(number),
                        status="exited",
                        error_type="os._exit",
                        error=str(code),
                        exit_code=code,
                        line=line,
                    )
                )
                self.send_files()
                self.stdout.flush()
            except BaseException:
                pass
        self.real_exit(code)

    def send_files(self) -> None:
        """Every regular file in the work directory that is not an unchanged input file, within the caps."""
        self.current = None
        room = max(0, self.channel.capacity - self.channel.sent - (64 << 10))
        files, skipped, chunks, notes, collected = {}, {}, [], [], 0
        found = _walk(self.workdir)
        if len(found) >= MAX_FILE_ENTRIES:
            notes.append(f"only the first {MAX_FILE_ENTRIES} files of the work directory were collected")
        for name, path, size in found:
            if name in self.inputs and size == len(self.inputs[name]) and _read(path, size) == self.inputs[name]:
                continue
            limit = min(MAX_FILE, MAX_FILES_TOTAL - collected, room - collected)
            data = _read(path, limit) if size <= limit else None
            if data is None:
                skipped[name] = size
                reason = (
                    f"larger than the {MAX_FILE >> 20} MiB the grader reads back per file"
                    if size > MAX_FILE
                    else "it could not be read"
                    if size <= limit
                    else f"over the {MAX_FILES_TOTAL >> 20} MiB the grader reads back in all"
                    if collected + size > MAX_FILES_TOTAL
                    else "the size limit for results was reached"
                )
                notes.append(f"{name!r} ({size / 2**20:.1f} MiB) was written but not collected: {reason}")
                continue
            files[name] = len(data)
            chunks.append(data)
            collected += len(data)
        frame = {"kind": "files", "files": files, "skipped": skipped, "notes": self.notes.take() + notes}
        self.channel.send(_dumps(frame, ensure_ascii=True).encode())
        self.channel.send(b"".join(chunks))


def _record(number: int) -> dict:
    return {
        "kind": "cell",
        "cell": number,
        "status": "ok",
        "line": None,
        "error_type": "",
        "error": "",
        "traceback": "",
        "exit_code": None,
        "missing_module": None,
        "name_errors": [],
        "memory": False,
        "stdout": "",
        "seconds": 0.0,
        "missing_modules": [],
        "gpu_request": None,
    }


def run(header: dict, namespace: dict, result_fd: int, workdir: str, inputs: dict) -> dict:
    """Run every cell, stream its frames, send the files; returns the runner's summary "cells" frame."""
    session = Session(header, namespace, result_fd, workdir, inputs)
    for number, source in enumerate(header["cells"], 1):
        session.run_cell(number, source)
    if session.watch.fork is not None:
        session.watch.fork.finish()  # does not return
    session.send_files()
    return dict(cells_ran(session.names), sent=session.channel.sent)
