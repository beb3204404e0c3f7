"""What each contract call must return, as the job tells the sandbox (`Call.returns`).

The child keeps only these quantities of a returned dict and sends nothing else back (DESIGN §5, sandbox
property 8: the channel answers only what was asked): a submission that returns megabytes of extra keys
costs the grader nothing, and a quantity that is not what it must be (a list of strings as dW1) comes
back as a problem naming the quantity, the shape it must have and what was found. The shapes are public
(the handout states them); they only word that message — the check stage still compares shapes, with
its own rules for singleton axes and the (in, out) layout.
"""

from grader.rubric.tasks import Task
from grader.trials import Trial

TEXT_QUANTITIES = frozenset({"nodes"})  # autograd_graph: the names of the graph's nodes


def expected_returns(task: Task, trial: Trial) -> dict[str, list[int] | None]:
    """Quantity name → the shape it must have on `trial` (None: a list of strings), for every quantity
    `task` reads from a contract function. Raises ValueError for a quantity it does not know (a task kind
    added without saying what its functions return)."""
    shapes: dict[str, tuple[int, ...]] = {"loss": (), "prediction": trial.y.shape, "probs": trial.y.shape}
    for name, value in trial.params.items():
        shapes[name] = shapes[f"d{name}"] = value.shape
    returns: dict[str, list[int] | None] = {}
    for name in task.quantities():
        if name in TEXT_QUANTITIES:
            returns[name] = None
        elif name in shapes:
            returns[name] = list(shapes[name])
        else:
            raise ValueError(f"task {task.id!r}: no expected shape for the quantity {name!r}")
    return returns
