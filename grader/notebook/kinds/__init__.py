"""Task kinds in free-form notebooks: each kind's observation and checks live in one module here, reached
through the kind's hook (`grader.kinds.base.Kind.in_notebook`).

    check_in_notebook(NotebookRun, task) -> KindResult(checks, notes, flags)

mlp_regression: `mlp` (the net a notebook built, its gradients from files, variables and .grad);
autograd_graph: `graph` (the node names a notebook listed, against its own first backward's graph);
softmax_classifier: `classifier` (the handout's instance; raw tensors through the first backward's graph,
numpy values by name and value); dropout_training: `dropout` (the weights each implementation trained,
replayed with the masks its run drew, or against the spread of many runs).
A kind whose hook observes nothing is not graded in notebooks: its checks are missing, with the reason.
"""

from grader.kinds import kind_of
from grader.notebook.kinds.common import KindResult, NotebookRun, all_missing


def check_in_notebook(nb: NotebookRun, task) -> KindResult:
    """Checks, notes and flags of one task of an observed notebook run, by the task's kind."""
    result = kind_of(task).in_notebook(nb, task)
    if result is None:
        return all_missing(task, f"task {task.id}: {task.kind} tasks are not graded in free-form notebooks")
    return result


__all__ = ["KindResult", "NotebookRun", "check_in_notebook"]
