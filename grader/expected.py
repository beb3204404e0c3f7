"""Expected values: the reference run on a trial — the answer key every check compares against.

Computed with the numpy reference only (no torch import on this path). Names are those of
`Task.quantities()`, without the source prefix: `prediction`, `loss`, `dW1`, … or, for dropout training,
the trained `W1`, `W2` (checks compare their update from the trial's initial weights).
"""

import numpy as np

from grader.memo import remember_for
from grader.tasks import Task
from grader.trials import Trial
from reference import autograd_graph, dropout_training, mlp_regression, softmax_classifier

Expected = dict[str, np.ndarray | list[str]]


_EXPECTED: dict[tuple, Expected] = {}


def expected_values(task: Task, trial: Trial) -> Expected:
    """Every quantity of `task` on `trial`, float64 (node names for the autograd-graph task). Computed
    once per (task, trial contents) and shared by every submission: callers never modify it. A free-form
    notebook's trial is its own (its net's weights), hence the small bound."""
    return remember_for(_EXPECTED, (task,), (trial.fingerprint,), lambda: _expected_values(task, trial), size=256)


def _expected_values(task: Task, trial: Trial) -> Expected:
    if task.kind == "mlp_regression":
        values = mlp_regression.scratch(trial.x, trial.y, trial.params, task.activation, task.reduction)
    elif task.kind == "softmax_classifier":
        values = softmax_classifier.scratch(trial.x, trial.y, trial.params, task.reduction)
    elif task.kind == "dropout_training":
        values = dropout_training.train(trial.x, trial.y, trial.params, trial.masks, task.p, task.lr, task.reduction)
    elif task.kind == "autograd_graph":
        nodes = autograd_graph.scratch(task.layers, task.activation, task.bias, task.reduction)
        return {"nodes": nodes}
    else:  # pragma: no cover - the rubric model admits no other kind
        raise ValueError(f"unknown task kind {task.kind!r}")
    return {name: np.asarray(values[name], dtype=np.float64) for name in task.quantities()}
