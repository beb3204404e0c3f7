"""How precisely a notebook's printed gradients can be read, and the full-precision value behind them.

Seed 002 writes `np.round(grad.tolist(), 5)`: numpy then prints the rounded numbers with a common
mantissa width ('5.0e-05' beside '1.1e-04'), so the digits claim a precision (±5e-07) the numbers do not
have (they were rounded to ±5e-06). An array whose numbers all lie on the grid of 10^-k, where k is no
finer than the coarsest digit printed, was rounded to k decimals: its precision is half of 10^-k for
every number, the zeros printed '0.e+00' included; so is an array of the same file whose numbers were all
rounded to 0.

The gradients of a deep ReLU net are tiny in its first layers (1e-5 and less): printed to 5 decimals they
cannot be told right from wrong (DESIGN §6: "not verifiable at this precision"). When the notebook also
holds the full-precision value the file was printed from (autograd's `.grad`; the student's own variable),
and it agrees with every printed number within that number's precision, the check is made on it: the
student computed and reported it, only printed it short.
"""

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

MIN_ON_GRID = 3  # non-zero numbers needed to read a rounding grid: fewer lie on some grid by chance
MAX_DECIMALS = 12
NOISE = (
    1e-6  # float32 arithmetic, relative to the largest magnitude: the value printed and the one kept may differ by this
)


def rounded_decimals(values: np.ndarray, uncertainty: np.ndarray) -> int | None:
    """k when the array was rounded to k decimals: its numbers (at least MIN_ON_GRID of them non-zero) all
    lie on the grid of 10^-k (the coarsest such grid), none printed more coarsely than half of it; else None."""
    values = np.asarray(values, dtype=np.float64)
    if (
        np.count_nonzero(values) < MIN_ON_GRID
        or np.shape(uncertainty) != values.shape
        or not np.all(np.isfinite(values))
    ):
        return None
    uncertainty = np.asarray(uncertainty, dtype=np.float64)
    nonzero = values != 0
    coarsest, scaled = float(np.fmax.reduce(uncertainty[nonzero], initial=0.0)), values[nonzero]  # nan: no claim
    for k in range(MAX_DECIMALS + 1):  # _on_grid(values, uncertainty, k) for k = 0, 1, …, its parts made once
        if coarsest > 0.5 * 10.0**-k:  # printed more coarsely than this grid, and so than every finer one
            return None
        if _multiples(scaled * 10.0**k):
            return k
    return None


def rounded_uncertainties(printed: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """The precision of every number of one file's arrays (key -> (values, printed precision)): half of
    10^-k for an array rounded to k decimals, and for an array with too few non-zero numbers to show a grid
    (a gradient rounded to all zeros) the grid most of the file's arrays show, when it lies on it; as
    printed otherwise."""
    own = {key: rounded_decimals(values, uncertainty) for key, (values, uncertainty) in printed.items()}
    seen = Counter(k for k in own.values() if k is not None).most_common(1)
    file_k = seen[0][0] if seen else None
    out = {}
    for key, (values, uncertainty) in printed.items():
        k = own[key]
        if (
            k is None
            and file_k is not None
            and np.all(np.isfinite(values))
            and _on_grid(np.asarray(values, dtype=np.float64), np.asarray(uncertainty, dtype=np.float64), file_k)
        ):
            k = file_k
        out[key] = (
            np.asarray(uncertainty, dtype=np.float64) if k is None else np.full(np.shape(uncertainty), 0.5 * 10.0**-k)
        )
    return out


def _on_grid(values: np.ndarray, uncertainty: np.ndarray, k: int) -> bool:
    """Every number a multiple of 10^-k, and no non-zero one printed more coarsely than half of 10^-k (zeros
    printed '0.e+00' claim ±0.5 and say nothing)."""
    nonzero = values != 0
    if uncertainty.shape != values.shape or np.any(uncertainty[nonzero] > 0.5 * 10.0**-k):
        return False
    return _multiples(values[nonzero] * 10.0**k)


def _multiples(scaled: np.ndarray) -> bool:
    """Every number a whole number, to float64's rounding of decimals."""
    return bool(np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))))


def too_coarse(uncertainty: np.ndarray, expected: np.ndarray, precision_rel: float) -> bool:
    """Whether printed numbers this coarse are 'not verifiable' for a quantity of this size (the rule of
    grader.compare: precision above precision_rel of the largest magnitude)."""
    return float(np.max(uncertainty, initial=0.0)) > precision_rel * float(np.max(np.abs(expected), initial=0.0))


def printed_from(
    printed: np.ndarray, uncertainty: np.ndarray, precise: np.ndarray, transposed: bool = False
) -> np.ndarray | None:
    """`precise` in the printed value's shape (torch layout) when it agrees with every printed number within
    that number's precision (and float32 noise), else None. A square one takes the layout it agrees with
    best; where the printed numbers cannot tell (all rounded to 0), `transposed` decides: the value was
    stored (in, out), as the file was printed."""
    printed, precise = np.asarray(printed, dtype=np.float64), np.asarray(precise, dtype=np.float64)
    if precise.size != printed.size:
        return None
    candidates = [(precise, not transposed)] if precise.shape == printed.shape else []
    if precise.ndim == 2 and precise.T.shape == printed.shape:
        candidates.append((precise.T, transposed))
    if not candidates:
        candidates.append((precise.reshape(printed.shape), True))  # (21,) printed as (1, 21), or the other way round
    allowed = np.broadcast_to(uncertainty, printed.shape) + NOISE * float(np.max(np.abs(printed), initial=0.0))
    agreeing = [
        (float(np.max(np.abs(c - printed), initial=0.0)), not preferred, i, c)
        for i, (c, preferred) in enumerate(candidates)
        if np.all(np.abs(c - printed) <= allowed)
    ]
    return np.array(min(agreeing, key=lambda t: t[:3])[3]) if agreeing else None


def sharpen(
    values: dict,
    uncertainty: dict,
    provenance: dict,
    reference: dict,
    precision_rel: float,
    candidates: Callable[[str], list[tuple[np.ndarray, str, Any]]],
    in_out: set[str],
) -> dict[str, Any]:
    """Replace each printed value too coarse to verify by the full-precision value it was printed from: the
    first of `candidates(key)` (value, where, token) that agrees with it, in the (in, out) layout where the
    file printed `key` so and the numbers cannot tell (`printed_from`); say so in its provenance. Returns
    the token of the candidate taken, by key."""
    taken = {}
    for key in list(uncertainty):
        if key not in values or key not in reference or not too_coarse(uncertainty[key], reference[key], precision_rel):
            continue
        for candidate, where, token in candidates(key):
            value = printed_from(values[key], uncertainty[key], candidate, key in in_out and token is not None)
            if value is None:
                continue
            printed = float(np.max(uncertainty.pop(key)))
            values[key] = value
            provenance[key] += (
                f"; printed to ±{printed:.1g}, too coarse to check, so checked at full precision on "
                f"{where}, which holds the value printed"
            )
            taken[key] = token
            break
    return taken
