"""Gradients a notebook only printed (grader.notebook_printed): read from the cells' output, autograd's told
from the student's by the counterfactual run, and nothing credited that cannot be told."""

from conftest import derived_notebook

from grader.grade import grade_submission
from grader.notebook_provenance import PROVENANCE_SWITCH
from grader.report import CheckStatus
from grader.rubric_files import load_rubric, rubric_hash

RUBRIC = "bs6207-a1-notebook"
GRADIENTS = ["dW1", "db1", "dW2", "db2", "dW3", "db3"]


def graded(tmp_path, sandbox, edit=lambda cells: cells):
    path = tmp_path / "printed.ipynb"
    path.write_text(derived_notebook("printed_in_a_function", edit), encoding="utf-8")
    return grade_submission(load_rubric(RUBRIC), rubric_hash(RUBRIC), path, sandbox)


def scratch(report):
    return {c.quantity.split(".")[1]: c for c in report.checks if c.quantity.startswith("scratch.")}


def with_weights_printed_first(cells):
    """The parameters printed bare before the backward pass: same shapes as the gradients, no label."""
    for cell in cells:
        text = "".join(cell["source"])
        if "loss.backward()" in text:
            text = text.replace(
                "    loss.backward()", "    for p in net.parameters():\n        print(p.data)\n    loss.backward()"
            )
            cell["source"] = text.splitlines(keepends=True)
    return cells


def test_printed_gradients_are_graded_as_they_were_printed(grading_sandbox, tmp_path):
    checks = scratch(graded(tmp_path, grading_sandbox))
    assert all(checks[k].status == CheckStatus.passed for k in GRADIENTS), {k: c.message for k, c in checks.items()}
    assert all("'my backprop'" in checks[k].provenance or "printed in cell" in checks[k].provenance for k in GRADIENTS)


def test_parameters_printed_beside_the_gradients_are_never_read_as_gradients(grading_sandbox, tmp_path):
    report = graded(tmp_path, grading_sandbox, with_weights_printed_first)
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]


def test_without_the_counterfactual_run_nothing_printed_after_autograd_is_credited(
    grading_sandbox, tmp_path, monkeypatch
):
    """Which printed copy is autograd's can only be told by the counterfactual run: with it off, the copies
    printed after the backward pass are not read (MISSING), rather than credited by guess."""
    monkeypatch.setenv(PROVENANCE_SWITCH, "off")
    checks = scratch(graded(tmp_path, grading_sandbox))
    assert all(checks[k].status == CheckStatus.missing for k in GRADIENTS)


def scratch_before_autograd(cells):
    """main() runs its own backprop, and prints it, before it calls loss.backward()."""
    for cell in cells:
        text = "".join(cell["source"])
        if "    # my own backprop" in text:
            body, end = text.split("\n\nmain()", 1)
            first, mine = body.split("    # my own backprop", 1)
            names = '    names = ["dW1", "db1", "dW2", "db2", "dW3", "db3"]\n'
            first = first.replace(names, "").replace(
                "    loss.backward()\n", names + "    # my own backprop" + mine + "\n    loss.backward()\n"
            )
            cell["source"] = (first + "\n\nmain()" + end).splitlines(keepends=True)
    return cells


def test_gradients_printed_before_autograd_in_the_same_cell_are_the_students_own(grading_sandbox, tmp_path):
    """What the cell printed before its backward pass is printed again unchanged by the counterfactual run."""
    checks = scratch(graded(tmp_path, grading_sandbox, scratch_before_autograd))
    assert all(checks[k].status == CheckStatus.passed for k in GRADIENTS), {k: c.message for k, c in checks.items()}
