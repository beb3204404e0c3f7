"""Task specifications: which network, which contract functions, which quantities can be checked.

One model per task kind of DESIGN §3, selected by `kind`. A task knows the shapes of its parameters (torch
layout, `W_l` is (out, in)) and the names of the quantities it produces; `quantities_of` prefixes them with
the contract source they come from (`scratch.dW1`, `torch.loss`, `trained.W1`).
"""

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checkspec import Check

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


class _Task(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=TASK_ID, description="Short id, used in reports and as the gradebook column.")
    title: str = Field("", description="Human title shown in reports.")
    checks: list[Check] = Field(min_length=1, description="The scored checks of this task.")
    given: Given | None = Field(None, description="Fixed values for public trial 0 (the handout's instance).")

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
    def _checks_name_real_quantities(self) -> "_Task":
        """Each check must compare a quantity this task produces (e.g. no dW4 in a three-layer net)."""
        allowed = quantities_of(self)  # type: ignore[arg-type]
        for position, check in enumerate(self.checks):
            if check.quantity not in allowed:
                raise ValueError(
                    f"checks[{position}].quantity: `{check.quantity}` does not exist for this task; "
                    f"allowed: {', '.join(allowed)}"
                )
        return self

    @model_validator(mode="after")
    def _given_fits(self) -> "_Task":
        """Given values must have exactly the task's parameters and shapes."""
        if self.given is None:
            return self
        expected = {**self.input_shapes(), **self.param_shapes()}
        found = {name: array.shape for name, array in self.given.arrays().items()}
        if "y" not in found and "y" in expected and self.kind != "mlp_regression":
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


def _layer_shapes(layers: list[int], bias: bool) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for l, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        shapes[f"W{l}"] = (fan_out, fan_in)
        if bias:
            shapes[f"b{l}"] = (fan_out,)
    return shapes


def _gradient_names(param_shapes: dict[str, tuple[int, ...]]) -> list[str]:
    return [f"d{name}" for name in param_shapes]


class MlpRegressionTask(_Task):
    """Fully connected regression net, y = Σx²/d, squared loss (DESIGN §3, task 1)."""

    kind: Literal["mlp_regression"] = Field(description="Task kind.")
    layers: list[Size] = Field(
        min_length=2, max_length=64, description="Layer widths, input first, e.g. [2, 10, 10, 1]."
    )
    activation: Activation = Field("sigmoid", description="Hidden activation; the output is the identity.")
    bias: bool = Field(True, description="Whether every layer has a bias.")
    batch_size: Size = Field(1, description="Samples per trial (N).")
    reduction: Reduction = Field("sum", description="Loss over the batch: Σ (prediction − y)², or its mean.")
    dead_units: int = Field(
        0,
        ge=0,
        le=4096,
        description="Units of the first hidden layer whose incoming weights and bias are zero on every random trial, "
        "so their pre-activation is exactly 0: a ReLU derivative taken as 1 at 0 then shows.",
    )
    contract: GradientContract = Field(
        default_factory=GradientContract, description="Functions the submission defines."
    )

    @model_validator(mode="after")
    def _one_output(self) -> "MlpRegressionTask":
        if self.layers[-1] != 1:
            raise ValueError(
                f"layers: the target Σx²/d has one output; expected a last layer of 1, found {self.layers[-1]}"
            )
        if self.dead_units and (len(self.layers) < 3 or self.dead_units >= self.layers[1]):
            raise ValueError(
                f"dead_units: expected fewer than the first hidden layer's {self.layers[1] if len(self.layers) > 2 else 0} units, found {self.dead_units}"
            )
        return self

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return _layer_shapes(self.layers, self.bias)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"x": (self.batch_size, self.layers[0]), "y": (self.batch_size, 1)}

    def quantities(self) -> list[str]:
        return ["prediction", "loss", *_gradient_names(self.param_shapes())]


class SoftmaxClassifierTask(_Task):
    """One hidden ReLU layer, softmax output, cross-entropy (DESIGN §3, task 2)."""

    kind: Literal["softmax_classifier"] = Field(description="Task kind.")
    inputs: Size = Field(description="Input features (d).")
    hidden: Size = Field(description="Hidden ReLU units.")
    classes: Size = Field(description="Output classes (C).")
    bias: bool = Field(False, description="Whether both layers have biases.")
    batch_size: Size = Field(2, description="Samples per trial (N).")
    reduction: Reduction = Field("sum", description="Cross-entropy summed over the batch, or its mean.")
    dead_units: int = Field(
        0,
        ge=0,
        le=4096,
        description="Units of the first hidden layer whose incoming weights and bias are zero on every random trial, "
        "so their pre-activation is exactly 0: a ReLU derivative taken as 1 at 0 then shows.",
    )
    contract: GradientContract = Field(
        default_factory=GradientContract, description="Functions the submission defines."
    )

    @model_validator(mode="after")
    def _dead_units_fit(self) -> "SoftmaxClassifierTask":
        if self.dead_units >= self.hidden:
            raise ValueError(f"dead_units: expected fewer than the {self.hidden} hidden units, found {self.dead_units}")
        return self

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return _layer_shapes([self.inputs, self.hidden, self.classes], self.bias)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"x": (self.batch_size, self.inputs), "y": (self.batch_size, self.classes)}

    def quantities(self) -> list[str]:
        return ["probs", "loss", *_gradient_names(self.param_shapes())]


class DropoutTrainingTask(SoftmaxClassifierTask):
    """The softmax classifier trained by full-batch SGD with inverted dropout (DESIGN §3, task 3)."""

    kind: Literal["dropout_training"] = Field(description="Task kind.")  # type: ignore[assignment]
    p: float = Field(ge=0, lt=1, description="Drop probability; kept units are scaled by 1/(1−p).")
    lr: float = Field(gt=0, le=10, description="SGD learning rate.")
    epochs: int = Field(ge=1, le=10000, description="Full-batch SGD steps, one keep-mask each.")
    contract: TrainingContract = Field(default_factory=TrainingContract, description="Function the submission defines.")  # type: ignore[assignment]

    def quantities(self) -> list[str]:
        return list(self.param_shapes())


class AutogradGraphTask(_Task):
    """Names of the nodes of `loss.grad_fn`'s graph for an mlp_regression net (DESIGN §3, task 4)."""

    kind: Literal["autograd_graph"] = Field(description="Task kind.")
    layers: list[Size] = Field(min_length=2, max_length=64, description="Layer widths, input first.")
    activation: Activation = Field("sigmoid", description="Hidden activation.")
    bias: bool = Field(True, description="Whether every layer has a bias.")
    batch_size: Size = Field(1, description="Samples per trial (N).")
    reduction: Reduction = Field("sum", description="Loss reduction.")
    contract: GraphContract = Field(default_factory=GraphContract, description="Function the submission defines.")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return _layer_shapes(self.layers, self.bias)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"x": (self.batch_size, self.layers[0]), "y": (self.batch_size, self.layers[-1])}

    def quantities(self) -> list[str]:
        return ["nodes"]


Task = Annotated[
    MlpRegressionTask | SoftmaxClassifierTask | DropoutTrainingTask | AutogradGraphTask,
    Field(discriminator="kind"),
]


def quantities_of(task: Task) -> list[str]:
    """Every checkable quantity of a task: `<source>.<name>` for each contract source, then `architecture`."""
    names = [f"{source}.{name}" for source in task.contract.functions() for name in task.quantities()]
    return [*names, "architecture"]
