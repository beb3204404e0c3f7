"""mlp_regression: a fully connected regression net, y = Σx²/d, squared loss (DESIGN §3, task 1).

Trials draw x ~ U[0, 1]^d as the assignment states and compute the target from it; the answer key is
`reference.mlp_regression.scratch`; a notebook's net is observed by `grader.notebook.kinds.mlp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from grader.diagnose import chain
from grader.kinds import settings
from grader.kinds.base import Expected, Kind, gradient_stub
from reference import mlp_regression

if TYPE_CHECKING:
    from grader.notebook.kinds.common import KindResult, NotebookRun
    from grader.trials import Trial

LOSS = {"sum": "Σ (prediction − y)² over the batch", "mean": "the mean of (prediction − y)² over all elements"}


class MlpRegressionTask(settings.TaskSettings):
    """Fully connected regression net, y = Σx²/d, squared loss (DESIGN §3, task 1)."""

    target_computed: ClassVar[bool] = True

    kind: Literal["mlp_regression"] = Field(description="Task kind.")
    layers: list[settings.Size] = Field(
        min_length=2, max_length=64, description="Layer widths, input first, e.g. [2, 10, 10, 1]."
    )
    activation: settings.Activation = Field("sigmoid", description="Hidden activation; the output is the identity.")
    bias: bool = Field(True, description="Whether every layer has a bias.")
    batch_size: settings.Size = Field(1, description="Samples per trial (N).")
    reduction: settings.Reduction = Field("sum", description="Loss over the batch: Σ (prediction − y)², or its mean.")
    dead_units: settings.DeadUnits = 0
    contract: settings.GradientContract = Field(
        default_factory=settings.GradientContract, description="Functions the submission defines."
    )

    @model_validator(mode="after")
    def _one_output(self) -> MlpRegressionTask:
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
        return settings.layer_shapes(self.layers, self.bias)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"x": (self.batch_size, self.layers[0]), "y": (self.batch_size, 1)}

    def quantities(self) -> list[str]:
        return ["prediction", "loss", *settings.gradient_names(self.param_shapes())]


def regression_inputs(task: settings.TaskSettings, rng: np.random.Generator) -> np.ndarray:
    """x ~ U[0, 1]^d, as the assignment states (shared with the autograd-graph task's net)."""
    return rng.random(task.input_shapes()["x"])


class MlpRegression(Kind):
    """The regression net's gradients, from the student's backprop by hand and from autograd."""

    name = "mlp_regression"
    model = MlpRegressionTask

    def expected(self, task: MlpRegressionTask, trial: Trial) -> Expected:
        values = mlp_regression.scratch(trial.x, trial.y, trial.params, task.activation, task.reduction)
        return {name: np.asarray(values[name], dtype=np.float64) for name in task.quantities()}

    def chain(
        self, key: tuple, x: np.ndarray, y: np.ndarray, params: dict, activation: str | tuple, reduction: str
    ) -> chain.Chain:
        return chain.mlp_chain(key, x, y, params, activation, reduction)

    def inputs(self, task: MlpRegressionTask, rng: np.random.Generator) -> np.ndarray:
        return regression_inputs(task, rng)

    def target(self, task: MlpRegressionTask, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return mlp_regression.target(x)

    def stub(self, task: MlpRegressionTask, source: str) -> tuple[str, str]:
        net = f"the {'-'.join(map(str, task.layers))} network ({task.activation} hidden layers, identity output)"
        return gradient_stub(task, source, "prediction", net, LOSS[task.reduction])

    def in_notebook(self, nb: NotebookRun, task: MlpRegressionTask) -> KindResult:
        from grader.notebook.kinds import mlp

        return mlp.check(nb, task)


KIND = MlpRegression()
