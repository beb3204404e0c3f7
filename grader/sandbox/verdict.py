"""Turn what the worker reported and what the child sent into a RunResult.

The worker's report (exit status, signal, wall time, CPU time, timeout) and what drive.py added (output
sizes, the requests made) are trusted: the student's code cannot reach the worker or the grader. The
child's result stream is not, and is accepted only as the answers to those requests (channel.py).

A job with hidden calls (Job.hidden_calls) gives two RunResults (`phases`): its public phase's, built
only from what drive.py had read when it asked for the hidden calls (drive.Split), as a job of the public
calls alone would have ended there; and its hidden phase's, from everything after.
"""

import os
import signal

from grader.limits import Limits
from grader.sandbox import messages, observed
from grader.sandbox.channel import ChildAnswers, parse_results
from grader.sandbox.drive import Split
from grader.sandbox.models import CallResult, CallStatus, Job, Rerun, RunResult, RunStatus
from grader.sandbox.wire import ChildResults, ResultInvalid

RUNNER_FAILED = 71  # runner.py exits with this when the sandbox itself failed before student code ran
# (only then: once the runner has said "prepared", a 71 is the student's own exit code)
RESULTS_FAILED = 72  # ... and with this when it could not send results after student code ran


def output_text(kept: bytes, total: int, limits: Limits, stream: str) -> str:
    """Decoded output with a note when part of it was dropped."""
    text = kept.decode("utf-8", "replace")
    if total > len(kept):
        text += (
            f"\n[{stream} truncated: kept the first {len(kept)} of {total} bytes; stdout and stderr "
            f"together are limited to {limits.output_kb} KiB]"
        )
    return text


def _wait_status(report: dict) -> tuple[int | None, int | None]:
    status = report.get("status")
    if not isinstance(status, int):
        return None, None
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def _run_status(report: dict, results: ChildResults, limits: Limits, code: int | None, sig: int | None) -> RunStatus:
    cells = results.cells
    memory = (cells is not None and cells.status == "memory_limit") or any(
        frame.memory for frame, _ in results.calls.values()
    )
    if report.get("timed_out"):
        return RunStatus.timeout
    if code == RESULTS_FAILED:
        return RunStatus.result_invalid
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and float(report.get("cpu") or 0) >= limits.cpu_seconds):
        return RunStatus.cpu_limit
    if memory or (sig == signal.SIGKILL and report.get("oom_killed")):  # the job's memory cgroup was full
        return RunStatus.memory_limit
    if sig is not None:
        return RunStatus.killed
    if cells is None or (cells.status == "ok" and not results.done):
        return RunStatus.exited if code is not None else RunStatus.result_invalid
    return RunStatus(cells.status)


def public_job(job: Job) -> Job:
    """`job` as its public phase: the calls before the hidden ones (the arrays stay; nothing reads them)."""
    if not job.hidden_calls:
        return job
    return job.model_copy(update={"calls": job.calls[: len(job.calls) - job.hidden_calls], "hidden_calls": 0})


def phases(
    job: Job,
    limits: Limits,
    report: dict,
    out: tuple[bytes, bytes, bytes],
    split: Split | None,
    protections: dict[str, bool],
) -> tuple[RunResult, RunResult | None]:
    """The RunResult of `job`'s public phase, and of its hidden phase (None when the hidden calls were never
    asked for; then the public phase is the whole run). `out`: stdout, stderr and the result stream as
    drive.run returned them.

    The public phase's comes from the Split alone: its answers (accepted, done), its output, its wall time
    and the CPU and memory the worker read when told of the split; as a child that had answered "done"
    and exited 0 there. So nothing the child did after any hidden input existed in it (its output, its
    end, a timeout, a kill) reaches it. The hidden phase's is the run's end as the worker reported it, with
    the output read after the split and the hidden calls only. A public phase the worker found over its CPU
    limit at the split is a cpu_limit run, and its hidden phase then does not count (None)."""
    public = public_job(job)
    stdout, stderr, blob = out
    if split is None:
        return build(public, limits, report, stdout, stderr, blob, protections), None
    usage = report.get("split") or {}
    before = {
        "status": 0,
        "setup": report.get("setup"),
        "prepared": True,
        "wall": split.seconds,
        "cpu": usage.get("cpu"),
        "maxrss_kb": usage.get("maxrss_kb"),
        "stdout_bytes": split.stdout_bytes,
        "stderr_bytes": split.stderr_bytes,
    }
    if usage.get("over_cpu"):  # the public phase ran over its CPU limit (worker.Collector.split): killed
        before["status"] = signal.SIGKILL
        return build(public, limits, before, split.stdout, split.stderr, b"", protections, split.answers), None
    run = build(public, limits, before, split.stdout, split.stderr, b"", protections, split.answers)
    hidden = build(job, limits, report, stdout, stderr, blob, protections, resume=split.answers)
    ids = {call.id for call in job.calls[len(public.calls) :]}
    cpu = hidden.usage.get("cpu_seconds", 0.0) - float(usage.get("cpu") or 0.0)
    return run, hidden.model_copy(
        update={
            "calls": {key: value for key, value in hidden.calls.items() if key in ids},
            "wall_seconds": max(0.0, hidden.wall_seconds - split.seconds),
            "usage": dict(hidden.usage, cpu_seconds=max(0.0, cpu)),
        }
    )


def build(
    job: Job,
    limits: Limits,
    report: dict,
    stdout: bytes,
    stderr: bytes,
    blob: bytes,
    protections: dict[str, bool],
    answers: ChildAnswers | None = None,
    resume: ChildAnswers | None = None,
) -> RunResult:
    """The RunResult for one finished job (or phase: `answers` already parsed and accepted, drive.Split).

    `resume`: the public phase's accepted answers, read from the start of `blob` (drive.Split): the
    stream is parsed on from there, and the calls they answer get no CallResult here (the public phase's
    RunResult has them)."""
    code, sig = _wait_status(report)
    base = {
        "stdout": output_text(stdout, int(report.get("stdout_bytes", 0)), limits, "stdout"),
        "stderr": output_text(stderr, int(report.get("stderr_bytes", 0)), limits, "stderr"),
        "protections": protections,
        "wall_seconds": float(report.get("wall", 0.0)),
        "usage": {"cpu_seconds": float(report.get("cpu") or 0), "max_rss_kb": float(report.get("maxrss_kb") or 0)},
    }
    # Measurements live in `usage`, not in `detail`: re-grading must reproduce everything but timings.
    facts = f"exit code {code}, signal {sig}, setup {report.get('setup')}"
    if report.get("setup_error") or (code == RUNNER_FAILED and report.get("prepared") is not True):
        ours = base.pop("stderr")  # no student code ran: this is the sandbox's own traceback
        return RunResult(
            status=RunStatus.sandbox_error,
            message=messages.SANDBOX_ERROR,
            calls=_failed_calls(job),
            stderr="",
            detail=f"sandbox setup failed: {report.get('setup_error')}; {facts}\n{ours}",
            **base,
        )
    try:
        if report.get("result_over_size"):
            raise ResultInvalid(f"the result stream exceeded {limits.result_mb} MiB")
        notebook, truncated = None, False
        if answers is not None:
            results = answers
        elif job.observe:
            results, truncated, notebook = observed.parse_run(blob, job, limits, report.get("asked", []))
        else:
            results, truncated = parse_results(blob, job, limits, report.get("asked", []), resume)
    except ResultInvalid as exc:
        return RunResult(
            status=RunStatus.result_invalid,
            message=messages.result_invalid(job, limits),
            detail=f"result_invalid: {exc}; {facts}",
            calls=_failed_calls(job),
            **base,
        )
    status = _run_status(report, results, limits, code, sig)
    if truncated and status == RunStatus.ok:
        status = RunStatus.result_invalid
    running = next((call for call in job.calls if call.id == results.started), None)
    out_of_memory = next(
        (call for call in job.calls if call.id in results.calls and results.calls[call.id][0].memory), None
    )
    during = messages.signature(running or out_of_memory) if running or out_of_memory else None
    cells = results.cells
    detail = facts
    cell = line = None
    stopped = notebook.stopped_at(job) if notebook is not None and status != RunStatus.ok else None
    if stopped is not None and during is None:
        during = messages.place(job, stopped, None)
    if status in (RunStatus.timeout, RunStatus.cpu_limit, RunStatus.memory_limit, RunStatus.killed):
        message = messages.limit_hit(status.value, job, limits, during, sig)
    elif status == RunStatus.exited and notebook is not None and running is None:
        message = messages.notebook_stopped(job, code, stopped)
    elif status == RunStatus.exited and (cells is None or cells.status == "ok"):
        message = messages.os_exit(job, code, during)
    elif status == RunStatus.result_invalid:
        message = messages.result_invalid(job, limits)
        detail = (
            f"result stream incomplete (cut short: {truncated}, done: {results.done}; exit code "
            f"{RESULTS_FAILED} means the runner failed after student code ran); {facts}"
        )
    elif status == RunStatus.ok:
        message = detail = ""  # nothing to diagnose; and re-grading must reproduce the result exactly
    else:
        message = messages.cells_failed(job, cells)
    if cells is not None and cells.status != "ok":
        cell, line = cells.cell, cells.line
        if status == RunStatus.memory_limit:
            message = messages.limit_hit("memory_limit", job, limits, messages.place(job, cell, line))
        detail += f"\nstudent traceback:\n{cells.traceback}" if cells.traceback else ""
    calls: dict[str, CallResult] = {}
    for call in job.calls:
        if resume is not None and call.id in resume.calls:
            continue
        if call.id in results.calls:
            frame, values = results.calls[call.id]
            calls[call.id] = CallResult(
                status=CallStatus(frame.status),
                message=messages.call_message(job, call, frame),
                traceback=frame.traceback,
                values=values,
                texts=frame.texts,
                problems=frame.problems,
                seconds=frame.seconds,
                rerun=_rerun(results, call.id),
            )
        elif call is running:
            calls[call.id] = CallResult(
                status=CallStatus.timeout if status == RunStatus.timeout else CallStatus.raised, message=message
            )
        else:
            reason = (
                "the code stopped before the graded functions could be called (see the first error)"
                if cells is None or cells.status != "ok"
                else f"the run ended early ({status.value})"
            )
            calls[call.id] = CallResult(status=CallStatus.not_run, message=messages.not_run(job, call, reason))
    exit_code = None
    if status == RunStatus.exited:
        exit_code = cells.exit_code if cells is not None and cells.status == "exited" else code
    extra = observed.fields(job, limits, notebook) if notebook is not None else {}
    if stopped is not None and running is None:
        cell = stopped
        last = notebook.cells[-1] if notebook.cells else None
        line = last.line if last is not None and last.cell == stopped else None
    return RunResult(
        status=status,
        message=message,
        detail=detail,
        cell=cell,
        line=line,
        exit_code=exit_code,
        calls=calls,
        **base,
        **extra,
    )


def _failed_calls(job: Job) -> dict[str, CallResult]:
    """Every call of a run that failed before any answer could be read: not run."""
    return {
        call.id: CallResult(status=CallStatus.not_run, message=messages.not_run(job, call, "the run failed"))
        for call in job.calls
    }


def _rerun(results: ChildResults, call_id: str) -> Rerun | None:
    """A scratch call's rerun under scaled autograd (channel.ChildAnswers.reruns), when it answered."""
    factor, frame, values = getattr(results, "reruns", {}).get(call_id, (None, None, None))
    return None if frame is None else Rerun(factor=factor, status=CallStatus(frame.status), values=values)
