"""Task kinds as behaviour in free-form notebooks: each kind's observation and checks live in one module.

    check_in_notebook(NotebookRun, task) -> KindResult(checks, notes, flags)

mlp_regression: `mlp` (the net a notebook built, its gradients from files, variables and .grad);
autograd_graph: `graph` (the node names a notebook listed, against its own first backward's graph);
softmax_classifier: `classifier` (the handout's instance; raw tensors through the first backward's graph,
numpy values by name and value); dropout_training: `dropout` (the weights each implementation trained,
replayed with the masks its run drew, or against the spread of many runs).
A kind without a module here is not graded in notebooks: its checks are missing, with the reason.
"""

from collections.abc import Callable

from grader.notebook_kinds import classifier, dropout, graph, mlp
from grader.notebook_kinds.common import KindResult, NotebookRun, all_missing

CHECKERS: dict[str, Callable[[NotebookRun, object], KindResult]] = {
    "mlp_regression": mlp.check,
    "autograd_graph": graph.check,
    "softmax_classifier": classifier.check,
    "dropout_training": dropout.check,
}


def check_in_notebook(nb: NotebookRun, task) -> KindResult:
    """Checks, notes and flags of one task of an observed notebook run, by the task's kind."""
    checker = CHECKERS.get(task.kind)
    if checker is None:
        return all_missing(task, f"task {task.id}: {task.kind} tasks are not graded in free-form notebooks")
    return checker(nb, task)


__all__ = ["CHECKERS", "KindResult", "NotebookRun", "check_in_notebook"]
