"""softmax_classifier: one hidden ReLU layer, softmax output, cross-entropy (DESIGN §3, task 2).

Trials draw x ~ U(−2, 2) and random one-hot labels; the answer key is `reference.softmax_classifier.scratch`;
a notebook's two implementations are observed by `grader.notebook.kinds.classifier`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, model_validator

from grader.diagnose import chain
from grader.kinds import settings
from grader.kinds.base import Expected, Kind, gradient_stub
from reference import softmax_classifier

if TYPE_CHECKING:
    from grader.notebook.kinds.common import KindResult, NotebookRun
    from grader.trials import Trial

LOSS = {"sum": "−Σ y·log(probs) over the batch", "mean": "−Σ y·log(probs) divided by N"}


class SoftmaxClassifierTask(settings.TaskSettings):
    """One hidden ReLU layer, softmax output, cross-entropy (DESIGN §3, task 2)."""

    kind: Literal["softmax_classifier"] = Field(description="Task kind.")
    inputs: settings.Size = Field(description="Input features (d).")
    hidden: settings.Size = Field(description="Hidden ReLU units.")
    classes: settings.Size = Field(description="Output classes (C).")
    bias: bool = Field(False, description="Whether both layers have biases.")
    batch_size: settings.Size = Field(2, description="Samples per trial (N).")
    reduction: settings.Reduction = Field("sum", description="Cross-entropy summed over the batch, or its mean.")
    dead_units: settings.DeadUnits = 0
    contract: settings.GradientContract = Field(
        default_factory=settings.GradientContract, description="Functions the submission defines."
    )

    @model_validator(mode="after")
    def _dead_units_fit(self) -> SoftmaxClassifierTask:
        if self.dead_units >= self.hidden:
            raise ValueError(f"dead_units: expected fewer than the {self.hidden} hidden units, found {self.dead_units}")
        return self

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return settings.layer_shapes([self.inputs, self.hidden, self.classes], self.bias)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"x": (self.batch_size, self.inputs), "y": (self.batch_size, self.classes)}

    def quantities(self) -> list[str]:
        return ["probs", "loss", *settings.gradient_names(self.param_shapes())]


class SoftmaxClassifier(Kind):
    """The classifier's gradients, from the student's backprop by hand and from autograd."""

    name = "softmax_classifier"
    model = SoftmaxClassifierTask

    def expected(self, task: SoftmaxClassifierTask, trial: Trial) -> Expected:
        values = softmax_classifier.scratch(trial.x, trial.y, trial.params, task.reduction)
        return {name: np.asarray(values[name], dtype=np.float64) for name in task.quantities()}

    def chain(
        self, key: tuple, x: np.ndarray, y: np.ndarray, params: dict, activation: str | tuple, reduction: str
    ) -> chain.Chain:
        return chain.classifier_chain(key, x, y, params, reduction)

    def inputs(self, task: SoftmaxClassifierTask, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-2.0, 2.0, task.input_shapes()["x"])

    def target(self, task: SoftmaxClassifierTask, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Random one-hot labels."""
        if rng is None:
            raise ValueError(f"task {task.id}: given values need y for a classifier")
        labels = rng.integers(0, task.classes, size=x.shape[0])
        return np.eye(task.classes)[labels]

    def stub(self, task: SoftmaxClassifierTask, source: str) -> tuple[str, str]:
        net = f"the classifier (ReLU hidden layer of {task.hidden}, softmax over {task.classes} classes)"
        return gradient_stub(task, source, "probs", net, LOSS[task.reduction])

    def in_notebook(self, nb: NotebookRun, task: SoftmaxClassifierTask) -> KindResult:
        from grader.notebook.kinds import classifier

        return classifier.check(nb, task)


KIND = SoftmaxClassifier()
