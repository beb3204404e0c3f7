"""The grade report: one pydantic model per student, with a published JSON Schema.

Export formats (terminal table, report.json, later HTML, CSV, Gradescope) read these models; none lives
on them. Student-facing text (`message`) and instructor-only detail (`detail`, tracebacks) are kept in
separate fields so every renderer can show each audience only its own.
"""

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from grader.rubric.checkspec import Check, Tolerance, Visibility
from grader.sandbox.models import CallStatus, RunStatus

if TYPE_CHECKING:
    from grader.rubric.model import Rubric


class CheckStatus(StrEnum):
    """Outcome of one check over every trial it ran on."""

    passed = "passed"
    failed = "failed"
    not_verifiable = "not_verifiable"
    missing = "missing"
    error = "error"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Diagnosis(_Model):
    """The known mistake a failing quantity matches, or the uniform factor it is off by, and where in the
    backward pass the error enters."""

    mistake: str = Field(
        description=(
            "Catalogue id (e.g. `missing_factor_2`); two ids joined by `+` when the values match two mistakes made "
            "together (see `parts`); `uniform_factor` when only a factor k fits; `chain_rule` when no known mistake "
            "fits but the layer where the chain rule breaks is known (see `localization`)."
        )
    )
    title: str = Field(description="Short name of the mistake.")
    explanation: str = Field(description="Student-facing: what the found values are consistent with.")
    hint: str = Field(description="Student-facing: what to look at.")
    factor: float | None = Field(None, description="k in found ≈ k·expected, when the mismatch is a uniform factor.")
    layer: int | None = Field(
        None,
        description=(
            "Layer where the error first appears, counting back from the output: the first broken relation's, else the largest failing l."
        ),
    )
    trials: list[str] = Field(
        default_factory=list, description="Trials on which the found values match this diagnosis."
    )
    parts: list[str] = Field(
        default_factory=list, description="The catalogue ids of two mistakes named together (empty for one)."
    )
    relation: str | None = Field(
        None,
        description=(
            "The chain-rule relation that first breaks, going down from the output, in the course's notation "
            "(e.g. `δ1 = (W2ᵀδ2) ⊙ σ'(z1)`); absent when the backward pass was not localized."
        ),
    )
    localization: str | None = Field(
        None,
        description=(
            "Student-facing: each layer where the student's backward pass stops following the chain rule and the "
            "smallest change that repairs it (e.g. `layer 1: your δ1 equals W2ᵀδ2 without σ'(z1)`)."
        ),
    )


class TrialResult(_Model):
    """One check on one trial."""

    trial: str = Field(description="Trial name, `public-0` or `hidden-2`.")
    status: CheckStatus = Field(description="Outcome on this trial.")
    message: str = Field(description="Student-facing: what was expected, what was found.")
    layout: str | None = Field(None, description="How the found value was read, e.g. `transposed (in, out) layout`.")
    max_abs_error: float | None = Field(None, description="Largest |found − expected|.")
    max_rel_error: float | None = Field(None, description="Largest |found − expected| / |expected|.")
    where: list[int] | None = Field(None, description="Index of the worst element (in the expected layout).")
    tolerance: Tolerance | None = Field(None, description="Tolerance the comparison used.")
    atol_eff: float | None = Field(None, description="Effective absolute tolerance max(atol, atol_rel·max|expected|).")
    excess: list[float | None] | list[list[float | None]] | None = Field(
        None, description="Per element |found − expected| / allowed (in the expected layout; > 1 fails): the heat map."
    )


class CheckResult(_Model):
    """One rubric check, scored over the trials of the run."""

    task: str = Field(description="Task id.")
    quantity: str = Field(description="Quantity checked, e.g. `scratch.dW1`.")
    status: CheckStatus = Field(description="Passed only if it passed on every trial that ran.")
    points: float = Field(description="Points earned.")
    max_points: float = Field(description="Points available in this run.")
    group_points: dict[str, float] = Field(
        default_factory=dict, description="Points earned per trial group (`public`, `hidden`)."
    )
    group_max_points: dict[str, float] = Field(default_factory=dict, description="Points available per trial group.")
    visibility: Visibility = Field(
        description="Who may see this result (hidden-trial parts follow trials.hidden_visibility)."
    )
    message: str = Field(description="Student-facing one-line summary.")
    provenance: str = Field("", description="Where the found value came from: function and key, or file and line.")
    diagnosis: Diagnosis | None = Field(None, description="The mistake this failure matches, when one does.")
    trials: list[TrialResult] = Field(default_factory=list, description="Per-trial results (public then hidden).")


class RunRecord(_Model):
    """How the submission's code ran in the sandbox."""

    status: RunStatus = Field(description="Sandbox status: ok, syntax_error, import_error, timeout, memory_limit, …")
    message: str = Field(description="Student-facing explanation of the status.")
    detail: str = Field("", description="Instructor-only diagnostics (never shown to students).")
    cell: int | None = Field(None, description="Notebook cell (1-based) where the run failed, if it did.")
    line: int | None = Field(None, description="Line in that cell or file.")
    stdout: str = Field("", description="Captured standard output (truncated).")
    stderr: str = Field("", description="Captured standard error (truncated).")
    protections: dict[str, bool] = Field(
        default_factory=dict, description="Sandbox protections and whether each was active."
    )
    wall_seconds: float = Field(0.0, description="Wall time of the run.")
    usage: dict[str, float] = Field(
        default_factory=dict, description="Measured CPU seconds and peak memory; vary run to run like timings."
    )
    calls: dict[str, CallStatus] = Field(
        default_factory=dict, description="Call id → status (`ok`, `raised`, `missing_function`, …)."
    )


class GradeReport(_Model):
    """Everything about grading one submission against one rubric."""

    grader_version: str = Field(description="Version of backprop-grader that graded.")
    rubric_id: str = Field(description="Rubric id.")
    rubric_hash: str = Field(description="sha256 of the rubric file.")
    student: str = Field(description="Student id (from the file or folder name).")
    submission: str = Field(description="Submission file name.")
    submission_hash: str = Field(description="sha256 of the submission file.")
    trials: list[str] = Field(description="Trials run, e.g. `public-0`, `hidden-1`.")
    seeds: dict[str, int | str] = Field(description="Public seed; hidden seed shown only as `set`.")
    environment: dict[str, str] = Field(description="Python, numpy, torch versions and platform.")
    status: str = Field(description="`graded`, or why the submission could not be run (`empty`, `not_utf8`, …).")
    message: str = Field("", description="Student-facing message about the submission as a whole.")
    score: float = Field(description="Points earned.")
    max_score: float = Field(description="Points available in this run.")
    checks: list[CheckResult] = Field(default_factory=list, description="One entry per rubric check.")
    run: RunRecord | None = Field(None, description="How the code ran; absent when it could not be loaded.")
    notes: list[str] = Field(default_factory=list, description="Student-facing notes (dropped magics, layouts read).")
    flags: list[str] = Field(
        default_factory=list, description="Instructor-only: things to review (e.g. autograd in scratch code)."
    )
    timing: dict[str, float] = Field(
        default_factory=dict, description="Seconds per stage; excluded from reproducibility checks."
    )


def unchecked(rubric: "Rubric", message: str) -> list[CheckResult]:
    """Every check of the rubric at 0 points, `missing`, each saying `message` (why nothing was checked):
    the checks of a submission that could not be run, and of a run the sandbox failed (Gradescope)."""
    return [not_checked(task.id, check, message) for task in rubric.tasks for check in task.checks]


def not_checked(task_id: str, check: Check, reason: str) -> CheckResult:
    """A check that could not be made: 0 points, `missing`, with the student-facing reason."""
    return CheckResult(
        task=task_id,
        quantity=check.quantity,
        status=CheckStatus.missing,
        points=0.0,
        max_points=check.points,
        visibility=check.visibility,
        message=f"{check.quantity}: not checked — {reason}",
    )
