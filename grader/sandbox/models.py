"""What the grader asks the sandbox to run (Job, Call) and what comes back (RunResult, CallResult).

Everything in a RunResult was produced by the grader process from data it validated (grader/sandbox/wire.py):
`message` fields are for the student (where, expected, found, what to do), `detail` and `traceback` only
for instructors; `traceback` holds the student's own frames, never the sandbox's.
"""

from enum import Enum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, field_validator, model_validator

from grader.sandbox.records import BackwardRecord, CellRecord, Counterfactual, ForwardCall, GradSnapshot, NamespaceEntry

Arg = StrictStr | dict[StrictStr, StrictStr] | StrictInt | StrictFloat
MAX_INPUT_FILES = 100
MAX_INPUT_FILE_BYTES = 16 << 20
MAX_INPUT_TOTAL_BYTES = 32 << 20


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

    id: str = Field(
        ..., min_length=1, max_length=200, description="Key of this call in RunResult.calls, unique in the job."
    )
    function: str = Field(
        ...,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=200,
        description="Name of a top-level function defined by the submission.",
    )
    args: list[Arg] = Field(
        default_factory=list,
        description=(
            "Positional arguments: a string names an array in Job.arrays; a dict maps argument keys to array names "
            "and is passed as a dict of numpy arrays (e.g. params); a number is passed as a Python int or float. "
            "Every call gets fresh copies, so in-place updates never leak into the next call."
        ),
    )
    scratch: bool = Field(
        False,
        description=(
            "Run 'from scratch': torch autograd disabled and Tensor.backward, torch.autograd.backward and "
            "torch.autograd.grad raising a RuntimeError during this call; then made again with autograd's gradients "
            "scaled (CallResult.rerun), which shows whether the result used autograd all the same."
        ),
    )
    returns: dict[str, list[int] | None] | None = Field(
        None,
        description=(
            "The quantities the grader reads from the returned dict, each with the shape it must have (None: a list "
            "of strings); the child keeps only these keys and sends nothing else back (see convert.py). None keeps "
            "every key (tests, tools)."
        ),
    )


class Job(BaseModel):
    """One submission to run: its code, the input arrays, and the calls to make after the code ran."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    filename: str = Field(
        ..., min_length=1, max_length=500, description="Name shown to the student, e.g. 'a1.py' or 'nb.ipynb'."
    )
    cells: list[str] = Field(
        ...,
        description=(
            "Python source run top to bottom in one namespace named 'submission'. A .py file is one cell "
            "(tracebacks then name the file); notebook cells are named '<cell N>', N counting from 1."
        ),
    )
    arrays: dict[str, np.ndarray] = Field(default_factory=dict, description="Inputs by name, converted to float64.")
    calls: list[Call] = Field(default_factory=list, description="Graded calls, made in order after the cells ran.")
    hidden_calls: int = Field(
        0,
        ge=0,
        description=(
            "How many of the last calls are hidden trials' (DESIGN §5 property 8). They are asked for only once "
            "every earlier call was answered and accepted and the child's output so far was read, so no earlier "
            "call can reach their inputs; what they return and everything the child does from then on is the "
            "hidden phase's (Sandbox.run_phases), never part of the run's own result. Contract jobs only."
        ),
    )
    seed: int = Field(0, description="Seed for random, numpy.random and torch before the first cell runs.")
    observe: bool = Field(
        False,
        description=(
            "Notebook mode: run every cell even after one fails (each cell gets a CellRecord), with the "
            "google.colab, get_ipython and display shims, absolute paths outside the work directory redirected "
            "into it by file name, and observation of module forward calls, parameter gradients, namespace "
            "arrays and written files (RunResult.cells, forward_calls, grads, namespace, arrays, files, notes)."
        ),
    )
    counterfactual: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Notebook mode: also run the counterfactual provenance run, forked at the first autograd call, with "
            "every gradient autograd produces scaled by this factor (RunResult.counterfactual); None: no such run."
        ),
    )
    files: dict[str, bytes] = Field(
        default_factory=dict,
        description=(
            f"Input files placed in the work directory before the first cell (e.g. the data files handed in "
            f"beside a notebook), by plain file name (no '/', not '.' or '..'); at most {MAX_INPUT_FILES} files, "
            f"{MAX_INPUT_FILE_BYTES >> 20} MiB each, {MAX_INPUT_TOTAL_BYTES >> 20} MiB in all."
        ),
    )

    @field_validator("files")
    @classmethod
    def _plain_names(cls, files: dict) -> dict:
        if len(files) > MAX_INPUT_FILES:
            raise ValueError(f"files: expected at most {MAX_INPUT_FILES} input files, found {len(files)}")
        for name, data in files.items():
            if (
                not name
                or name in (".", "..")
                or any(c in name for c in "/\\\0")
                or len(name.encode("utf-8", "replace")) > 255
                or not name.isprintable()
                or any(0xD800 <= ord(c) <= 0xDFFF for c in name)
            ):
                raise ValueError(
                    f"files: {name!r} is not a plain file name (no '/' or '\\', not '.' or '..', "
                    f"printable UTF-8, at most 255 bytes)"
                )
            if not isinstance(data, bytes):
                raise ValueError(f"files[{name!r}]: expected bytes, found {type(data).__name__}")
            if len(data) > MAX_INPUT_FILE_BYTES:
                raise ValueError(f"files[{name!r}]: {len(data)} bytes, more than {MAX_INPUT_FILE_BYTES}")
        total = sum(len(data) for data in files.values())
        if total > MAX_INPUT_TOTAL_BYTES:
            raise ValueError(f"files: {total} bytes in all, more than {MAX_INPUT_TOTAL_BYTES}")
        return files

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
        if self.hidden_calls > len(self.calls) or (self.hidden_calls and self.observe):
            raise ValueError(
                f"hidden_calls: expected at most the {len(self.calls)} calls of a contract job, found "
                f"{self.hidden_calls} (observe={self.observe})"
            )
        ids = [call.id for call in self.calls]
        if len(set(ids)) != len(ids):
            raise ValueError(f"calls: ids must be unique, found {sorted(i for i in set(ids) if ids.count(i) > 1)}")
        for call in self.calls:
            for arg in call.args:
                names = [arg] if isinstance(arg, str) else list(arg.values()) if isinstance(arg, dict) else []
                missing = [name for name in names if name not in self.arrays]
                if missing:
                    raise ValueError(
                        f"call {call.id!r}: arrays {missing} are not in Job.arrays (have {sorted(self.arrays)[:20]})"
                    )
        return self


class Rerun(BaseModel):
    """A scratch call made a second time, on fresh copies of the same inputs, with every gradient autograd
    produced scaled by `factor` (DESIGN §5, "from scratch ... proven by effect"; grader/scratch_effect.py)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    factor: float = Field(..., description="The factor autograd's gradients were scaled by, drawn for this rerun only.")
    status: CallStatus = Field(..., description="How the rerun ended.")
    values: dict[str, np.ndarray] = Field(default_factory=dict, description="What it returned, as CallResult.values.")


class CallResult(BaseModel):
    """What one graded call produced."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    status: CallStatus = Field(..., description="How the call ended.")
    message: str = Field("", description="For the student: where, what was expected, what was found, what to do.")
    traceback: str = Field("", description="The student's own frames only (instructor field).")
    values: dict[str, np.ndarray] = Field(
        default_factory=dict,
        description=(
            "Every returned number as float64: a dict's entries by key (nested dicts joined with '.'), a bare "
            "array or scalar under the key ''. NaN and inf are kept."
        ),
    )
    texts: dict[str, list[str]] = Field(default_factory=dict, description="Returned lists of strings, by key.")
    problems: dict[str, str] = Field(
        default_factory=dict, description="Returned keys that could not be used, with why."
    )
    seconds: float = Field(0.0, description="Time spent in the call, as measured inside the sandbox.")
    rerun: Rerun | None = Field(
        None, description="Scratch calls: the same call again under scaled autograd, if it answered."
    )


class RunResult(BaseModel):
    """Everything the grader learns from running one Job."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    status: RunStatus = Field(..., description="How the run ended.")
    message: str = Field("", description="For the student: what happened and what to do.")
    detail: str = Field(
        "",
        description=(
            "For instructors: grader-side diagnostics (exit status, signal, CPU, memory, the student traceback); "
            "empty when the run is ok, so re-grading reproduces a RunResult exactly except the measured times "
            "(wall_seconds, CallResult.seconds)."
        ),
    )
    cell: int | None = Field(None, description="Cell (1-based position in Job.cells) where running the code stopped.")
    line: int | None = Field(None, description="Line in that cell (or file) where it stopped.")
    exit_code: int | None = Field(None, description="Exit code when the code called sys.exit() or os._exit().")
    calls: dict[str, CallResult] = Field(default_factory=dict, description="One result per Call.id, in job order.")
    stdout: str = Field("", description="Captured standard output, truncated to Limits.output_kb.")
    stderr: str = Field("", description="Captured standard error, truncated to Limits.output_kb.")
    protections: dict[str, bool] = Field(default_factory=dict, description="Which protections were really active.")
    wall_seconds: float = Field(0.0, description="Wall time of the child, from fork to exit.")
    usage: dict[str, float] = Field(
        default_factory=dict, description="Measured resources: cpu_seconds, max_rss_kb (vary run to run)."
    )
    cells: list[CellRecord] = Field(
        default_factory=list,
        description=(
            "Notebook mode: one record per cell that finished (or ended the run), in order; cells after a hard "
            "exit or a limit are absent."
        ),
    )
    forward_calls: list[ForwardCall] = Field(
        default_factory=list,
        description=(
            "Notebook mode: top-level torch.nn.Module calls, per instance the first 3 and the last, in the order made."
        ),
    )
    grads: list[GradSnapshot] = Field(
        default_factory=list,
        description=(
            "Notebook mode: after each cell, each module reachable from the namespace whose parameters or .grad "
            "changed (or that was seen for the first time)."
        ),
    )
    namespace: list[NamespaceEntry] = Field(
        default_factory=list,
        description=(
            "Notebook mode: numeric arrays and tensors in the namespace after each cell, when new or changed."
        ),
    )
    backward: list[BackwardRecord] = Field(
        default_factory=list,
        description=(
            "Notebook mode: the autograd graph of the first autograd call (loss.backward()), its leaves and their "
            "gradients; at most one record, none when the notebook never called autograd."
        ),
    )
    arrays: dict[str, np.ndarray] = Field(
        default_factory=dict,
        description=(
            "Notebook mode: every observed array as float64, by the key the records above use; equal arrays "
            "share one key."
        ),
    )
    files: dict[str, bytes] = Field(
        default_factory=dict,
        description=(
            "Notebook mode: files the run left in its work directory (redirected writes included; sub-folders "
            "joined with '/'), each at most 1 MiB and 8 MiB in all; input files still as given are left out."
        ),
    )
    file_sizes: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Notebook mode: size in bytes of every file in RunResult.files and of every file too large to collect."
        ),
    )
    notes: list[str] = Field(
        default_factory=list,
        description=("Notebook mode, for the student: redirected paths, shims used, and what was capped or left out."),
    )
    counterfactual: Counterfactual | None = Field(
        None,
        description=(
            "Notebook mode with Job.counterfactual: what the provenance run held (None when it did not run: no "
            "autograd call, not finished in time, or its results unusable — a note then says so)."
        ),
    )

    @model_validator(mode="after")
    def _array_references(self) -> "RunResult":
        keys = [c.input for c in self.forward_calls] + [c.output for c in self.forward_calls]
        keys += [k for c in self.forward_calls for k in c.params.values()]
        keys += [k for s in self.grads for k in (*s.params.values(), *s.grads.values())]
        keys += [e.array for e in self.namespace] + [k for b in self.backward for k in b.keys()]
        missing = sorted({k for k in keys if k is not None and k not in self.arrays})
        if missing:
            raise ValueError(f"records refer to arrays that are not in RunResult.arrays: {missing[:10]}")
        return self
