"""What an expert TA notices in a notebook beyond right and wrong numbers, as flags for review.

- gradients reported after training steps: they match the weights of a later forward call, not the first;
- scratch gradients computed on other weights than autograd;
- weights changed in place before the comparison (parameters moved with no new forward call);
- saved outputs differ from a fresh run beyond rounding (edited after running, not seeded, or run out of order).
"""

import numpy as np

from grader.compare import Verdict, compare
from grader.found import Found
from grader.load import Submission
from grader.notebook.network import Net
from grader.notebook.observation import Observed
from grader.notebook.saved_outputs import compare_cells, flag
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task
from grader.run import call_id
from grader.sandbox import CellStatus, RunResult
from reference import mlp_regression


def notebook_flags(
    rubric: Rubric, task: Task, run: RunResult, observed: Observed, submission: Submission
) -> tuple[list[str], dict[str, int]]:
    """Instructor-facing flags for one notebook run, and for each source whose gradients match the weights
    of a later forward call than the first, that call's number (1-based)."""
    flags = _saved_outputs(run, submission)
    net, trial = observed.net, observed.trial
    if net is None or trial is None:
        return flags, {}
    calls = [c for c in run.forward_calls if (c.variable or c.module) == net.variable]
    weights = [_params(run, c, net) for c in calls]
    matched = {}
    for source in ("torch", "scratch"):
        found = observed.found.get(call_id(task, source, trial))
        if found is not None:
            matched[source] = next(
                (i for i, w in enumerate(weights) if w is not None and _matches(rubric, task, net, found, w)), None
            )
    if matched.get("torch") not in (None, 0):
        call = calls[matched["torch"]]
        flags.append(
            f"gradients reported after training steps: the autograd gradients match the weights of forward call {call.index + 1} (cell {submission.notebook_cell(call.cell)}), not the initial ones"
        )
    if None not in (matched.get("torch"), matched.get("scratch")) and matched["torch"] != matched["scratch"]:
        flags.append("scratch gradients computed on other weights than autograd")
    moved = [s for s in run.grads if s.variable == net.variable and not _same(run, s.params, net)]
    if moved and len(calls) <= 1:
        flags.append(
            f"weights changed in place before the comparison (cell {submission.notebook_cell(moved[0].cell)}) without a new forward pass"
        )
    late = {source: calls[index].index + 1 for source, index in matched.items() if index not in (None, 0)}
    return flags, late


def _params(run: RunResult, call, net: Net) -> dict[str, np.ndarray] | None:
    """The net's parameters as a recorded forward call saw them, keyed W1, b1, …"""
    by_name = {name: run.arrays[key] for name, key in call.params.items()}
    if any(name not in by_name for name in net.names.values()):
        return None
    return {key: by_name[name] for key, name in net.names.items()}


def _same(run: RunResult, params: dict[str, str], net: Net) -> bool:
    by_name = {name: run.arrays[key] for name, key in params.items()}
    return all(name not in by_name or np.array_equal(by_name[name], net.params[key]) for key, name in net.names.items())


def _matches(rubric: Rubric, task: Task, net: Net, found: Found, params: dict[str, np.ndarray]) -> bool:
    """Most found gradients equal the reference's at `params`."""
    reference = mlp_regression.scratch(net.x, mlp_regression.target(net.x), params, net.activation or task.activation)
    keys = [k for k in found.values if k in reference and k.startswith("d")]
    if not keys:
        return False
    passed = sum(
        compare(
            k, found.values[k], reference[k], rubric.tolerance, rubric.submission.allow_in_out, found.uncertainty.get(k)
        ).verdict
        == Verdict.passed
        for k in keys
    )
    return passed * 2 > len(keys)


def _saved_outputs(run: RunResult, submission: Submission) -> list[str]:
    """A flag when cells printed, when handed in, numbers or words other than they print here, beyond the
    rounding of the printed digits and float32 noise (grader.notebook.saved_outputs); none for another CPU's or
    torch version's last digits and reprs."""
    records = {record.cell: record for record in run.cells}
    fresh, complete = [], []
    for position in range(1, len(submission.saved_outputs) + 1):
        record = records.get(position)
        fresh.append(record.stdout if record is not None else "")
        complete.append(record is not None and record.status == CellStatus.ok)
    differences = compare_cells(submission.saved_outputs, fresh, complete, submission.partly_run or None)
    return [flag(differences, submission.saved_counts, submission.notebook_cell)] if differences else []
