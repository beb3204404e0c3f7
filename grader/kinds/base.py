"""What a task kind does, beside its settings: one `Kind` per kind, registered by name (`grader.kinds`).

The stages ask a task's kind instead of testing its name: the trials draw its inputs, targets and extras
(`grader.trials`), the answer key is its reference run (`grader.expected`), the check stage and the
diagnosis compare what it says a quantity is (a gradient, or for training the update a trained weight
made, `compared`), the catalogue's mutants run at its learning rates (`grader.diagnose.mutants`), the
starter file holds its stub (`grader.handout`) and a free-form notebook is observed by its hook
(`grader.notebook.kinds`). The mathematics stays in `reference/`; a kind only says which of it applies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from grader.kinds.settings import TaskSettings
from reference.mistakes import UPDATE_LEARNING_RATES, Mistake

if TYPE_CHECKING:
    from grader.diagnose.chain import Chain
    from grader.notebook.kinds.common import KindResult, NotebookRun
    from grader.trials import Trial

Expected = dict[str, np.ndarray | list[str]]

# How each contract source of a gradient task is to be written, as the starter file says it.
HOW = {
    "scratch": "by hand: numpy (or torch tensor operations) and the chain rule; autograd is switched off "
    "while this runs and `.backward()` raises",
    "torch": "with torch autograd: make tensors with requires_grad=True, compute the loss, call .backward()",
}


class Kind(ABC):
    """The behaviour of one task kind. `name` is the rubric's `kind`, `model` its task model.

    `trains`: the quantities are trained weights, compared as the update from the trial's initial weights
    (lr 0.01 moves weights under 1 %: the weights themselves would pass whatever the student did).
    `diagnosed`: a failing quantity is explained by the catalogue's mutants and the chain rule."""

    name: ClassVar[str]
    model: ClassVar[type[TaskSettings]]
    trains: ClassVar[bool] = False
    diagnosed: ClassVar[bool] = True

    @abstractmethod
    def expected(self, task: TaskSettings, trial: Trial) -> Expected:
        """Every quantity of `task` on `trial` from the numpy reference, keyed as `task.quantities()`."""

    @abstractmethod
    def inputs(self, task: TaskSettings, rng: np.random.Generator) -> np.ndarray:
        """x of a random trial, drawn first from the trial's generator."""

    @abstractmethod
    def target(self, task: TaskSettings, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """y for inputs `x`, drawn next from `rng`; without one (a given instance lacking y) only a kind
        whose target follows from x has one."""

    def extras(self, task: TaskSettings, rng: np.random.Generator) -> tuple[np.ndarray | None, dict[str, float]]:
        """Arrays and numbers a trial hands over beside x, y and the parameters (dropout's keep-masks, p
        and lr), drawn after the parameters so they never shift them."""
        return None, {}

    def returned_parameters(self, task: TaskSettings) -> dict[str, tuple[int, ...]]:
        """The parameter-shaped quantities a contract returns, with their shapes: the gradients dW1, db1, …"""
        return {f"d{name}": shape for name, shape in task.param_shapes().items()}

    def compared(self, trial: Trial, name: str, value: np.ndarray) -> np.ndarray:
        """What of `value` (quantity `name`, in the expected layout) a check compares: the value itself, or
        for a kind that trains, its update from the trial's initial weights."""
        return value - trial.params[name] if self.trains else value

    def chain(
        self, key: tuple, x: np.ndarray, y: np.ndarray, params: dict, activation: str | tuple, reduction: str
    ) -> Chain | None:
        """The chain rule of this trial's backward pass (`grader.diagnose.chain`, cached under `key`), which the
        diagnosis walks to localize a mistake; None for a kind whose quantities are no such gradients."""
        return None

    def mutant_rates(self, task: TaskSettings, mistake: Mistake) -> tuple[float, ...]:
        """The learning rates a mistake's mutant runs at: the students' usual ones for a mistake that
        assumes an optimizer step, else none (0.0)."""
        return UPDATE_LEARNING_RATES if mistake.steps else (0.0,)

    @abstractmethod
    def stub(self, task: TaskSettings, source: str) -> tuple[str, str]:
        """The starter file's function for `source`: its parameter list and its docstring's text."""

    def in_notebook(self, nb: NotebookRun, task: TaskSettings) -> KindResult | None:
        """Checks, notes and flags of the task observed in a free-form notebook run; None when the kind is
        not graded in free-form notebooks (its checks are then missing, with the reason)."""
        return None


def gradient_stub(task: TaskSettings, source: str, first: str, net: str, loss: str) -> tuple[str, str]:
    """The stub of a function returning a forward value (`first`), the loss and every gradient, for a net
    described as `net` whose loss is `loss`."""
    params = ", ".join(f"{name} {shape}" for name, shape in task.param_shapes().items())
    x, y = task.input_shapes()["x"], task.input_shapes()["y"]
    grads = ", ".join(f"d{n} {s}" for n, s in task.param_shapes().items())
    return "x, y, params", (
        f"Forward and backward pass of {net}, {HOW[source]}.\n\n"
        f"x: array {x}, one sample per row. y: array {y}.\n"
        f"params: dict, torch layout: {params}. Do not modify them in place.\n\n"
        f'Return a dict with "{first}" {y} (the shape of y), '
        f'"loss" (a number: {loss}) '
        f"and the gradient of the loss for every parameter, each in its parameter's layout: {grads}."
    )
