"""What every task kind's notebook observation shares: the run it reads, what it hands back, and the
check result for a quantity that could not be observed."""

from dataclasses import dataclass, field

from grader.load import Submission
from grader.report import CheckResult, CheckStatus, TrialResult, not_checked
from grader.rubric.model import Rubric
from grader.sandbox import RunResult


@dataclass(frozen=True)
class NotebookRun:
    """One observed notebook run as every kind reads it. `texts`: the files the notebook wrote, over the
    ones handed in beside it, decoded."""

    rubric: Rubric
    submission: Submission
    run: RunResult
    texts: dict[str, str]

    def cell(self, position: int) -> int:
        """The notebook's own number of the code cell at `position` (the sandbox counts code cells from 1)."""
        return self.submission.notebook_cell(position)


@dataclass
class KindResult:
    """One task's check results, notes for the student and flags for the instructor."""

    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


missing = not_checked  # a check the notebook's run could not make (grader.report.not_checked)


def judged(result: CheckResult, passed: bool, message: str, provenance: str) -> CheckResult:
    """`result` (a check a kind judges itself, such as the architecture of the net a notebook built)
    passed or failed as a whole, with `message` on each of its trials and where it was seen."""
    status = CheckStatus.passed if passed else CheckStatus.failed
    return result.model_copy(
        update={
            "status": status,
            "points": result.max_points if passed else 0.0,
            "message": message,
            "provenance": provenance,
            "group_points": {group: (value if passed else 0.0) for group, value in result.group_max_points.items()},
            "trials": [TrialResult(trial=t.trial, status=status, message=message) for t in result.trials],
        }
    )


def all_missing(task, reason: str) -> KindResult:
    """Every check of `task` missing for one reason, stated once as a note."""
    return KindResult([missing(task.id, check, reason) for check in task.checks], [reason], [])
