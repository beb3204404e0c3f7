"""Grading a free-form notebook: run it observed, then observe and check each task by its kind, flag.

What a notebook computed for each task kind is found in one module per kind (grader/notebook/kinds/); the
same check stage as contract submissions scores the values where the kind's values are quantities of a
trial (`grader.checks.check_task`). Notes and flags of the run as a whole (failed cells, missing modules,
most cells failing) are made here, once.
"""

import os
import re

from grader.limits import Limits
from grader.load import Submission
from grader.notebook.kinds import NotebookRun, check_in_notebook
from grader.notebook.notes import cell_notes
from grader.notebook.outcome import failed_cells_flag
from grader.notebook.provenance import PROVENANCE_SWITCH, counterfactual_factor
from grader.report import CheckResult
from grader.rubric.model import Rubric
from grader.sandbox import Job, RunResult, Sandbox


def run_notebook(
    rubric: Rubric, submission: Submission, sandbox: Sandbox, limits: Limits, files: dict[str, bytes]
) -> RunResult:
    """Run every cell in the sandbox under the rubric's seed, observing what the notebook computes."""
    factor = (
        None if os.environ.get(PROVENANCE_SWITCH) == "off" else counterfactual_factor(submission.sha256, rubric.seed)
    )
    job = Job(
        filename=submission.path.name,
        cells=submission.cells,
        observe=True,
        files=files,
        seed=rubric.seed,
        counterfactual=factor,
    )
    return sandbox.run(job, limits)


def check_notebook(
    rubric: Rubric, submission: Submission, run: RunResult, handed_in: dict[str, bytes]
) -> tuple[list[CheckResult], list[str], list[str]]:
    """Check results, student-facing notes and instructor flags for one observed notebook run.

    Files the run wrote win over the ones handed in beside the notebook (the sandbox returns only new or
    changed files). Each task is observed and checked by its kind (grader.notebook.kinds)."""
    texts = {name: data.decode("utf-8", errors="replace") for name, data in {**handed_in, **run.files}.items()}
    notes = [_renumber(note, submission) for note in run.notes] + _cell_notes(run, submission)
    checks, flags = [], failed_cells_flag(run, submission)
    nb = NotebookRun(rubric, submission, run, texts)
    for task in rubric.tasks:
        result = check_in_notebook(nb, task)
        checks += result.checks
        notes += result.notes
        flags += result.flags
    return checks, notes, flags


def _renumber(note: str, submission: Submission) -> str:
    """The sandbox counts code cells from 1; the student counts every cell of the notebook."""
    match = re.match(r"cell (\d+)", note)
    if not match:
        return note
    return f"cell {submission.notebook_cell(int(match.group(1)))}{note[match.end() :]}"


def _cell_notes(run: RunResult, submission: Submission) -> list[str]:
    """One note per cause: a failed cell with the cells that cascaded from it, a missing module, a GPU
    request run on the CPU (grader/notebook/notes.py)."""
    return cell_notes(run, submission.cells, submission.notebook_cell)
