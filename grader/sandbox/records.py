"""What notebook mode (Job.observe) brings back besides the RunResult's status: one record per cell and
what was observed while the cells ran. Every array is referenced by key into RunResult.arrays.

"cell N" always means the 1-based position in Job.cells (the grader maps it to the notebook's own numbers).
"""

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STRICT = ConfigDict(extra="forbid", frozen=True)


class CellStatus(str, Enum):
    """How one cell ended in notebook mode (execution always goes on with the next cell)."""

    ok = "ok"
    raised = "raised"  # an exception escaped the cell (MemoryError included)
    syntax_error = "syntax_error"  # the cell does not compile; nothing of it ran
    exited = "exited"  # sys.exit()/exit()/quit() ended the cell, or os._exit() ended the run


class MissingModule(BaseModel):
    """A module the grading environment lacks, bound as a placeholder (sandbox/child/missing.py): where the
    notebook imported it, or where student code first used it (the use raised ModuleNotFoundError)."""

    model_config = STRICT

    module: str = Field(..., description="Top-level module name, e.g. 'pandas'.")
    event: Literal["imported", "used"] = Field(
        ..., description="The import that bound the placeholder, or its first use."
    )
    cell: int = Field(
        ...,
        ge=1,
        description=(
            "Cell of the place: for an import, the cell whose source holds the statement; for a use, the cell that "
            "was running (1-based position in Job.cells)."
        ),
    )
    line: int | None = Field(None, description="Line in that cell (for a use: of the cell's top-level code).")


class GpuRequest(BaseModel):
    """The first place a notebook asked for CUDA and was given the CPU instead (sandbox/child/gpu.py)."""

    model_config = STRICT

    cell: int = Field(..., ge=1, description="Cell whose source holds the request (1-based position in Job.cells).")
    line: int | None = Field(None, description="Line in that cell.")
    call: str = Field("", description="The source line, stripped and shortened, e.g. \"x = x.to('cuda')\".")


class MaskDraw(BaseModel):
    """Random draws that may build dropout masks, made in one cell (sandbox/child/draws.py): consecutive draws of
    one function with one shape and probability, stacked."""

    model_config = STRICT

    cell: int = Field(..., ge=1, description="Cell in which they were drawn (1-based position in Job.cells).")
    function: str = Field(
        ...,
        description=(
            "'torch.nn.functional.dropout' (nn.Dropout too) or 'torch.dropout': the keep-mask applied (1 kept, 0 "
            "zeroed); 'numpy.random.binomial', '…rand', '…random', '…random_sample', '…uniform': the numbers drawn."
        ),
    )
    p: float | None = Field(None, description="Dropout's drop probability; binomial's success probability.")
    training: bool | None = Field(None, description="Dropout's `training` argument.")
    shape: list[int] = Field(..., description="Shape of one draw, e.g. [2, 4].")
    count: int = Field(..., ge=1, description="Draws stacked, in the order drawn.")
    array: str = Field(..., description="Array key of the draws, shape (count, *shape).")


class CellRecord(BaseModel):
    """One cell of a notebook-mode run."""

    model_config = STRICT

    cell: int = Field(..., ge=1, description="1-based position in Job.cells.")
    status: CellStatus = Field(..., description="How the cell ended.")
    message: str = Field("", description="For the student: what went wrong in this cell; empty when it ran.")
    error_type: str = Field("", description="Exception class name ('SystemExit', 'os._exit' for a hard exit).")
    traceback: str = Field("", description="The student's own frames only (instructor field).")
    line: int | None = Field(None, description="Line in the cell where it stopped.")
    exit_code: int | None = Field(None, description="Code given to sys.exit() or os._exit().")
    missing_module: str | None = Field(None, description="Module name of a ModuleNotFoundError that stopped the cell.")
    name_errors: list[str] = Field(
        default_factory=list,
        description=(
            "Names of a NameError that stopped the cell; with missing_module, tells an import that was needed "
            "(a later cell fails on its name) from one that was not."
        ),
    )
    stdout: str = Field(
        "",
        description=(
            "What the cell printed through sys.stdout, truncated to 16,000 characters (output of C code or subprocesses "
            "only appears in RunResult.stdout)."
        ),
    )
    seconds: float = Field(0.0, ge=0, description="Time the cell took to run, as measured inside the sandbox.")
    missing_modules: list[MissingModule] = Field(
        default_factory=list,
        description=(
            "Placeholders for missing modules bound by imports in this cell, and first uses of one in this cell."
        ),
    )
    gpu_request: GpuRequest | None = Field(
        None,
        description=("The notebook's first request for CUDA, run on the CPU instead, if it happened in this cell."),
    )
    draws: list[MaskDraw] = Field(
        default_factory=list, description="Dropout masks and small numpy draws made in this cell."
    )


class ForwardCall(BaseModel):
    """One top-level call of a torch.nn.Module (not nested in another module's forward).

    Per module instance the first 3 calls and the last are kept; total_calls counts them all.
    """

    model_config = STRICT

    cell: int = Field(..., ge=1, description="Cell in which the call happened.")
    module: str = Field(..., description="Class name of the module, e.g. 'Sequential' or the student's 'Net'.")
    variable: str | None = Field(
        None,
        description=(
            "Name of the module in the notebook's namespace ('model', \"nets['a']\"), resolved after the cell; "
            "None when no variable holds it."
        ),
    )
    instance: int = Field(
        ..., ge=0, description="Module instance number (order of first sight), shared with GradSnapshot."
    )
    index: int = Field(..., ge=0, description="0-based number of this call among the instance's top-level calls.")
    total_calls: int = Field(..., ge=1, description="Top-level calls of this instance seen during the whole run.")
    input: str | None = Field(None, description="Array key of the first tensor argument, None if absent or too large.")
    output: str | None = Field(
        None, description="Array key of the output (first tensor of a tuple), None if the call raised."
    )
    params: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "named_parameters() as they were when the call started, name ('0.weight', 'fc1.bias') to array key."
        ),
    )


class GradSnapshot(BaseModel):
    """A module's parameters and their .grad after a cell that changed either (or when first seen)."""

    model_config = STRICT

    cell: int = Field(..., ge=1, description="Cell after which the snapshot was taken.")
    variable: str = Field(..., description="Namespace name the module was reached by ('model', \"nets[0]\").")
    module: str = Field(..., description="Class name of the module.")
    instance: int = Field(..., ge=0, description="Module instance number, shared with ForwardCall.")
    params: dict[str, str] = Field(default_factory=dict, description="Parameter name to array key of its value.")
    grads: dict[str, str] = Field(
        default_factory=dict, description="Parameter name to array key of its .grad (absent when None)."
    )


class NamespaceEntry(BaseModel):
    """A numeric numpy array or torch tensor in the namespace after a cell, new or changed since the last."""

    model_config = STRICT

    cell: int = Field(..., ge=1, description="Cell after which the value was seen.")
    name: str = Field(..., description="Variable name, or one level inside a container: \"grads['dW1']\", 'out[2]'.")
    array: str = Field(..., description="Array key of the value (float64 in RunResult.arrays).")
    kind: str = Field(
        ..., pattern="^(ndarray|tensor)$", description="'ndarray' (numpy arrays and scalars) or 'tensor'."
    )
    requires_grad: bool = Field(False, description="Whether the tensor requires grad (False for numpy).")
    dtype: str = Field(..., description="Dtype name as the student had it, e.g. 'float32', 'float64', 'int64'.")


class GraphNode(BaseModel):
    """One node of an autograd graph."""

    model_config = STRICT

    name: str = Field(
        ..., description="Class name of the node, e.g. 'AddmmBackward0', 'SigmoidBackward0', 'AccumulateGrad'."
    )
    inputs: list[int] = Field(
        default_factory=list,
        description=(
            "The node's next_functions as indices into BackwardRecord.nodes (always after this node's own index), "
            "-1 for an input that needs no gradient (a constant such as x or y)."
        ),
    )


class GraphLeaf(BaseModel):
    """A tensor autograd accumulates a gradient into (a weight, a bias, or an input that requires grad)."""

    model_config = STRICT

    node: int = Field(
        ..., ge=-1, description="Index of its AccumulateGrad node in BackwardRecord.nodes (-1: nodes not sent)."
    )
    name: str | None = Field(
        None,
        description=(
            "How the namespace reaches it after the cell ('w1', \"params['W1']\", 'net.fc1.weight'), else when the "
            "call started; None when no name does (a tensor local to a function)."
        ),
    )
    shape: list[int] = Field(..., description="Shape as the student had it, e.g. [10, 2] or [2, 10].")
    dtype: str = Field(..., description="Dtype name, e.g. 'float32'.")
    value: str | None = Field(None, description="Array key of its value when the call started (None: over a cap).")
    grad: str | None = Field(
        None, description="Array key of the gradient the call produced for it (None: none or over a cap)."
    )


class SavedTensor(BaseModel):
    """A tensor a node saved for its backward that needs no gradient: a constant it was given."""

    model_config = STRICT

    node: int = Field(..., ge=0, description="Index of the node in BackwardRecord.nodes.")
    slot: str = Field(..., description="What the node calls it: 'self', 'other', 'mat1', 'mat2', 'target', …")
    array: str = Field(..., description="Array key of its value.")


class BackwardRecord(BaseModel):
    """The autograd graph of a notebook's first autograd call (first backward()): how raw-tensor nets are seen."""

    model_config = STRICT

    cell: int = Field(..., ge=1, description="Cell in which the call happened.")
    call: str = Field(..., description="'Tensor.backward()', 'torch.autograd.backward()' or 'torch.autograd.grad()'.")
    loss: str | None = Field(None, description="Array key of the (first) tensor differentiated, e.g. the loss.")
    nodes: list[GraphNode] = Field(
        default_factory=list,
        description=(
            "Every node reachable from the loss, in topological order from it (the order autograd runs them); "
            "empty when the graph was too large to send (truncated)."
        ),
    )
    saved: list[SavedTensor] = Field(
        default_factory=list,
        description=(
            "Constants saved by nodes with a constant input, a few at most: the input x at the first layer's "
            "product, the target of mse_loss."
        ),
    )
    leaves: list[GraphLeaf] = Field(default_factory=list, description="The graph's leaves, in the order of `nodes`.")
    truncated: bool = Field(False, description="The graph had more nodes or edges than are sent; only its leaves are.")

    def keys(self) -> list[str]:
        """Every array key this record refers to."""
        keys = [
            self.loss,
            *(s.array for s in self.saved),
            *(k for leaf in self.leaves for k in (leaf.value, leaf.grad)),
        ]
        return [k for k in keys if k is not None]


class CounterfactualEntry(BaseModel):
    """A namespace value in the counterfactual run after a cell: new or changed since the cell before."""

    model_config = STRICT

    cell: int = Field(..., ge=1, description="Cell after which the value was seen (same numbering as the run's cells).")
    name: str = Field(
        ..., description="Variable name, or one level inside a container or object, as in NamespaceEntry."
    )
    array: str = Field(..., description="Key of the value in Counterfactual.arrays (float64).")


class Counterfactual(BaseModel):
    """What the notebook's counterfactual run held: the rest of the notebook re-run from its first autograd
    call with every gradient autograd produced scaled by `factor` (see grader/sandbox/child/provenance.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    cell: int = Field(
        ..., ge=0, description="Cell in which the first autograd call, the fork point, happened (0: unknown)."
    )
    factor: float = Field(..., description="The factor autograd's gradients were scaled by in this run.")
    entries: list[CounterfactualEntry] = Field(
        default_factory=list,
        description=(
            "Namespace values after each cell from the fork point's cell on that differ from the real run's last "
            "values before that cell (a name without an entry still held the real run's value from then)."
        ),
    )
    arrays: dict[str, Any] = Field(default_factory=dict, description="Values by key, float64 numpy arrays.")
    files: dict[str, bytes] = Field(
        default_factory=dict, description="Files of its work directory at its end, by name."
    )
    stdout: dict[int, str] = Field(
        default_factory=dict,
        description=(
            "What each cell from the fork point's cell on printed in this run, kept as CellRecord.stdout is "
            "(the fork point's cell: all of it, from before the fork too)."
        ),
    )

    def value(self, name: str, cell: int) -> Any:
        """The value `name` held after `cell` in this run when it differed from the real run's value before
        the fork point's cell (None: before that cell, or unchanged since then — see
        grader.notebook.provenance.entry_again)."""
        if cell < self.cell:
            return None
        found = None
        for entry in self.entries:
            if entry.cell > cell:
                break
            if entry.name == name:
                found = entry.array
        return None if found is None else self.arrays[found]
