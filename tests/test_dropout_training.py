"""Task 3: dropout step and SGD training agree with autograd, central differences and the classifier."""

import numpy as np
import pytest
from conftest import init_params

from reference import dropout_training, softmax_classifier, twins
from reference.gradcheck import central_difference


def make_trial(seed, N=5, d=3, H=6, C=3, bias=False, p=0.4, epochs=1):
    """Inputs, one-hot labels, nn.Linear-range parameters and (epochs, N, H) keep-masks, all from numpy."""
    rng = np.random.default_rng(seed)
    params = {
        "W1": rng.uniform(-1, 1, size=(H, d)) / np.sqrt(d),
        "W2": rng.uniform(-1, 1, size=(C, H)) / np.sqrt(H),
    }
    if bias:
        params["b1"] = rng.uniform(-1, 1, size=H) / np.sqrt(d)
        params["b2"] = rng.uniform(-1, 1, size=C) / np.sqrt(H)
    x = rng.uniform(size=(N, d))
    y = np.eye(C)[rng.integers(C, size=N)]
    masks = (rng.random(size=(epochs, N, H)) >= p).astype(np.float64)  # keep probability 1 − p
    return x, y, params, masks


def assert_matches(found, expected, rtol=1e-10):
    assert set(found) == set(expected)
    for key in expected:
        assert found[key].shape == expected[key].shape, key
        scale = max(np.abs(expected[key]).max(), np.finfo(float).tiny)
        assert np.abs(found[key] - expected[key]).max() <= rtol * scale, key


def updates(trained, params):
    """W_final − W_initial: with lr = 0.01 the weights move under 1 %, so the update is what to compare."""
    return {name: trained[name] - params[name] for name in params}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("N", [1, 5])
def test_step_matches_autograd(N, reduction, bias, seed):
    x, y, params, masks = make_trial(seed, N=N, bias=bias)
    found = dropout_training.step(x, y, params, masks[0], 0.4, reduction)
    assert_matches(found, twins.dropout_step(x, y, params, masks[0], 0.4, reduction))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("N", [1, 4])
def test_step_gradients_match_central_differences_of_the_masked_loss(N, reduction, bias):
    x, y, params, masks = make_trial(3, N=N, bias=bias)
    found = dropout_training.step(x, y, params, masks[0], 0.4, reduction)

    def loss_of(theta):
        return float(dropout_training.step(x, y, theta, masks[0], 0.4, reduction)["loss"])

    rounding = 1e-8 * abs(float(found["loss"]))
    for key, expected in central_difference(loss_of, params).items():
        assert np.abs(found[key] - expected).max() <= 1e-6 * np.abs(expected).max() + rounding, key


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_train_matches_autograd_sgd_after_100_epochs(reduction, bias):
    x, y, params, masks = make_trial(2024, N=8, bias=bias, epochs=100)
    found = dropout_training.train(x, y, params, masks, p=0.4, lr=0.01, reduction=reduction)
    expected = twins.dropout_train(x, y, params, masks, p=0.4, lr=0.01, reduction=reduction)
    assert set(found) == set(expected) == set(params) | {"losses"}
    assert found["losses"].shape == (100,)
    assert_matches(updates(found, params), updates(expected, params))
    assert_matches({"losses": found["losses"]}, {"losses": expected["losses"]})


def test_the_given_instance_trains_like_autograd():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    params = {"W1": (np.arange(1, 13).reshape(3, 4) / 10).T, "W2": (np.arange(2, 10).reshape(4, 2) / 10).T}
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    masks = (np.random.default_rng(7).random(size=(100, 2, 4)) >= 0.4).astype(np.float64)
    found = dropout_training.train(x, y, params, masks, p=0.4, lr=0.01)
    expected = twins.dropout_train(x, y, params, masks, p=0.4, lr=0.01)
    assert_matches(updates(found, params), updates(expected, params))


def test_each_loss_is_taken_before_its_update():
    x, y, params, masks = make_trial(5, epochs=3)
    trained = dropout_training.train(x, y, params, masks, p=0.4, lr=0.1)
    first = dropout_training.step(x, y, params, masks[0], 0.4)
    assert trained["losses"][0] == float(first["loss"])
    after_one = dropout_training.train(x, y, params, masks[:1], p=0.4, lr=0.1)
    np.testing.assert_array_equal(after_one["W1"], params["W1"] - 0.1 * first["dW1"])
    second = dropout_training.step(x, y, {k: after_one[k] for k in params}, masks[1], 0.4)
    assert trained["losses"][1] == float(second["loss"])


def test_zero_epochs_return_the_initial_parameters_as_copies():
    x, y, params, masks = make_trial(0, epochs=1)
    trained = dropout_training.train(x, y, params, masks[:0], p=0.4, lr=0.01)
    assert trained["losses"].shape == (0,)
    for name in params:
        np.testing.assert_array_equal(trained[name], params[name])
        assert not np.shares_memory(trained[name], params[name])


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_all_ones_mask_with_p_zero_is_the_plain_classifier(reduction, bias):
    x, y, params, _ = make_trial(6, bias=bias)
    found = dropout_training.step(x, y, params, np.ones((5, 6)), 0.0, reduction)
    expected = softmax_classifier.scratch(x, y, params, reduction)
    assert set(found) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(found[key], expected[key])


def test_the_inverted_scaling_changes_the_update():
    # the non-inverted variant (h ⊙ mask, no 1/(1 − p)) is the same masks with p = 0
    x, y, params, masks = make_trial(8, N=6, epochs=100)
    inverted = updates(dropout_training.train(x, y, params, masks, p=0.4, lr=0.01), params)
    plain = updates(dropout_training.train(x, y, params, masks, p=0.0, lr=0.01), params)
    autograd = updates(twins.dropout_train(x, y, params, masks, p=0.4, lr=0.01), params)
    for name in ("W1", "W2"):
        difference = np.abs(inverted[name] - plain[name]).max()
        assert difference > 0.1 * np.abs(inverted[name]).max(), name
    assert_matches(inverted, autograd)  # torch's convention is the inverted one


def test_a_unit_dropped_for_every_example_gets_no_gradient():
    x, y, params, masks = make_trial(4, N=5, bias=True)
    mask = masks[0].copy()
    mask[:, 2] = 0.0
    mask[:, 4] = 1.0  # keep one unit everywhere so something does flow
    found = dropout_training.step(x, y, params, mask, 0.4)
    assert np.all(found["dW1"][2] == 0.0) and found["db1"][2] == 0.0
    assert np.all(found["dW2"][:, 2] == 0.0)
    assert np.any(found["dW2"][:, 4] != 0.0)


def test_boolean_masks_work_like_float_masks():
    x, y, params, masks = make_trial(2)
    as_bool = dropout_training.step(x, y, params, masks[0].astype(bool), 0.4)
    as_float = dropout_training.step(x, y, params, masks[0], 0.4)
    for key in as_float:
        np.testing.assert_array_equal(as_bool[key], as_float[key])


def test_inputs_are_not_mutated():
    x, y, params, masks = make_trial(1, bias=True, epochs=4)
    inputs = (x, y, masks, *params.values())
    originals = [a.copy() for a in inputs]
    for a in inputs:
        a.flags.writeable = False
    dropout_training.step(x, y, params, masks[0], 0.4)
    dropout_training.train(x, y, params, masks, 0.4, 0.5, "mean")
    twins.dropout_step(x, y, params, masks[0], 0.4)
    twins.dropout_train(x, y, params, masks, 0.4, 0.5, "mean")
    for before, after in zip(originals, inputs):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_drop_probability_outside_zero_to_one_is_rejected(p):
    x, y, params, masks = make_trial(0)
    with pytest.raises(ValueError, match="0 <= p < 1"):
        dropout_training.step(x, y, params, masks[0], p)
    with pytest.raises(ValueError, match="0 <= p < 1"):
        dropout_training.train(x, y, params, masks, p, 0.01)


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_training_many_mask_sequences_at_once_is_training_each_one(bias, reduction):
    from reference.mistakes_backprop import dropout_sgd

    rng = np.random.default_rng(9)
    params = init_params(rng, [3, 4, 2], bias)
    x, y = rng.uniform(-2, 2, size=(2, 3)), np.eye(2)[[1, 0]]
    masks = (rng.random((5, 7, 2, 4)) >= 0.4).astype(np.float64)
    many = dropout_training.train_many(x, y, params, masks, 0.1, 1 / 0.6, reduction)
    unscaled = dropout_training.train_many(x, y, params, masks, 0.1, 1.0, reduction)
    without = dropout_training.train_many(x, y, params, masks, 0.1, None, reduction)
    for k in range(5):
        one = dropout_training.train(x, y, params, masks[k], 0.4, 0.1, reduction)
        plain = dropout_sgd(x, y, params, masks[k], None, 0.1, reduction)
        for name in params:
            np.testing.assert_allclose(many[name][k], one[name], rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(
                unscaled[name][k],
                dropout_sgd(x, y, params, masks[k], 1.0, 0.1, reduction)[name],
                rtol=1e-12,
                atol=1e-15,
            )
            np.testing.assert_allclose(without[name][k], plain[name], rtol=1e-12, atol=1e-15)
