"""Notes about a notebook run's cells (grader/notebook/notes.py): one note per cause, cascades grouped under
the cell they came from, missing modules and GPU requests noted once; from real sandbox runs and samples."""

import pytest
from conftest import REPO

from grader.grade import grade_submission
from grader.limits import Limits
from grader.notebook.notes import cell_notes, top_level_names
from grader.rubric.files import load_rubric, rubric_hash
from grader.sandbox import Job, RunStatus

RUBRIC = "bs6207-a1-notebook"
SAMPLES = REPO / "submissions" / "bs6207-a1-notebooks"
LIMITS = Limits(wall_seconds=30, cpu_seconds=30)


@pytest.mark.parametrize(
    ("source", "names"),
    [
        (
            "import numpy as np\nimport torch.nn\nfrom torch import nn, optim as o\nfrom math import *\n",
            {"np", "torch", "nn", "o"},
        ),
        ("a = b = 1\nc, (d, e) = f()\ng += 1\nh: int = 2\nk[0] = 1\nm.n = 2\n", {"a", "b", "c", "d", "e", "g", "h"}),
        ("def f(x):\n    inner = x\n    return inner\nclass Net:\n    size = 3\n", {"f", "Net"}),
        (
            "for i in range(3):\n    total = i\nwith open('f') as fh:\n    text = fh.read()\n"
            "try:\n    pass\nexcept Exception as error:\n    failed = True\n",
            {"i", "total", "fh", "text", "error", "failed"},
        ),
        ("squares = [s * s for s in range(3)]\nif (n := len(squares)) > 1:\n    big = True\n", {"squares", "n", "big"}),
    ],
)
def test_the_names_a_cell_should_define_are_the_ones_it_binds_at_top_level(source, names):
    assert top_level_names(source) == names


def test_a_cell_that_does_not_compile_should_define_what_its_lines_before_the_error_bind():
    assert top_level_names("k = 1\nfor j in range(2):\n    m = j\nbad = (\nafter = 2\n", error_line=4) == {
        "k",
        "j",
        "m",
    }


CASCADE = [
    "import numpy as np\nw = np.ones(3)\n",
    "h = w @ np.ones(2)\nout = h * 2\n",  # fails: should have defined h and out
    "print(out)\n",
    "loss = out.sum()\nl2 = loss ** 2\n",  # cascades from cell 2; should have defined loss and l2
    "print(l2)\n",  # cascades from cell 4, hence from cell 2
    "print(typo_name)\n",  # a NameError no failed cell explains
    "k = 1\nm = (\n",  # does not compile; should have defined k
    "print(k)\n",
    "q = 5\n",
]


def test_cells_that_fail_on_names_an_earlier_failed_cell_should_have_defined_are_one_note(grading_sandbox):
    run = grading_sandbox.run(Job(filename="a1.ipynb", cells=CASCADE, observe=True), LIMITS)
    assert run.status == RunStatus.ok
    notes = cell_notes(run, CASCADE, lambda cell: cell + 1)  # the notebook's numbers: a markdown cell first
    assert len(notes) == 3, notes
    assert notes[0].startswith("cell 3, line 1 failed (ValueError: matmul")
    assert notes[0].endswith("; cells 4, 5 and 6 then failed with NameError on names it should have defined (out, l2)")
    assert (
        notes[1] == "cell 7, line 1: NameError: name 'typo_name' is not defined (execution went on with the next cell)"
    )
    assert notes[2].startswith("cell 8, line 2 failed (syntax error: ")
    assert notes[2].endswith("; cell 9 then failed with NameError on names it should have defined (k)")


def test_a_used_missing_module_whose_error_was_caught_says_so(grading_sandbox):
    cells = ["import tensorflow as tf\n", "try:\n    tf.constant(1)\nexcept Exception:\n    pass\n"]
    run = grading_sandbox.run(Job(filename="a1.ipynb", cells=cells, observe=True), LIMITS)
    assert cell_notes(run, cells, lambda cell: cell) == [
        "module 'tensorflow' is not installed here; it was imported in cell 1, line 1 and used in cell 2, line 2 "
        "(the error it raised was caught)"
    ]


@pytest.fixture(scope="module")
def reports(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    stems = ["pandas_first_line", "tensorflow_used", "colab_cuda_hardcoded", "colab_gpu_fallback"]
    return {
        stem: grade_submission(rubric, rubric_hash(RUBRIC), SAMPLES / f"{stem}.ipynb", grading_sandbox)
        for stem in stems
    }


def test_an_unused_pandas_import_on_the_first_line_costs_nothing_and_is_noted_once(reports):
    report = reports["pandas_first_line"]
    assert report.score == report.max_score and report.flags == []
    assert report.notes == ["module 'pandas' is not installed here; it was never used (imported in cell 2, line 1)"]


def test_a_used_tensorflow_stops_its_cell_and_the_cell_that_cascades_from_it_is_in_the_same_note(reports):
    report = reports["tensorflow_used"]
    assert report.score == report.max_score and report.flags == []
    assert report.notes == [
        "module 'tensorflow' is not installed here; it was imported in cell 2, line 4 and used in cell 9, line 1 "
        "(that cell stopped there); cell 10 then failed with NameError on names it should have defined (tf_grads)"
    ]


def test_a_notebook_that_hard_codes_cuda_runs_on_the_cpu_for_full_marks_with_one_note(reports):
    report = reports["colab_cuda_hardcoded"]
    assert report.score == report.max_score and report.flags == []
    assert report.notes == [
        "this notebook asks for a GPU (cell 3, line 13: model = MLP().to(device)); it ran on the "
        "CPU here, which gives the same gradients"
    ]


def test_a_notebook_that_falls_back_to_the_cpu_by_itself_gets_no_note(reports):
    report = reports["colab_gpu_fallback"]
    assert report.score == report.max_score and report.flags == [] and report.notes == []
