"""One layout per source: which layout a source's non-square weight gradients show, and how its square ones are read."""

import numpy as np

from grader.found import Found
from grader.sandbox.models import CallStatus
from grader.source_layout import IN_OUT, OUT_IN, read_in_source_layout, single_layout_square, source_layout

SHAPES = {"dW1": (10, 2), "dW2": (10, 10), "dW3": (1, 10)}  # torch's (out, in), a 2-10-10-1 net
RNG = np.random.default_rng(14)
TORCH = {key: RNG.normal(size=shape) for key, shape in SHAPES.items()}


def test_every_non_square_gradient_in_x_at_w_layout_makes_the_source_in_out():
    decided = source_layout({"dW1": TORCH["dW1"].T, "dW2": TORCH["dW2"], "dW3": TORCH["dW3"].T}, SHAPES)
    assert decided.layout == IN_OUT and decided.evidence == {"dW1": (2, 10), "dW3": (10, 1)}
    assert decided.siblings() == "dW1 (2, 10) and dW3 (10, 1)"


def test_torch_shaped_gradients_make_the_source_out_in():
    assert source_layout(TORCH, SHAPES).layout == OUT_IN


def test_mixed_layouts_decide_nothing():
    assert source_layout({"dW1": TORCH["dW1"].T, "dW3": TORCH["dW3"]}, SHAPES).layout is None


def test_vectors_squares_and_missing_gradients_are_no_evidence():
    assert source_layout({"dW2": TORCH["dW2"]}, SHAPES).layout is None
    assert source_layout({"dW3": TORCH["dW3"].ravel(), "dW2": TORCH["dW2"]}, SHAPES).layout is None
    decided = source_layout({"dW1": TORCH["dW1"].T, "dW3": TORCH["dW3"].ravel()}, SHAPES)
    assert decided.layout == IN_OUT and list(decided.evidence) == ["dW1"]


def test_the_square_gradient_of_an_in_out_source_is_read_transposed_with_its_precision_and_the_reason():
    found = Found(
        values={"dW1": TORCH["dW1"].T, "dW2": TORCH["dW2"].T, "dW3": TORCH["dW3"].T},
        uncertainty={"dW2": np.arange(100.0).reshape(10, 10)},
        provenance={key: f"f() returned {key!r}" for key in SHAPES},
    )
    read = read_in_source_layout(found, SHAPES)
    assert np.array_equal(read.values["dW2"], TORCH["dW2"])
    assert np.array_equal(read.uncertainty["dW2"], np.arange(100.0).reshape(10, 10).T)
    assert np.array_equal(read.values["dW1"], TORCH["dW1"].T)  # non-square: compare reads it through
    assert read.layouts == {"dW2": "(in, out) layout, as the other weight gradients of this source"}
    assert read.provenance["dW2"] == (
        "f() returned 'dW2', read in the (in, out) layout as the other weight "
        "gradients of this source (dW1 (2, 10) and dW3 (10, 1))"
    )
    assert read.provenance["dW1"] == "f() returned 'dW1', in the (in, out) layout"
    assert found.values["dW2"] is not read.values["dW2"] and found.layouts == {}  # the input is left as it was


def test_sources_without_a_single_in_out_layout_are_left_as_they_are():
    for values in (TORCH, {"dW1": TORCH["dW1"].T, "dW2": TORCH["dW2"], "dW3": TORCH["dW3"]}, {"dW2": TORCH["dW2"]}):
        found = Found(values=values)
        assert read_in_source_layout(found, SHAPES) is found
    failed = Found(status=CallStatus.raised, message="raised")
    assert read_in_source_layout(failed, SHAPES) is failed


def test_only_square_gradients_of_a_source_with_one_layout_may_get_the_transposed_note():
    in_out = Found(values={"dW1": TORCH["dW1"].T, "dW2": TORCH["dW2"], "dW3": TORCH["dW3"].T})
    assert single_layout_square(in_out, "dW2", SHAPES)
    assert not single_layout_square(in_out, "dW1", SHAPES)
    assert single_layout_square(Found(values=TORCH), "dW2", SHAPES)
    assert not single_layout_square(Found(values={"dW2": TORCH["dW2"]}), "dW2", SHAPES)
    assert not single_layout_square(None, "dW2", SHAPES)
