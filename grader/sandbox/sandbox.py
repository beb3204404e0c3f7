"""The Sandbox: a pool of warm workers, one per slot, that run Jobs in isolated children.

A worker is started once per slot (numpy and torch imported once, ~1-2 s) and reused for every job; each
job forks a fresh child from it, so a job costs tens of milliseconds and inherits nothing from the jobs
before it. If a worker dies or stops answering it is killed and started again, and the job is retried once.
The worker's source (worker.py and the SHIPPED modules) is sent over its stdin at start: the
grader's package directories are not visible inside the sandbox. The Worker and its pipe protocol live in
process.py; this module imports nothing heavy at load, so `launch()` can start workers before the rest of
the grader is imported.
"""

from __future__ import annotations

import json
import queue
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from grader.errors import SandboxError
from grader.sandbox import isolation
from grader.sandbox.process import Worker, WorkerDied

if TYPE_CHECKING:
    from grader.limits import Limits
    from grader.sandbox.models import Job, RunResult

REPLY_SLACK = 30.0


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
        """A live, ready worker: one launched early is waited for, a dead one started again."""
        try:
            if not worker.alive():
                worker.stop()
                worker.start()
            else:
                worker.wait_ready()
        except (WorkerDied, OSError) as exc:
            worker.stop()
            raise SandboxError(f"the sandbox worker could not start: {exc}") from None

    def launch(self) -> "Sandbox":
        """Start every worker's process now without waiting for it (entering the sandbox waits): a command
        overlaps the workers' ~2 s start with its own imports and set-up. Close it if it is never entered."""
        for worker in self._workers:
            if not worker.alive():
                try:
                    worker.launch()
                except (WorkerDied, OSError):
                    worker.stop()  # entering starts it again and says why it cannot start
        return self

    def run(self, job: Job, limits: Limits) -> RunResult:
        """Run one job; never raises for anything the submission does."""
        worker = self._free.get()
        try:
            return self._run_on(worker, job, limits)
        finally:
            self._free.put(worker)

    def _run_on(self, worker: Worker, job: Job, limits: Limits) -> RunResult:
        # Imported here, not above: launching workers early (`check`) needs only process.py and isolation.py.
        from grader.sandbox import verdict
        from grader.sandbox.wire import encode_job

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
        from grader.sandbox import messages
        from grader.sandbox.models import CallResult, CallStatus, RunResult, RunStatus

        calls = {call.id: CallResult(status=CallStatus.not_run,
                                     message=messages.not_run(job, call, "the grader's sandbox failed"))
                 for call in job.calls}
        return RunResult(status=RunStatus.sandbox_error, message=messages.SANDBOX_ERROR, detail=detail,
                         calls=calls, protections=self.protections)
