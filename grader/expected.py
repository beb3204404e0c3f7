"""Expected values: the reference run on a trial — the answer key every check compares against.

Computed by the task's kind (`grader.kinds`) with the numpy reference only (no torch import on this path).
Names are those of `Task.quantities()`, without the source prefix: `prediction`, `loss`, `dW1`, … or, for
dropout training, the trained `W1`, `W2` (checks compare their update from the trial's initial weights).
"""

from grader.kinds import Expected, kind_of
from grader.memo import remember_for
from grader.rubric.tasks import Task
from grader.trials import Trial

__all__ = ["Expected", "expected_values"]


_EXPECTED: dict[tuple, Expected] = {}


def expected_values(task: Task, trial: Trial) -> Expected:
    """Every quantity of `task` on `trial`, float64 (node names for the autograd-graph task). Computed
    once per (task, trial contents) and shared by every submission: callers never modify it. A free-form
    notebook's trial is its own (its net's weights), hence the small bound."""
    return remember_for(_EXPECTED, (task,), (trial.fingerprint,), lambda: kind_of(task).expected(task, trial), size=256)
