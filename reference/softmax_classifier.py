"""Task 2, softmax_classifier: one hidden ReLU layer, softmax output, cross-entropy; backprop by hand.

Net: z1 = x W1ᵀ (+ b1), h = relu(z1), z2 = h W2ᵀ (+ b2), probs = softmax(z2) row-wise,
L = −Σ y · log(probs) summed over the batch ("sum") or divided by the batch size N ("mean", as
torch.nn.functional.cross_entropy). Parameters in torch layout: W1 (H, d), W2 (C, H); biases b1 (H,),
b2 (C,) are both present or both absent. y holds one row per example that sums to 1 (one-hot labels);
that is what makes dL/dz2 = probs − y. Task 3 (reference.dropout_training) is this pass with dropout
after the ReLU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from reference.activations import drelu, relu
from reference.mlp_regression import check_reduction

Array = np.ndarray
Drop = Callable[[Array], Array]  # dropout after the ReLU: h ↦ h_drop, also carries dL/dh_drop back to dL/dh


def has_biases(params: Mapping[str, Array]) -> bool:
    """Whether b1 and b2 are given; exactly one of them is a contract error."""
    present = {"b1", "b2"} & set(params)
    if len(present) == 1:
        raise ValueError(f"params: b1 and b2 must be both present or both absent; found {sorted(present)}")
    missing = {"W1", "W2"} - set(params)
    if missing:
        raise ValueError(f"params: missing {sorted(missing)}; a softmax classifier needs W1 and W2")
    return bool(present)


def log_softmax(z: Array) -> Array:
    """log softmax(z) per row, shifted by the row maximum so no exp overflows."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(log_probs: Array, y: Array, reduction: str = "sum") -> Array:
    """−Σ y · log(probs) over examples and classes (one per run with leading axes), divided by the batch
    size N when reduction is "mean"."""
    check_reduction(reduction)
    total = -(y * log_probs).sum(axis=(-2, -1))
    return total / y.shape[-2] if reduction == "mean" else total


def linear(a: Array, params: Mapping[str, Array], l: int, bias: bool) -> Array:
    """z_l = a W_lᵀ (+ b_l) in float64; W_l and b_l may carry leading axes (one per run, K runs at once).

    A b_l with one axis fewer than W_l holds one bias per unit, added to every row; one with as many has a
    row per example already (a catalogued mistake's unsummed db after an update) and is added row by row.
    """
    W = np.asarray(params[f"W{l}"], dtype=np.float64)
    z = a @ W.mT
    if bias:
        b = np.asarray(params[f"b{l}"], dtype=np.float64)
        z = z + (b[..., None, :] if b.ndim < W.ndim else b)
    return z


def kept(keep: Array | None) -> Drop | None:
    """Dropout as h ↦ h ⊙ keep, with keep = mask/(1 − p) already scaled; None (no dropout) for None."""
    return None if keep is None else lambda a: a * keep


class ChainRule:
    """The steps of the classifier's backward pass where a hand-written one can depart from the chain rule,
    each the reference's derivative. `scratch` runs them in order; reference.mistakes_backprop overrides one
    step per catalogued mistake, so the backward pass itself is written only in `scratch`."""

    def dL_dz2(self, probs: Array, z2: Array, y: Array) -> Array:
        """Softmax + cross-entropy: dL/dz2 = probs − y (because each row of y sums to 1)."""
        return probs - y

    def dW2_input(self, z1: Array, h: Array, h_drop: Array) -> Array:
        """What W2 multiplied in the forward pass: z2 = h_drop W2ᵀ + b2, so dW2 = delta2ᵀ h_drop."""
        return h_drop

    def dL_dh(self, dL_dh_drop: Array, drop: Drop | None) -> Array:
        """h_drop = drop(h) scales each unit by its own factor (linear, diagonal), so dL/dh = drop(dL/dh_drop)."""
        return dL_dh_drop if drop is None else drop(dL_dh_drop)

    def relu_derivative(self, z1: Array) -> Array:
        """relu'(z1): 1 where z1 > 0, else 0."""
        return drelu(z1)

    def db(self, delta: Array) -> Array:
        """z = a Wᵀ + b adds b to every row, so db = Σ_rows delta."""
        return delta.sum(axis=-2)


CHAIN_RULE = ChainRule()


def scratch(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    reduction: str = "sum",
    drop: Drop | None = None,
    rule: ChainRule = CHAIN_RULE,
) -> dict[str, Array]:
    """probs (N, C), loss (0-d), dW1, dW2 (and db1, db2 when biases are given) by the chain rule.

    `drop` is dropout right after the ReLU, h_drop = drop(h): None for task 2, h ↦ h ⊙ mask/(1 − p) for
    task 3 (reference.dropout_training.step). `rule` holds the backward steps a mistake may bend. The
    parameters (and `drop`'s factors) may carry leading axes, K runs at once from the same x and y
    (dropout_training.train_many): hence .mT (the matrix transpose ᵀ) and sums over axis −2 (the rows).
    """
    check_reduction(reduction)
    bias = has_biases(params)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    W2 = np.asarray(params["W2"], dtype=np.float64)

    # forward
    z1 = linear(x, params, 1, bias)
    h = relu(z1)
    h_drop = h if drop is None else drop(h)
    z2 = linear(h_drop, params, 2, bias)
    log_probs = log_softmax(z2)
    probs = np.exp(log_probs)
    out: dict[str, Array] = {"probs": probs, "loss": np.asarray(cross_entropy(log_probs, y, reduction))}

    # softmax + cross-entropy: delta2 = dL/dz2 = probs − y, over N for "mean"
    delta2 = rule.dL_dz2(probs, z2, y)
    if reduction == "mean":
        delta2 = delta2 / x.shape[0]
    # z2 = h_drop W2ᵀ + b2  ⇒  dW2 = delta2ᵀ h_drop (dropped units contribute nothing)
    out["dW2"] = delta2.mT @ rule.dW2_input(z1, h, h_drop)
    # dL/dh_drop = delta2 W2;  h_drop = drop(h)  ⇒  dL/dh = drop(dL/dh_drop)
    dL_dh = rule.dL_dh(delta2 @ W2, drop)
    # h = relu(z1)  ⇒  delta1 = dL/dh ⊙ relu'(z1)
    delta1 = dL_dh * rule.relu_derivative(z1)
    # z1 = x W1ᵀ + b1  ⇒  dW1 = delta1ᵀ x
    out["dW1"] = delta1.mT @ x
    if bias:
        # z_l = a W_lᵀ + b_l  ⇒  db_l = Σ_rows delta_l
        out["db2"] = rule.db(delta2)
        out["db1"] = rule.db(delta1)
    return out
