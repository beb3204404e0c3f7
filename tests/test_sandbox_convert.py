"""The child's side: converting returns, keeping student frames only, and scratch mode (run in-process here)."""

import numpy as np
import pytest
import torch

from grader.sandbox.child.worker import load_modules
from grader.sandbox.process import shipped_sources

MODULES = load_modules(shipped_sources())
convert, runner = MODULES["bpg_convert"], MODULES["bpg_runner"]


def converted(value, budget=1 << 20):
    converter = convert.Converter(budget)
    converter.add("", value)
    return converter


def test_arrays_tensors_and_numbers_become_float64_under_their_keys():
    c = converted(
        {
            "a": np.arange(3, dtype=np.int32),
            "t": torch.ones(2, requires_grad=True) * 2,
            "n": 3,
            "nested": {"dW1": np.float32(1.5)},
            "b": True,
        }
    )
    assert all(v.dtype == np.float64 for v in c.values.values())
    assert set(c.values) == {"a", "t", "n", "nested.dW1", "b"} and c.problems == {}
    np.testing.assert_array_equal(c.values["t"], [2.0, 2.0])


def test_values_that_are_not_real_numbers_become_problems_saying_what_was_found():
    c = converted(
        {
            "s": "x",
            "none": None,
            "c": torch.ones(2, dtype=torch.complex64),
            "o": np.array([None, 1]),
            "ragged": [[1, 2], [3]],
            "big": 10**400,
            "obj": object(),
        }
    )
    assert c.values == {}
    assert "found a string ('x')" in c.problems["s"] and "found None" in c.problems["none"]
    assert "complex" in c.problems["c"] and "dtype object" in c.problems["o"]
    assert "not a rectangular array" in c.problems["ragged"] and "too large for a float" in c.problems["big"]
    assert "found an object" in c.problems["obj"]


def test_the_size_budget_is_checked_before_copying_and_shared_across_values():
    c = converted({"view": np.broadcast_to(np.float64(1), (10**9,)), "a": np.ones(100), "b": np.ones(100)}, budget=1000)
    assert "too large: 1000000000 elements" in c.problems["view"]
    assert "a" in c.values and "too large: 100 elements" in c.problems["b"]


def test_lists_of_tensors_of_any_dtype_are_stacked_and_complex_ones_rejected():
    c = converted(
        {
            "l": [torch.ones(2, dtype=torch.bfloat16), torch.zeros(2, requires_grad=True)],
            "c": [torch.ones(1, dtype=torch.complex64)],
        }
    )
    np.testing.assert_array_equal(c.values["l"], [[1, 1], [0, 0]])
    assert "complex" in c.problems["c"]


def test_lists_of_strings_are_texts_and_sets_are_sorted():
    c = converted({"names": ["AddmmBackward0"], "set": {"b", "a"}})
    assert c.texts == {"names": ["AddmmBackward0"], "set": ["a", "b"]}


def test_scratch_mode_blocks_autograd_and_restores_it():
    x = torch.ones(2, requires_grad=True)
    with runner.ScratchMode("scratch_gradients"):
        assert not torch.is_grad_enabled()
        with pytest.raises(
            RuntimeError, match="from scratch: torch.autograd.grad\\(\\) is not allowed in scratch_gradients"
        ):
            torch.autograd.grad(x.sum(), x)
    assert torch.is_grad_enabled()
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_cells_stop_at_the_first_error_and_say_where():
    namespace = {"__name__": "submission"}
    frame = runner.run_cells(
        ["a = 1\n", "def f():\n    raise ValueError('bad')\n", "b = 2\nf()\n"], "nb.ipynb", namespace
    )
    assert (frame["status"], frame["cell"], frame["line"]) == ("import_error", 3, 2)
    assert frame["traceback"].splitlines()[1] == '  File "<cell 3>", line 2, in <module>'
    assert "<sandbox" not in frame["traceback"]
    assert runner.run_cells(["x = (\n"], "a.py", {})["status"] == "syntax_error"
    assert runner.run_cells(["import sys\nsys.exit(2)\n"], "a.py", {})["exit_code"] == 2


# --- what the grader asked for, and no more (DESIGN §5, sandbox properties 8 and 9) ------------------
A1_RETURNS = {"prediction": [2, 1], "loss": [], "dW1": [10, 2], "db1": [10]}


def test_only_the_quantities_the_grader_reads_are_kept_and_extra_keys_are_named_not_sent():
    converter = convert.Converter(1 << 20, A1_RETURNS)
    extra = {f"extra{k}": [str(i % 10) for i in range(10_000)] for k in range(240)}

    class Named:
        def __str__(self):
            return "dW1"

    converter.add(
        "", {"dW1": np.ones((10, 2)), Named(): "x", "loss": torch.tensor(0.5), **extra, "grads": {"dW1": np.ones(3)}}
    )
    assert set(converter.values) == {"dW1", "loss"} and converter.texts == {}
    assert (
        converter.problems["dW1 (Named)"] == "not a quantity this task asks for; ignored"
        and "dW1" not in converter.problems
    )
    assert list(converter.problems)[1:3] == ["extra0", "extra1"] and len(converter.problems) == 21
    assert converter.problems["extra0"] == "not a quantity this task asks for; ignored"
    assert converter.problems["…"] == "222 more keys that are not quantities of this task; ignored"
    assert sum(len(k) + len(v) for k, v in converter.problems.items()) < 2000


def test_a_list_of_strings_as_a_gradient_names_the_quantity_the_shape_expected_and_what_was_found():
    converter = convert.Converter(1 << 20, A1_RETURNS)
    deep = 1.0
    for _ in range(100_000):
        deep = [deep]
    converter.add("", {"dW1": ["0.1"] * 10, "db1": deep, "prediction": {"y": 1}, "loss": [1, "a"]})
    assert converter.values == {} and converter.texts == {}
    assert converter.problems["dW1"] == "dW1: expected an array of numbers of shape (10, 2), found a list of 10 strings"
    assert converter.problems["db1"].startswith(
        "db1: expected an array of numbers of shape (10,), found a list that is not a rectangular array"
    )
    assert converter.problems["prediction"] == "prediction: expected an array of numbers of shape (2, 1), found a dict"
    assert converter.problems["loss"] == "loss: expected a number, found a list of 2 items, 1 of them strings"


def test_node_names_are_the_one_quantity_kept_as_texts_whether_returned_alone_or_in_a_dict():
    for returned in (["AddmmBackward0", "AccumulateGrad"], {"nodes": ("AddmmBackward0", "AccumulateGrad")}):
        converter = convert.Converter(1 << 20, {"nodes": None})
        converter.add("", returned)
        assert converter.texts == {"nodes": ["AddmmBackward0", "AccumulateGrad"]} and converter.problems == {}
    converter.reset({"nodes": None})
    converter.add("", {"nodes": np.ones(3)})
    assert converter.problems == {
        "nodes": "nodes: expected a list of strings, found an array of dtype float64 with shape (3,)"
    }
    converter.reset(A1_RETURNS)
    converter.add("", np.ones(3))
    assert converter.problems == {
        "": "expected a dict with the keys prediction, loss, dW1, db1, found an array of dtype float64 with shape (3,)"
    }


def test_texts_and_problems_of_one_call_are_capped_in_characters_whatever_was_returned():
    c = converted({f"k{i}": ["x" * 100] * 10_000 for i in range(3)} | {f"bad{i}": "s" * 3000 for i in range(2000)})
    chars = sum(len(t) for texts in c.texts.values() for t in texts) + sum(
        len(k) + len(v) for k, v in c.problems.items()
    )
    assert chars <= convert.MAX_TEXT_CHARS + 500
    assert c.problems["k0"].startswith("k0: 10000 strings (1000000 characters), more than the grader reads")
    assert c.problems["…"].startswith("more returned keys, texts and problems than the grader reads")


def test_each_returned_value_has_the_whole_budget_in_characters_of_its_own():
    """A runner that empties the dicts between calls without reset() (as the runner did) must not let one
    call's texts use up the next call's budget: the next call's values were cut to '…'."""
    converter = convert.Converter(1 << 20)
    for _ in range(3):
        converter.values, converter.texts, converter.problems = {}, {}, {}
        converter.add("", {"dW1": np.ones(2), "names": ["x" * 1000] * 60})
        assert set(converter.values) == {"dW1"} and set(converter.texts) == {"names"} and converter.problems == {}
