"""Printed gradients read as precisely as they were printed, and checked on the value they were printed from."""

import numpy as np

from grader.notebook.datfile import parse_dat
from grader.notebook.precision import (
    MAX_DECIMALS,
    MIN_ON_GRID,
    _on_grid,
    printed_from,
    rounded_decimals,
    rounded_uncertainties,
    sharpen,
)


def printed(values):
    """What numpy prints for np.round(values, 5) (seed 002), as the .dat parser reads it: (values, uncertainty)."""
    [array] = parse_dat("db1:\n" + str(np.round(np.asarray(values), 5)) + "\n")
    return array.values, array.uncertainty


def test_np_round_5_printed_with_a_common_mantissa_is_read_to_its_rounding_not_its_digits():
    values, uncertainty = printed([5.2e-05, -2.1e-05, 0.0, 1.13e-04, 3.3e-05])
    assert np.min(uncertainty[values != 0]) < 5e-6  # '5.0e-05' claims ±5e-07
    assert rounded_decimals(values, uncertainty) == 5
    widened = rounded_uncertainties({"db1": (values, uncertainty)})["db1"]
    assert np.allclose(widened, 5e-6)


def test_an_array_rounded_to_all_zeros_takes_the_grid_of_its_file():
    values, uncertainty = printed([1e-07, -2e-07, 3e-07])
    assert np.all(values == 0) and np.max(uncertainty) >= 0.5  # '0.e+00': one digit
    other, other_unc = printed([5.2e-05, -2.1e-05, 1.13e-04, 3.3e-05])
    found = rounded_uncertainties({"db1": (values, uncertainty), "db2": (other, other_unc)})
    assert np.allclose(found["db1"], 5e-6) and np.allclose(found["db2"], 5e-6)
    assert np.array_equal(rounded_uncertainties({"db1": (values, uncertainty)})["db1"], uncertainty)  # nothing to go by


def test_full_precision_values_are_not_taken_for_rounded_ones():
    values = np.array([0.1234567, -0.00123456, 0.5, 0.25])  # numpy's 8 digits: no common grid as coarse as those
    assert rounded_decimals(values, np.full(4, 5e-8)) is None
    assert rounded_decimals(np.array([0.12, 0.5, 0.25]), np.full(3, 5e-3)) == 2  # printed to 2 decimals: as printed


def test_a_precise_value_is_taken_only_when_it_agrees_with_every_printed_number():
    exact = np.array([[1.2e-05, -3.4e-06], [7.7e-06, 0.0]])
    shown, unc = np.round(exact, 5), np.full((2, 2), 5e-6)
    assert np.array_equal(printed_from(shown, unc, exact), exact)
    assert np.array_equal(printed_from(shown, unc, exact.T.copy(), transposed=True), exact)  # stored (in, out)
    assert printed_from(shown, unc, exact + 2e-5) is None


def test_sharpen_replaces_only_values_too_coarse_to_verify_and_says_so():
    exact = {"dW1": np.array([[1.2e-05, -3.4e-06]]), "dW2": np.array([[0.31, -0.52]])}
    values = {k: np.round(v, 5) for k, v in exact.items()}
    uncertainty = {k: np.full(v.shape, 5e-6) for k, v in values.items()}
    provenance = {k: f"f.dat line {i}" for i, k in enumerate(values, start=1)}
    taken = sharpen(
        values, uncertainty, provenance, exact, 1e-2, lambda key: [(exact[key], f"variable {key}", key)], set()
    )
    assert taken == {"dW1": "dW1"} and np.array_equal(values["dW1"], exact["dW1"]) and "dW1" not in uncertainty
    assert "printed to ±5e-06, too coarse to check, so checked at full precision on variable dW1" in provenance["dW1"]
    assert provenance["dW2"] == "f.dat line 2" and "dW2" in uncertainty


def test_rounded_decimals_is_the_coarsest_grid_every_number_lies_on_as_on_grid_says():
    # rounded_decimals makes _on_grid's parts once and stops at the first grid finer than the printing;
    # it must name exactly the k the definition names, nan precision (nan, inf printed) included
    rng = np.random.default_rng(7)
    for _ in range(3000):
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        values = np.round(rng.normal(size=shape) * 10.0 ** int(rng.integers(-6, 3)), int(rng.integers(0, 14)))
        values[rng.random(shape) < 0.2] = 0.0
        uncertainty = np.full(shape, 0.5 * 10.0 ** -int(rng.integers(0, 14))) * rng.choice([0.1, 1, 10], size=shape)
        uncertainty[rng.random(shape) < 0.05] = np.nan
        definition = (
            next((k for k in range(MAX_DECIMALS + 1) if _on_grid(values, uncertainty, k)), None)
            if np.count_nonzero(values) >= MIN_ON_GRID
            else None
        )
        assert rounded_decimals(values, uncertainty) == definition
