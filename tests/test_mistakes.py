"""The catalogue of known mistakes: every mutant can be seen, no two are confused, each has its defining
property, and every buggy sample submission demonstrates exactly the mistake it names."""

import importlib.util
import re
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import init_params

from reference import dropout_training, mlp_regression, softmax_classifier
from reference.activations import drelu, dsigmoid, get_activation, relu
from reference.mistakes import (
    CATALOGUE,
    KINDS,
    PAIRS,
    UPDATE_LEARNING_RATES,
    at_layer,
    mistakes_for,
    pair,
    pairs_for,
    run_mutant,
)
from reference.mistakes_backprop import classifier_pass, dropout_sgd, mlp_pass
from reference.mistakes_mutants import Edit, Instance, combine, reference_values

REPO = Path(__file__).resolve().parents[1]
BY_ID = {m.id: m for m in (*CATALOGUE, *PAIRS)}
# Mutants that equal the reference on generic inputs and differ only on special ones (tested below).
ONLY_ON_SPECIAL_INPUTS = {"relu_derivative_at_zero"}


# --- trials and comparisons ----------------------------------------------------------------------
def mlp_trial(seed, layers, N, activation="sigmoid", reduction="sum", bias=True, lr=0.01):
    """run_mutant's keyword arguments for an mlp_regression trial, x ~ U[0,1], torch-range weights."""
    rng = np.random.default_rng(seed)
    params = init_params(rng, layers, bias)
    x = rng.uniform(size=(N, layers[0]))
    y = mlp_regression.target(x) if layers[-1] == 1 else rng.uniform(size=(N, layers[-1]))
    return dict(kind="mlp_regression", x=x, y=y, params=params, activation=activation, reduction=reduction, lr=lr)


def classifier_trial(seed, N=4, d=3, H=5, C=3, bias=False, reduction="sum", lr=0.01, dropout=False, p=0.4, epochs=3):
    """run_mutant's keyword arguments for a softmax_classifier (or, with dropout, dropout_training) trial."""
    rng = np.random.default_rng(seed)
    params = init_params(rng, [d, H, C], bias)
    x = rng.uniform(size=(N, d))
    y = np.eye(C)[rng.integers(C, size=N)]
    trial = dict(kind="softmax_classifier", x=x, y=y, params=params, reduction=reduction, lr=lr)
    if dropout:
        masks = (rng.random((epochs, N, H)) >= p).astype(np.float64)  # keep probability 1 − p
        trial.update(kind="dropout_training", masks=masks, p=p)
    return trial


def with_zero_preactivation(trial):
    """The trial with hidden unit 0 of layer 1 exactly at z = 0 for every example (W1 row and b1 zero)."""
    params = {name: np.array(value) for name, value in trial["params"].items()}
    params["W1"][0] = 0.0
    if "b1" in params:
        params["b1"][0] = 0.0
    return {**trial, "params": params}


def mutant(mistake_id, trial):
    return run_mutant(BY_ID[mistake_id], **trial)


def reference(trial):
    return reference_values(Instance(**trial))


def close(found, expected, rtol=1e-8):
    """Same shape and every element within rtol of the largest expected magnitude."""
    found, expected = np.asarray(found, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if found.shape != expected.shape:
        return False
    scale = max(np.abs(expected).max(initial=0.0), np.finfo(float).tiny)
    return bool(np.abs(found - expected).max(initial=0.0) <= rtol * scale)


def all_close(found, expected, rtol=1e-8, keys=None):
    return all(close(found[k], expected[k], rtol) for k in (keys or expected))


def gradients(values):
    return {k: v for k, v in values.items() if k.startswith("d")}


def updates(trained, params):
    """W_final − W_initial: what a check of training compares."""
    return {name: trained[name] - params[name] for name in params}


def comparable(values, trial):
    """What the grader compares: the values, or for training the update of every parameter."""
    return updates(values, trial["params"]) if trial["kind"] == "dropout_training" else values


def distinct(first, second, trial):
    """Some quantity differs in shape or by more than 1e-6 of its scale."""
    a, b = comparable(first, trial), comparable(second, trial)
    return not all_close(a, b, 1e-6, keys=set(a) & set(b))


GENERIC = {
    **{
        f"mlp-{act}-{red}": mlp_trial(3, [3, 6, 6, 2], 4, act, red)
        for act in ("sigmoid", "tanh", "relu")
        for red in ("sum", "mean")
    },
    **{
        f"softmax-{red}-{b}": classifier_trial(1, bias=bias, reduction=red)
        for red in ("sum", "mean")
        for b, bias in (("bias", True), ("no-bias", False))
    },
    **{
        f"dropout-{red}-{b}": classifier_trial(2, bias=bias, reduction=red, lr=0.1, dropout=True)
        for red in ("sum", "mean")
        for b, bias in (("bias", True), ("no-bias", False))
    },
    "mlp-square-layers": mlp_trial(4, [4, 4, 4, 2], 3, "relu"),  # x fits where a1 belongs, a_l where a_{l−1} does
}


def applicable(trial):
    """{id: values} of every mutant that applies to the trial."""
    found = {m.id: run_mutant(m, **trial) for m in mistakes_for(trial["kind"])}
    return {k: v for k, v in found.items() if v is not None}


# --- the catalogue as a whole --------------------------------------------------------------------
def test_ids_are_unique_and_every_mistake_speaks_to_students():
    ids = [m.id for m in CATALOGUE]
    assert len(ids) == len(set(ids))
    for m in CATALOGUE:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", m.id), m.id
        assert m.title.strip() and m.explanation.strip() and m.hint.strip(), m.id
        assert m.explanation.rstrip().endswith("."), m.id
        assert len(m.explanation) < 400 and len(m.hint) < 250, m.id
        jargon = re.compile(r"mutant|twist|reference|instance|catalogue", re.IGNORECASE)
        assert not jargon.search(m.explanation + m.title + m.hint), m.id
        assert m.kinds and set(m.kinds) <= set(KINDS), m.id


def test_the_catalogue_covers_every_mistake_the_design_names():
    required = {
        "mlp_regression": {
            "missing_factor_2",
            "sign_flip",
            "transposed_gradient",
            "derivative_at_activation",
            "output_activation_derivative",
            "loss_derivative_omitted",
            "backprop_through_w_instead_of_wt",
            "preactivation_in_weight_gradient",
            "gradients_after_update",
            "accumulated_gradients",
            "mean_instead_of_sum",
            "sum_instead_of_mean",
            "relu_derivative_at_zero",
            "hidden_derivative_omitted",
            "bias_gradient_not_summed",
            "next_activation_in_weight_gradient",
            "input_in_weight_gradient",
            "derivative_without_activation",
        },
        "softmax_classifier": {
            "sign_flip",
            "transposed_gradient",
            "logits_instead_of_probs",
            "hidden_derivative_omitted",
            "bias_gradient_not_summed",
            "mean_instead_of_sum",
            "sum_instead_of_mean",
            "relu_derivative_at_zero",
            "accumulated_gradients",
        },
        "dropout_training": {
            "dropout_without_rescaling",
            "dropout_scaled_by_keep_probability",
            "p_used_as_keep_probability",
            "mask_not_in_backward",
            "masks_ignored",
        },
    }
    for kind, ids in required.items():
        assert ids <= {m.id for m in mistakes_for(kind)}, kind


def test_mistakes_for_autograd_graph_is_empty_and_an_unknown_kind_is_an_error():
    assert mistakes_for("autograd_graph") == []
    with pytest.raises(ValueError, match="mlp_regression"):
        mistakes_for("mlp")


def test_a_dropout_mutant_without_masks_or_with_an_impossible_p_is_a_contract_error():
    trial = classifier_trial(0, dropout=True)
    with pytest.raises(ValueError, match="drop probability"):
        run_mutant(BY_ID["masks_ignored"], **{**trial, "p": 1.0})
    del trial["masks"]
    with pytest.raises(ValueError, match="masks"):
        run_mutant(BY_ID["masks_ignored"], **trial)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_the_untwisted_backward_passes_are_the_reference(activation, reduction, bias):
    trial = mlp_trial(5, [3, 4, 4, 2], 3, activation, reduction, bias)
    x, y, params = trial["x"], trial["y"], trial["params"]
    assert all_close(
        mlp_pass(x, y, params, activation, reduction),
        mlp_regression.scratch(x, y, params, activation, reduction),
        1e-14,
    )
    trial = classifier_trial(6, bias=bias, reduction=reduction, dropout=True)
    x, y, params, masks = trial["x"], trial["y"], trial["params"], trial["masks"]
    assert all_close(
        classifier_pass(x, y, params, reduction), softmax_classifier.scratch(x, y, params, reduction), 1e-14
    )
    assert all_close(
        classifier_pass(x, y, params, reduction, masks[0] / 0.6),
        dropout_training.step(x, y, params, masks[0], 0.4, reduction),
        1e-12,
    )
    assert all_close(
        dropout_sgd(x, y, params, masks, 1 / 0.6, 0.01, reduction),
        dropout_training.train(x, y, params, masks, 0.4, 0.01, reduction),
        1e-12,
    )


@pytest.mark.parametrize("name", GENERIC)
def test_every_mutant_differs_from_the_reference_where_it_applies(name):
    trial = GENERIC[name]
    expected = reference(trial)
    for mistake_id, found in applicable(trial).items():
        assert set(found) == set(expected), mistake_id
        if mistake_id not in ONLY_ON_SPECIAL_INPUTS:
            assert distinct(found, expected, trial), mistake_id


@pytest.mark.parametrize("name", GENERIC)
def test_mutants_are_pairwise_distinguishable_on_a_generic_trial(name):
    trial = GENERIC[name]
    found = applicable(trial)
    ids = sorted(found)
    for i, first in enumerate(ids):
        for second in ids[i + 1 :]:
            assert distinct(found[first], found[second], trial), (first, second)


@pytest.mark.parametrize(
    "mistake_id, trial",
    [
        ("missing_factor_2", classifier_trial(0)),  # a kind the mistake does not cover
        ("derivative_at_activation", mlp_trial(0, [2, 3, 1], 1, "relu")),  # relu'(relu(z)) = relu'(z)
        ("derivative_formula_on_preactivation", mlp_trial(0, [2, 3, 1], 1, "relu")),
        ("relu_derivative_at_zero", mlp_trial(0, [2, 3, 1], 1, "sigmoid")),
        ("mean_instead_of_sum", mlp_trial(0, [2, 3, 1], 1)),  # one element: mean = sum
        ("sum_instead_of_mean", mlp_trial(0, [2, 3, 1], 3, reduction="sum")),  # a sum was asked
        ("mean_instead_of_sum", classifier_trial(0, N=1)),
        ("backprop_through_w_instead_of_wt", mlp_trial(0, [2, 3, 4, 1], 2)),  # no square W2, W3
        ("preactivation_in_weight_gradient", mlp_trial(0, [2, 1], 2)),  # no hidden layer
        ("gradients_after_update", mlp_trial(0, [2, 3, 1], 1, lr=0.0)),  # no step taken
        ("p_used_as_keep_probability", classifier_trial(0, dropout=True, p=0.5)),  # 1/p = 1/(1 − p)
        ("dropout_without_rescaling", classifier_trial(0, dropout=True, p=0.0)),  # nothing to scale
        ("bias_gradient_not_summed", mlp_trial(0, [2, 3, 1], 1)),  # one example: nothing to sum
        ("bias_gradient_not_summed", classifier_trial(0, bias=False)),  # no bias
        ("next_activation_in_weight_gradient", mlp_trial(0, [2, 3, 4, 1], 2)),  # no square W_l: a_l never fits
        ("input_in_weight_gradient", mlp_trial(0, [2, 3, 3, 1], 2)),  # x (2) never fits where a_l (3) belongs
        ("hidden_derivative_omitted", mlp_trial(0, [2, 1], 2)),  # no hidden layer
    ],
)
def test_a_mistake_that_cannot_apply_to_an_instance_gives_none(mistake_id, trial):
    assert mutant(mistake_id, trial) is None


@pytest.mark.parametrize(
    "trial",
    [
        mlp_trial(0, [3, 4, 4, 1], 2, "relu"),
        classifier_trial(0, bias=True),
        classifier_trial(0, dropout=True),
    ],
    ids=["mlp", "softmax", "dropout"],
)
def test_relu_derivative_at_zero_differs_only_where_a_preactivation_is_exactly_zero(trial):
    assert not distinct(mutant("relu_derivative_at_zero", trial), reference(trial), trial)
    special = with_zero_preactivation(trial)
    assert distinct(mutant("relu_derivative_at_zero", special), reference(special), special)


# --- defining properties -------------------------------------------------------------------------
SCALED = [("missing_factor_2", 0.5), ("sign_flip", -1.0), ("accumulated_gradients", 2.0)]


@pytest.mark.parametrize("mistake_id, factor", SCALED)
@pytest.mark.parametrize(
    "trial",
    [mlp_trial(1, [2, 10, 10, 1], 1), mlp_trial(1, [3, 5, 2], 4, "relu", "mean"), classifier_trial(1, bias=True)],
    ids=["a1", "relu-mean", "softmax"],
)
def test_scaling_mistakes_scale_every_gradient_and_nothing_else(mistake_id, factor, trial):
    found = mutant(mistake_id, trial)
    if found is None:  # missing factor 2 is a squared-loss mistake only
        assert mistake_id == "missing_factor_2" and trial["kind"] == "softmax_classifier"
        return
    expected = reference(trial)
    for key, value in expected.items():
        assert close(found[key], factor * value if key.startswith("d") else value, 1e-14), key


def test_missing_factor_2_halves_every_gradient():
    trial = mlp_trial(2, [2, 10, 10, 1], 3, "tanh")
    found, expected = mutant("missing_factor_2", trial), reference(trial)
    assert all(np.array_equal(found[k], 0.5 * v) for k, v in gradients(expected).items())


def test_sign_flip_in_training_steps_uphill():
    trial = classifier_trial(3, dropout=True, epochs=1)
    found, expected = mutant("sign_flip", trial), reference(trial)
    assert all_close(
        updates(found, trial["params"]), {k: -v for k, v in updates(expected, trial["params"]).items()}, 1e-12
    )


def test_accumulated_gradients_in_training_step_along_the_running_sum():
    trial = classifier_trial(4, dropout=True, epochs=2, lr=0.1)
    x, y, P0, masks = trial["x"], trial["y"], trial["params"], trial["masks"]
    g0 = dropout_training.step(x, y, P0, masks[0], 0.4)
    P1 = {k: v - 0.1 * g0[f"d{k}"] for k, v in P0.items()}
    g1 = dropout_training.step(x, y, P1, masks[1], 0.4)
    P2 = {k: v - 0.1 * (g0[f"d{k}"] + g1[f"d{k}"]) for k, v in P1.items()}  # .grad never zeroed
    assert all_close(mutant("accumulated_gradients", trial), P2, 1e-12, keys=P2)


@pytest.mark.parametrize("trial", [mlp_trial(0, [2, 5, 5, 1], 4), mlp_trial(0, [5, 4, 6, 3], 4, "relu")])
def test_transposed_gradient_transposes_every_weight_gradient(trial):
    found, expected = mutant("transposed_gradient", trial), reference(trial)
    for key, value in expected.items():
        assert np.array_equal(found[key], value.T if key.startswith("dW") else value), key


@pytest.mark.parametrize(
    "trial, divisor",
    [
        (mlp_trial(0, [2, 5, 1], 4), 4),
        (mlp_trial(0, [2, 5, 3], 4, "tanh"), 12),
        (classifier_trial(0, N=4), 4),
    ],
    ids=["mlp", "mlp-3-outputs", "softmax"],
)
def test_mean_instead_of_sum_divides_loss_and_gradients_by_what_mean_averages_over(trial, divisor):
    found, expected = mutant("mean_instead_of_sum", trial), reference(trial)
    for key, value in expected.items():
        scaled = value / divisor if key.startswith("d") or key == "loss" else value
        assert close(found[key], scaled, 1e-13), key
    back = mutant("sum_instead_of_mean", {**trial, "reduction": "mean"})
    assert all_close(back, expected, 1e-13)


def test_mean_instead_of_sum_in_training_is_training_on_the_mean_loss():
    trial = classifier_trial(5, dropout=True)
    expected = dropout_training.train(trial["x"], trial["y"], trial["params"], trial["masks"], 0.4, 0.01, "mean")
    assert all_close(mutant("mean_instead_of_sum", trial), expected, 1e-14)


@pytest.mark.parametrize(
    "trial", [mlp_trial(0, [2, 10, 10, 1], 1), classifier_trial(0, bias=True)], ids=["mlp", "softmax"]
)
@pytest.mark.parametrize("lr", UPDATE_LEARNING_RATES)
def test_gradients_after_update_are_the_reference_one_sgd_step_later(trial, lr):
    trial = {**trial, "lr": lr}
    expected = reference(trial)
    stepped = {k: v - lr * expected[f"d{k}"] for k, v in trial["params"].items()}
    found = mutant("gradients_after_update", trial)
    assert all_close(found, reference({**trial, "params": stepped}), 1e-14)
    assert distinct(found, expected, trial)


@pytest.mark.parametrize(
    "mistake_id, activation, factor",
    [
        ("derivative_at_activation", "sigmoid", lambda z: dsigmoid(1 / (1 + np.exp(-z)))),
        ("derivative_at_activation", "tanh", lambda z: 1 - np.tanh(np.tanh(z)) ** 2),
        ("derivative_formula_on_preactivation", "sigmoid", lambda z: z * (1 - z)),
        ("derivative_formula_on_preactivation", "tanh", lambda z: 1 - z * z),
    ],
)
def test_hidden_derivative_mistakes_replace_f_prime_of_z_at_the_hidden_layer(mistake_id, activation, factor):
    trial = mlp_trial(7, [3, 5, 1], 1, activation)
    z1 = mlp_regression.forward(trial["x"], trial["params"], activation)["z1"][0]
    found, expected = mutant(mistake_id, trial), reference(trial)
    ratio = factor(z1) / get_activation(activation).df(z1)  # delta1 = (delta2 W2) ⊙ [this, not f'(z1)]
    assert close(found["dW1"], expected["dW1"] * ratio[:, None], 1e-12)
    assert close(found["db1"], expected["db1"] * ratio, 1e-12)
    assert all_close(found, expected, 1e-14, keys=["prediction", "loss", "dW2", "db2"])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_output_activation_derivative_scales_everything_by_f_prime_at_the_output(activation):
    for seed in range(4):  # relu: some trials with zL > 0 (no change), some with zL < 0 (all zero)
        trial = mlp_trial(seed, [3, 5, 5, 1], 1, activation)
        zL = mlp_regression.forward(trial["x"], trial["params"], activation)["z3"]
        found, expected = mutant("output_activation_derivative", trial), reference(trial)
        factor = float(get_activation(activation).df(zL)[0, 0])
        for key, value in gradients(expected).items():
            assert close(found[key], factor * value, 1e-13), (seed, key)


def test_loss_derivative_omitted_gives_the_gradients_of_the_prediction():
    trial = mlp_trial(8, [2, 10, 10, 1], 1)
    found, expected = mutant("loss_derivative_omitted", trial), reference(trial)
    dL_dprediction = 2 * float(expected["prediction"][0, 0] - trial["y"][0, 0])
    for key, value in gradients(expected).items():
        assert close(found[key], value / dL_dprediction, 1e-12), key


def test_backprop_through_w_instead_of_wt_sends_the_error_back_through_the_transpose_of_square_layers():
    trial = mlp_trial(9, [3, 4, 4, 1], 1)  # W2 square, W3 not
    cache = mlp_regression.forward(trial["x"], trial["params"], "sigmoid")
    found, expected = mutant("backprop_through_w_instead_of_wt", trial), reference(trial)
    assert all_close(found, expected, 1e-14, keys=["prediction", "loss", "dW3", "db3", "dW2", "db2"])
    delta1 = (expected["db2"] @ trial["params"]["W2"].T) * dsigmoid(cache["z1"][0])  # W2ᵀ where W2 belongs
    assert close(found["db1"], delta1, 1e-13)
    assert close(found["dW1"], np.outer(delta1, trial["x"][0]), 1e-13)
    symmetric = {**trial["params"], "W2": trial["params"]["W2"] + trial["params"]["W2"].T}
    symmetric_trial = {**trial, "params": symmetric}  # W = Wᵀ hides the mistake
    assert all_close(mutant("backprop_through_w_instead_of_wt", symmetric_trial), reference(symmetric_trial), 1e-14)


def test_preactivation_in_weight_gradient_uses_z_where_a_belongs():
    trial = mlp_trial(10, [3, 4, 5, 1], 1, "tanh")
    cache = mlp_regression.forward(trial["x"], trial["params"], "tanh")
    found, expected = mutant("preactivation_in_weight_gradient", trial), reference(trial)
    assert all_close(found, expected, 1e-14, keys=["prediction", "loss", "dW1", "db1", "db2", "db3"])
    for l in (2, 3):  # dW_l = delta_lᵀ z_{l-1}; delta_l is db_l with one example
        assert close(found[f"dW{l}"], np.outer(expected[f"db{l}"], cache[f"z{l - 1}"][0]), 1e-13), l
    trial = classifier_trial(10)
    x, y, W1 = trial["x"], trial["y"], trial["params"]["W1"]
    found, expected = mutant("preactivation_in_weight_gradient", trial), reference(trial)
    assert close(found["dW2"], (expected["probs"] - y).T @ (x @ W1.T), 1e-13)
    assert close(found["dW1"], expected["dW1"], 1e-14)


def test_logits_instead_of_probs_backpropagates_the_logits_minus_y():
    trial = classifier_trial(11)
    x, y, W1, W2 = trial["x"], trial["y"], trial["params"]["W1"], trial["params"]["W2"]
    h = relu(x @ W1.T)
    z2 = h @ W2.T
    found = mutant("logits_instead_of_probs", trial)
    assert close(found["dW2"], (z2 - y).T @ h, 1e-13)
    assert close(found["dW1"], (((z2 - y) @ W2) * drelu(x @ W1.T)).T @ x, 1e-13)
    assert all_close(found, reference(trial), 1e-14, keys=["probs", "loss"])


@pytest.mark.parametrize(
    "mistake_id, scale",
    [
        ("dropout_without_rescaling", lambda p: 1.0),
        ("dropout_scaled_by_keep_probability", lambda p: 1.0 - p),
        ("p_used_as_keep_probability", lambda p: 1.0 / p),
    ],
)
def test_dropout_scaling_mistakes_train_with_the_kept_units_scaled_by_their_factor(mistake_id, scale):
    trial = classifier_trial(12, dropout=True, bias=True, p=0.3, epochs=4, lr=0.1)
    x, y, params, masks, p = trial["x"], trial["y"], trial["params"], trial["masks"], trial["p"]
    # the reference scales mask' by 1/(1 − p): mask' = mask · scale · (1 − p) keeps units at `scale`
    expected = dropout_training.train(x, y, params, masks * scale(p) * (1 - p), p, 0.1)
    assert all_close(mutant(mistake_id, trial), expected, 1e-12)


def test_masks_ignored_is_training_without_dropout():
    trial = classifier_trial(13, dropout=True, epochs=4, lr=0.1)
    expected = dropout_training.train(trial["x"], trial["y"], trial["params"], np.ones_like(trial["masks"]), 0.0, 0.1)
    assert all_close(mutant("masks_ignored", trial), expected, 1e-14)


def test_mask_not_in_backward_leaves_dW2_right_and_sends_gradient_to_dropped_units():
    trial = classifier_trial(14, dropout=True, epochs=1, lr=1.0)
    x, y, params, mask = trial["x"], trial["y"], trial["params"], trial["masks"][0]
    step = dropout_training.step(x, y, params, mask, 0.4)
    found = updates(mutant("mask_not_in_backward", trial), params)
    assert close(found["W2"], -step["dW2"], 1e-13)
    delta1 = ((step["probs"] - y) @ params["W2"]) * drelu(x @ params["W1"].T)  # no mask / (1 − p)
    assert close(found["W1"], -(delta1.T @ x), 1e-13)


def test_dropout_not_in_backward_trains_the_dropped_units_as_seed_003s_numpy_class_does():
    """dW2 from the activations before dropout and dL/dh without the mask, the forward pass dropping units."""
    trial = classifier_trial(15, dropout=True, epochs=1, lr=1.0)
    x, y, params, mask = trial["x"], trial["y"], trial["params"], trial["masks"][0]
    step = dropout_training.step(x, y, params, mask, 0.4)  # the forward pass (probs) is the reference's
    h = np.maximum(x @ params["W1"].T, 0.0)
    delta2 = step["probs"] - y
    found = updates(mutant("dropout_not_in_backward", trial), params)
    assert close(found["W2"], -(delta2.T @ h), 1e-13) and not close(found["W2"], -step["dW2"], 1e-6)
    delta1 = (delta2 @ params["W2"]) * drelu(x @ params["W1"].T)
    assert close(found["W1"], -(delta1.T @ x), 1e-13)
    pairs = {m.id for m in PAIRS}
    assert "dropout_without_rescaling+dropout_not_in_backward" in pairs  # seed 003's numpy dropout
    assert (
        not {"preactivation_in_weight_gradient+dropout_not_in_backward", "mask_not_in_backward+dropout_not_in_backward"}
        & pairs
    )


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_hidden_derivative_omitted_sends_the_error_back_through_the_weights_only(activation):
    trial = mlp_trial(16, [3, 5, 4, 1], 1, activation)
    found, expected = mutant("hidden_derivative_omitted", trial), reference(trial)
    W2, W3 = trial["params"]["W2"], trial["params"]["W3"]
    delta2 = expected["db3"][None, :] @ W3  # no f'(z2)
    delta1 = delta2 @ W2  # no f'(z1)
    assert close(found["db2"], delta2[0], 1e-12) and close(found["db1"], delta1[0], 1e-12)
    assert close(found["dW1"], delta1.T @ trial["x"], 1e-12)
    assert all_close(found, expected, 1e-14, keys=["prediction", "loss", "dW3", "db3"])
    trial = classifier_trial(16)
    x, y, W2 = trial["x"], trial["y"], trial["params"]["W2"]
    found, expected = mutant("hidden_derivative_omitted", trial), reference(trial)
    assert close(found["dW1"], ((expected["probs"] - y) @ W2).T @ x, 1e-12)  # dL/dz1 taken as dL/dh
    assert close(found["dW2"], expected["dW2"], 1e-14)


@pytest.mark.parametrize(
    "trial", [mlp_trial(17, [3, 4, 2], 5, "tanh"), classifier_trial(17, bias=True)], ids=["mlp", "softmax"]
)
def test_bias_gradient_not_summed_keeps_one_row_per_example_that_sum_to_the_bias_gradient(trial):
    found, expected = mutant("bias_gradient_not_summed", trial), reference(trial)
    N = trial["x"].shape[0]
    for name in (k for k in expected if k.startswith("db")):
        assert found[name].shape == (N, expected[name].shape[0]), name
        assert close(found[name].sum(axis=0), expected[name], 1e-12), name
    assert all_close(found, expected, 1e-14, keys=[k for k in expected if not k.startswith("db")])


def test_next_activation_in_weight_gradient_builds_square_layers_dw_from_their_own_output():
    trial = mlp_trial(18, [3, 5, 5, 1], 1, "sigmoid")  # W2 square: a2 fits where a1 belongs
    cache = mlp_regression.forward(trial["x"], trial["params"], "sigmoid")
    found, expected = mutant("next_activation_in_weight_gradient", trial), reference(trial)
    assert close(found["dW2"], np.outer(expected["db2"], cache["a2"][0]), 1e-12)
    assert all_close(found, expected, 1e-14, keys=["prediction", "loss", "dW1", "db1", "db2", "dW3", "db3"])


def test_input_in_weight_gradient_builds_a_deeper_layers_dw_from_x():
    trial = mlp_trial(19, [4, 4, 3, 1], 2, "relu")  # a1 has x's width: only dW2 can take x
    found, expected = mutant("input_in_weight_gradient", trial), reference(trial)
    cache = mlp_regression.forward(trial["x"], trial["params"], "relu")
    d3 = 2 * (cache["a3"] - trial["y"])
    d2 = (d3 @ trial["params"]["W3"]) * (cache["z2"] > 0)
    assert close(found["dW2"], d2.T @ trial["x"], 1e-12) and not close(found["dW2"], expected["dW2"], 1e-6)
    assert all_close(found, expected, 1e-14, keys=["prediction", "loss", "dW1", "db1", "db2", "dW3", "db3"])


# --- pairs -------------------------------------------------------------------------------------------
def test_a_pair_is_both_mistakes_at_once():
    trial = mlp_trial(20, [2, 10, 10, 1], 1)
    expected = reference(trial)
    both = mutant("missing_factor_2+sign_flip", trial)
    for key, value in gradients(expected).items():
        assert close(both[key], -0.5 * value, 1e-14), key
    both = mutant("missing_factor_2+transposed_gradient", trial)
    for key, value in gradients(expected).items():
        assert close(both[key], 0.5 * (value.T if key.startswith("dW") else value), 1e-14), key
    both = mutant("derivative_at_activation+preactivation_in_weight_gradient", trial)
    cache = mlp_regression.forward(trial["x"], trial["params"], "sigmoid")
    alone = mutant("derivative_at_activation", trial)
    assert close(both["dW2"], np.outer(alone["db2"], cache["z1"][0]), 1e-12) and close(both["dW1"], alone["dW1"], 1e-14)


def test_two_stand_ins_for_one_step_make_no_pair_and_every_other_two_do():
    assert combine(BY_ID["derivative_at_activation"].edit, BY_ID["hidden_derivative_omitted"].edit) is None
    assert pair(BY_ID["missing_factor_2"], BY_ID["loss_derivative_omitted"]) is None  # both set dL/dŷ
    assert pair(BY_ID["mean_instead_of_sum"], BY_ID["sum_instead_of_mean"]) is None
    assert pair(BY_ID["masks_ignored"], BY_ID["mask_not_in_backward"]) is None  # no dropout: no mask to forget
    assert pair(BY_ID["logits_instead_of_probs"], BY_ID["missing_factor_2"]) is None  # no task has both
    ids = {m.id for m in PAIRS}
    for i, first in enumerate(CATALOGUE):
        for second in CATALOGUE[i + 1 :]:
            made = pair(first, second)
            assert (f"{first.id}+{second.id}" in ids) == (made is not None), (first.id, second.id)
            if made is not None:
                assert made.parts == (first.id, second.id) and set(made.kinds) <= set(first.kinds) & set(second.kinds)
    assert Edit() == combine(Edit(), Edit())


def test_pairs_for_a_kind_hold_only_pairs_whose_both_mistakes_apply_to_it():
    for kind in KINDS:
        singles = {m.id for m in mistakes_for(kind)}
        assert pairs_for(kind) and all(set(m.parts) <= singles for m in pairs_for(kind)), kind


def test_a_mistake_made_at_one_layer_bends_only_that_layers_relation():
    trial = mlp_trial(21, [3, 5, 5, 5, 1], 1)
    expected = reference(trial)
    local = at_layer(BY_ID["hidden_derivative_omitted"], 2)
    found = run_mutant(local, **trial)
    assert all_close(found, expected, 1e-14, keys=["prediction", "loss", "dW4", "db4", "dW3", "db3"])
    delta2 = expected["db3"][None, :] @ trial["params"]["W3"]  # σ'(z2) left out at layer 2 only
    assert close(found["db2"], delta2[0], 1e-12)
    cache = mlp_regression.forward(trial["x"], trial["params"], "sigmoid")
    assert close(
        found["db1"], (delta2 @ trial["params"]["W2"])[0] * dsigmoid(cache["z1"][0]), 1e-12
    )  # layer 1 keeps σ'
    local = at_layer(BY_ID["preactivation_in_weight_gradient"], 3)
    found = run_mutant(local, **trial)
    assert close(found["dW3"], np.outer(expected["db3"], cache["z2"][0]), 1e-12)
    assert all_close(found, expected, 1e-14, keys=["dW2", "dW4", "db3"])
    assert local.id == "preactivation_in_weight_gradient@3" and local.parts == ("preactivation_in_weight_gradient",)


def test_only_mistakes_about_one_layers_relations_can_be_made_at_one_layer_and_keep_the_others_everywhere():
    assert at_layer(BY_ID["missing_factor_2"], 1) is None and at_layer(BY_ID["sign_flip"], 1) is None
    assert at_layer(BY_ID["missing_factor_2+sign_flip"], 1) is None
    both = pair(at_layer(BY_ID["hidden_derivative_omitted"], 1), BY_ID["derivative_formula_on_preactivation"])
    assert both is None  # one stand-in for f' at a time
    both = pair(at_layer(BY_ID["hidden_derivative_omitted"], 1), BY_ID["preactivation_in_weight_gradient"])
    trial = mlp_trial(22, [3, 5, 5, 1], 1)
    found, expected = run_mutant(both, **trial), reference(trial)
    cache = mlp_regression.forward(trial["x"], trial["params"], "sigmoid")
    assert close(found["dW3"], np.outer(expected["db3"], cache["z2"][0]), 1e-12)  # the other mistake: every layer


# --- coincidences on particular instances (documented, so the grader can tell them apart) ---------
def test_with_two_examples_averaging_and_accumulating_agree_on_gradients_and_differ_in_the_loss():
    trial = mlp_trial(15, [2, 10, 10, 1], 2, reduction="mean")
    summed, doubled = mutant("sum_instead_of_mean", trial), mutant("accumulated_gradients", trial)
    assert all_close(gradients(summed), gradients(doubled), 1e-13)
    assert not close(summed["loss"], doubled["loss"])
    trial = mlp_trial(15, [2, 10, 10, 1], 2, reduction="sum")
    averaged, halved = mutant("mean_instead_of_sum", trial), mutant("missing_factor_2", trial)
    assert all_close(gradients(averaged), gradients(halved), 1e-13)
    assert not close(averaged["loss"], halved["loss"])


def test_on_the_softmax_handout_instance_relu_mistakes_are_invisible():
    # x = [[1,2,3],[4,5,6]] and positive W1: every hidden pre-activation is positive, so z1 = h and no
    # z1 is 0; the preactivation and ReLU-at-0 mistakes can only be diagnosed on the random trials.
    rubric = tomllib.loads((REPO / "rubrics" / "softmax-dropout.toml").read_text())
    given = rubric["tasks"][0]["given"]
    params = {name: np.array(value).T for name, value in given["params"].items()}  # in×out → torch layout
    trial = dict(kind="softmax_classifier", x=np.array(given["x"]), y=np.array(given["y"]), params=params)
    for mistake_id in ("preactivation_in_weight_gradient", "relu_derivative_at_zero"):
        assert all_close(mutant(mistake_id, trial), reference(trial), 1e-14), mistake_id


# --- buggy samples -------------------------------------------------------------------------------
# Samples of one catalogued mistake or pair ("a+b") as it runs through the whole backward pass; those headed
# "# mistake at layer l:" make one at a single layer and are tested by the localization (tests/test_localize.py).
SAMPLES = sorted(
    p
    for p in (REPO / "submissions").glob("*/*.py")
    if not p.stem.startswith("correct") and not p.read_text(encoding="utf-8").startswith("# mistake at layer")
)
HEADER = re.compile(r"# mistake: ([\w+]+) \(in ([\w, ]+)\) — .+")


def rubric_tasks(rubric_id):
    return tomllib.loads((REPO / "rubrics" / f"{rubric_id}.toml").read_text())["tasks"]


def rubric_trial(task, seed, lr=0.01):
    """A random trial of the rubric task's architecture: x ~ U[0,1], torch-range weights, numpy masks."""
    if task["kind"] == "mlp_regression":
        return mlp_trial(
            seed, task["layers"], task["batch_size"], task["activation"], task["reduction"], task["bias"], lr
        )
    dropout = task["kind"] == "dropout_training"
    return classifier_trial(
        seed,
        task["batch_size"],
        task["inputs"],
        task["hidden"],
        task["classes"],
        task["bias"],
        task["reduction"],
        task["lr"] if dropout else lr,
        dropout,
        task.get("p", 0.0),
        task.get("epochs", 1),
    )


def candidates(mistake_id, trial):
    """The mutant's values for every learning rate the grader would try (training: the task's own)."""
    if trial["kind"] == "dropout_training":
        return [mutant(mistake_id, trial)]
    return [mutant(mistake_id, {**trial, "lr": lr}) for lr in UPDATE_LEARNING_RATES]


def load_sample(path):
    spec = importlib.util.spec_from_file_location(f"sample_{path.parent.name}_{path.stem}".replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_arrays(values):
    return {
        k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, dtype=np.float64) for k, v in values.items()
    }


def call(module, function, trial):
    """The student's function on copies of the trial's arrays (students edit their inputs in place)."""
    args = [trial["x"].copy(), trial["y"].copy(), {k: v.copy() for k, v in trial["params"].items()}]
    if trial["kind"] == "dropout_training":
        args += [trial["masks"].copy(), trial["p"], trial["lr"]]
    return as_arrays(getattr(module, function)(*args))


def sample_trials(rubric_id, mistake_id, buggy_functions):
    """(function, trial) for each contract function, on the first seed where the mistake shows in every
    buggy function (ReLU at 0 needs a pre-activation that is exactly 0)."""
    for seed in range(20):
        calls = []
        for task in rubric_tasks(rubric_id):
            trial = rubric_trial(task, seed)
            if mistake_id == "relu_derivative_at_zero":
                trial = with_zero_preactivation(trial)
            calls += [(function, trial) for function in task["contract"].values()]
        if all(
            distinct(candidates(mistake_id, trial)[0], reference(trial), trial)
            for function, trial in calls
            if function in buggy_functions
        ):
            return calls
    raise AssertionError(f"{mistake_id}: no trial among 20 seeds shows the mistake")


@pytest.mark.parametrize("path", SAMPLES, ids=[f"{p.parent.name}/{p.stem}" for p in SAMPLES])
def test_each_buggy_sample_demonstrates_exactly_the_mistake_it_names(path):
    header = HEADER.fullmatch(path.read_text(encoding="utf-8").splitlines()[0])
    assert header, f"{path}: first line must be '# mistake: <id> (in <functions>) — <what>'"
    mistake_id, buggy = header[1], set(header[2].split(", "))
    assert mistake_id == path.stem and mistake_id in BY_ID
    module = load_sample(path)
    for function, trial in sample_trials(path.parent.name, mistake_id, buggy):
        found, expected = call(module, function, trial), reference(trial)
        quantities = set(found)
        assert quantities <= set(expected), function
        if function not in buggy:
            assert all_close(found, expected, keys=quantities), function
            continue
        assert any(all_close(found, values, keys=quantities) for values in candidates(mistake_id, trial)), function
        assert distinct(found, expected, trial), function
        # and the grader would name no other mistake for it
        others = [
            m.id
            for m in mistakes_for(trial["kind"])
            if m.id != mistake_id
            and any(v is not None and all_close(found, v, keys=quantities) for v in candidates(m.id, trial))
        ]
        assert not others, (function, others)


@pytest.mark.parametrize("rubric_id", ["bs6207-a1", "deep-relu", "softmax-dropout"])
def test_every_mistake_that_applies_to_a_rubric_has_a_buggy_sample(rubric_id):
    expected = set()
    for task in rubric_tasks(rubric_id):
        expected |= set(applicable(rubric_trial(task, 0)))
    found = {p.stem for p in SAMPLES if p.parent.name == rubric_id and "+" not in p.stem}
    assert found == expected


# --- nets with a hidden layer left without activation (seed 002's extra Linear) -------------------------
def seed_002_backward(x, y, params, L):
    """Seed 002's hand-written backward, generalised: weights moved to numpy in×out, 1-D vectors, layer 1
    without activation in the forward pass, and d_relu(hiddens[0]) applied to it all the same."""
    weights = [params[f"W{l}"].T for l in range(1, L + 1)]
    hiddens, a = [], x[0]
    for i in range(L):
        z = a.dot(weights[i]) + params[f"b{i + 1}"]
        a = np.maximum(z, 0.0) if 0 < i < L - 1 else z
        hiddens.append(a)
    dt = 2 * (hiddens[-1] - y[0])
    grads = {f"dW{L}": np.outer(dt, hiddens[-2]), f"db{L}": dt}
    for i in range(L - 2, 0, -1):
        dt = dt.dot(weights[i + 1].T) * (hiddens[i] > 0)
        grads[f"dW{i + 1}"], grads[f"db{i + 1}"] = np.outer(dt, hiddens[i - 1]), dt
    dt = dt.dot(weights[1].T) * (hiddens[0] > 0)  # the seed's d_relu at a layer that has no ReLU
    grads["dW1"], grads["db1"] = np.outer(dt, x[0]), dt
    return grads


def test_derivative_without_activation_is_seed_002s_relu_derivative_at_its_linear_first_layer():
    trial = mlp_trial(4, [4, 6, 6, 6, 1], 1, ("identity", "relu", "relu"), lr=0.0)
    found = gradients(mutant("derivative_without_activation", trial))
    student = seed_002_backward(trial["x"], trial["y"], trial["params"], 4)
    assert all_close(found, student, keys=set(student))
    expected = gradients(reference(trial))
    assert not all_close(found, expected, 1e-6, keys={"dW1", "db1"}) and all_close(found, expected, keys={"dW4", "dW2"})


def test_derivative_without_activation_applies_only_to_nets_with_a_layer_without_activation():
    assert mutant("derivative_without_activation", mlp_trial(0, [2, 3, 3, 1], 1, "relu")) is None
    assert mutant("derivative_without_activation", mlp_trial(0, [2, 3, 3, 1], 1, ("identity", "identity"))) is None


@pytest.mark.parametrize("mistake_id", ["derivative_at_activation", "relu_derivative_at_zero", "missing_factor_2"])
def test_per_layer_mutants_keep_the_derivative_1_at_a_layer_without_activation(mistake_id):
    """A twist of the activation's derivative leaves a layer without activation alone: its delta passes
    through unchanged, as the reference's does."""
    trial = mlp_trial(
        5, [3, 5, 5, 1], 1, ("identity", "sigmoid" if mistake_id != "relu_derivative_at_zero" else "relu")
    )
    values = mutant(mistake_id, trial)
    delta2 = values["db2"][None, :]  # one example: db2 is delta2
    assert close(values["db1"], (delta2 @ trial["params"]["W2"])[0], 1e-12)


def test_a_mutant_that_diverges_in_training_gives_non_finite_values_without_numpy_warnings():
    trial = classifier_trial(0, dropout=True, lr=1e4, epochs=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = mutant("sign_flip", trial)
    assert not all(np.isfinite(value).all() for value in found.values())
