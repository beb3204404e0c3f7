"""The Sandbox: a pool of warm workers, one per slot, that run Jobs in isolated children.

A worker is started once per slot (numpy and torch imported once, ~1-2 s) and reused for every job; each
job forks a fresh child from it, so a job costs tens of milliseconds and inherits nothing from the jobs
before it. If a worker dies or stops answering it is killed and started again, and the job is retried once.
The worker's source (worker.py and the SHIPPED modules) is sent over its stdin at start: the
grader's package directories are not visible inside the sandbox.
"""

import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Sequence

from grader.errors import SandboxError
from grader.limits import Limits
from grader.sandbox import isolation, messages, verdict
from grader.sandbox.models import CallResult, CallStatus, Job, RunResult, RunStatus
from grader.sandbox.wire import HEADER, encode_job, frame

HERE = Path(__file__).resolve().parent
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
exec(compile(BOOT["worker"], "<sandbox worker>", "exec"), {"__name__": "bpg_worker", "BOOT": BOOT})
"""
START_TIMEOUT = 120.0
REPLY_SLACK = 30.0


SHIPPED = {"bpg_convert": "convert.py", "bpg_runner": "runner.py", "bpg_observe": "observe.py",
           "bpg_shims": "shims.py", "bpg_notebook": "notebook.py", "bpg_jail": "jail.py"}  # in import order


def shipped_sources() -> dict[str, str]:
    """Source of the modules the worker creates inside the sandbox, by module name, in import order."""
    return {name: (HERE / filename).read_text() for name, filename in SHIPPED.items()}


class WorkerDied(Exception):
    """The worker process ended or broke the protocol; the message says how (instructor detail)."""


class Worker:
    """One warm worker process and the pipe protocol to it. Not thread-safe: one job at a time."""

    def __init__(self, plan: isolation.Plan, slot: int):
        self.plan, self.slot = plan, slot
        self.process: subprocess.Popen | None = None
        self.namespace_pid: int | None = None  # bwrap's init inside the PID namespace, as seen from here
        self.log = tempfile.TemporaryFile(prefix="bpg-worker-")

    def start(self) -> None:
        prefix, info = list(self.plan.prefix), None
        if prefix[:1] == ["bwrap"]:  # bwrap tells us the PID (outside) of its namespace's init
            info, info_write = os.pipe()
            prefix[1:1] = ["--info-fd", str(info_write)]
        command = [*prefix, sys.executable, "-s", "-P", "-c", BOOT]
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                            env=isolation.WORKER_ENV, cwd="/", start_new_session=True, bufsize=0,
                                            pass_fds=() if info is None else (info_write,))
        finally:
            if info is not None:
                os.close(info_write)
        deadline = time.monotonic() + START_TIMEOUT
        self.namespace_pid = None if info is None else self._namespace_pid(info, deadline)
        boot = {"worker": (HERE / "worker.py").read_text(), "modules": shipped_sources(),
                "config": self.plan.config(self.slot)}
        self._send([json.dumps(boot).encode()])
        ready = self._receive(1, deadline)
        if not json.loads(ready[0]).get("ready"):
            raise WorkerDied(f"worker did not report ready: {ready[0][:200]!r}")

    def _namespace_pid(self, info: int, deadline: float) -> int | None:
        """The "child-pid" bwrap writes on its info fd once the namespace exists (None if it never does)."""
        data = b""
        try:
            while time.monotonic() < deadline and select.select([info], [], [], deadline - time.monotonic())[0]:
                chunk = os.read(info, 4096)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(info)
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            return None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exchange(self, payloads: list[bytes], timeout: float) -> list[bytes]:
        """Send one job, wait for its four reply frames."""
        self._send(payloads)
        return self._receive(4, time.monotonic() + timeout)

    def _send(self, payloads: list[bytes]) -> None:
        try:
            for payload in payloads:
                self.process.stdin.write(frame(payload))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise WorkerDied(f"cannot write to the worker: {exc}; {self.log_tail()}") from None

    def _receive(self, count: int, deadline: float) -> list[bytes]:
        fd = self.process.stdout.fileno()
        return [self._read(fd, self._size(fd, deadline), deadline) for _ in range(count)]

    def _size(self, fd: int, deadline: float) -> int:
        return int.from_bytes(self._read(fd, HEADER.size, deadline), "big")

    def _read(self, fd: int, size: int, deadline: float) -> bytes:
        chunks, left = [], size
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise WorkerDied(f"no answer from the worker in time; {self.log_tail()}")
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise WorkerDied(f"the worker exited ({self.process and self.process.poll()}); {self.log_tail()}")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

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
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            self.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process = None


class Sandbox:
    """Runs Jobs in isolated children of warm workers; `jobs` of them at once, from any threads.

    Use as a context manager (workers start on entry and stop on exit) or call close(). `hide` lists
    paths (output directory, submission roots) that must not be visible inside the sandbox.
    """

    def __init__(self, jobs: int = 1, hide: Sequence[Path] = (), *, mode: str | None = None):
        if jobs < 1:
            raise SandboxError(f"Sandbox(jobs={jobs}): expected at least 1 parallel job")
        self.plan = isolation.plan(tuple(Path(p) for p in hide), mode)
        self._workers = [Worker(self.plan, slot) for slot in range(jobs)]
        self._closed = False
        self._free: queue.Queue[Worker] = queue.Queue()
        for worker in self._workers:
            self._free.put(worker)

    @property
    def mode(self) -> str:
        return self.plan.mode

    @property
    def protections(self) -> dict[str, bool]:
        """What this sandbox's mode enforces (each RunResult reports what was verified for that run)."""
        return dict(self.plan.protections)

    def __enter__(self) -> "Sandbox":
        """Start every worker (in parallel); SandboxError if any cannot start."""
        self._closed = False
        errors: list[str] = []

        def start(worker: Worker) -> None:
            try:
                self._ensure(worker)
            except SandboxError as exc:
                errors.append(str(exc))

        starting = [threading.Thread(target=start, args=(w,)) for w in self._workers]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        if errors:
            self.close()
            raise SandboxError(errors[0])
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker. A worker busy with a job (another thread's run) is killed, job included; that
        run then returns a sandbox error, and the thread that ran it stops the worker."""
        self._closed = True
        idle = []
        while True:
            try:
                idle.append(self._free.get_nowait())
            except queue.Empty:
                break
        for worker in self._workers:
            if any(worker is w for w in idle):
                worker.stop()
            else:
                worker.kill()
        for worker in idle:
            self._free.put(worker)

    @staticmethod
    def _ensure(worker: Worker) -> None:
        if not worker.alive():
            worker.stop()
            try:
                worker.start()
            except (WorkerDied, OSError) as exc:
                worker.stop()
                raise SandboxError(f"the sandbox worker could not start: {exc}") from None

    def run(self, job: Job, limits: Limits) -> RunResult:
        """Run one job; never raises for anything the submission does."""
        worker = self._free.get()
        try:
            return self._run_on(worker, job, limits)
        finally:
            self._free.put(worker)

    def _run_on(self, worker: Worker, job: Job, limits: Limits) -> RunResult:
        payloads = encode_job(job, limits)
        problem = ""
        for _attempt in range(2):  # a worker that died is restarted and the job retried once
            if self._closed:
                worker.stop()
                return self._failed(job, problem + "the sandbox was closed before the job finished")
            try:
                self._ensure(worker)
                report_raw, out, err, blob = worker.exchange(payloads, limits.wall_seconds + REPLY_SLACK)
                report = json.loads(report_raw)
                break
            except (WorkerDied, SandboxError, ValueError) as exc:
                problem += f"{type(exc).__name__}: {exc}\n"
                worker.stop()
        else:
            return self._failed(job, problem)
        try:
            return verdict.build(job, limits, report, out, err, blob, self.plan.verified(report.get("setup")))
        except Exception:  # noqa: BLE001 - a bug of ours must not end the batch
            return self._failed(job, f"building the result failed:\n{traceback.format_exc()}")

    def _failed(self, job: Job, detail: str) -> RunResult:
        calls = {call.id: CallResult(status=CallStatus.not_run,
                                     message=messages.not_run(job, call, "the grader's sandbox failed"))
                 for call in job.calls}
        return RunResult(status=RunStatus.sandbox_error, message=messages.SANDBOX_ERROR, detail=detail,
                         calls=calls, protections=self.protections)
