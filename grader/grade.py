"""Grading one submission end to end: load → scan → run in the sandbox → check → GradeReport.

The same function serves `check` (public trials) and `grade` (public and hidden: a second phase of the same
job, asked for only once every public answer was in, `grader.run.run_trials`). Student code runs only inside the sandbox; everything here runs in the
grading process on data the sandbox returned.
"""

import dataclasses
import functools
import platform
import time
from importlib import metadata
from pathlib import Path

from grader import __version__, scratch_effect
from grader.checks import check_task
from grader.limits import Limits
from grader.load import Submission, load_submission, submission_hash
from grader.notebook.grade import check_notebook, run_notebook
from grader.report import GradeReport, RunRecord, unchecked
from grader.rubric.model import Rubric
from grader.run import hidden_run_flags, run_trials
from grader.sandbox import RunResult, Sandbox
from grader.sandbox.models import RunStatus
from grader.scan import scan_scratch
from grader.trials import NOTEBOOK_TRIAL, Group, trial_name


def grade_submission(
    rubric: Rubric,
    rubric_hash: str,
    path: Path,
    sandbox: Sandbox,
    groups: tuple[Group, ...] = ("public",),
    limits: Limits | None = None,
    hidden_seed: str | None = None,
    files: dict[str, bytes] | None = None,
) -> GradeReport:
    """Grade the file at `path` in a running `sandbox`; never raises for anything the submission does.

    `files` are handed in beside a notebook (its .dat and data files) and placed in its work directory.
    The commands grade through grader.grader.Grader, which also starts the sandbox and reports its own
    failures; this is the same pipeline for a caller that holds a rubric and a running sandbox."""
    started = time.perf_counter()
    submission = load(path, files or {})
    groups = runnable_groups(rubric, groups, hidden_seed)
    if submission.problem is not None:
        status, message = submission.problem
        return unrunnable(
            rubric, rubric_hash, groups, submission.student, path.name, submission.sha256, status, message
        )
    loaded = time.perf_counter() - started
    return grade_loaded(
        rubric, rubric_hash, submission, sandbox, groups, limits or rubric.limits, hidden_seed, files or {}, loaded
    )


def load(path: Path, files: dict[str, bytes]) -> Submission:
    """The submission at `path`; the files handed in beside a notebook are part of what was graded (its hash)."""
    submission = load_submission(path)
    if files:
        submission = dataclasses.replace(submission, sha256=submission_hash(submission.sha256, files))
    return submission


def grade_loaded(
    rubric: Rubric,
    rubric_hash: str,
    submission: Submission,
    sandbox: Sandbox,
    groups: tuple[Group, ...],
    limits: Limits,
    hidden_seed: str | None,
    files: dict[str, bytes],
    load_seconds: float,
) -> GradeReport:
    """Run a loaded submission (no problem) in the sandbox, check what it computed, and report.

    `groups` are those that can run (`runnable_groups`); `load_seconds` is the load stage's time."""
    started = time.perf_counter()
    if rubric.submission.kind == "notebook":
        run = run_notebook(rubric, submission, sandbox, limits, files)
        ran = time.perf_counter()
        checks, notes, flags = check_notebook(rubric, submission, run, files)
    else:
        jobs = run_trials(sandbox, rubric, submission, groups, limits, hidden_seed)
        run = jobs.run
        ran = time.perf_counter()
        checks = [
            result for task in rubric.tasks for result in check_task(rubric, task, jobs.trials[task.id], jobs.found)
        ]
        checks, by_effect = scratch_effect.judged(rubric.tasks, jobs.trials, jobs.found, checks)
        scratch = [task.contract.functions().get("scratch") for task in rubric.tasks]
        flags = [
            *scan_scratch(submission.cells, submission.cell_numbers, [name for name in scratch if name]),
            *by_effect,
            *hidden_run_flags(jobs),
        ]
        notes = []
    return GradeReport(
        **header(rubric, rubric_hash, groups, submission.student, submission.path.name, submission.sha256),
        status="graded",
        message=run.message if run.status != RunStatus.ok else "",
        score=round(sum(c.points for c in checks), 10),
        max_score=rubric.max_points(),
        checks=checks,
        run=_record(run, submission),
        notes=[*submission.notes, *notes],
        flags=flags,
        timing={"load": load_seconds, "run": ran - started, "check": time.perf_counter() - ran},
    )


def unrunnable(
    rubric: Rubric,
    rubric_hash: str,
    groups: tuple[Group, ...],
    student: str,
    submission: str,
    submission_hash: str,
    status: str,
    message: str,
    flags: list[str] | None = None,
) -> GradeReport:
    """The report of a submission that could not be run at all: every check unchecked with `message` (the
    student-facing reason), `status` saying why (`empty`, `grader_error`, ...), `flags` for the instructor."""
    return GradeReport(
        **header(rubric, rubric_hash, groups, student, submission, submission_hash),
        status=status,
        message=message,
        score=0.0,
        max_score=rubric.max_points(),
        checks=unchecked(rubric, message),
        flags=flags or [],
    )


def runnable_groups(rubric: Rubric, groups: tuple[Group, ...], hidden_seed: str | None) -> tuple[Group, ...]:
    """Hidden trials run only when there are some and a hidden seed is known."""
    has_hidden = rubric.trials.hidden > 0 and (hidden_seed is not None or rubric.trials.hidden_seed is not None)
    return tuple(g for g in groups if g == "public" or has_hidden)


def header(
    rubric: Rubric, rubric_hash: str, groups: tuple[Group, ...], student: str, submission: str, submission_hash: str
) -> dict:
    """The fields every report starts with: who and what was graded, on which rubric, trials and seeds."""
    trials = [
        trial_name(group, i)
        for group in groups
        for i in range(rubric.trials.public if group == "public" else rubric.trials.hidden)
    ]
    if rubric.submission.kind == "notebook":
        trials = [NOTEBOOK_TRIAL]
    seeds: dict[str, int | str] = {"public": rubric.seed}
    if "hidden" in groups:
        seeds["hidden"] = "set"
    return dict(
        grader_version=__version__,
        rubric_id=rubric.id,
        rubric_hash=rubric_hash,
        student=student,
        submission=submission,
        submission_hash=submission_hash,
        trials=trials,
        seeds=seeds,
        environment=environment(),
    )


def environment() -> dict[str, str]:
    """Versions that can change a float: Python, numpy, torch (read without importing torch)."""
    return dict(_environment())


@functools.cache
def _environment() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for package in ("numpy", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _record(run: RunResult, submission: Submission) -> RunRecord:
    """The run as the report keeps it; `cell` becomes the notebook's own cell number."""
    cell = submission.notebook_cell(run.cell) if run.cell else run.cell
    return RunRecord(
        status=run.status,
        message=run.message,
        detail=run.detail,
        cell=cell,
        line=run.line,
        stdout=run.stdout,
        stderr=run.stderr,
        protections=run.protections,
        wall_seconds=run.wall_seconds,
        usage=run.usage,
        calls={call: result.status for call, result in run.calls.items()},
    )
