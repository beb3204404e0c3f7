"""The one comparison every numeric check goes through (DESIGN §6).

float64 throughout. Shape first: the expected shape, the same numbers with singleton axes added or
dropped (`db1` as (1, 10) instead of (10,)), or — where the rubric allows it — the transposed (in, out)
layout of a weight gradient, which the result reports. Then values, element-wise:
|found − expected| ≤ atol_eff + rtol·|expected|, with atol_eff = max(atol, atol_rel·max|expected|).
"""

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from grader.rubric.checkspec import Tolerance

_TINY = float(np.finfo(np.float64).tiny)
_MAX, _ALL = np.maximum.reduce, np.logical_and.reduce  # without ndarray.max's Python wrapper


class Verdict(StrEnum):
    """Outcome of one comparison."""

    passed = "passed"
    failed = "failed"
    wrong_shape = "wrong_shape"
    not_finite = "not_finite"
    not_verifiable = "not_verifiable"


@dataclass(frozen=True)
class Comparison:
    """What one comparison found: verdict, layout read, worst errors and where, tolerance used."""

    verdict: Verdict
    message: str
    layout: str = "as expected"
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    where: tuple[int, ...] | None = None
    atol_eff: float | None = None
    rtol: float | None = None
    aligned: np.ndarray | None = None
    excess: np.ndarray | None = None


def compare(
    name: str,
    found: np.ndarray,
    expected: np.ndarray,
    tolerance: Tolerance,
    allow_transposed: bool = False,
    uncertainty: np.ndarray | None = None,
) -> Comparison:
    """Compare `found` with `expected` for quantity `name`; the message says what was expected and found.

    `uncertainty` is the printed precision of values read from text (half a unit in the last digit, per
    element): rounding never counts against the student, and a value printed too coarsely to tell a right
    answer from a wrong one is `not_verifiable`, never `passed`.
    """
    found = np.asarray(found, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    aligned, layout = align(found, expected, allow_transposed)
    if aligned is None:
        hint = (
            " — this is the transpose; return gradients in the same layout as params"
            if (found.ndim == 2 and found.T.shape == expected.shape)
            else ""
        )
        return Comparison(Verdict.wrong_shape, f"{name}: expected shape {expected.shape}, found {found.shape}{hint}")
    magnitude, scale, atol_eff, allowed = _allowed(expected, tolerance)
    error = np.abs(aligned - expected)
    max_abs = float(_MAX(error, axis=None)) if error.size else 0.0
    if not math.isfinite(max_abs) and not np.isfinite(aligned).all():  # only then look for the culprit
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(aligned))[0])
        value = aligned[bad] if aligned.ndim else aligned
        return Comparison(
            Verdict.not_finite, f"{name}: expected finite numbers, found {value} at {bad}", layout, where=bad
        )
    printed_max = 0.0
    if uncertainty is not None:
        printed, _ = align(np.asarray(uncertainty, dtype=np.float64), expected, allow_transposed)
        allowed = allowed + printed
        printed_max = float(printed.max()) if printed.size else 0.0
    over = error - allowed
    flat = int(over.argmax()) if error.size else 0
    max_rel = float(_MAX(error / np.maximum(magnitude, _TINY), axis=None)) if error.size else 0.0
    if math.isfinite(max_abs) and math.isfinite(scale):  # no nan in `over`: the largest overshoot decides
        off = 0 if not error.size or not over.flat[flat] > 0.0 else int(np.count_nonzero(over > 0.0))
    else:  # inf − inf or a nan: count what the tolerance rule does not accept
        off = int(np.count_nonzero(~(error <= allowed)))
    return _judge(
        name,
        tolerance,
        layout,
        aligned,
        expected,
        error,
        allowed,
        (max_abs, max_rel, atol_eff, scale, flat, off),
        printed_max,
    )


def compare_trials(
    name: str, founds: list, expecteds: list[np.ndarray], tolerance: Tolerance, allow_transposed: bool = False
) -> list[Comparison]:
    """`compare(name, found, expected, tolerance, allow_transposed)` for each pair, with the same results, in one numpy pass
    over all of them when every found value already has its expected shape and every error is finite (the
    usual case): a check runs on every trial, and small-array numpy calls cost more than their arithmetic."""
    shape = np.shape(expecteds[0]) if expecteds else ()
    if (
        len(founds) < 2
        or any(not isinstance(f, np.ndarray) or f.shape != shape for f in founds)
        or any(np.shape(e) != shape for e in expecteds)
    ):
        return [compare(name, f, e, tolerance, allow_transposed) for f, e in zip(founds, expecteds)]
    found = np.array(founds, dtype=np.float64)
    expected = np.array(expecteds, dtype=np.float64)
    trials, size = found.shape[0], int(np.prod(shape, dtype=np.int64))
    magnitude = np.abs(expected).reshape(trials, size)
    error = np.abs(found - expected).reshape(trials, size)
    scale, atol_eff, allowed = allowed_rows(magnitude, tolerance)
    max_abs = _MAX(error, axis=1) if size else np.zeros(trials)
    if not (np.isfinite(max_abs).all() and np.isfinite(scale).all()):
        return [compare(name, f, e, tolerance, allow_transposed) for f, e in zip(founds, expecteds)]
    over = error - allowed
    flat = over.argmax(axis=1) if size else np.zeros(trials, dtype=np.int64)
    failing = over[np.arange(trials), flat] > 0.0 if size else np.zeros(trials, dtype=bool)
    max_rel = _MAX(error / np.maximum(magnitude, _TINY), axis=1) if size else np.zeros(trials)
    off = np.count_nonzero(over > 0.0, axis=1)
    excess = (error / np.maximum(allowed, _TINY)).reshape(found.shape)
    error, allowed = error.reshape(found.shape), allowed.reshape(found.shape)
    return [
        _judge(
            name,
            tolerance,
            "as expected",
            found[t],
            expected[t],
            error[t],
            allowed[t],
            (
                float(max_abs[t]),
                float(max_rel[t]),
                float(atol_eff[t]),
                float(scale[t]),
                int(flat[t]),
                int(off[t]) if failing[t] else 0,
            ),
            excess=excess[t],
        )
        for t in range(trials)
    ]


def _judge(
    name: str,
    tolerance: Tolerance,
    layout: str,
    aligned: np.ndarray,
    expected: np.ndarray,
    error: np.ndarray,
    allowed: np.ndarray,
    stats: tuple[float, float, float, float, int, int],
    printed_max: float = 0.0,
    excess: np.ndarray | None = None,
) -> Comparison:
    """The verdict and its message from the errors: stats are the largest absolute and relative errors,
    atol_eff, max|expected|, the flat index of the largest overshoot and how many values are off (0: none);
    `excess` is error / allowed when already computed."""
    max_abs, max_rel, atol_eff, scale, flat, off = stats
    worst = _index(flat, error.shape) if error.size else ()
    fields = dict(
        layout=layout,
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        where=worst,
        atol_eff=atol_eff,
        rtol=tolerance.rtol,
        aligned=aligned,
        excess=error / np.maximum(allowed, _TINY) if excess is None else excess,
    )
    if not off and printed_max > tolerance.precision_rel * scale:
        return Comparison(
            Verdict.not_verifiable,
            f"{name}: not verifiable at this precision: printed to ±{printed_max:.1g}, but the values are at most "
            f"{scale:.3g}, so a wrong answer would match as well; print more digits (e.g. np.set_printoptions(precision=10) "
            "or torch.set_printoptions(precision=10))",
            **fields,
        )
    if not off:
        return Comparison(Verdict.passed, f"{name}: matches (largest error {max_abs:.3g})", **fields)
    at = f" at {worst}" if worst else ""
    return Comparison(
        Verdict.failed,
        f"{name}: expected {_number(expected[worst])}{at}, found {_number(aligned[worst])} "
        f"(error {error[worst]:.3g} > allowed {allowed[worst]:.3g}; {off} of {error.size} values off)",
        **fields,
    )


def within(found: np.ndarray, expected: np.ndarray, tolerance: Tolerance) -> bool:
    """Whether `compare` would say `passed` for values of the same shape, without building its report:
    the test diagnosis runs thousands of times per class."""
    found = np.asarray(found, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if found.shape != expected.shape or not np.isfinite(found).all():
        return False
    return bool(_ALL(np.abs(found - expected) <= _allowed(expected, tolerance)[3], axis=None))


def _allowed(expected: np.ndarray, tolerance: Tolerance) -> tuple[np.ndarray, float, float, np.ndarray]:
    """|expected|, its largest value, atol_eff and the allowed error per element (DESIGN §6). ndarray
    methods rather than np.max: this runs hundreds of times per submission on small arrays."""
    magnitude = np.abs(expected)
    scale = float(_MAX(magnitude, axis=None)) if expected.size else 0.0
    atol_eff = max(tolerance.atol, tolerance.atol_rel * scale)
    return magnitude, scale, atol_eff, atol_eff + tolerance.rtol * magnitude


def allowed_rows(magnitude: np.ndarray, tolerance: Tolerance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_allowed` for each row of a (rows, size) stack of |expected|: each row's largest value, its
    atol_eff and the allowed error per element (compare_trials, and diagnosis' stacked mutants)."""
    scale = _MAX(magnitude, axis=1) if magnitude.shape[1] else np.zeros(magnitude.shape[0])
    atol_eff = np.maximum(tolerance.atol, tolerance.atol_rel * scale)
    return scale, atol_eff, atol_eff[:, None] + tolerance.rtol * magnitude


def align(found: np.ndarray, expected: np.ndarray, allow_transposed: bool) -> tuple[np.ndarray | None, str]:
    """`found` brought to `expected`'s shape, and which layout that took; (None, "") when impossible."""
    if found.shape == expected.shape:
        return found, "as expected"
    if found.size == expected.size and _squeezed(found.shape) == _squeezed(expected.shape):
        return found.reshape(expected.shape), f"shape {found.shape} read as {expected.shape}"
    if allow_transposed and expected.ndim == 2 and found.ndim == 2 and found.T.shape == expected.shape:
        return found.T, "transposed (in, out) layout"
    return None, ""


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """np.unravel_index for one index, without its overhead (this runs for every comparison)."""
    index = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        index.append(i)
    return tuple(reversed(index))


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def _number(value: float) -> str:
    return f"{float(value):.6g}"
