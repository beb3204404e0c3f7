"""Task kinds as behaviour: each kind's settings and what it does live in one module, registered by name.

    kind_of(task) -> Kind      (grader.kinds.base: expected values, trials, stub, mutants' rates, notebook hook)

mlp_regression, softmax_classifier, dropout_training, autograd_graph: one module each, holding the kind's
task model (its rubric settings, a subclass of `grader.kinds.settings.TaskSettings`) and its `Kind`.
Adding a kind is a module here, an entry in `KINDS` and in `grader.rubric.tasks.Task`, and its mathematics in
`reference/` (docs/architecture.md, "Adding a task kind").
"""

from grader.kinds import autograd_graph, dropout_training, mlp_regression, softmax_classifier
from grader.kinds.base import Expected, Kind
from grader.kinds.settings import TaskSettings

KINDS: dict[str, Kind] = {
    module.KIND.name: module.KIND for module in (mlp_regression, softmax_classifier, dropout_training, autograd_graph)
}


def kind_of(task: TaskSettings) -> Kind:
    """The behaviour of `task`'s kind (the rubric model admits no kind without one)."""
    return KINDS[task.kind]  # type: ignore[attr-defined]


__all__ = ["KINDS", "Expected", "Kind", "TaskSettings", "kind_of"]
