"""Task 1, mlp_regression: a fully connected net regressing y = Σx²/d, backprop written by hand.

Net: a0 = x (N, d); for l = 1..L:  z_l = a_{l-1} W_lᵀ + b_l,  a_l = f(z_l) for hidden layers and
a_L = z_L (identity output). Loss L = Σ (a_L − y)² ("sum") or that over the number of elements ("mean",
as torch.nn.MSELoss). Parameters are in torch layout: W_l (out, in), b_l (out,). Biases are all present
or all absent. Everything is float64 so the reference agrees with its torch twin to rounding.

`activation` is one name for every hidden layer ("sigmoid", "relu", "tanh"), or one name per hidden layer
(a sequence of L − 1), where "identity" is a layer without activation: the net a student actually built,
such as an nn.Sequential with a Linear left without its ReLU, is computed exactly as it ran.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from reference.activations import Activation, layer_activation

Array = np.ndarray
Activations = str | Sequence[str]  # one name for every hidden layer, or one per hidden layer

REDUCTIONS = ("sum", "mean")


def target(x: Array) -> Array:
    """y = (x1² + … + xd²) / d per row of x (N, d), as a column (N, 1)."""
    x = np.asarray(x, dtype=np.float64)
    return (x**2).sum(axis=1, keepdims=True) / x.shape[1]


def count_layers(params: Mapping[str, Array]) -> tuple[int, bool]:
    """(L, has_bias) from the keys W1..WL and b1..bL; rejects gaps and partial biases."""
    L = 0
    while f"W{L + 1}" in params:
        L += 1
    if L == 0:
        raise ValueError(f"params: expected weights W1, W2, …; found keys {sorted(params)}")
    expected = {f"W{l}" for l in range(1, L + 1)}
    biases = {f"b{l}" for l in range(1, L + 1)}
    unexpected = set(params) - expected - biases
    if unexpected:
        raise ValueError(f"params: unexpected keys {sorted(unexpected)} for a {L}-layer net")
    present = biases & set(params)
    if present and present != biases:
        raise ValueError(f"params: biases must be all present or all absent; found {sorted(present)}")
    return L, bool(present)


def hidden_activations(activation: Activations, L: int) -> list[Activation]:
    """The activation of each hidden layer 1..L−1 of an L-layer net (one name for all, or one per layer)."""
    names = [activation] * (L - 1) if isinstance(activation, str) else list(activation)
    if len(names) != L - 1:
        raise ValueError(f"activation: expected one name per hidden layer ({L - 1}), found {len(names)}: {names}")
    return [layer_activation(name) for name in names]


def main_activation(activation: Activations) -> str:
    """The net's hidden activation: the name itself, or the one most hidden layers have ("identity" only
    when no layer has another)."""
    if isinstance(activation, str):
        return activation
    counts = Counter(name for name in activation if name != "identity")
    return counts.most_common(1)[0][0] if counts else "identity"


def check_reduction(reduction: str) -> None:
    """Reject anything but "sum" or "mean" with a message naming both."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected 'sum' or 'mean'")


def forward(x: Array, params: Mapping[str, Array], activation: Activations = "sigmoid") -> dict[str, Array]:
    """Every intermediate of the forward pass: "a0", "z1", "a1", …, "zL", "aL" (aL = zL)."""
    L, has_bias = count_layers(params)
    hidden = hidden_activations(activation, L)
    cache: dict[str, Array] = {"a0": np.array(x, dtype=np.float64)}  # a copy: callers may edit it
    for l in range(1, L + 1):
        W = np.asarray(params[f"W{l}"], dtype=np.float64)
        z = cache[f"a{l - 1}"] @ W.T  # z_l = a_{l-1} W_lᵀ (+ b_l)
        if has_bias:
            z = z + np.asarray(params[f"b{l}"], dtype=np.float64)
        cache[f"z{l}"] = z
        cache[f"a{l}"] = hidden[l - 1].f(z) if l < L else z  # hidden: a_l = f_l(z_l); output: identity
    return cache


def loss(prediction: Array, y: Array, reduction: str = "sum") -> float:
    """Σ (prediction − y)², divided by the number of elements when reduction is "mean"."""
    check_reduction(reduction)
    r = np.asarray(prediction, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    total = float((r * r).sum())
    return total / r.size if reduction == "mean" else total


class ChainRule:
    """The steps of the MLP's backward pass where a hand-written one can depart from the chain rule, each
    the reference's derivative; `l` is the layer whose gradient or delta the step gives. `scratch` runs
    them layer by layer; reference.mistakes_backprop overrides one step per catalogued mistake, so the
    backward pass itself is written only in `scratch`."""

    def dL_daL(self, aL: Array, y: Array) -> Array:
        """L = Σ (aL − y)²  ⇒  dL/daL = 2 (aL − y)."""
        return 2.0 * (aL - y)

    def output_delta(self, dL_daL: Array, zL: Array) -> Array:
        """Identity output aL = zL  ⇒  deltaL = dL/dzL = dL/daL."""
        return dL_daL

    def dW_input(self, cache: Mapping[str, Array], l: int) -> Array:
        """What W_l multiplied in the forward pass: z_l = a_{l-1} W_lᵀ + b_l, so dW_l = delta_lᵀ a_{l-1}."""
        return cache[f"a{l - 1}"]

    def db(self, delta: Array, l: int) -> Array:
        """z_l = a_{l-1} W_lᵀ + b_l adds b_l to every row, so db_l = Σ_rows delta_l."""
        return delta.sum(axis=0)

    def back_through(self, W: Array, l: int) -> Array:
        """What delta_{l+1} goes back through to a_l: z_{l+1} = a_l W_{l+1}ᵀ, so dL/da_l = delta_{l+1} W_{l+1}."""
        return W

    def derivative(self, f: Activation, z: Array, l: int) -> Array:
        """a_l = f_l(z_l)  ⇒  dL/dz_l = dL/da_l ⊙ f_l'(z_l), taken at z_l (1 at a layer without activation)."""
        return f.df(z)


CHAIN_RULE = ChainRule()


def scratch(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    activation: Activations = "sigmoid",
    reduction: str = "sum",
    rule: ChainRule = CHAIN_RULE,
) -> dict[str, Array]:
    """Prediction, loss and every dW_l (and db_l when biases exist) by the chain rule, layer by layer.

    Returns "prediction" (N, out), "loss" (0-d), "dW1".."dWL" shaped like W_l, "db1".."dbL" (out,).
    `rule` holds the backward steps a mistake may bend.
    """
    check_reduction(reduction)
    L, has_bias = count_layers(params)
    hidden = hidden_activations(activation, L)
    cache = forward(x, params, activation)
    y = np.asarray(y, dtype=np.float64)
    aL = cache[f"a{L}"]

    out: dict[str, Array] = {"prediction": aL, "loss": np.array(loss(aL, y, reduction))}

    # dL/daL = 2 (aL − y), over the element count for "mean"
    dL_daL = rule.dL_daL(aL, y)
    if reduction == "mean":
        dL_daL = dL_daL / aL.size
    # identity output: deltaL = dL/dzL = dL/daL
    delta = rule.output_delta(dL_daL, cache[f"z{L}"])

    for l in range(L, 0, -1):
        W = np.asarray(params[f"W{l}"], dtype=np.float64)
        # z_l = a_{l-1} W_lᵀ + b_l  ⇒  dW_l = delta_lᵀ a_{l-1},  db_l = Σ_rows delta_l
        out[f"dW{l}"] = delta.T @ rule.dW_input(cache, l)
        if has_bias:
            out[f"db{l}"] = rule.db(delta, l)
        if l > 1:
            # delta_{l-1} = (delta_l W_l) ⊙ f_{l-1}'(z_{l-1})  (1 at a layer without activation)
            dL_da = delta @ rule.back_through(W, l - 1)
            delta = dL_da * rule.derivative(hidden[l - 2], cache[f"z{l - 1}"], l - 1)
    return out
