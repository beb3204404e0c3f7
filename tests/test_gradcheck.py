"""Central differences: right on functions with known gradients, and harmless to their inputs."""

import numpy as np
import pytest

from reference.gradcheck import central_difference


def test_a_quadratic_gets_its_exact_gradient():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    params = {"W1": np.array([[0.5, -1.0], [2.0, 0.25]]), "b1": np.array([1.0, -2.0])}

    def loss_of(theta):  # L = Σ (W A)² / 2 + c·b  ⇒  dW = (W A) Aᵀ, db = c
        return float(((theta["W1"] @ A) ** 2).sum() / 2 + np.array([3.0, -4.0]) @ theta["b1"])

    found = central_difference(loss_of, params)
    assert set(found) == {"dW1", "db1"}
    np.testing.assert_allclose(found["dW1"], (params["W1"] @ A) @ A.T, rtol=1e-8)
    np.testing.assert_allclose(found["db1"], [3.0, -4.0], rtol=1e-8)


def test_every_key_gets_a_d_prefixed_gradient_of_the_same_shape():
    params = {"W1": np.ones((3, 2)), "b1": np.ones(3), "W2": np.ones((1, 3)), "b2": np.ones(1)}
    found = central_difference(lambda theta: sum(float(v.sum()) for v in theta.values()), params)
    shapes = {k: v.shape for k, v in found.items()}
    assert shapes == {"dW1": (3, 2), "db1": (3,), "dW2": (1, 3), "db2": (1,)}
    for value in found.values():
        np.testing.assert_allclose(value, 1.0, rtol=1e-8)  # rounding: ~1e-16 · |L| / ε
        assert value.dtype == np.float64


def test_the_error_is_second_order_in_eps():
    # d/dθ θ³ by central differences is 3θ² + ε² exactly
    params = {"W1": np.array([2.0])}
    for eps in (1e-2, 1e-3):
        found = central_difference(lambda theta: float(theta["W1"][0] ** 3), params, eps=eps)
        assert found["dW1"][0] == pytest.approx(12.0 + eps**2, rel=1e-9)


def test_each_element_is_perturbed_alone():
    params = {"W1": np.array([[1.0, 2.0], [3.0, 4.0]])}

    def loss_of(theta):  # L = W11 · W22 couples two elements; dW = [[W22, 0], [0, W11]]
        return float(theta["W1"][0, 0] * theta["W1"][1, 1])

    found = central_difference(loss_of, params)["dW1"]
    np.testing.assert_allclose(found, [[4.0, 0.0], [0.0, 1.0]], atol=1e-9)


def test_params_are_never_mutated_and_integers_are_accepted():
    params = {"W1": np.array([[1, 2], [3, 4]]), "b1": np.array([0.5, 0.5])}
    originals = {k: v.copy() for k, v in params.items()}
    for value in params.values():
        value.flags.writeable = False
    seen_dtypes = set()

    def loss_of(theta):
        seen_dtypes.update(v.dtype for v in theta.values())
        assert all(not np.shares_memory(theta[k], params[k]) for k in params)
        return float((theta["W1"] ** 2).sum() + theta["b1"].sum())

    found = central_difference(loss_of, params)
    np.testing.assert_allclose(found["dW1"], 2.0 * originals["W1"], rtol=1e-8)
    assert seen_dtypes == {np.dtype(np.float64)}
    for key, value in originals.items():
        np.testing.assert_array_equal(params[key], value)


def test_the_parameters_seen_by_loss_of_are_restored_after_each_element():
    params = {"W1": np.array([1.0, 2.0, 3.0])}
    seen = []

    def loss_of(theta):
        seen.append(theta["W1"].copy())
        return float(theta["W1"].sum())

    central_difference(loss_of, params, eps=0.5)
    changed = [np.flatnonzero(s != params["W1"]).tolist() for s in seen]
    assert changed == [[0], [0], [1], [1], [2], [2]]  # exactly one element moved per evaluation
