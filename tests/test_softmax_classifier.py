"""Task 2: the hand-written softmax classifier agrees with autograd and with central differences."""

import math

import numpy as np
import pytest
from conftest import init_params

from reference import softmax_classifier, twins
from reference.gradcheck import central_difference


def make_trial(seed, N, d=3, H=5, C=4, bias=False):
    rng = np.random.default_rng(seed)
    params = init_params(rng, [d, H, C], bias)
    x = rng.uniform(size=(N, d))
    y = np.eye(C)[rng.integers(C, size=N)]  # one-hot labels
    return x, y, params


def given_instance():
    """DESIGN §3 task 2; the handout gives W1, W2 in the x @ W layout, so torch layout is the transpose."""
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    W1_xW = np.arange(1, 13).reshape(3, 4) / 10  # 0.1 … 1.2 row-major
    W2_xW = np.arange(2, 10).reshape(4, 2) / 10  # 0.2 … 0.9 row-major
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    return x, y, {"W1": W1_xW.T, "W2": W2_xW.T}


def assert_matches(found, expected, rtol=1e-10):
    assert set(found) == set(expected)
    for key in expected:
        assert found[key].shape == expected[key].shape, key
        scale = max(np.abs(expected[key]).max(), np.finfo(float).tiny)
        assert np.abs(found[key] - expected[key]).max() <= rtol * scale, key


def test_given_instance_matches_autograd():
    x, y, params = given_instance()
    found = softmax_classifier.scratch(x, y, params)
    assert found["dW1"].shape == (4, 3) and found["dW2"].shape == (2, 4)
    assert_matches(found, twins.softmax_classifier(x, y, params))


def test_given_instance_loss_matches_the_hand_computation():
    # z1 = [[3.8, 4.4, 5.0, 5.6], [8.3, 9.8, 11.3, 12.8]] (all positive, ReLU passes them),
    # z2 = [[10.0, 11.88], [22.6, 26.82]]; class 1 then class 0
    x, y, params = given_instance()
    found = softmax_classifier.scratch(x, y, params)
    expected = math.log1p(math.exp(10.0 - 11.88)) + math.log1p(math.exp(26.82 - 22.6))
    assert float(found["loss"]) == pytest.approx(expected, rel=1e-13)
    e = math.exp(11.88 - 10.0)
    assert found["probs"][0] == pytest.approx([1 / (1 + e), e / (1 + e)], rel=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("N", [1, 6])
def test_scratch_matches_autograd(N, reduction, bias, seed):
    x, y, params = make_trial(seed, N, bias=bias)
    found = softmax_classifier.scratch(x, y, params, reduction)
    assert_matches(found, twins.softmax_classifier(x, y, params, reduction))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("N", [1, 4])
def test_scratch_matches_central_differences(N, reduction, bias):
    x, y, params = make_trial(9, N, bias=bias)
    found = softmax_classifier.scratch(x, y, params, reduction)

    def loss_of(theta):
        return float(softmax_classifier.scratch(x, y, theta, reduction)["loss"])

    rounding = 1e-8 * abs(float(found["loss"]))
    for key, expected in central_difference(loss_of, params).items():
        assert np.abs(found[key] - expected).max() <= 1e-6 * np.abs(expected).max() + rounding, key


def test_probabilities_are_rows_summing_to_one_even_for_huge_logits():
    x = np.array([[1000.0, -1000.0], [0.0, 500.0]])
    params = {"W1": np.eye(2), "W2": np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])}
    y = np.eye(3)[[0, 1]]
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is benign
        found = softmax_classifier.scratch(x, y, params)
    assert np.all(np.isfinite(found["probs"])) and np.isfinite(found["loss"])
    np.testing.assert_allclose(found["probs"].sum(axis=1), 1.0, rtol=1e-15)
    assert_matches(found, twins.softmax_classifier(x, y, params))


def test_mean_is_the_sum_over_the_batch_size():
    x, y, params = make_trial(4, N=5, bias=True)
    total = softmax_classifier.scratch(x, y, params, "sum")
    mean = softmax_classifier.scratch(x, y, params, "mean")
    for key in ("loss", "dW1", "dW2", "db1", "db2"):
        np.testing.assert_allclose(mean[key], total[key] / 5, rtol=1e-14)


def test_without_biases_only_weight_gradients_are_returned():
    x, y, params = make_trial(0, N=2)
    assert set(softmax_classifier.scratch(x, y, params)) == {"probs", "loss", "dW1", "dW2"}


def test_inputs_are_not_mutated():
    x, y, params = make_trial(1, N=3, bias=True)
    originals = [a.copy() for a in (x, y, *params.values())]
    for a in (x, y, *params.values()):
        a.flags.writeable = False
    softmax_classifier.scratch(x, y, params, "mean")
    twins.softmax_classifier(x, y, params, "mean")
    for before, after in zip(originals, (x, y, *params.values())):
        np.testing.assert_array_equal(before, after)


def test_one_bias_without_the_other_is_rejected():
    x, y, params = make_trial(0, N=2, bias=True)
    del params["b1"]
    with pytest.raises(ValueError, match="both present or both absent"):
        softmax_classifier.scratch(x, y, params)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_runs_stacked_on_a_leading_axis_each_get_the_pass_they_get_alone(reduction, bias):
    """dropout_training.train_many runs K nets at once through this one pass (parameters and dropout
    factors with a leading axis of K); each run must be what it would be alone, loss included."""
    x, y, _ = make_trial(0, 6, bias=bias)
    runs = [make_trial(seed, 6, bias=bias)[2] for seed in (1, 2, 3)]
    keep = (np.random.default_rng(4).random((3, 6, 5)) < 0.6) / 0.6
    stacked = {name: np.stack([run[name] for run in runs]) for name in runs[0]}
    together = softmax_classifier.scratch(x, y, stacked, reduction, softmax_classifier.kept(keep))
    for k, run in enumerate(runs):
        alone = softmax_classifier.scratch(x, y, run, reduction, softmax_classifier.kept(keep[k]))
        assert_matches({key: value[k] for key, value in together.items()}, alone, rtol=1e-13)


def test_a_bias_with_a_row_per_example_is_added_row_by_row():
    """A catalogued mistake (db left unsummed, then an update) leaves b with a row per example; the
    classifier's layers add it row by row, as the student's numpy did, not as K stacked runs."""
    x, _, params = make_trial(0, 4, bias=True)
    b1 = np.random.default_rng(5).normal(size=(4, 5))  # (N, H): one bias row per example
    z1 = softmax_classifier.linear(x, {**params, "b1": b1}, 1, bias=True)
    assert z1.shape == (4, 5)
    for n in range(4):
        expected = x[n] @ params["W1"].T + b1[n]
        assert np.abs(z1[n] - expected).max() <= 1e-13 * np.abs(expected).max()
