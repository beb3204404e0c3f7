"""Load stage: files become cells, and unusable files get a clear problem instead of a crash."""

import json

import pytest

from grader.load import load_submission, strip_magics


def notebook(cells, nbformat=4) -> str:
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": nbformat, "nbformat_minor": 5})


def code(source: str) -> dict:
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": [], "execution_count": None}


def test_a_python_file_is_one_cell(tmp_path):
    path = tmp_path / "alice.py"
    path.write_text("x = 1\n")
    submission = load_submission(path)
    assert submission.problem is None and submission.cells == ["x = 1\n"] and submission.student == "alice"
    assert len(submission.sha256) == 64


def test_notebook_shell_and_magic_lines_are_dropped_and_noted_with_line_numbers_kept(tmp_path):
    path = tmp_path / "bob.ipynb"
    source = "!pip install torch\n%matplotlib inline\npip install numpy\nx = 1\n  !ls\ncd = 3"
    path.write_text(notebook([{"cell_type": "markdown", "source": "# hi"}, code(source), code(["y = x\n", "z = 2"])]))
    submission = load_submission(path)
    assert submission.problem is None
    assert submission.cell_numbers == [2, 3]
    first = submission.cells[0].split("\n")
    assert first[3] == "x = 1" and first[5] == "cd = 3"  # lines keep their numbers; `cd = 3` is Python
    assert "pip" not in submission.cells[0] and "matplotlib" not in submission.cells[0]
    assert len(submission.notes) == 4 and "cell 2: `!pip install torch` was not run" in submission.notes[0]
    assert submission.cells[1] == "y = x\nz = 2"


def test_a_cell_magic_drops_the_whole_cell():
    kept, dropped = strip_magics("%%bash\nrm -rf /\necho hi")
    assert "rm" not in kept and dropped == ["%%bash"]


@pytest.mark.parametrize(
    "name, content, status, words",
    [
        ("empty.py", b"  \n", "empty", "empty"),
        ("latin.py", "x = 'caf\u00e9'".encode("latin-1"), "not_utf8", "UTF-8"),
        ("broken.ipynb", b'{"cells": [', "corrupt_notebook", "not a readable notebook"),
        ("list.ipynb", b"[1, 2]", "corrupt_notebook", "list of cells"),
        ("old.ipynb", notebook([code("x = 1")], nbformat=3).encode(), "old_notebook", "format 4"),
        (
            "prose.ipynb",
            notebook([{"cell_type": "markdown", "source": "only words"}]).encode(),
            "no_code",
            "no code cells",
        ),
        ("report.pdf", b"%PDF-1.4", "wrong_file_type", ".py file or a .ipynb"),
    ],
)
def test_unusable_files_get_a_problem_that_says_what_to_do(tmp_path, name, content, status, words):
    path = tmp_path / name
    path.write_bytes(content)
    submission = load_submission(path)
    assert submission.problem is not None
    found_status, message = submission.problem
    assert found_status == status and words in message and name in message


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.py"
    path.write_bytes(b"\xef\xbb\xbfx = 1\n")
    assert load_submission(path).cells == ["x = 1\n"]


def test_each_code_cells_saved_execution_count_is_kept_and_so_is_whether_lines_of_it_were_dropped(tmp_path):
    """What the saved-output comparison needs to tell cells run out of order, and to leave `!pip` cells alone."""
    path = tmp_path / "carol.ipynb"
    cells = [
        dict(code("!pip install torchviz\nx = 1"), execution_count=3),
        {"cell_type": "markdown", "source": "# hi"},
        code("y = x"),
        dict(code("z = 2"), execution_count=1),
        dict(code("w = 3"), execution_count=True),
    ]
    path.write_text(notebook(cells))
    submission = load_submission(path)
    assert submission.saved_counts == [3, None, 1, None]
    assert submission.partly_run == [True, False, False, False]


@pytest.mark.parametrize(
    "name, content",
    [
        ("deep_array", '{"nbformat": 4, "cells": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("deep_object", '{"a": ' * 100_000 + "1" + "}" * 100_000),
    ],
)
def test_a_notebook_nested_a_hundred_thousand_deep_is_refused_with_a_message(tmp_path, name, content):
    path = tmp_path / f"{name}.ipynb"
    path.write_text(content)
    status, message = load_submission(path).problem
    assert status == "corrupt_notebook" and "nested more deeply than any notebook's" in message


def test_cell_sources_and_outputs_that_are_not_text_are_a_problem_or_ignored_never_a_crash(tmp_path):
    path = tmp_path / "odd.ipynb"
    path.write_text(notebook([code([1, 2])]))
    assert load_submission(path).problem == (
        "corrupt_notebook",
        "odd.ipynb: cell 1 has a source that is neither text nor a list of lines; download the "
        "notebook again from Jupyter or Colab.",
    )
    stream = {"output_type": "stream", "name": "stdout", "text": [1, ["x"]]}
    path.write_text(notebook([{**code("x = 1"), "outputs": [stream]}, {**code("y = 2"), "source": None}]))
    submission = load_submission(path)
    assert submission.problem is None and submission.cells == ["x = 1", ""] and submission.saved_outputs == ["", ""]


def test_a_shell_line_too_deeply_nested_for_the_parser_is_dropped_as_shell(tmp_path):
    kept, dropped = strip_magics("pip " + "-" * 1_000_000 + "1\nx = 1")
    assert kept == "pass\nx = 1" and len(dropped) == 1
