"""Grading a free-form notebook: run it observed, find the student's net and values, check, flag.

The same check stage as contract submissions scores the values (`grader.checks.check_task`); only where
they come from differs (`grader.notebook.observe`). The architecture check compares the net the notebook
actually built with the rubric's, and its gradients are still judged against its own net.
"""

import os
import re

from grader.checks import check_task
from grader.limits import Limits
from grader.load import Submission
from grader.notebook import Net, observe
from grader.notebook_graph import found_text
from grader.notebook_flags import notebook_flags
from grader.notebook_nets import never_run
from grader.notebook_notes import cell_notes
from grader.notebook_provenance import PROVENANCE_SWITCH, copied_flag, copied_from_autograd, counterfactual_factor
from grader.notebook_outcome import failed_cells_flag, one_note_per_unread_file
from grader.report import CheckResult, CheckStatus, Diagnosis, TrialResult
from grader.rubric import Rubric
from grader.sandbox import Job, RunResult, Sandbox
from grader.tasks import MlpRegressionTask


def run_notebook(rubric: Rubric, submission: Submission, sandbox: Sandbox, limits: Limits, files: dict[str, bytes]) -> RunResult:
    """Run every cell in the sandbox under the rubric's seed, observing what the notebook computes."""
    factor = None if os.environ.get(PROVENANCE_SWITCH) == "off" else counterfactual_factor(submission.sha256, rubric.seed)
    job = Job(filename=submission.path.name, cells=submission.cells, observe=True, files=files, seed=rubric.seed,
              counterfactual=factor)
    return sandbox.run(job, limits)


def check_notebook(
    rubric: Rubric, submission: Submission, run: RunResult, handed_in: dict[str, bytes]
) -> tuple[list[CheckResult], list[str], list[str]]:
    """Check results, student-facing notes and instructor flags for one observed notebook run.

    Files the run wrote win over the ones handed in beside the notebook (the sandbox returns only new or
    changed files)."""
    texts = {name: data.decode("utf-8", errors="replace") for name, data in {**handed_in, **run.files}.items()}
    notes = [_renumber(note, submission) for note in run.notes] + _cell_notes(run, submission)
    checks, flags = [], failed_cells_flag(run, submission)
    for task in rubric.tasks:
        if not isinstance(task, MlpRegressionTask):
            raise ValueError(f"task {task.id}: free-form notebooks are graded for mlp_regression tasks only")
        observed = observe(
            task, run, texts, scratch_file=rubric.submission.files.scratch, torch_file=rubric.submission.files.torch,
            cell_number=submission.notebook_cell,
        )
        observed = one_note_per_unread_file(rubric, task, observed, texts)
        notes += observed.notes
        if observed.trial is None or observed.net is None:
            reason = observed.notes[0]
            checks += [_missing(task.id, check, reason) for check in task.checks]
            continue
        results = check_task(rubric, task, [observed.trial], observed.found)
        if observed.scratch_trial is not None:  # scratch values computed on a second net: checked on its weights
            own = {r.quantity: r for r in check_task(rubric, task, [observed.scratch_trial], observed.found)}
            results = [own[r.quantity] if r.quantity.startswith("scratch.") else r for r in results]
        flags += observed.flags + never_run(observed.net, submission.saved_counts, submission.notebook_cell)
        task_flags, late = notebook_flags(rubric, task, run, observed, submission)
        flags += task_flags
        cell = submission.notebook_cell(observed.net.cell)
        checks += [copied_from_autograd(_explained(_architecture(task, observed.net, cell, r) if r.quantity == "architecture" else r, late), observed.copied) for r in results]
        flags += copied_flag(observed.copied)
    return checks, notes, flags


def _architecture(task: MlpRegressionTask, net: Net, cell: int, result: CheckResult) -> CheckResult:
    """Layer sizes and hidden activation of the net the notebook built, against the rubric's."""
    wanted = f"{'-'.join(map(str, task.layers))} with {task.activation}"
    found = found_text(net)  # layer sizes and activation; a raw-tensor net's layout or where its forward differs
    passed = net.layers == task.layers and net.activation == task.activation
    message = (
        f"architecture: {found} (cell {cell}, {net.variable})"
        if passed
        else f"architecture: expected {wanted}, found {found}; its gradients are still checked on its own net"
    )
    status = CheckStatus.passed if passed else CheckStatus.failed
    points = result.max_points if passed else 0.0
    return result.model_copy(update={
        "status": status, "points": points, "message": message, "provenance": f"cell {cell}: {net.variable}",
        "group_points": {group: (value if passed else 0.0) for group, value in result.group_max_points.items()},
        "trials": [TrialResult(trial=t.trial, status=status, message=message) for t in result.trials],
    })


def _explained(result: CheckResult, late: dict[str, int]) -> CheckResult:
    """A failed gradient whose values match the weights of a later forward call: say so to the student."""
    source = result.quantity.split(".", 1)[0]
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


def _missing(task_id: str, check, reason: str) -> CheckResult:
    return CheckResult(
        task=task_id, quantity=check.quantity, status=CheckStatus.missing, points=0.0, max_points=check.points,
        visibility=check.visibility, message=f"{check.quantity}: not checked — {reason}",
    )


def _renumber(note: str, submission: Submission) -> str:
    """The sandbox counts code cells from 1; the student counts every cell of the notebook."""
    match = re.match(r"cell (\d+)", note)
    if not match:
        return note
    return f"cell {submission.notebook_cell(int(match.group(1)))}{note[match.end():]}"


def _cell_notes(run: RunResult, submission: Submission) -> list[str]:
    """One note per cause: a failed cell with the cells that cascaded from it, a missing module, a GPU
    request run on the CPU (grader/notebook_notes.py)."""
    return cell_notes(run, submission.cells, submission.notebook_cell)
