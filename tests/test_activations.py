"""Activations: values and derivatives agree with torch; derivatives are taken at the pre-activation."""

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from reference.activations import ACTIVATIONS, get_activation

TORCH = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}
NAMES = sorted(ACTIVATIONS)


def sample_z():
    """Pre-activations spanning both signs, including exact zero and large magnitudes."""
    z = np.random.default_rng(0).normal(scale=3.0, size=200)
    return np.concatenate([z, [0.0, -0.0, 1e-12, -1e-12, 30.0, -30.0]])


def test_the_three_activations_are_offered_by_name():
    assert set(ACTIVATIONS) == {"sigmoid", "relu", "tanh"}
    for name, activation in ACTIVATIONS.items():
        assert activation.name == name


@pytest.mark.parametrize("name", NAMES)
def test_values_match_torch(name):
    z = sample_z()
    expected = TORCH[name](torch.tensor(z)).numpy()
    found = ACTIVATIONS[name].f(z)
    assert found.dtype == np.float64
    np.testing.assert_allclose(found, expected, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_torch_autograd_at_the_pre_activation(name):
    z = sample_z()
    zt = torch.tensor(z, requires_grad=True)
    (expected,) = torch.autograd.grad(TORCH[name](zt).sum(), zt)
    found = ACTIVATIONS[name].df(z)
    # 1 − tanh² cancels near saturation, so one ulp of tanh is ~1e-16 absolute there
    np.testing.assert_allclose(found, expected.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_central_differences_away_from_kinks(name):
    z = sample_z()
    z = z[np.abs(z) > 1e-3]
    eps = 1e-6
    f = ACTIVATIONS[name].f
    expected = (f(z + eps) - f(z - eps)) / (2 * eps)
    np.testing.assert_allclose(ACTIVATIONS[name].df(z), expected, rtol=1e-6, atol=1e-9)


def test_relu_derivative_at_exactly_zero_is_zero_as_in_torch():
    z = np.array([-0.0, 0.0])
    assert ACTIVATIONS["relu"].df(z).tolist() == [0.0, 0.0]
    zt = torch.tensor(z, requires_grad=True)
    (g,) = torch.autograd.grad(torch.relu(zt).sum(), zt)
    assert g.tolist() == [0.0, 0.0]


def test_sigmoid_derivative_is_taken_at_z_not_at_the_activation():
    z = np.array([0.5, 2.0, -1.0])
    s = ACTIVATIONS["sigmoid"].f(z)
    assert np.allclose(ACTIVATIONS["sigmoid"].df(z), s * (1 - s))
    assert not np.allclose(ACTIVATIONS["sigmoid"].df(z), ACTIVATIONS["sigmoid"].df(s))


def test_sigmoid_saturates_without_overflow_warnings():
    z = np.array([-1000.0, -745.0, 745.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ACTIVATIONS["sigmoid"].f(z)
        ds = ACTIVATIONS["sigmoid"].df(z)
    assert s.tolist()[2:] == [1.0, 1.0]
    assert s[0] == 0.0 and 0.0 <= s[1] < 1e-300
    assert np.all(np.isfinite(ds)) and np.all(ds >= 0)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_mutated_and_integers_are_accepted(name):
    z = np.array([-2, 0, 3])
    z.flags.writeable = False
    assert ACTIVATIONS[name].f(z).dtype == np.float64
    assert ACTIVATIONS[name].df(z).dtype == np.float64
    assert z.tolist() == [-2, 0, 3]


def test_activations_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ACTIVATIONS["relu"].f = np.tanh


def test_an_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="relu, sigmoid, tanh"):
        get_activation("softplus")
