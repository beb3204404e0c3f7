"""Task 2, softmax_classifier: one hidden ReLU layer, softmax output, cross-entropy; backprop by hand.

Net: z1 = x W1ᵀ (+ b1), h = relu(z1), z2 = h W2ᵀ (+ b2), probs = softmax(z2) row-wise,
L = −Σ y · log(probs) summed over the batch ("sum") or divided by the batch size N ("mean", as
torch.nn.functional.cross_entropy). Parameters in torch layout: W1 (H, d), W2 (C, H); biases b1 (H,),
b2 (C,) are both present or both absent. y holds one row per example that sums to 1 (one-hot labels);
that is what makes dL/dz2 = probs − y.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reference.activations import drelu, relu
from reference.mlp_regression import check_reduction

Array = np.ndarray


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
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy(log_probs: Array, y: Array, reduction: str = "sum") -> float:
    """−Σ y · log(probs), divided by the batch size N when reduction is "mean"."""
    check_reduction(reduction)
    total = float(-(y * log_probs).sum())
    return total / y.shape[0] if reduction == "mean" else total


def linear(a: Array, params: Mapping[str, Array], l: int, bias: bool) -> Array:
    """z_l = a W_lᵀ (+ b_l) in float64."""
    z = a @ np.asarray(params[f"W{l}"], dtype=np.float64).T
    if bias:
        z = z + np.asarray(params[f"b{l}"], dtype=np.float64)
    return z


def scratch(x: Array, y: Array, params: Mapping[str, Array], reduction: str = "sum") -> dict[str, Array]:
    """probs (N, C), loss (0-d), dW1, dW2 (and db1, db2 when biases are given) by the chain rule."""
    check_reduction(reduction)
    bias = has_biases(params)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    W2 = np.asarray(params["W2"], dtype=np.float64)

    # forward
    z1 = linear(x, params, 1, bias)
    h = relu(z1)
    z2 = linear(h, params, 2, bias)
    log_probs = log_softmax(z2)
    probs = np.exp(log_probs)
    out: dict[str, Array] = {"probs": probs, "loss": np.array(cross_entropy(log_probs, y, reduction))}

    # softmax + cross-entropy: dL/dz2 = probs − y (rows of y sum to 1), over N for "mean"
    delta2 = probs - y
    if reduction == "mean":
        delta2 = delta2 / x.shape[0]
    # z2 = h W2ᵀ + b2  ⇒  dW2 = delta2ᵀ h,  db2 = Σ_rows delta2
    out["dW2"] = delta2.T @ h
    # dL/dh = delta2 W2;  h = relu(z1)  ⇒  delta1 = dL/dh ⊙ relu'(z1)
    delta1 = (delta2 @ W2) * drelu(z1)
    # z1 = x W1ᵀ + b1  ⇒  dW1 = delta1ᵀ x,  db1 = Σ_rows delta1
    out["dW1"] = delta1.T @ x
    if bias:
        out["db2"] = delta2.sum(axis=0)
        out["db1"] = delta1.sum(axis=0)
    return out
