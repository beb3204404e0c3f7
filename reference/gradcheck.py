"""Central differences: the gradient of any scalar loss, with no chain rule at all.

The third witness next to the hand-written scratch and the autograd twin: it shares no code with
either, so when all three agree the mathematics is right, not merely consistent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Array = np.ndarray


def central_difference(
    loss_of: Callable[[dict[str, Array]], float],
    params: Mapping[str, Array],
    eps: float = 1e-6,
) -> dict[str, Array]:
    """The gradient of `loss_of` at `params` as "d"+key for every key (W1 → dW1), same shapes.

    Each element is (L(θ+ε) − L(θ−ε)) / 2ε. `loss_of` receives float64 copies of the parameters, one
    element nudged at a time; `params` itself is never touched. Truncation error is O(ε²), rounding
    error about machine-ε·|L|/ε, so ε = 1e-6 gives roughly 1e-10·|L| absolute accuracy in float64.
    """
    theta = {name: np.array(value, dtype=np.float64) for name, value in params.items()}  # copies
    grads: dict[str, Array] = {}
    for name, P in theta.items():
        dP = np.empty_like(P)
        for i in np.ndindex(P.shape):
            saved = P[i]
            P[i] = saved + eps
            L_plus = float(loss_of(theta))
            P[i] = saved - eps
            L_minus = float(loss_of(theta))
            P[i] = saved  # restore before the next element
            dP[i] = (L_plus - L_minus) / (2.0 * eps)
        grads[f"d{name}"] = dP
    return grads
