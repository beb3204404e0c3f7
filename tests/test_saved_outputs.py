"""Saved outputs against a fresh run (grader/notebook/saved_outputs.py): numbers within print rounding and float32
noise, words and counts exactly; what differs is named (cell, expected, found); out-of-order runs are told
apart from edits."""

import numpy as np
import pytest
import torch

from grader.notebook.saved_outputs import Difference, compare_cells, first_difference, flag, out_of_order

TRUNCATION_MARK = "\n[… {} more characters]"  # what the sandbox appends to a cell's stdout it cut short


def small_net_output(seed: int) -> torch.Tensor:
    """A float32 2-10-1 sigmoid net's prediction for one random point, as a student's notebook computes it."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(2, 10), torch.nn.Sigmoid(), torch.nn.Linear(10, 1))
    return net(torch.rand(1, 2))


def ulps_up(value: torch.Tensor, steps: int) -> torch.Tensor:
    """`value` moved `steps` float32 units in the last place up: another CPU's rounding of the same sum."""
    moved = value.detach().clone()
    for _ in range(steps):
        moved = torch.nextafter(moved, torch.full_like(moved, np.inf))
    return moved


def gradient(seed: int, rows: int) -> torch.Tensor:
    """A float32 rows×10 array of gradient-sized numbers of both signs."""
    return torch.rand(rows, 10, generator=torch.Generator().manual_seed(seed)) - 0.5


def printed(tensor: torch.Tensor, **options) -> str:
    """str() of a tensor under torch print options, the defaults restored afterwards."""
    torch.set_printoptions(**options)
    try:
        return str(tensor)
    finally:
        torch.set_printoptions(profile="default")


def test_a_float32_prediction_moved_in_its_last_bits_compares_equal():
    y = small_net_output(0).detach()
    moved = ulps_up(y, 3)
    saved, fresh = f"prediction: {y.item()}", f"prediction: {moved.item()}"
    assert saved != fresh  # the text really differs, in the last digits
    assert first_difference(saved, fresh) is None


def test_a_float32_sum_taken_in_another_order_prints_other_digits_and_compares_equal():
    """What another CPU does: the same float32 products summed in another order (vectorised lanes)."""
    rng = np.random.default_rng(5)
    products = (rng.random(1000, dtype=np.float32) - np.float32(0.5)) * np.float32(0.3)
    in_order = np.float32(0)
    for p in products:
        in_order = np.float32(in_order + p)
    lanes = [np.float32(0)] * 8
    for i, p in enumerate(products):
        lanes[i % 8] = np.float32(lanes[i % 8] + p)
    by_lanes = np.float32(0)
    for lane in lanes:
        by_lanes = np.float32(by_lanes + lane)
    saved, fresh = f"sum: {float(in_order)}", f"sum: {float(by_lanes)}"
    assert saved != fresh
    assert first_difference(saved, fresh) is None


def test_a_printed_float32_tensor_moved_in_its_last_bits_and_wrapped_otherwise_compares_equal():
    saved = printed(gradient(1, 3), precision=8, linewidth=80)
    fresh = printed(ulps_up(gradient(1, 3), 2), precision=8, linewidth=200)
    assert saved.count("\n") != fresh.count("\n")  # wrapped differently
    assert first_difference(saved, fresh) is None


def test_a_value_printed_to_4_decimals_equals_it_printed_in_full():
    value = small_net_output(2).item()
    assert first_difference(f"y_hat: {value:.4f}", f"y_hat: {value}") is None
    assert first_difference(f"y_hat: {value}", f"y_hat: {value:.4f}") is None


def test_values_either_side_of_a_rounding_boundary_printed_to_4_decimals_compare_equal():
    below, above = np.nextafter(0.08255, 0), np.nextafter(0.08255, 1)
    saved, fresh = f"{below:.4f}", f"{above:.4f}"
    assert saved != fresh  # 0.0825 and 0.0826: each is the rounding of a value within noise of the other
    assert first_difference(saved, fresh) is None


def test_float32_noise_near_zero_is_judged_against_the_notebooks_other_numbers():
    """A difference of two float32 gradients is noise: 2.98e-08 on one CPU, 0.0 on another."""
    saved = ["prediction -0.218728, loss 0.100335\n", "dLdw3 max diff: 0.0\ndLdw2 max diff: 3.7252903e-09\n"]
    fresh = ["prediction -0.218728, loss 0.100335\n", "dLdw3 max diff: 2.9802322e-08\ndLdw2 max diff: 3.7252903e-09\n"]
    assert compare_cells(saved, fresh) == []
    edited = ["prediction -0.218728, loss 0.100335\n", "dLdw3 max diff: 0.0\ndLdw2 max diff: 0.0031\n"]
    assert compare_cells(saved, edited) == [Difference(2, "3.7252903e-09", "0.0031")]


def test_a_prediction_of_other_weights_is_named_with_its_cell_what_was_saved_and_what_was_found():
    saved_value, fresh_value = small_net_output(0).item(), small_net_output(1).item()
    saved = ["", "Net()\n", f"prediction: {saved_value:.4f}\n"]
    fresh = ["", "Net()\n", f"prediction: {fresh_value:.4f}\n"]
    differences = compare_cells(saved, fresh)
    assert differences == [Difference(3, f"{saved_value:.4f}", f"{fresh_value:.4f}")]
    text = flag(differences, [1, 2, 3], {1: 2, 2: 4, 3: 7}.get)
    assert text == (
        f"saved outputs differ from a fresh run: cell 7 printed {saved_value:.4f} when handed in, "
        f"{fresh_value:.4f} here (edited after running, or not seeded)"
    )


@pytest.mark.parametrize(
    "saved, fresh",
    [
        ("tensor([[0.2710]], grad_fn=<MmBackward>)", "tensor([[0.2710]], grad_fn=<MmBackward0>)"),
        ("tensor([[0.2710]], grad_fn=<AddmmBackward>)", "tensor([[0.2710]], grad_fn=<AddmmBackward0>)"),
        (
            "tensor([0.5000, 0.2500], dtype=torch.float64, requires_grad=True)",
            "tensor([0.5000, 0.2500], dtype=torch.float64)",
        ),
        ("tensor([1., 2.], device='cuda:0')", "tensor([1., 2.])"),
        ("Using device: cuda", "Using device: cpu"),
        ("max diff: 3.7252903e-09 {'loss': 0.5}", "max diff: np.float32(3.7252903e-09) {'loss': np.float64(0.5)}"),
        ("same? True", "same? np.True_"),
        ("torch 1.13.1+cu117", "torch 2.13.0+cpu"),
        ("epoch 1 took 0.52 s", "epoch 1 took 1.3 s"),
        ("<__main__.Net object at 0x7f3a2c1b5e50>", "<__main__.Net object at 0x7ffe01234560>"),
    ],
)
def test_what_differs_between_torch_numpy_versions_and_machines_is_ignored(saved, fresh):
    assert first_difference(saved, fresh) is None


@pytest.mark.parametrize(
    "saved, fresh, expected, found",
    [
        ("same? True", "same? False", "True", "False"),
        ("step 3: loss 0.5", "step 4: loss 0.5", "3", "4"),
        ("[0.1 0.2 0.3]", "[0.1 0.2]", "0.3", "nothing more"),
        ("loss 0.5", "loss 0.5 (after 10 steps)", "nothing more", "after"),
        ("tensor([[-0.0315,  0.0467]])", "tensor([[ 0.0315,  0.0467]])", "-0.0315", "0.0315"),
    ],
)
def test_other_words_integers_signs_or_counts_of_numbers_make_a_cell_differ(saved, fresh, expected, found):
    assert first_difference(saved, fresh) == (expected, found)


def test_a_fresh_output_cut_at_4000_characters_is_compared_as_far_as_it_goes():
    saved = printed(gradient(4, 300), precision=8, threshold=10_000)
    fresh = printed(ulps_up(gradient(4, 300), 1), precision=8, threshold=10_000)
    kept = fresh[:4000] + TRUNCATION_MARK.format(len(fresh) - 4000)
    assert len(saved) > 4000 and first_difference(saved, kept) is None
    edited = fresh[:1000] + "9" + fresh[1001:4000] + TRUNCATION_MARK.format(len(fresh) - 4000)
    assert first_difference(saved, edited) is not None


def test_a_cell_that_stopped_here_is_compared_as_far_as_it_printed_and_one_with_dropped_lines_not_at_all():
    saved = ["loading data\nrows: 1\nmean: 0.5\n", "Collecting torchviz\n  Downloading torchviz-0.0.2.tar.gz\n"]
    fresh = ["loading data\n", ""]
    assert compare_cells(saved, fresh) == [
        Difference(1, "rows", "nothing more"),
        Difference(2, "Collecting", "nothing more"),
    ]
    assert compare_cells(saved, fresh, complete=[False, True], skip=[False, True]) == []
    assert compare_cells(saved, ["loading data\nrows: 2\n", ""], complete=[False, True], skip=[False, True]) == [
        Difference(1, "1", "2")
    ]


def test_a_cell_with_no_saved_output_is_not_compared():
    assert compare_cells(["", "  \n"], ["x = 0.5\n", "y\n"]) == []


@pytest.mark.parametrize(
    "counts, upto, expected",
    [
        ([1, 2, 3, 4], 4, False),
        ([1, None, 3, 4], 4, False),  # an output cleared after a run
        ([1, None, 2, 3], 4, False),  # a cell never run
        ([1, 4, 3, 5], 2, True),  # the second cell run again after the third
        ([1, 4, 3, 5], 1, False),  # the first cell's output came from a clean start
        ([3, 1, 2], 1, True),  # two cells ran before the first
        ([1, 2, 1], 3, True),  # a second kernel session
        ([1, 2, 1], 2, False),
    ],
)
def test_execution_counts_that_cannot_come_from_one_top_to_bottom_run_are_recognised(counts, upto, expected):
    assert out_of_order(counts, upto) == expected


def test_a_flag_for_cells_run_out_of_order_says_so_instead_of_suspecting_an_edit():
    differences = [Difference(1, "0.2709", "0.3312"), Difference(3, "0.1", "0.2")]
    text = flag(differences, [3, 1, 2], lambda position: position + 1)
    assert text == (
        "saved outputs differ from a fresh run: cell 2 printed 0.2709 when handed in, 0.3312 here; "
        "cell 4 differs too; the saved execution counts (3, 1, 2) show the cells were run out of order, "
        "so a top-to-bottom run prints other values"
    )
    in_order_until_then = flag(differences, [1, 2, 3, 1], lambda position: position + 1)
    assert in_order_until_then.endswith("(edited after running, or not seeded)")
    many = flag(differences[:1], [9, *range(1, 10)], lambda position: position)
    assert "(9, 1, 2, 3, 4, 5, 6, 7, …)" in many


def test_a_flag_shows_at_most_40_characters_of_what_differs():
    text = flag([Difference(1, "a" * 5000, "b")], [1], lambda position: position)
    assert f"printed {'a' * 39}… when handed in, b here" in text and len(text) < 200
