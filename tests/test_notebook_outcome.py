"""A notebook run stated once: most cells failed is one flag, a .dat file with nothing in it is one note."""

import json
import re

import pytest
from conftest import NOTEBOOK_RUBRIC, NOTEBOOK_SAMPLES, derived_notebook, net_never_closed, no_own_backprop

from grader.grade import grade_submission
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

GRADIENTS = ["dW1", "db1", "dW2", "db2", "dW3", "db3"]


@pytest.fixture(scope="module")
def grade(grading_sandbox, tmp_path_factory):
    """Grade a notebook (a sample's path, or nbformat text written to a file) with data files beside it."""
    rubric, folder = load_rubric(NOTEBOOK_RUBRIC), tmp_path_factory.mktemp("outcome")

    def run(notebook, name="a1.ipynb", files=None):
        path = notebook
        if isinstance(notebook, str):
            path = folder / name
            path.write_text(notebook, encoding="utf-8")
        return grade_submission(rubric, rubric_hash(NOTEBOOK_RUBRIC), path, grading_sandbox, files=files)

    return run


def about(report, name):
    return [note for note in report.notes if name in note]


def test_a_notebook_whose_cells_mostly_fail_gets_one_flag_naming_the_first_failure(grade):
    notebook = json.loads(derived_notebook("correct", net_never_closed))
    code = [number for number, cell in enumerate(notebook["cells"], start=1) if cell["cell_type"] == "code"]
    broken = next(n for n in code if "class Net" in "".join(notebook["cells"][n - 1]["source"]))
    report = grade(json.dumps(notebook), "never_closed.ipynb")
    flags = [flag for flag in report.flags if flag.startswith("most cells failed:")]
    assert len(flags) == 1, report.flags
    failed, total = map(int, re.match(r"most cells failed: (\d+) of (\d+) code cells", flags[0]).groups())
    assert total == len(code) and total / 2 < failed < total  # the imports and x = torch.rand(…) ran
    named = re.search(r"\(cells ([\d, ]+)\)", flags[0]).group(1).split(", ")
    assert len(named) == failed and named[0] == str(broken) and set(named) <= set(map(str, code))
    assert f"the first at cell {broken}, line " in flags[0] and "syntax error: '(' was never closed" in flags[0]


@pytest.mark.parametrize("stem", ["cell_raises", "unused_pandas", "correct"])
def test_a_notebook_where_only_a_cell_or_none_fails_is_not_flagged(grade, stem):
    report = grade(NOTEBOOK_SAMPLES / f"{stem}.ipynb")
    assert not [flag for flag in report.flags if flag.startswith("most cells failed")], report.flags


def test_an_empty_dat_file_is_one_note_and_the_checks_it_left_missing_point_at_it(grade):
    report = grade(derived_notebook("correct", no_own_backprop), "dan.ipynb")
    [note] = about(report, "my_autograd.dat")
    assert note.startswith(
        "my_autograd.dat is empty: nothing in it could be graded; no variable of the notebook holds "
    )
    assert note.endswith(" either. Write every gradient to my_autograd.dat with a label such as 'dW1'.")
    missing = [c for c in report.checks if c.status == CheckStatus.missing]
    assert len(missing) >= 5 and {c.quantity for c in missing} <= {f"scratch.{g}" for g in GRADIENTS}
    assert all(
        c.message == f"{c.quantity}: not found — my_autograd.dat is empty (see the notes) and no variable holds it"
        for c in missing
    )
    assert all(c.quantity in note for c in missing) or "holds your scratch gradients either" in note
    assert all(c.status == CheckStatus.passed for c in report.checks if not c.quantity.startswith("scratch."))


def test_an_empty_dat_file_whose_gradients_are_in_variables_costs_nothing_and_is_one_note(grade):
    """f.write() of an array raises, which leaves the file it opened empty; the gradients are in dW1, …"""

    def write_arrays(cells):
        for cell in cells:
            text = "".join(cell["source"]).replace('f.write(label + ":\\n" + str(g) + "\\n")', "f.write(g)")
            cell["source"] = text.splitlines(keepends=True)
        return cells

    report = grade(derived_notebook("correct", write_arrays), "writes_arrays.ipynb")
    assert report.score == report.max_score
    assert about(report, "my_autograd.dat") == [
        "my_autograd.dat is empty: nothing in it could be graded; your scratch gradients were read from the "
        "notebook's variables instead. Write every gradient to my_autograd.dat with a label such as 'dW1'."
    ]
    assert any("TypeError: write() argument must be str" in note for note in report.notes) and not report.flags


def test_a_handed_in_dat_file_without_a_printed_array_is_one_note_quoting_its_first_line(grade):
    """str(p.grad) of a parameter whose .grad is None, under each label: text, and no number in it."""
    text = "".join(f"{label} gradient:\nNone\n" for label in ("First hidden layer weight", "First hidden layer bias"))
    notebook = derived_notebook("correct", lambda cells: no_own_backprop(cells)[:-1])  # writes no my_autograd.dat
    report = grade(notebook, "grads_none.ipynb", files={"my_autograd.dat": text.encode()})
    [note] = about(report, "my_autograd.dat")
    assert note.startswith(
        "my_autograd.dat holds no printed array of numbers (its first line: 'First hidden layer weight "
        "gradient:'): nothing in it could be graded; no variable of the notebook holds "
    )
    missing = [c for c in report.checks if c.status == CheckStatus.missing]
    assert missing and all(
        "my_autograd.dat holds no printed array of numbers (see the notes)" in c.message for c in missing
    )
