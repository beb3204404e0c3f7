"""A warm worker process and the socket protocol to it (started from sandbox.Sandbox, or launched early).

Only the standard library and isolation.py are imported here, so a command can launch its worker before
importing the rest of the grader (numpy, pydantic): the worker's slow `import torch` then overlaps the
grader's own start-up. Frames are length-prefixed (8-byte big-endian length, then the payload). The
worker's stdin and stdout are one Unix socket, so each job's pipes can be handed to it as descriptors
(SCM_RIGHTS): the job itself and the child's output then go between the grader and the child only, never
through the worker (drive.py runs one job; worker.py the other side).
"""

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.sandbox import isolation

HEADER = struct.Struct(">Q")


def frame(payload: bytes) -> bytes:
    """One length-prefixed frame."""
    return HEADER.pack(len(payload)) + payload


CHILD = Path(__file__).resolve().parent / "child"  # the sources shipped into the sandbox
BOOT = """\
import os, json
def _read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            raise SystemExit(3)
        data += chunk
    return data
BOOT = json.loads(_read(int.from_bytes(_read(8), "big")))
if BOOT["config"]["ns"]:  # first confine one throw-away child as every job's child is (probe.py)
    import types
    _jail, _probe = types.ModuleType("bpg_jail"), {"__name__": "bpg_probe"}
    exec(compile(BOOT["modules"]["bpg_jail"], "<sandbox jail>", "exec"), _jail.__dict__)
    exec(compile(BOOT["probe"], "<sandbox probe>", "exec"), _probe)
    _probe["probe_or_exit"](_jail, BOOT["config"], 1, BOOT["modules"])
exec(compile(BOOT["worker"], "<sandbox worker>", "exec"), {"__name__": "bpg_worker", "BOOT": BOOT})
"""
START_TIMEOUT = 120.0


SHIPPED = {
    "bpg_convert": "convert.py",
    "bpg_runner": "runner.py",
    "bpg_names": "names.py",
    "bpg_observe": "observe.py",
    "bpg_shims": "shims.py",
    "bpg_places": "places.py",
    "bpg_missing": "missing.py",
    "bpg_gpu": "gpu.py",
    "bpg_graph": "graph.py",
    "bpg_provenance": "provenance.py",
    "bpg_draws": "draws.py",
    "bpg_notebook": "notebook.py",
    "bpg_serve": "serve.py",
    "bpg_fallback": "fallback.py",
    "bpg_jobsetup": "jobsetup.py",
    "bpg_jail": "jail.py",
    "bpg_warm": "warm.py",
    "bpg_dynamo": "dynamo.py",
    "bpg_phase": "phase.py",
}  # in import order


def shipped_sources() -> dict[str, str]:
    """Source of the modules the worker creates inside the sandbox, by module name, in import order."""
    return {name: (CHILD / filename).read_text() for name, filename in SHIPPED.items()}


MEMORY_NEED = (
    "give the container at least 512 MB; Gradescope's default of 768 MB is enough (measured with "
    "torch 2.13: a correct submission graded in full at 512 MB with the CPU and the CUDA build and at "
    "384 MB with the CUDA build, while at 256 MB the worker never answered)"
)
MEMORY_HINT = (
    "the likely cause is too little memory (torch's libraries are paged out and in again when the "
    f"container's limit is small): {MEMORY_NEED}"
)


class WorkerDied(Exception):
    """The worker process ended or broke the protocol; the message says how (instructor detail).

    `refused`: its start-up probe of the job's confinement failed (the message is the exact error);
    `timed_out`: it did not answer in time (then the message names memory as the likely cause)."""

    def __init__(self, message: str, *, refused: bool = False, timed_out: bool = False):
        super().__init__(message)
        self.refused, self.timed_out = refused, timed_out


class Worker:
    """One warm worker process and the pipe protocol to it. Not thread-safe: one job at a time."""

    def __init__(self, plan: isolation.Plan, slot: int):
        self.plan, self.slot = plan, slot
        self.process: subprocess.Popen | None = None
        self.socket: socket.socket | None = None  # our end of the worker's stdin and stdout
        self.namespace_pid: int | None = None  # bwrap's init inside the PID namespace, as seen from here
        self._info: int | None = None  # read end of bwrap's --info-fd until it has told us namespace_pid
        self._said = b""  # what bwrap wrote on it so far
        self.ready = False  # said "ready" since its launch
        self.deadline = 0.0  # when a launched worker must be ready
        self.log = tempfile.TemporaryFile(prefix="bpg-worker-")

    def start(self) -> None:
        """Launch the worker and wait until it is ready for jobs (WorkerDied if it never is)."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the worker process and send it its sources without waiting for it to be ready: it spends
        its first seconds importing torch, which the caller can overlap with work of its own before wait_ready()."""
        self._close_info()
        self.ready, self.namespace_pid, self._said = False, None, b""
        prefix, info = list(self.plan.prefix), None
        if prefix[:1] == ["bwrap"]:  # bwrap tells us the PID (outside) of its namespace's init
            info, info_write = os.pipe()
            self._info = info
            prefix[1:1] = ["--info-fd", str(info_write)]
        command = [*prefix, sys.executable, "-s", "-P", "-c", BOOT]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.socket = ours
            self.process = subprocess.Popen(
                command,
                stdin=theirs,
                stdout=theirs,
                stderr=self.log,
                env=isolation.WORKER_ENV,
                cwd="/",
                start_new_session=True,
                bufsize=0,
                pass_fds=() if info is None else (info_write,),
            )
        finally:
            theirs.close()
            if info is not None:
                os.close(info_write)
        self.deadline = time.monotonic() + START_TIMEOUT
        self._namespace_pid(self.deadline)
        boot = {
            "worker": (CHILD / "worker.py").read_text(),
            "modules": shipped_sources(),
            "probe": (CHILD / "probe.py").read_text(),
            "config": self.plan.config(self.slot),
        }
        self._send([json.dumps(boot).encode()])

    def wait_ready(self) -> None:
        """Wait for the launched worker's "ready" (at most START_TIMEOUT from its launch)."""
        if self.ready:
            return
        ready = self._receive(1, self.deadline)
        said = json.loads(ready[0])
        if said.get("refused"):
            raise WorkerDied(str(said["refused"])[:2000], refused=True)
        if not said.get("ready"):
            raise WorkerDied(f"worker did not report ready: {ready[0][:200]!r}")
        self.ready = True

    def _namespace_pid(self, deadline: float) -> None:
        """Read the "child-pid" bwrap writes on its info fd once the namespace exists into namespace_pid,
        waiting until `deadline` at most. The fd stays open until bwrap has written or the worker is
        stopped: closed early, bwrap's write would kill it with SIGPIPE before it starts the worker, and
        its namespace's init would linger holding the worker's stdin (a launch would then never end)."""
        while self._info is not None and self.namespace_pid is None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([self._info], [], [], wait)[0]:
                return
            chunk = os.read(self._info, 4096)
            self._said += chunk
            try:
                self.namespace_pid = int(json.loads(self._said)["child-pid"])
            except (ValueError, KeyError, TypeError):
                pass
            if not chunk or self.namespace_pid is not None:
                self._close_info()

    def _close_info(self) -> None:
        if self._info is not None:
            os.close(self._info)
            self._info = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_job(self, payload: bytes, fds: list[int]) -> None:
        """Send one job's frame with its descriptors (drive.py): the worker passes them to the job's child."""
        data = frame(payload)
        try:
            sent = socket.send_fds(self.socket, [data], fds)
            self.socket.sendall(data[sent:])
        except (OSError, ValueError, AttributeError) as exc:
            raise WorkerDied(f"cannot write to the worker: {exc}; {self.log_tail()}") from None

    def ask_kill(self, why: str) -> None:
        """Ask the worker to kill the running job now (a stale request, after the job ended, is ignored)."""
        try:
            self.socket.sendall(frame(json.dumps({"kill": why}).encode()))
        except (OSError, AttributeError):
            pass

    def begin_hidden(self) -> None:
        """Tell the worker the running job's hidden phase begins (drive.py): its wall time and CPU time
        start again there, as a job of its own would (a stale message, after the job ended, is ignored)."""
        try:
            self.socket.sendall(frame(json.dumps({"phase": "hidden"}).encode()))
        except (OSError, AttributeError):
            pass

    def receive(self, deadline: float) -> bytes:
        """The worker's next frame (a job's report), waiting until `deadline` at most."""
        return self._receive(1, deadline)[0]

    def _send(self, payloads: list[bytes]) -> None:
        try:
            for payload in payloads:
                self.socket.sendall(frame(payload))
        except (OSError, ValueError, AttributeError) as exc:
            raise WorkerDied(f"cannot write to the worker: {exc}; {self.log_tail()}") from None

    def _receive(self, count: int, deadline: float) -> list[bytes]:
        fd = self.socket.fileno()
        return [self._read(fd, self._size(fd, deadline), deadline) for _ in range(count)]

    def _size(self, fd: int, deadline: float) -> int:
        return int.from_bytes(self._read(fd, HEADER.size, deadline), "big")

    def _read(self, fd: int, size: int, deadline: float) -> bytes:
        chunks, left = [], size
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise WorkerDied(f"no answer from the worker in time; {MEMORY_HINT}; {self.log_tail()}", timed_out=True)
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise WorkerDied(self._exited())
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _exited(self) -> str:
        """Why the worker's pipe closed: its exit status, memory named when it was SIGKILLed (the
        out-of-memory killer's signal; bwrap passes it on as 128 + 9), and the end of its stderr."""
        try:
            code = self.process.wait(timeout=2) if self.process is not None else None
        except subprocess.TimeoutExpired:
            code = None
        killed = f"; killed by SIGKILL: {MEMORY_HINT}" if code in (-signal.SIGKILL, 128 + signal.SIGKILL) else ""
        return f"the worker exited ({code}){killed}; {self.log_tail()}"

    def log_tail(self) -> str:
        try:
            self.log.seek(0, os.SEEK_END)
            self.log.seek(max(0, self.log.tell() - 2000))
            return "worker stderr: " + self.log.read().decode(errors="replace")
        except OSError:
            return "worker stderr unavailable"

    def kill(self) -> None:
        """End the worker and everything inside its sandbox now, job included (from any thread: it only
        sends signals). Killing bwrap alone would leave a running job alive until its own wall limit;
        killing the namespace's init ends every process inside. While bwrap lives its init does too, so
        the PID cannot have been reused."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        targets = [(os.kill, self.namespace_pid)] if self.namespace_pid else []
        for kill, pid in [*targets, (os.killpg, process.pid)]:
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop(self) -> None:
        """End the worker: gracefully (it exits when its stdin closes) once ready, at once before that (a
        worker still importing torch would not read its stdin for seconds)."""
        if self.process is None:
            self._close_info()
            if self.socket is not None:
                self.socket.close()
                self.socket = None
            return
        if not self.ready:
            self._namespace_pid(time.monotonic() + 2)  # a worker stopped early: its init, to kill everything
            self.kill()
        try:
            self.socket.shutdown(socket.SHUT_WR)  # the worker reads EOF: it exits
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            self.kill()
            self.process.wait()
        self.socket.close()
        self.process = self.socket = None
        self._close_info()
