"""The Sandbox: a pool of warm workers, one per slot, that run Jobs in isolated children.

A worker is started once per slot (numpy and torch imported once) and reused for every job; each job
forks a fresh child from it, so a job costs a fork, not an interpreter start, and inherits nothing from
the jobs before it. If a worker dies or stops answering it is killed and started again, and the job is retried once.

Automatic mode falls back, and says why (to `notify`: stderr by default), wherever bubblewrap fails the
sandbox rather than the student: a worker that cannot start in it (its start-up probe of a job's
confinement failed, e.g. a container refusing user namespaces, or bwrap exited), or a job whose own
confinement failed before any student code ran. That job is retried, and every later job runs, in the
fallback: a failure of the grader's sandbox is never a 0 for the student. A worker that dies in the middle
of a job is not a reason to fall back (a job could provoke that); it is restarted as before.
The worker's source (worker.py and the SHIPPED modules) is sent over its stdin at start: the
grader's package directories are not visible inside the sandbox. The Worker and its pipe protocol live in
process.py; this module imports nothing heavy at load, so `launch()` can start workers before the rest of
the grader is imported.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from grader.errors import SandboxError
from grader.sandbox import cgroup, isolation
from grader.sandbox.process import Worker, WorkerDied

if TYPE_CHECKING:
    from grader.limits import Limits
    from grader.sandbox.models import Job, RunResult

REPLY_SLACK = 30.0


class Sandbox:
    """Runs Jobs in isolated children of warm workers; `jobs` of them at once, from any threads.

    Use as a context manager (workers start on entry and stop on exit) or call close(). `hide` lists
    paths (output directory, submission roots) that must not be visible inside the sandbox. `notify`
    receives one staff-facing line whenever the sandbox runs in the fallback and why (default: stderr).
    """

    def __init__(
        self,
        jobs: int = 1,
        hide: Sequence[Path] = (),
        *,
        mode: str | None = None,
        notify: Callable[[str], None] | None = None,
    ):
        if jobs < 1:
            raise SandboxError(f"Sandbox(jobs={jobs}): expected at least 1 parallel job")
        self._hide = tuple(Path(p) for p in hide)
        self.plan = isolation.plan(self._hide, mode)
        self._workers = [Worker(self.plan, slot) for slot in range(jobs)]
        self._closed = False
        self._free: queue.Queue[Worker] = queue.Queue()
        for worker in self._workers:
            self._free.put(worker)
        self._notify = notify or _to_stderr
        self._told = False  # the fallback and its reason were reported
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        return self.plan.mode

    @property
    def fallback_reason(self) -> str | None:
        """Why this sandbox runs in the fallback mode (the exact error where one caused it); None in bwrap."""
        return self.plan.reason if self.plan.mode == "fallback" else None

    @property
    def protections(self) -> dict[str, bool]:
        """What this sandbox's mode enforces (each RunResult reports what was verified for that run)."""
        return dict(self.plan.protections)

    def __enter__(self) -> Sandbox:
        """Start every worker (in parallel), in the fallback if bubblewrap fails them; SandboxError if any
        cannot start at all."""
        self._closed = False
        cgroup.ensure_base(self.plan.cgroup)  # removed by an earlier close()
        errors = self._start_all()
        if errors and self.plan.mode == "bwrap" and self._fall_back_from(errors[0]):
            errors = self._start_all()
        if errors:
            self.close()
            raise SandboxError(f"the sandbox worker could not start: {errors[0]}")
        if self.plan.mode == "fallback" and not self._told:
            self._told = True
            self._notify(f"sandbox: fallback mode: {self.plan.reason}; protections off: {', '.join(self.plan.off())}")
        return self

    def _start_all(self) -> list[Exception]:
        errors: list[Exception] = []

        def start(worker: Worker) -> None:
            try:
                self._ensure(worker)
            except (WorkerDied, OSError) as exc:
                worker.stop()
                errors.append(exc)

        starting = [threading.Thread(target=start, args=(w,)) for w in self._workers]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        return errors

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
        if not any(worker.alive() for worker in self._workers):  # a busy one removes nothing of it yet
            cgroup.remove_base(self.plan.cgroup)

    def _ensure(self, worker: Worker) -> None:
        """A live, ready worker of the current mode: one launched early is waited for, a dead one or one of
        the mode before a fallback started again. Raises WorkerDied or OSError when it cannot start."""
        if worker.plan is not self.plan:
            worker.stop()
            worker.plan = self.plan
        if not worker.alive():
            worker.stop()
            worker.start()
        else:
            worker.wait_ready()

    def _fall_back_from(self, exc: Exception) -> bool:
        """After a worker failed to start: fall back when bubblewrap is to blame (not when it only did not
        answer in time: memory, which the fallback would not cure). True when the sandbox is now in it."""
        if isinstance(exc, WorkerDied) and exc.timed_out:
            return False
        if isinstance(exc, WorkerDied) and exc.refused:
            return self._fall_back(f"bubblewrap starts, but the start-up probe of a job's confinement failed: {exc}")
        return self._fall_back(f"a sandbox worker could not start in bubblewrap: {type(exc).__name__}: {exc}")

    def _fall_back(self, reason: str) -> bool:
        """Switch to the fallback mode for every later job (once), reporting `reason`, unless bubblewrap
        was asked for. Workers move over when they next start (`_ensure`). True when now in the fallback."""
        with self._lock:
            if self.plan.mode == "fallback":
                return True
            if self.plan.forced:
                return False
            self.plan = isolation.fallback_plan(reason, hide=self._hide, base=self.plan.cgroup)
            self._told = True
        self._notify(
            f"sandbox: {reason}; falling back: every job from now on runs in the fallback sandbox "
            f"(protections off: {', '.join(self.plan.off())})"
        )
        return True

    def launch(self) -> Sandbox:
        """Start every worker's process now without waiting for it (entering the sandbox waits): a command
        overlaps the workers' start (torch's import) with its own imports and set-up. Close it if it is never
        entered."""
        for worker in self._workers:
            if not worker.alive():
                try:
                    worker.launch()
                except (WorkerDied, OSError):
                    worker.stop()  # entering starts it again and says why it cannot start
        return self

    def run(self, job: Job, limits: Limits) -> RunResult:
        """Run one job; never raises for anything the submission does. A job with hidden calls gives its
        public phase here; `run_phases` gives both."""
        return self.run_phases(job, limits)[0]

    def run_phases(self, job: Job, limits: Limits) -> tuple[RunResult, RunResult | None]:
        """Run one job in one child: the RunResult of its public phase, and of its hidden phase (its last
        Job.hidden_calls calls, asked for only once every earlier call was answered and accepted; None when
        they never were: the public phase did not end normally, or there are none). Nothing the child did
        once a hidden input existed in it is in the first (verdict.phases). Never raises for anything the
        submission does; a retry on a fresh worker runs the whole job again."""
        worker = self._free.get()
        try:
            return self._run_on(worker, job, limits)
        finally:
            self._free.put(worker)

    def _run_on(self, worker: Worker, job: Job, limits: Limits) -> tuple[RunResult, RunResult | None]:
        drive, verdict, channel = _job_stages()
        exchange = channel.Exchange(job, limits)
        problem, deaths = "", 0
        while deaths < 2:  # a worker that died is restarted and the job retried once
            if self._closed:
                worker.stop()
                return self._failed(job, problem + "the sandbox was closed before the job finished"), None
            try:
                self._ensure(worker)
            except (WorkerDied, OSError) as exc:
                worker.stop()
                problem += f"the sandbox worker could not start: {type(exc).__name__}: {exc}\n"
                if worker.plan.mode == "bwrap" and self._fall_back_from(exc):
                    continue
                deaths += 1
                continue
            try:
                report, out, err, blob, split = drive.run(worker, exchange, limits, limits.wall_seconds + REPLY_SLACK)
            except (WorkerDied, ValueError) as exc:
                problem += f"{type(exc).__name__}: {exc}\n"
                worker.stop()
                deaths += 1
                continue
            refused = report.get("setup_error")  # the child's confinement (jail.confine): no job data touched yet
            if (
                refused
                and worker.plan.mode == "bwrap"
                and self._fall_back(f"a job's confinement failed in bubblewrap before any student code ran: {refused}")
            ):
                problem += f"bubblewrap: sandbox setup failed: {refused}; retried in the fallback sandbox\n"
                continue
            break
        else:
            return self._failed(job, problem), None
        try:
            protections = worker.plan.verified(report.get("setup"))
            return verdict.phases(job, limits, report, (out, err, blob), split, protections)
        except Exception:
            return self._failed(job, f"building the result failed:\n{traceback.format_exc()}"), None

    def _failed(self, job: Job, detail: str) -> RunResult:
        """A sandbox_error for `job` (its public phase: a hidden phase never began)."""
        from grader.sandbox import messages
        from grader.sandbox.models import CallResult, CallStatus, RunResult, RunStatus
        from grader.sandbox.verdict import public_job

        job = public_job(job)
        calls = {
            call.id: CallResult(
                status=CallStatus.not_run, message=messages.not_run(job, call, "the grader's sandbox failed")
            )
            for call in job.calls
        }
        return RunResult(
            status=RunStatus.sandbox_error,
            message=messages.SANDBOX_ERROR,
            detail=detail,
            calls=calls,
            protections=self.protections,
        )


@functools.cache
def _job_stages() -> tuple[ModuleType, ModuleType, ModuleType]:
    """drive, verdict and channel: imported on the first job, not above, since launching workers early
    (`check`) needs only process.py and isolation.py; once, since every job of a class needs them."""
    from grader.sandbox import channel, drive, verdict

    return drive, verdict, channel


def _to_stderr(line: str) -> None:
    print(f"backprop-grader: {line}", file=sys.stderr, flush=True)
