"""The rubric: what a submission must provide, on which trials, and how every check is scored.

Rubric files are TOML (see `rubrics/`), validated by these models. Every model forbids unknown keys so a
misspelt key fails loudly instead of silently taking a default; `grader.rubric.files` turns validation
errors into messages that name the file, the field and what is allowed.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grader.limits import Limits
from grader.rubric.checkspec import Check, Tolerance, Visibility
from grader.rubric.tasks import Task
from grader.secret import PATTERN, secret_problem

RUBRIC_ID = r"^[a-z0-9][a-z0-9-]*$"


class NotebookFiles(BaseModel):
    """The files a free-form notebook is asked to write, by the source they hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    torch: str = Field("torch_autograd.dat", min_length=1, description="File with the gradients from torch autograd.")
    scratch: str = Field(
        "my_autograd.dat", min_length=1, description="File with the gradients of the student's own backprop."
    )


class SubmissionSpec(BaseModel):
    """How submissions are written and handed in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["contract", "notebook"] = Field(
        "contract",
        description="`contract`: the submission defines the functions the task's contract names; "
        "`notebook`: a free-form notebook that is executed and observed.",
    )
    allow_in_out: bool = Field(
        True, description="Accept weight gradients in the transposed (in, out) layout, and say so in the report."
    )
    files: NotebookFiles = Field(
        default_factory=NotebookFiles, description="Notebooks: the .dat files the handout asks for."
    )


class TrialsSpec(BaseModel):
    """Which trials are run: public ones (shown to students by `check`) and hidden ones (for `grade`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public: int = Field(1, ge=1, le=100, description="Number of public trials, from the rubric's seed.")
    hidden: int = Field(3, ge=0, le=100, description="Number of hidden trials, from the hidden seed.")
    hidden_seed: str | None = Field(
        None,
        pattern=PATTERN,
        description="Secret of the hidden trials: at least 32 hexadecimal digits (128 bits), as `backprop-grader "
        "rubric secret` prints; never an integer (integers are for the public seed). Hidden trials are derived "
        "from it with HMAC-SHA256. Keep it out of the copy students get; the bundled rubrics' secrets are public. "
        "Without it, `grade` runs public trials only.",
    )
    hidden_weight: float = Field(
        0.5, ge=0, le=1, description="Share of each check's points earned on hidden trials when they run."
    )
    hidden_visibility: Visibility = Field(
        Visibility.after_due_date, description="Visibility of hidden-trial results on an LMS."
    )

    @field_validator("hidden_seed", mode="before")
    @classmethod
    def _hidden_seed_is_a_secret(cls, value: object) -> object:
        """Refuse integers and short or hand-typed strings with how to make a secret (`grader.secret`)."""
        problem = None if value is None else secret_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class Rubric(BaseModel):
    """One assignment: tasks with their contracts and checks, trials, tolerances and limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RUBRIC_ID, description="Short id used on the command line, e.g. `bs6207-a1`.")
    title: str = Field(min_length=1, description="Human title shown in reports.")
    seed: int = Field(ge=0, description="Seed of the public trials; re-grading reproduces every number.")
    submission: SubmissionSpec = Field(default_factory=SubmissionSpec, description="Submission kind and layout.")
    trials: TrialsSpec = Field(default_factory=TrialsSpec, description="Public and hidden trials.")
    tolerance: Tolerance = Field(default_factory=Tolerance, description="Default tolerance of every check.")
    limits: Limits = Field(default_factory=Limits, description="Resource limits of one submission run.")
    tasks: Annotated[list[Task], Field(min_length=1, description="The tasks graded, in report order.")]

    @model_validator(mode="after")
    def _tasks_are_distinct(self) -> "Rubric":
        """Reject task ids used twice and function names shared by two tasks."""
        task_ids = [task.id for task in self.tasks]
        if len(set(task_ids)) != len(task_ids):
            raise ValueError(f"task ids must be unique; found {task_ids}")
        functions: dict[str, str] = {}
        for task in self.tasks:
            for function in task.contract.functions().values():
                if function in functions:
                    raise ValueError(
                        f"function `{function}` is named by task `{functions[function]}` and task `{task.id}`; "
                        "give each contract function its own name"
                    )
                functions[function] = task.id
        return self

    def task(self, task_id: str) -> Task:
        """The task with this id (KeyError names the ids that exist)."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(f"rubric {self.id} has no task {task_id!r}; tasks: {[t.id for t in self.tasks]}")

    def tolerance_for(self, check: Check) -> Tolerance:
        """The check's own tolerance if it has one, else the rubric's default."""
        return check.tolerance or self.tolerance

    def max_points(self) -> float:
        """Total points of the rubric."""
        return sum(check.points for task in self.tasks for check in task.checks)
