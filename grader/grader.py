"""One grading session: what `check`, `grade` and `gradescope run` share, so each only adapts its arguments
and its outputs.

    with Grader.load(rubric, groups=("public", "hidden"), timeout=20.0, sandbox=Sandbox(...)) as grader:
        report = grader.grade(path, files)   # a GradeReport for every outcome

A Grader holds the rubric (loaded once, with its hash), the limits (the rubric's, with --timeout validated
by Limits.with_timeout), the hidden seed, the trial groups that can run, and the sandbox's life: the
sandbox is started the first time a submission needs it (never for a file the load stage rejects), from
any thread, and closed when the session ends. The commands build the Sandbox themselves because what it
hides and how many workers it has are theirs to say, and `check` and `grade` launch it before importing
the stages, so the workers' start overlaps those imports.
"""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from grader.grade import grade_loaded, load, runnable_groups, unrunnable
from grader.limits import Limits
from grader.report import GradeReport
from grader.rubric.files import load_rubric, rubric_hash
from grader.rubric.model import Rubric
from grader.sandbox import Sandbox
from grader.trials import Group

GRADER_ERROR = (
    "grader_error",
    "The grader failed on this submission (its own fault, not yours), so nothing was graded; the details are "
    "in this report's flags, for the course staff.",
)


class Grader:
    """A rubric, its limits and hidden seed, and a sandbox: everything needed to grade files one by one,
    from several threads at once (the sandbox has a worker per parallel job)."""

    def __init__(
        self,
        rubric: Rubric,
        digest: str,
        *,
        groups: tuple[Group, ...] = ("public", "hidden"),
        timeout: float | None = None,
        hidden_seed: str | None = None,
        sandbox: Sandbox | None = None,
    ):
        self.rubric = rubric
        self.rubric_hash = digest
        self.limits: Limits = rubric.limits.with_timeout(timeout)  # UsageError outside Limits' bounds
        self.hidden_seed = hidden_seed
        self.groups = runnable_groups(rubric, groups, hidden_seed)
        self.sandbox = sandbox  # set later by a command that knows only then what it must hide
        self._started = False
        self._lock = threading.Lock()

    @classmethod
    def load(cls, rubric: str, **options) -> Grader:
        """The session for the bundled rubric id or rubric file `rubric` (RubricNotFound, RubricInvalid)."""
        return cls(load_rubric(rubric), rubric_hash(rubric), **options)

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        """Start the sandbox's workers unless they run already; SandboxError when they cannot start."""
        with self._lock:
            if self._started:
                return
            if self.sandbox is None:
                raise RuntimeError("Grader.start: no sandbox was given to this grading session")
            self.sandbox.__enter__()
            self._started = True

    def close(self) -> None:
        """Stop the sandbox's workers (a sandbox launched but never started included)."""
        with self._lock:
            if self.sandbox is not None:
                self.sandbox.close()
            self._started = False

    def grade(self, path: Path, files: dict[str, bytes] | None = None) -> GradeReport:
        """Grade the file at `path`, with `files` handed in beside it (a notebook's .dat and data files).

        Never raises for anything the submission does, nor for a failure of the grader's own stages: that
        is a report with status `grader_error`, every check unchecked and the traceback as its flag. Only
        a sandbox that cannot start raises (SandboxError): no submission can then be graded at all."""
        started = time.perf_counter()
        try:
            submission = load(path, files or {})
        except Exception:
            digest = hashlib.sha256(path.name.encode()).hexdigest()
            return self.could_not_grade(path.stem, path.name, digest, GRADER_ERROR, traceback_flags())
        if submission.problem is not None:
            return self.could_not_grade(submission.student, path.name, submission.sha256, submission.problem)
        loaded = time.perf_counter() - started
        self.start()
        try:
            return grade_loaded(
                self.rubric,
                self.rubric_hash,
                submission,
                self.sandbox,
                self.groups,
                self.limits,
                self.hidden_seed,
                files or {},
                loaded,
            )
        except Exception:
            return self.could_not_grade(
                submission.student, path.name, submission.sha256, GRADER_ERROR, traceback_flags()
            )

    def could_not_grade(
        self, student: str, submission: str, digest: str, problem: tuple[str, str], flags: Sequence[str] = ()
    ) -> GradeReport:
        """The report of a submission that could not be graded: `problem` is (status, student-facing message),
        every check is unchecked with that message, and `flags` tell the instructor more."""
        status, message = problem
        return unrunnable(
            self.rubric, self.rubric_hash, self.groups, student, submission, digest, status, message, list(flags)
        )

    def hidden_trials(self) -> bool:
        """Whether this session's reports include hidden trials."""
        return "hidden" in self.groups


def traceback_flags() -> list[str]:
    """The flags of a grader failure, from inside its `except`: the traceback, for the instructor only."""
    return [f"grader error:\n{traceback.format_exc()}"]
