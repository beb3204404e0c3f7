"""Task 1: the hand-written backprop agrees with autograd and with central differences."""

import numpy as np
import pytest
import torch
from conftest import init_params

from reference import mlp_regression, twins
from reference.gradcheck import central_difference

DEEP_RELU = [10] + [21] * 10 + [1]
ARCHITECTURES = {
    "1-hidden": [2, 10, 1],
    "2-10-10-1": [2, 10, 10, 1],
    "4-hidden": [3, 5, 4, 6, 3, 1],
    "10-hidden": [4] + [6] * 10 + [1],
}
SMALL_ARCHITECTURES = {  # few parameters, so central differences stay fast
    "1-hidden": [2, 3, 1],
    "2-hidden": [2, 4, 3, 1],
    "10-hidden": [3] + [4] * 10 + [1],
}


def make_trial(seed, layers, batch, bias):
    rng = np.random.default_rng(seed)
    params = init_params(rng, layers, bias)
    x = rng.uniform(size=(batch, layers[0]))
    return x, mlp_regression.target(x), params


def assert_close(found, expected, rtol):
    """Largest error within rtol of the largest expected magnitude (both all-zero passes)."""
    assert found.shape == expected.shape
    scale = max(np.abs(expected).max(initial=0.0), np.finfo(float).tiny)
    assert np.abs(found - expected).max(initial=0.0) <= rtol * scale


def assert_matches(found, expected, rtol=1e-10):
    assert set(found) == set(expected)
    for key in expected:
        assert_close(found[key], expected[key], rtol)


def loss_of(x, y, activation, reduction):
    def loss(params):
        L, _ = mlp_regression.count_layers(params)
        prediction = mlp_regression.forward(x, params, activation)[f"a{L}"]
        return mlp_regression.loss(prediction, y, reduction)

    return loss


def assert_gradients_match_central_differences(found, x, y, params, activation, reduction):
    expected = central_difference(loss_of(x, y, activation, reduction), params)
    rounding = 1e-8 * abs(float(found["loss"]))  # finite-difference rounding grows with |L|
    for key, value in expected.items():
        error = np.abs(found[key] - value).max()
        assert error <= 1e-6 * np.abs(value).max() + rounding, key


def test_target_is_the_mean_of_squares_as_a_column():
    x = np.array([[1.0, 2.0], [0.5, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(mlp_regression.target(x), [[2.5], [0.125], [0.0]])


def test_forward_caches_every_pre_activation_and_activation():
    x, _, params = make_trial(0, [2, 10, 10, 1], batch=3, bias=True)
    cache = mlp_regression.forward(x, params, "tanh")
    assert list(cache) == ["a0", "z1", "a1", "z2", "a2", "z3", "a3"]
    np.testing.assert_array_equal(cache["a1"], np.tanh(x @ params["W1"].T + params["b1"]))
    assert cache["a3"] is cache["z3"]  # identity output
    assert cache["a3"].shape == (3, 1)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_loss_matches_torch_mse(reduction):
    rng = np.random.default_rng(3)
    prediction, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    expected = torch.nn.MSELoss(reduction=reduction)(torch.tensor(prediction), torch.tensor(y)).item()
    assert mlp_regression.loss(prediction, y, reduction) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("layers", ARCHITECTURES.values(), ids=ARCHITECTURES.keys())
def test_scratch_matches_autograd(layers, activation, batch, reduction, bias, seed):
    x, y, params = make_trial(seed, layers, batch, bias)
    found = mlp_regression.scratch(x, y, params, activation, reduction)
    expected = twins.mlp_regression(x, y, params, activation, reduction)
    assert_matches(found, expected)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("layers", SMALL_ARCHITECTURES.values(), ids=SMALL_ARCHITECTURES.keys())
def test_scratch_matches_central_differences(layers, activation, batch, reduction, bias):
    x, y, params = make_trial(7, layers, batch, bias)
    found = mlp_regression.scratch(x, y, params, activation, reduction)
    assert_gradients_match_central_differences(found, x, y, params, activation, reduction)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scratch_matches_autograd_for_deep_relu_net(seed, batch):
    x, y, params = make_trial(seed, DEEP_RELU, batch, bias=True)
    found = mlp_regression.scratch(x, y, params, "relu")
    assert_matches(found, twins.mlp_regression(x, y, params, "relu"))
    assert set(found) == {"prediction", "loss"} | {f"d{p}{l}" for p in "Wb" for l in range(1, 12)}


def test_scratch_matches_central_differences_for_deep_relu_net():
    x, y, params = make_trial(5, DEEP_RELU, batch=2, bias=True)
    found = mlp_regression.scratch(x, y, params, "relu")
    assert_gradients_match_central_differences(found, x, y, params, "relu", "sum")


def test_bs6207_a1_instance_one_point_sigmoid_2_10_10_1():
    x, y, params = make_trial(2024, [2, 10, 10, 1], batch=1, bias=True)
    found = mlp_regression.scratch(x, y, params)  # defaults: sigmoid, sum
    assert found["prediction"].shape == (1, 1) and found["loss"].shape == ()
    assert {k: v.shape for k, v in found.items() if k.startswith("d")} == {
        "dW1": (10, 2),
        "db1": (10,),
        "dW2": (10, 10),
        "db2": (10,),
        "dW3": (1, 10),
        "db3": (1,),
    }
    assert_matches(found, twins.mlp_regression(x, y, params))
    # one point, sum: dL/dprediction = 2 (prediction − y) = db3
    assert found["db3"][0] == pytest.approx(2 * (found["prediction"][0, 0] - y[0, 0]), rel=1e-15)


def test_several_outputs_take_a_target_of_the_same_shape():
    rng = np.random.default_rng(11)
    params = init_params(rng, [3, 5, 2], bias=True)
    x, y = rng.uniform(size=(4, 3)), rng.normal(size=(4, 2))
    found = mlp_regression.scratch(x, y, params, "tanh", "mean")
    assert found["prediction"].shape == (4, 2)
    assert_matches(found, twins.mlp_regression(x, y, params, "tanh", "mean"))


def test_mean_gradients_are_sum_gradients_over_the_element_count():
    x, y, params = make_trial(4, [2, 6, 1], batch=5, bias=True)
    total = mlp_regression.scratch(x, y, params, "sigmoid", "sum")
    mean = mlp_regression.scratch(x, y, params, "sigmoid", "mean")
    for key in ("loss", "dW1", "db1", "dW2", "db2"):
        np.testing.assert_allclose(mean[key], total[key] / 5, rtol=1e-14)


def test_without_biases_no_bias_gradients_are_returned():
    x, y, params = make_trial(0, [2, 10, 10, 1], batch=2, bias=False)
    assert set(mlp_regression.scratch(x, y, params)) == {"prediction", "loss", "dW1", "dW2", "dW3"}


def test_inputs_are_not_mutated():
    x, y, params = make_trial(1, [2, 5, 5, 1], batch=3, bias=True)
    originals = [a.copy() for a in (x, y, *params.values())]
    for a in (x, y, *params.values()):
        a.flags.writeable = False  # any in-place write raises
    mlp_regression.scratch(x, y, params, "relu", "mean")
    mlp_regression.forward(x, params, "relu")["a0"][:] = 0.0  # the cache is the caller's to edit
    twins.mlp_regression(x, y, params, "relu", "mean")
    for before, after in zip(originals, (x, y, *params.values())):
        np.testing.assert_array_equal(before, after)


def test_partial_biases_are_rejected():
    x, y, params = make_trial(0, [2, 3, 1], batch=1, bias=True)
    del params["b2"]
    with pytest.raises(ValueError, match="all present or all absent"):
        mlp_regression.scratch(x, y, params)


def test_an_unknown_reduction_is_rejected():
    x, y, params = make_trial(0, [2, 3, 1], batch=1, bias=True)
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        mlp_regression.scratch(x, y, params, reduction="avg")


# The seed's deep net: one more Linear than asked, the first left without its ReLU.
SEED_002 = [10] + [21] * 11 + [1]
SEED_002_ACTIVATIONS = ("identity",) + ("relu",) * 10


@pytest.mark.parametrize("batch", [1, 3])
def test_per_layer_activations_match_autograd_on_the_net_with_a_linear_left_without_its_relu(batch):
    x, y, params = make_trial(3, SEED_002, batch, bias=True)
    found = mlp_regression.scratch(x, y, params, SEED_002_ACTIVATIONS)
    assert_matches(found, twins.mlp_regression(x, y, params, SEED_002_ACTIVATIONS))
    assert not np.allclose(found["dW1"], mlp_regression.scratch(x, y, params, "relu")["dW1"])


def test_per_layer_activations_match_central_differences():
    layers, activations = [3, 4, 4, 4, 1], ("tanh", "identity", "sigmoid")
    x, y, params = make_trial(8, layers, batch=2, bias=True)
    found = mlp_regression.scratch(x, y, params, activations)
    assert_gradients_match_central_differences(found, x, y, params, activations, "sum")


def test_a_layer_without_activation_passes_its_pre_activation_on():
    x, _, params = make_trial(0, [2, 5, 5, 1], batch=3, bias=True)
    cache = mlp_regression.forward(x, params, ("identity", "relu"))
    np.testing.assert_array_equal(cache["a1"], cache["z1"])
    np.testing.assert_array_equal(cache["a2"], np.maximum(cache["z2"], 0.0))
    same = mlp_regression.scratch(x, mlp_regression.target(x), params, ("tanh", "tanh"))
    assert_matches(same, mlp_regression.scratch(x, mlp_regression.target(x), params, "tanh"), rtol=0.0)


def test_one_name_per_hidden_layer_is_required_and_the_main_activation_is_the_most_common():
    x, y, params = make_trial(0, [2, 5, 5, 1], batch=1, bias=True)
    with pytest.raises(ValueError, match="one name per hidden layer"):
        mlp_regression.scratch(x, y, params, ("relu",))
    assert mlp_regression.main_activation(SEED_002_ACTIVATIONS) == "relu"
    assert mlp_regression.main_activation(("identity", "identity")) == "identity"
    assert mlp_regression.main_activation("tanh") == "tanh"
