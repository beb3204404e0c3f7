"""The one comparison function: shape first, then values with DESIGN §6's tolerance."""

import numpy as np

from grader.checkspec import Tolerance
from grader.compare import Verdict, compare

TOL = Tolerance(rtol=1e-4, atol=1e-8, atol_rel=1e-5)


def test_float32_rounding_passes():
    expected = np.random.default_rng(0).normal(size=(10, 2))
    found = expected.astype(np.float32).astype(np.float64)
    assert compare("dW1", found, expected, TOL).verdict == Verdict.passed


def test_gradients_of_weights_after_one_sgd_step_fail():
    rng = np.random.default_rng(1)
    expected = rng.normal(size=(10, 10))
    found = expected * (1 + 2e-3 * rng.normal(size=(10, 10)))
    result = compare("dW2", found, expected, TOL)
    assert result.verdict == Verdict.failed
    assert "expected" in result.message and "found" in result.message and result.where is not None


def test_a_transposed_gradient_is_accepted_only_when_allowed_and_reported():
    expected = np.arange(20.0).reshape(10, 2)
    assert compare("dW1", expected.T, expected, TOL, allow_transposed=True).layout == "transposed (in, out) layout"
    refused = compare("dW1", expected.T, expected, TOL, allow_transposed=False)
    assert refused.verdict == Verdict.wrong_shape
    assert "expected shape (10, 2), found (2, 10)" in refused.message and "transpose" in refused.message


def test_singleton_axes_are_read_through():
    expected = np.arange(10.0)
    result = compare("db1", expected.reshape(1, 10), expected, TOL)
    assert result.verdict == Verdict.passed and "read as (10,)" in result.layout
    assert compare("loss", np.array([[2.5]]), np.array(2.5), TOL).verdict == Verdict.passed


def test_nan_and_inf_fail_with_where():
    expected = np.ones((3, 3))
    found = expected.copy()
    found[1, 2] = np.nan
    result = compare("dW2", found, expected, TOL)
    assert result.verdict == Verdict.not_finite and "(1, 2)" in result.message


def test_the_worst_error_and_tolerance_are_reported():
    expected = np.array([1.0, 2.0, 3.0])
    found = np.array([1.0, 2.5, 3.0])
    result = compare("db2", found, expected, TOL)
    assert result.max_abs_error == 0.5 and result.where == (1,)
    assert result.atol_eff == max(TOL.atol, TOL.atol_rel * 3.0)
