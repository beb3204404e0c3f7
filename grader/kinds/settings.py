"""The settings every task kind shares (DESIGN §3): contracts, the handout's given instance, the base model.

A task knows the shapes of its parameters (torch layout, `W_l` is (out, in)) and the names of the
quantities it produces; `quantities_of` prefixes them with the contract source they come from
(`scratch.dW1`, `torch.loss`, `trained.W1`). Each kind's own settings (`grader.kinds.<kind>`) subclass
`TaskSettings`; `grader.rubric.tasks` gathers them into the rubric's `Task` union.
"""

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.rubric.checkspec import Check

TASK_ID = r"^[a-z0-9][a-z0-9_-]*$"
Size = Annotated[int, Field(ge=1, le=4096)]
Activation = Literal["sigmoid", "relu", "tanh"]
Reduction = Literal["sum", "mean"]
Matrix = list[list[float]]


class GradientContract(BaseModel):
    """Functions `f(x, y, params) -> dict` returning the forward values and every gradient."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scratch: str | None = Field(
        "scratch_gradients", description="Backprop by hand (numpy or torch ops without autograd); `null` if not asked."
    )
    torch: str | None = Field(
        "torch_gradients", description="The same quantities from torch autograd; `null` if not asked."
    )

    def functions(self) -> dict[str, str]:
        """Source name → function name, for the sources this contract asks for."""
        return {source: name for source, name in (("scratch", self.scratch), ("torch", self.torch)) if name}


class TrainingContract(BaseModel):
    """Functions `f(x, y, params, masks, p, lr) -> dict` returning the trained parameters: one (`trained`), or
    one per implementation the handout asks for (`torch`: with autograd; `scratch`: by hand, run with autograd
    off), each a source of its own (`torch.W1`, `scratch.W1`). Free-form notebooks train in both and are
    observed: there the names only say which sources are graded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trained: str | None = Field(
        "train_with_dropout",
        description="Runs SGD with the given dropout keep-masks; left out when `torch` or `scratch` is given.",
    )
    torch: str | None = Field(None, description="Trains with torch autograd (the notebook's torch implementation).")
    scratch: str | None = Field(
        None, description="Trains with a backward pass written by hand (the notebook's numpy one)."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_source_by_default(cls, data: object) -> object:
        """`trained` is the default only when no implementation is named."""
        if isinstance(data, dict) and ("torch" in data or "scratch" in data) and "trained" not in data:
            return {**data, "trained": None}
        return data

    def functions(self) -> dict[str, str]:
        """Source name → function name, for the sources this contract asks for."""
        return {
            source: name
            for source, name in (("trained", self.trained), ("torch", self.torch), ("scratch", self.scratch))
            if name
        }


class GraphContract(BaseModel):
    """A function `f(x, y, params) -> list[str]` naming the nodes of `loss.grad_fn`'s graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    torch: str = Field("autograd_graph_nodes", description="Builds the net in torch and walks loss.grad_fn.")

    def functions(self) -> dict[str, str]:
        """Source name → function name."""
        return {"torch": self.torch}


class Given(BaseModel):
    """Fixed values of the handout's worked instance; public trial 0 uses them instead of random ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: Literal["out_in", "in_out"] = Field(
        "out_in", description="Layout of the given weight matrices: torch's (out, in) or the `x @ W` layout (in, out)."
    )
    x: Matrix = Field(description="Inputs, one row per sample.")
    y: Matrix | None = Field(None, description="Targets, one row per sample; mlp_regression computes them when absent.")
    params: dict[str, Matrix | list[float]] = Field(
        description="Weights `W1, W2, …` (and biases `b1, …` if the task has them)."
    )

    def arrays(self) -> dict[str, np.ndarray]:
        """x, y (when given) and params as float64 arrays, weights converted to torch's (out, in) layout."""
        arrays = {"x": np.array(self.x, dtype=np.float64)}
        if self.y is not None:
            arrays["y"] = np.array(self.y, dtype=np.float64)
        for name, value in self.params.items():
            array = np.array(value, dtype=np.float64)
            arrays[name] = array.T.copy() if name.startswith("W") and self.layout == "in_out" else array
        return arrays


class TaskSettings(BaseModel):
    """What every task kind's settings share: an id, a title, the scored checks and the handout's given
    instance, with the shapes and quantity names each kind states. A kind's own settings subclass it
    (`grader.kinds.<kind>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=TASK_ID, description="Short id, used in reports and as the gradebook column.")
    title: str = Field("", description="Human title shown in reports.")
    checks: list[Check] = Field(min_length=1, description="The scored checks of this task.")
    given: Given | None = Field(None, description="Fixed values for public trial 0 (the handout's instance).")

    # Whether the kind computes y from x (regression's Σx²/d), so the given instance may leave it out.
    target_computed: ClassVar[bool] = False

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name → shape, torch layout."""
        raise NotImplementedError

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of x and y."""
        raise NotImplementedError

    def quantities(self) -> list[str]:
        """Names of the quantities each contract source returns (without the source prefix)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _checks_name_real_quantities(self) -> "TaskSettings":
        """Each check must compare a quantity this task produces (e.g. no dW4 in a three-layer net)."""
        allowed = quantities_of(self)
        for position, check in enumerate(self.checks):
            if check.quantity not in allowed:
                raise ValueError(
                    f"checks[{position}].quantity: `{check.quantity}` does not exist for this task; "
                    f"allowed: {', '.join(allowed)}"
                )
        return self

    @model_validator(mode="after")
    def _given_fits(self) -> "TaskSettings":
        """Given values must have exactly the task's parameters and shapes."""
        if self.given is None:
            return self
        expected = {**self.input_shapes(), **self.param_shapes()}
        found = {name: array.shape for name, array in self.given.arrays().items()}
        if "y" not in found and "y" in expected and not self.target_computed:
            raise ValueError("given.y is required for this task")
        for name, shape in found.items():
            if name not in expected:
                raise ValueError(f"given.{name}: not a value of this task; allowed: {', '.join(expected)}")
            if shape != expected[name]:
                raise ValueError(
                    f"given.{name}: expected shape {expected[name]} (torch layout, after applying "
                    f"layout={self.given.layout!r}), found {shape}"
                )
        missing = [name for name in self.param_shapes() if name not in found]
        if missing:
            raise ValueError(f"given.params: missing {', '.join(missing)}")
        return self


def layer_shapes(layers: list[int], bias: bool) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for l, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        shapes[f"W{l}"] = (fan_out, fan_in)
        if bias:
            shapes[f"b{l}"] = (fan_out,)
    return shapes


def gradient_names(param_shapes: dict[str, tuple[int, ...]]) -> list[str]:
    return [f"d{name}" for name in param_shapes]


DeadUnits = Annotated[
    int,
    Field(
        ge=0,
        le=4096,
        description="Units of the first hidden layer whose incoming weights and bias are zero on every random trial, "
        "so their pre-activation is exactly 0: a ReLU derivative taken as 1 at 0 then shows.",
    ),
]


def quantities_of(task: TaskSettings) -> list[str]:
    """Every checkable quantity of a task: `<source>.<name>` for each contract source, then `architecture`."""
    names = [f"{source}.{name}" for source in task.contract.functions() for name in task.quantities()]  # type: ignore[attr-defined]
    return [*names, "architecture"]
