"""dropout_training: the softmax classifier trained by full-batch SGD with inverted dropout (DESIGN §3, task 3).

Its quantities are the trained weights, compared as their update from the trial's initial weights. Trials
are the classifier's plus one keep-mask per epoch, handed to the student; the answer key is
`reference.dropout_training.train` with those masks; a notebook's training is replayed with the masks it
drew (`grader.notebook.kinds.dropout`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from grader.kinds.base import Expected
from grader.kinds.settings import TaskSettings, TrainingContract
from grader.kinds.softmax_classifier import LOSS, SoftmaxClassifier, SoftmaxClassifierTask
from reference import dropout_training
from reference.mistakes import Mistake

if TYPE_CHECKING:
    from grader.notebook.kinds.common import KindResult, NotebookRun
    from grader.trials import Trial


class DropoutTrainingTask(SoftmaxClassifierTask):
    """The softmax classifier trained by full-batch SGD with inverted dropout (DESIGN §3, task 3)."""

    kind: Literal["dropout_training"] = Field(description="Task kind.")  # type: ignore[assignment]
    p: float = Field(ge=0, lt=1, description="Drop probability; kept units are scaled by 1/(1−p).")
    lr: float = Field(gt=0, le=10, description="SGD learning rate.")
    epochs: int = Field(ge=1, le=10000, description="Full-batch SGD steps, one keep-mask each.")
    contract: TrainingContract = Field(default_factory=TrainingContract, description="Function the submission defines.")  # type: ignore[assignment]

    def quantities(self) -> list[str]:
        return list(self.param_shapes())


class DropoutTraining(SoftmaxClassifier):
    """The classifier's weights after training: the classifier's trials, with keep-masks."""

    name = "dropout_training"
    model = DropoutTrainingTask
    trains = True

    def expected(self, task: DropoutTrainingTask, trial: Trial) -> Expected:
        values = dropout_training.train(trial.x, trial.y, trial.params, trial.masks, task.p, task.lr, task.reduction)
        return {name: np.asarray(values[name], dtype=np.float64) for name in task.quantities()}

    def extras(self, task: DropoutTrainingTask, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
        """One keep-mask per epoch, keep probability 1 − p, and the p and lr the function is called with."""
        masks = (rng.random((task.epochs, task.batch_size, task.hidden)) >= task.p).astype(np.float64)
        return masks, {"p": task.p, "lr": task.lr}

    def chain(
        self, key: tuple, x: np.ndarray, y: np.ndarray, params: dict, activation: str | tuple, reduction: str
    ) -> None:
        """None: trained weights are no gradients; a training's chain rule has many steps (Kind.chain)."""
        return None

    def returned_parameters(self, task: TaskSettings) -> dict[str, tuple[int, ...]]:
        """The trained weights W1, W2, … themselves."""
        return task.param_shapes()

    def mutant_rates(self, task: DropoutTrainingTask, mistake: Mistake) -> tuple[float, ...]:
        """The task's own learning rate: every mutant trains as the student was asked to."""
        return (task.lr,)

    def stub(self, task: DropoutTrainingTask, source: str) -> tuple[str, str]:
        params = ", ".join(f"{name} {shape}" for name, shape in task.param_shapes().items())
        x, y = task.input_shapes()["x"], task.input_shapes()["y"]
        return "x, y, params, masks, p, lr", (
            f"Train the softmax classifier with inverted dropout after the hidden ReLU, full-batch SGD.\n\n"
            f"x: array {x}, one sample per row. y: one-hot array {y}.\n"
            f"params: dict of initial weights, torch layout: {params}. Do not modify them in place.\n"
            f"masks: array ({task.epochs}, {task.batch_size}, {task.hidden}) of 0/1 keep indicators; use masks[e] in "
            "epoch e: h = relu(x @ W1.T) * masks[e] / (1 - p).\n"
            f"p: drop probability ({task.p}). lr: learning rate ({task.lr}). Epochs: masks.shape[0] ({task.epochs}).\n"
            f"Loss per epoch: {LOSS[task.reduction]}; update every parameter P -= lr * dP.\n\n"
            f"Return a dict with the trained weights: {', '.join(f'{n} {s}' for n, s in task.param_shapes().items())}."
        )

    def in_notebook(self, nb: NotebookRun, task: DropoutTrainingTask) -> KindResult:
        from grader.notebook.kinds import dropout

        return dropout.check(nb, task)


KIND = DropoutTraining()
