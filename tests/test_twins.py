"""The torch twins: autograd-only gradients, numpy float64 out, no side effects on the caller or torch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import init_params

from reference import dropout_training, mlp_regression, softmax_classifier, twins
from reference.gradcheck import central_difference


def regression_trial(seed=0, layers=(2, 10, 10, 1), batch=3, bias=True):
    rng = np.random.default_rng(seed)
    params = init_params(rng, list(layers), bias)
    x = rng.uniform(size=(batch, layers[0]))
    return x, mlp_regression.target(x), params


def classifier_trial(seed=0, N=4, layers=(3, 5, 4), bias=True, p=0.4, epochs=3):
    rng = np.random.default_rng(seed)
    params = init_params(rng, list(layers), bias)
    x = rng.uniform(size=(N, layers[0]))
    y = np.eye(layers[-1])[rng.integers(layers[-1], size=N)]
    masks = (rng.random(size=(epochs, N, layers[1])) >= p).astype(np.float64)
    return x, y, params, masks


def every_twin():
    """(name, thunk) for every twin on a small instance."""
    x, y, params = regression_trial()
    cx, cy, cparams, masks = classifier_trial()
    return {
        "mlp_regression": lambda: twins.mlp_regression(x, y, params, "tanh", "mean"),
        "softmax_classifier": lambda: twins.softmax_classifier(cx, cy, cparams),
        "dropout_step": lambda: twins.dropout_step(cx, cy, cparams, masks[0], 0.4),
        "dropout_train": lambda: twins.dropout_train(cx, cy, cparams, masks, 0.4, 0.1),
    }


def assert_agrees_with_central_differences(found, loss_of, params):
    rounding = 1e-8 * abs(float(found["loss"]))
    for key, expected in central_difference(loss_of, params).items():
        assert np.abs(found[key] - expected).max() <= 1e-6 * np.abs(expected).max() + rounding, key


@pytest.mark.parametrize("name", sorted(every_twin()))
def test_every_twin_returns_numpy_float64_arrays(name):
    out = every_twin()[name]()
    for key, value in out.items():
        assert isinstance(value, np.ndarray) and value.dtype == np.float64, key


@pytest.mark.parametrize("name", sorted(every_twin()))
def test_every_twin_takes_its_gradients_from_autograd(name, monkeypatch):
    calls = []
    backward, grad = torch.autograd.backward, torch.autograd.grad

    def counted(function, label):
        def wrapper(*args, **kwargs):
            calls.append(label)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(torch.autograd, "backward", counted(backward, "backward"))
    monkeypatch.setattr(torch.autograd, "grad", counted(grad, "grad"))
    every_twin()[name]()
    assert calls


@pytest.mark.parametrize("name", sorted(every_twin()))
def test_every_twin_works_inside_no_grad(name):
    expected = every_twin()[name]()
    with torch.no_grad():
        found = every_twin()[name]()
    for key in expected:
        np.testing.assert_array_equal(found[key], expected[key])


def test_twins_leave_torch_global_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for thunk in every_twin().values():
        thunk()
    twins.autograd_graph_nodes([2, 10, 10, 1], "relu", batch=4)
    assert torch.equal(torch.rand(3), expected)  # torch's RNG stream untouched
    assert torch.get_default_dtype() == torch.float32
    assert torch.is_grad_enabled()


def test_twin_keys_and_shapes_are_those_of_the_scratch_code():
    x, y, params = regression_trial(bias=False)
    cx, cy, cparams, masks = classifier_trial(bias=True)
    pairs = [
        (twins.mlp_regression, mlp_regression.scratch, (x, y, params)),
        (twins.softmax_classifier, softmax_classifier.scratch, (cx, cy, cparams)),
        (twins.dropout_step, dropout_training.step, (cx, cy, cparams, masks[0], 0.4)),
        (twins.dropout_train, dropout_training.train, (cx, cy, cparams, masks, 0.4, 0.1)),
    ]
    for twin, scratch, arguments in pairs:
        shapes = {k: v.shape for k, v in scratch(*arguments).items()}
        assert {k: v.shape for k, v in twin(*arguments).items()} == shapes


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_regression_twin_agrees_with_central_differences(activation, reduction, bias):
    x, y, params = regression_trial(seed=3, layers=(3, 4, 4, 2), batch=3, bias=bias)
    y = np.hstack([y, 2 * y])  # two outputs

    def loss_of(theta):
        L, _ = mlp_regression.count_layers(theta)
        return mlp_regression.loss(mlp_regression.forward(x, theta, activation)[f"a{L}"], y, reduction)

    found = twins.mlp_regression(x, y, params, activation, reduction)
    assert_agrees_with_central_differences(found, loss_of, params)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
def test_classifier_twins_agree_with_central_differences(dropout, reduction):
    x, y, params, masks = classifier_trial(seed=4, N=3, bias=True)

    def loss_of(theta):
        if dropout:
            return float(dropout_training.step(x, y, theta, masks[0], 0.4, reduction)["loss"])
        return float(softmax_classifier.scratch(x, y, theta, reduction)["loss"])

    if dropout:
        found = twins.dropout_step(x, y, params, masks[0], 0.4, reduction)
    else:
        found = twins.softmax_classifier(x, y, params, reduction)
    assert_agrees_with_central_differences(found, loss_of, params)


def test_dropout_twin_with_all_ones_mask_and_p_zero_is_the_classifier_twin():
    x, y, params, _ = classifier_trial(seed=5)
    found = twins.dropout_step(x, y, params, np.ones((4, 5)), 0.0)
    expected = twins.softmax_classifier(x, y, params)
    for key in expected:
        np.testing.assert_array_equal(found[key], expected[key])


def test_float32_inputs_are_computed_in_float64():
    x, y, params = regression_trial(seed=6)
    as32 = {k: v.astype(np.float32) for k, v in params.items()}
    found = twins.mlp_regression(x.astype(np.float32), y.astype(np.float32), as32)
    expected = twins.mlp_regression(
        x.astype(np.float32).astype(np.float64),
        y.astype(np.float32).astype(np.float64),
        {k: v.astype(np.float64) for k, v in as32.items()},
    )
    for key in expected:
        np.testing.assert_array_equal(found[key], expected[key])


def test_a_node_reached_by_two_paths_is_counted_once():
    w = torch.ones(3, requires_grad=True)
    a = w * 2.0  # MulBackward0, used twice below
    loss = (a + a.exp()).sum()  # AddBackward0 reaches MulBackward0 directly and through ExpBackward0
    assert twins.graph_node_names(loss.grad_fn) == [
        "AccumulateGrad",
        "AddBackward0",
        "ExpBackward0",
        "MulBackward0",
        "SumBackward0",
    ]


def test_graph_nodes_do_not_depend_on_the_batch_size():
    one = twins.autograd_graph_nodes([3, 4, 4, 1], "tanh", bias=True, reduction="mean", batch=1)
    for batch in (2, 7):
        assert twins.autograd_graph_nodes([3, 4, 4, 1], "tanh", True, "mean", batch=batch) == one


def test_dropout_twins_reject_a_drop_probability_of_one():
    x, y, params, masks = classifier_trial()
    with pytest.raises(ValueError, match="0 <= p < 1"):
        twins.dropout_step(x, y, params, masks[0], 1.0)
    with pytest.raises(ValueError, match="0 <= p < 1"):
        twins.dropout_train(x, y, params, masks, 1.0, 0.01)


def test_an_unknown_activation_is_rejected_by_the_twin():
    x, y, params = regression_trial()
    with pytest.raises(ValueError, match="unknown activation"):
        twins.mlp_regression(x, y, params, "gelu")


def test_only_the_twins_import_torch():
    # the grader imports the numpy reference on hot paths, where torch's ~1 s import must not be paid
    code = (
        "import sys\n"
        "import reference.activations, reference.mlp_regression, reference.softmax_classifier\n"
        "import reference.dropout_training, reference.autograd_graph, reference.gradcheck\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
