"""autograd_graph: the names of the nodes of `loss.grad_fn`'s graph for a regression net (DESIGN §3, task 4).

Its trials are the regression net's; the answer key is `reference.autograd_graph.scratch`, node names that
no catalogued mistake bends (not diagnosed); a notebook's listing is judged against its own first backward's
graph (`grader.notebook.kinds.graph`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from grader.kinds.base import Expected, Kind
from grader.kinds.mlp_regression import regression_inputs
from grader.kinds.settings import Activation, GraphContract, Reduction, Size, TaskSettings, layer_shapes
from reference import autograd_graph, mlp_regression

if TYPE_CHECKING:
    from grader.notebook.kinds.common import KindResult, NotebookRun
    from grader.trials import Trial


class AutogradGraphTask(TaskSettings):
    """Names of the nodes of `loss.grad_fn`'s graph for an mlp_regression net (DESIGN §3, task 4)."""

    kind: Literal["autograd_graph"] = Field(description="Task kind.")
    layers: list[Size] = Field(min_length=2, max_length=64, description="Layer widths, input first.")
    activation: Activation = Field("sigmoid", description="Hidden activation.")
    bias: bool = Field(True, description="Whether every layer has a bias.")
    batch_size: Size = Field(1, description="Samples per trial (N).")
    reduction: Reduction = Field("sum", description="Loss reduction.")
    contract: GraphContract = Field(default_factory=GraphContract, description="Function the submission defines.")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return layer_shapes(self.layers, self.bias)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"x": (self.batch_size, self.layers[0]), "y": (self.batch_size, self.layers[-1])}

    def quantities(self) -> list[str]:
        return ["nodes"]


class AutogradGraph(Kind):
    """The node names of the graph autograd builds for the regression net."""

    name = "autograd_graph"
    model = AutogradGraphTask
    diagnosed = False

    def expected(self, task: AutogradGraphTask, trial: Trial) -> Expected:
        return {"nodes": autograd_graph.scratch(task.layers, task.activation, task.bias, task.reduction)}

    def inputs(self, task: AutogradGraphTask, rng: np.random.Generator) -> np.ndarray:
        return regression_inputs(task, rng)

    def target(self, task: AutogradGraphTask, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return mlp_regression.target(x)

    def stub(self, task: AutogradGraphTask, source: str) -> tuple[str, str]:
        params = ", ".join(f"{name} {shape}" for name, shape in task.param_shapes().items())
        x, y = task.input_shapes()["x"], task.input_shapes()["y"]
        return "x, y, params", (
            f"Build the {'-'.join(map(str, task.layers))} net in torch ({task.activation} hidden layers, identity "
            "output), compute the loss, and walk loss.grad_fn.\n\n"
            f"x: array {x}. y: array {y}. params: dict, torch layout: {params}.\n\n"
            "Return a list with the name of every node of the graph (e.g. 'AddmmBackward0', 'AccumulateGrad'), "
            "each node once."
        )

    def in_notebook(self, nb: NotebookRun, task: AutogradGraphTask) -> KindResult:
        from grader.notebook.kinds import graph

        return graph.check(nb, task)


KIND = AutogradGraph()
