"""What the grader asks the sandbox to run (Job, Call) and what comes back (RunResult, CallResult).

Everything in a RunResult was produced by the grader process from data it validated (grader/sandbox/wire.py):
`message` fields are for the student (where, expected, found, what to do), `detail` and `traceback` only
for instructors; `traceback` holds the student's own frames, never the sandbox's.
"""

from enum import Enum
from typing import Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, field_validator, model_validator

Arg = Union[StrictStr, dict[StrictStr, StrictStr], StrictInt, StrictFloat]


class RunStatus(str, Enum):
    """How the run as a whole ended."""

    ok = "ok"
    syntax_error = "syntax_error"  # a cell does not compile
    import_error = "import_error"  # an exception while executing the cells
    exited = "exited"  # sys.exit() / os._exit() while executing the cells (or os._exit in a call)
    timeout = "timeout"  # wall-clock limit
    cpu_limit = "cpu_limit"
    memory_limit = "memory_limit"
    killed = "killed"  # any other signal (crash in a C extension, kernel OOM killer, ...)
    result_invalid = "result_invalid"  # child output unreadable, forged, or over the size cap
    sandbox_error = "sandbox_error"  # the grader's fault, never the student's


class CallStatus(str, Enum):
    """How one graded call ended."""

    ok = "ok"
    missing_function = "missing_function"
    not_callable = "not_callable"
    raised = "raised"
    bad_return = "bad_return"
    timeout = "timeout"
    not_run = "not_run"


class Call(BaseModel):
    """One call of a top-level function of the submission, with inputs taken from Job.arrays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., min_length=1, max_length=200, description="Key of this call in RunResult.calls, unique in the job.")
    function: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200,
                          description="Name of a top-level function defined by the submission.")
    args: list[Arg] = Field(default_factory=list, description=(
        "Positional arguments: a string names an array in Job.arrays; a dict maps argument keys to array names "
        "and is passed as a dict of numpy arrays (e.g. params); a number is passed as a Python int or float. "
        "Every call gets fresh copies, so in-place updates never leak into the next call."))
    scratch: bool = Field(False, description=(
        "Run 'from scratch': torch autograd disabled and Tensor.backward, torch.autograd.backward and "
        "torch.autograd.grad raising a RuntimeError during this call."))


class Job(BaseModel):
    """One submission to run: its code, the input arrays, and the calls to make after the code ran."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    filename: str = Field(..., min_length=1, max_length=500, description="Name shown to the student, e.g. 'a1.py' or 'nb.ipynb'.")
    cells: list[str] = Field(..., description=(
        "Python source run top to bottom in one namespace named 'submission'. A .py file is one cell "
        "(tracebacks then name the file); notebook cells are named '<cell N>', N counting from 1."))
    arrays: dict[str, np.ndarray] = Field(default_factory=dict, description="Inputs by name, converted to float64.")
    calls: list[Call] = Field(default_factory=list, description="Graded calls, made in order after the cells ran.")
    seed: int = Field(0, description="Seed for random, numpy.random and torch before the first cell runs.")

    @field_validator("arrays")
    @classmethod
    def _float64(cls, arrays: dict) -> dict:
        converted = {}
        for name, value in arrays.items():
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise ValueError(f"arrays[{name!r}]: expected real numbers, found dtype {array.dtype}")
            converted[name] = np.ascontiguousarray(array, dtype=np.float64)
        return converted

    @model_validator(mode="after")
    def _references(self) -> "Job":
        ids = [call.id for call in self.calls]
        if len(set(ids)) != len(ids):
            raise ValueError(f"calls: ids must be unique, found {sorted(i for i in set(ids) if ids.count(i) > 1)}")
        for call in self.calls:
            for arg in call.args:
                names = [arg] if isinstance(arg, str) else list(arg.values()) if isinstance(arg, dict) else []
                missing = [name for name in names if name not in self.arrays]
                if missing:
                    raise ValueError(f"call {call.id!r}: arrays {missing} are not in Job.arrays "
                                     f"(have {sorted(self.arrays)[:20]})")
        return self


class CallResult(BaseModel):
    """What one graded call produced."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    status: CallStatus = Field(..., description="How the call ended.")
    message: str = Field("", description="For the student: where, what was expected, what was found, what to do.")
    traceback: str = Field("", description="The student's own frames only (instructor field).")
    values: dict[str, np.ndarray] = Field(default_factory=dict, description=(
        "Every returned number as float64: a dict's entries by key (nested dicts joined with '.'), a bare "
        "array or scalar under the key ''. NaN and inf are kept."))
    texts: dict[str, list[str]] = Field(default_factory=dict, description="Returned lists of strings, by key.")
    problems: dict[str, str] = Field(default_factory=dict, description="Returned keys that could not be used, with why.")
    seconds: float = Field(0.0, description="Time spent in the call, as measured inside the sandbox.")


class RunResult(BaseModel):
    """Everything the grader learns from running one Job."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    status: RunStatus = Field(..., description="How the run ended.")
    message: str = Field("", description="For the student: what happened and what to do.")
    detail: str = Field("", description=(
        "For instructors: grader-side diagnostics (exit status, signal, CPU, memory, the student traceback); "
        "empty when the run is ok, so re-grading reproduces a RunResult exactly except the measured times "
        "(wall_seconds, CallResult.seconds)."))
    cell: int | None = Field(None, description="Cell (1-based position in Job.cells) where running the code stopped.")
    line: int | None = Field(None, description="Line in that cell (or file) where it stopped.")
    exit_code: int | None = Field(None, description="Exit code when the code called sys.exit() or os._exit().")
    calls: dict[str, CallResult] = Field(default_factory=dict, description="One result per Call.id, in job order.")
    stdout: str = Field("", description="Captured standard output, truncated to Limits.output_kb.")
    stderr: str = Field("", description="Captured standard error, truncated to Limits.output_kb.")
    protections: dict[str, bool] = Field(default_factory=dict, description="Which protections were really active.")
    wall_seconds: float = Field(0.0, description="Wall time of the child, from fork to exit.")
