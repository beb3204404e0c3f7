"""A .dat file opened in append mode and written more than once is read from its last complete copy."""

import numpy as np

from grader.notebook.datfile import parse_dat, read_dat
from grader.notebook.datfile.copies import last_copy

LAYERS = [2, 3, 1]


def gradients(scale: float) -> str:
    """One copy of a 2-3-1 net's gradients, labelled, every value `scale` times a fixed pattern."""
    blocks = []
    for name, shape in (("dW1", (3, 2)), ("db1", (3,)), ("dW2", (1, 3)), ("db2", (1,))):
        values = scale * (np.arange(np.prod(shape)).reshape(shape) + 1) / 10
        blocks.append(f"{name}:\n{np.array2string(values)}\n")
    return "".join(blocks)


def test_the_last_of_three_copies_is_read_and_the_note_says_where_it_starts():
    text = gradients(1.0) + gradients(2.0) + gradients(3.0)
    assignment = read_dat(text, LAYERS)
    assert np.allclose(assignment.values["dW1"].values, 3.0 * np.arange(1, 7).reshape(3, 2) / 10)
    [note] = [p for p in assignment.problems if "copies" in p]
    assert note.startswith("the file holds 3 copies of its 4 arrays one after another: it was opened in append mode")
    assert f"only the last complete copy (from line {assignment.values['dW1'].line}) was read" in note
    assert text.splitlines()[assignment.values["dW1"].line - 2] == "dW1:" and assignment.values["dW1"].line > 2 * 9


def test_a_copy_cut_short_is_passed_over_for_the_last_complete_one():
    cut = gradients(5.0).split("dW2:")[0]
    assignment = read_dat(gradients(1.0) + gradients(2.0) + cut, LAYERS)
    assert np.allclose(assignment.values["db1"].values, 2.0 * np.arange(1, 4) / 10)
    assert any("cut short" in p for p in assignment.problems)


def test_one_label_for_every_layer_or_layers_of_different_shapes_are_not_copies():
    same_label = "".join(f"grad:\n{np.array2string(np.full(3, float(i)))}\n" for i in range(4))
    arrays, note = last_copy(parse_dat(same_label))
    assert note is None and len(arrays) == 4
    arrays, note = last_copy(parse_dat(gradients(1.0)))
    assert note is None and len(arrays) == 4


def test_finding_the_period_is_linear_in_the_number_of_arrays():
    """A long file of nearly repeating arrays (the worst case of a naive search) is read at once."""
    from grader.notebook.datfile.copies import _period

    keys = [("a", (2,))] * 20000 + [("b", (2,))]
    assert _period(keys) is None
    assert _period([("a", ()), ("b", ())] * 10000) == 2
