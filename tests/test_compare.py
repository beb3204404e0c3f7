"""The one comparison function: shape first, then values with DESIGN §6's tolerance."""

import numpy as np
import pytest

from grader.compare import Verdict, compare, compare_trials, within
from grader.rubric.checkspec import Tolerance

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


def test_printed_rounding_does_not_count_against_the_student():
    expected = np.array([0.012345678, -0.5])
    found = np.round(expected, 4)
    result = compare("db1", found, expected, TOL, uncertainty=np.full(2, 0.5e-4))
    assert result.verdict == Verdict.passed


def test_a_gradient_of_1e_minus_7_printed_to_4_decimals_is_not_verifiable_never_passed():
    expected = np.array([[1.2e-7, -3.4e-7], [5.0e-8, 2.2e-7]])
    found = np.round(expected, 4)  # all zeros: a wrong answer (0) prints the same
    result = compare("dW1", found, expected, TOL, uncertainty=np.full((2, 2), 0.5e-4))
    assert result.verdict == Verdict.not_verifiable
    assert "not verifiable at this precision" in result.message and "print more digits" in result.message


def test_the_same_small_gradient_printed_in_scientific_notation_is_verified():
    expected = np.array([1.1669e-09, 6.6035e-10])
    found = np.array([1.1669e-09, 6.6035e-10])
    uncertainty = np.array([0.5e-13, 0.5e-14])
    assert compare("dW1", found, expected, TOL, uncertainty=uncertainty).verdict == Verdict.passed


def test_a_coarsely_printed_wrong_value_still_fails():
    expected = np.array([0.25, 0.5])
    found = np.array([0.5, 1.0])  # factor 2 off, printed to one decimal
    assert compare("db2", found, expected, TOL, uncertainty=np.full(2, 0.05)).verdict == Verdict.failed


def test_within_agrees_with_compare_on_every_kind_of_value():
    """`within` is the quick test diagnosis runs thousands of times; it must never disagree with compare."""
    from grader.compare import within

    rng = np.random.default_rng(7)
    for case in range(400):
        expected = rng.normal(size=(4, 3)) * 10.0 ** rng.integers(-6, 3)
        scale = 10.0 ** rng.uniform(-9, -1)
        found = expected + scale * rng.normal(size=expected.shape) * np.abs(expected).max()
        if case % 25 == 0:
            found[1, 1] = np.nan if case % 50 == 0 else np.inf
        agreed = compare("dW1", found, expected, TOL).verdict == Verdict.passed
        assert within(found, expected, TOL) == agreed, (case, scale)
    assert not within(np.zeros((3, 4)), np.zeros((4, 3)), TOL)


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the overflow is the point of the test
def test_a_finite_value_whose_error_overflows_fails_and_is_not_called_not_finite():
    """The not-finite test runs only when the largest error is not finite; an overflowing difference of two
    finite numbers must still be judged as an ordinary failure, at the right element."""
    expected = np.array([0.5, -1.7e308])
    found = np.array([0.5, 1.7e308])
    outcome = compare("loss", found, expected, TOL)
    assert outcome.verdict == Verdict.failed
    assert outcome.where == (1,)
    assert not within(found, expected, TOL)


@pytest.mark.parametrize("shape", [(), (1,), (10,), (1, 10), (10, 2), (4, 3), (0, 3)])
def test_comparing_all_trials_at_once_gives_exactly_what_comparing_each_trial_gives(shape):
    """compare_trials is the one-pass form the check stage uses; every field must equal compare's."""
    rng = np.random.default_rng(len(shape) * 10 + sum(shape))
    for case in range(60):
        expecteds = [rng.normal(size=shape) * 10.0 ** rng.integers(-6, 3) for _ in range(5)]
        founds = [e + 10.0 ** rng.uniform(-12, 0) * rng.normal(size=shape) for e in expecteds]
        if case % 7 == 0:
            founds[2] = np.zeros(shape)
        if case % 11 == 0 and founds[1].size:
            founds[1].flat[0] = np.nan  # not finite: the one-pass form hands over to compare
        if case % 13 == 0 and len(shape) == 2:
            founds[3] = founds[3].T.copy()  # another layout: the same
        together = compare_trials("scratch.dW1", founds, expecteds, TOL, allow_transposed=case % 2 == 0)
        one_by_one = [compare("scratch.dW1", f, e, TOL, case % 2 == 0) for f, e in zip(founds, expecteds)]
        for got, want in zip(together, one_by_one, strict=True):
            assert (got.verdict, got.message, got.layout, got.where) == (
                want.verdict,
                want.message,
                want.layout,
                want.where,
            )
            assert (got.max_abs_error, got.max_rel_error, got.atol_eff) == (
                want.max_abs_error,
                want.max_rel_error,
                want.atol_eff,
            )
            assert (got.excess is None) == (want.excess is None)
            if got.excess is not None:
                assert np.array_equal(got.excess, want.excess) and got.excess.shape == want.excess.shape


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_an_expected_value_that_is_not_a_number_never_lets_a_comparison_pass():
    """Only the reference could produce it, and then nothing may be called a match."""
    outcome = compare("loss", np.array([1.0, 2.0]), np.array([np.nan, 2.0]), TOL)
    assert outcome.verdict == Verdict.failed and "1 of 2 values off" in outcome.message
