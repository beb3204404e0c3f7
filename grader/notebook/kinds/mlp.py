"""mlp_regression in a free-form notebook: the net the notebook built, its gradients from both sources.

The same check stage as contract submissions scores the values (`grader.checks.check_task`); only where
they come from differs (`grader.notebook.observation.observe`). The architecture check compares the net the notebook
actually built with the rubric's, and its gradients are still judged against its own net: its own layers
and its own hidden activation(s), also where a layer has none (grader/notebook/activations.py).
"""

from grader.checks import check_task
from grader.notebook.activations import describe, differences
from grader.notebook.flags import notebook_flags
from grader.notebook.graph import RawNet, found_text
from grader.notebook.kinds.common import KindResult, NotebookRun, judged, missing
from grader.notebook.nets import never_run
from grader.notebook.network import Net
from grader.notebook.observation import observe
from grader.notebook.outcome import one_note_per_unread_file
from grader.notebook.provenance import copied_flag, copied_from_autograd
from grader.report import CheckResult, CheckStatus, Diagnosis
from grader.rubric.checkspec import Quantity
from grader.rubric.tasks import MlpRegressionTask


def check(nb: NotebookRun, task: MlpRegressionTask) -> KindResult:
    """Checks, notes and flags of one mlp_regression task of an observed notebook run."""
    rubric, submission, run = nb.rubric, nb.submission, nb.run
    observed = observe(
        task,
        run,
        nb.texts,
        scratch_file=rubric.submission.files.scratch,
        torch_file=rubric.submission.files.torch,
        cell_number=submission.notebook_cell,
    )
    observed = one_note_per_unread_file(rubric, task, observed, nb.texts)
    if observed.trial is None or observed.net is None:
        reason = observed.notes[0]
        return KindResult([missing(task.id, c, reason) for c in task.checks], observed.notes, [])
    graded = as_ran(task, observed.net)
    results = check_task(rubric, graded, [observed.trial], observed.found)
    if observed.scratch_trial is not None:  # scratch values computed on a second net: checked on its weights
        own = {r.quantity: r for r in check_task(rubric, graded, [observed.scratch_trial], observed.found)}
        results = [own[r.quantity] if Quantity.of(r.quantity).source == "scratch" else r for r in results]
    flags = observed.flags + never_run(observed.net, submission.saved_counts, submission.notebook_cell)
    task_flags, late = notebook_flags(rubric, graded, run, observed, submission)
    flags += task_flags
    cell = submission.notebook_cell(observed.net.cell)
    checks = [
        copied_from_autograd(
            _explained(architecture(task, observed.net, cell, r) if r.quantity == "architecture" else r, late),
            observed.copied,
        )
        for r in results
    ]
    return KindResult(checks, observed.notes, flags + copied_flag(observed.copied))


def as_ran(task: MlpRegressionTask, net: Net) -> MlpRegressionTask:
    """The task as the student's net ran it: its hidden activation(s), so that the expected values and the
    catalogue's mutants are computed on that net. A per-layer tuple is no rubric value (model_copy does
    not validate): this copy never leaves the check stage."""
    if net.activation is None or net.activation == task.activation:
        return task
    return task.model_copy(update={"activation": net.activation})


def architecture(task: MlpRegressionTask, net: Net, cell: int, result: CheckResult) -> CheckResult:
    """Layer sizes and hidden activation(s) of the net the notebook built, against the rubric's."""
    wanted = f"{'-'.join(map(str, task.layers))} with {task.activation}"
    if isinstance(net, RawNet) or not isinstance(net.activation, tuple):
        found = found_text(net)  # layer sizes and activation; a raw-tensor net's layout or where its forward differs
    else:
        found = f"{'-'.join(map(str, net.layers))} with {describe(net.activation)}"
    passed = net.layers == task.layers and net.activation == task.activation
    what = differences(task.layers, task.activation, net.layers, net.activation)
    message = (
        f"architecture: {found} (cell {cell}, {net.variable})"
        if passed
        else f"architecture: expected {wanted}, found {found}{f' — {what}' if what else ''}; "
        "its gradients are still checked on its own net"
    )
    return judged(result, passed, message, f"cell {cell}: {net.variable}")


def _explained(result: CheckResult, late: dict[str, int]) -> CheckResult:
    """A failed gradient whose values match the weights of a later forward call: say so to the student."""
    source = Quantity.of(result.quantity).source
    if result.status != CheckStatus.failed or result.diagnosis is not None or source not in late:
        return result
    diagnosis = Diagnosis(
        mistake="gradients_after_training",
        title="gradients reported after training steps",
        explanation=f"Your {source} gradients match the network's weights at its forward pass number {late[source]}, "
        "after training steps, not the initial weights the assignment asks about.",
        hint="Save the gradients right after the first loss.backward(), before any optimizer.step() or weight update.",
        trials=[t.trial for t in result.trials],
    )
    return result.model_copy(update={"diagnosis": diagnosis})
