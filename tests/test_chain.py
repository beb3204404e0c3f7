"""The chain rule of one trial, laid out for localization: the reference's δ's, and each relation's stand-ins
kept only where they differ from the chain rule's own ingredient on that trial."""

import numpy as np
from conftest import init_params

from grader.diagnose.chain import chain_for
from reference import mlp_regression, softmax_classifier


def mlp(layers, activation, N=1, seed=0, key=None):
    rng = np.random.default_rng(seed)
    params = init_params(rng, layers)
    x = rng.uniform(size=(N, layers[0]))
    chain = chain_for(
        "mlp_regression",
        ("chain", key or (tuple(layers), str(activation), N, seed)),
        x,
        mlp_regression.target(x),
        params,
        activation,
        "sum",
    )
    return chain, x, params


def test_the_reference_deltas_are_the_bias_gradients_of_one_example():
    chain, x, params = mlp([2, 10, 10, 1], "sigmoid")
    expected = mlp_regression.scratch(x, mlp_regression.target(x), params, "sigmoid")
    for l in (1, 2, 3):
        assert np.allclose(chain.layers[l].delta[0], expected[f"db{l}"], rtol=1e-13, atol=0)


def test_stand_ins_are_kept_only_where_they_change_something_on_the_trial():
    chain, _, _ = mlp([3, 5, 5, 1], "relu", seed=3)
    derivatives = dict(chain.layers[1].derivatives)
    assert "relu_derivative_at_zero" not in derivatives  # no pre-activation is exactly 0
    assert "derivative_at_activation" not in derivatives  # ReLU'(ReLU(z)) = ReLU'(z)
    assert set(dict(chain.layers[3].inputs)) == {
        "correct",
        "preactivation_in_weight_gradient",
    }  # a2 ≠ z2, no square layer
    chain, _, _ = mlp([3, 5, 5, 1], "sigmoid", seed=3)
    assert set(dict(chain.layers[1].derivatives)) == {
        "correct",
        "hidden_derivative_omitted",
        "derivative_at_activation",
        "derivative_formula_on_preactivation",
    }
    assert set(dict(chain.layers[2].inputs)) == {
        "correct",
        "preactivation_in_weight_gradient",
        "next_activation_in_weight_gradient",
    }
    assert dict(chain.outputs).keys() == {"correct", "loss_derivative_omitted", "output_activation_derivative"}


def test_a_layer_without_activation_has_derivative_1_and_the_nets_activation_as_its_stand_in():
    chain, _, _ = mlp([4, 6, 6, 1], ("identity", "relu"), seed=4)
    derivatives = dict(chain.layers[1].derivatives)
    assert np.array_equal(derivatives["correct"], np.ones((1, 6)))
    assert set(derivatives) == {"correct", "derivative_without_activation"} and chain.main == "relu"


def test_the_classifier_builds_dw2_from_h_and_on_the_handout_instance_z1_is_no_stand_in():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    params = {
        "W1": np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 1.1, 1.2]]).T,
        "W2": np.array([[0.2, 0.3], [0.4, 0.5], [0.6, 0.7], [0.8, 0.9]]).T,
    }
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    chain = chain_for("softmax_classifier", ("chain", "handout"), x, y, params, "relu", "sum")
    assert set(dict(chain.layers[2].inputs)) == {"correct"}  # every z1 > 0: h = z1
    expected = softmax_classifier.scratch(x, y, params)
    assert np.allclose(chain.layers[2].delta, expected["probs"] - y, rtol=1e-13, atol=0)
    assert chain_for("dropout_training", ("chain", "training"), x, y, params, "relu", "sum") is None
