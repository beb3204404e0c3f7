"""Task 3, dropout_training: the softmax classifier with inverted dropout, trained by full-batch SGD.

Net: z1 = x W1ᵀ (+ b1), h = relu(z1), h_drop = h ⊙ mask / (1 − p), z2 = h_drop W2ᵀ (+ b2),
probs = softmax(z2), L = −Σ y · log(probs) (over N for "mean"). `mask` (N, H) holds 0/1 keep indicators
drawn by the grader, one per epoch, so a stochastic task is graded exactly; kept units are scaled by
1/(1 − p) as torch's F.dropout does, so the expected activation is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reference.activations import drelu, relu
from reference.mlp_regression import check_reduction
from reference.softmax_classifier import cross_entropy, has_biases, linear, log_softmax

Array = np.ndarray


def check_drop_probability(p: float) -> None:
    """Reject p outside [0, 1): at p = 1 every unit is dropped and 1/(1 − p) is undefined."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop probability p: expected 0 <= p < 1, found {p}")


def step(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    mask: Array,
    p: float,
    reduction: str = "sum",
) -> dict[str, Array]:
    """probs, loss, dW1, dW2 (and db1, db2) of one forward/backward pass through the given keep-mask."""
    check_reduction(reduction)
    check_drop_probability(p)
    bias = has_biases(params)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    W2 = np.asarray(params["W2"], dtype=np.float64)

    # forward
    z1 = linear(x, params, 1, bias)
    h = relu(z1)
    h_drop = h * mask / (1.0 - p)  # inverted dropout: kept units scaled by 1/(1 − p)
    z2 = linear(h_drop, params, 2, bias)
    log_probs = log_softmax(z2)
    probs = np.exp(log_probs)
    out: dict[str, Array] = {"probs": probs, "loss": np.array(cross_entropy(log_probs, y, reduction))}

    # softmax + cross-entropy: dL/dz2 = probs − y, over N for "mean"
    delta2 = probs - y
    if reduction == "mean":
        delta2 = delta2 / x.shape[0]
    # z2 = h_drop W2ᵀ + b2  ⇒  dW2 = delta2ᵀ h_drop (dropped units contribute nothing)
    out["dW2"] = delta2.T @ h_drop
    # dL/dh_drop = delta2 W2;  h_drop = h ⊙ mask/(1 − p)  ⇒  dL/dh = dL/dh_drop ⊙ mask/(1 − p)
    dL_dh = (delta2 @ W2) * mask / (1.0 - p)
    # h = relu(z1)  ⇒  delta1 = dL/dh ⊙ relu'(z1)
    delta1 = dL_dh * drelu(z1)
    # z1 = x W1ᵀ + b1  ⇒  dW1 = delta1ᵀ x
    out["dW1"] = delta1.T @ x
    if bias:
        out["db2"] = delta2.sum(axis=0)
        out["db1"] = delta1.sum(axis=0)
    return out


def train(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    masks: Array,
    p: float,
    lr: float,
    reduction: str = "sum",
) -> dict[str, Array]:
    """Full-batch SGD for masks.shape[0] epochs, epoch e using masks[e] (shape (E, N, H)).

    Each epoch computes the gradients at the current parameters, then P ← P − lr·dP for every P.
    Returns the final "W1", "W2" (and "b1", "b2") and "losses" (E,), the loss of each epoch before its
    update. The inputs are left untouched.
    """
    check_reduction(reduction)
    check_drop_probability(p)
    masks = np.asarray(masks, dtype=np.float64)
    if masks.ndim != 3:
        raise ValueError(f"masks: expected shape (epochs, N, H), found {masks.shape}")
    theta = {name: np.array(value, dtype=np.float64) for name, value in params.items()}  # copies
    losses = np.empty(masks.shape[0])
    for e in range(masks.shape[0]):
        grads = step(x, y, theta, masks[e], p, reduction)
        losses[e] = grads["loss"]
        # SGD: P ← P − lr · dP, every parameter from the same epoch's gradients
        theta = {name: P - lr * grads[f"d{name}"] for name, P in theta.items()}
    return {**theta, "losses": losses}


def train_many(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    masks: Array,
    lr: float,
    keep_scale: float | None,
    reduction: str = "sum",
) -> dict[str, Array]:
    """`train` for K mask sequences at once (masks of shape (K, E, N, H)), each from the same initial
    parameters: kept units scaled by `keep_scale` (1/(1 − p) in the reference; None trains without dropout).
    Returns each parameter after training, stacked: "W1" (K, H, d), … The spread of these over many draws
    is what a run whose own masks are unknown is compared with."""
    check_reduction(reduction)
    masks = np.asarray(masks, dtype=np.float64)
    if masks.ndim != 4:
        raise ValueError(f"masks: expected shape (K, epochs, N, H), found {masks.shape}")
    bias = has_biases(params)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    K = masks.shape[0]
    theta = {name: np.repeat(np.asarray(value, dtype=np.float64)[None], K, axis=0) for name, value in params.items()}
    for e in range(masks.shape[1]):
        keep = np.ones_like(masks[:, e]) if keep_scale is None else masks[:, e] * keep_scale
        # forward, batched over the K runs: z1 = x W1ᵀ (+ b1), h_drop = relu(z1) ⊙ keep, z2 = h_drop W2ᵀ (+ b2)
        z1 = x @ theta["W1"].transpose(0, 2, 1) + (theta["b1"][:, None, :] if bias else 0.0)
        h_drop = relu(z1) * keep
        z2 = h_drop @ theta["W2"].transpose(0, 2, 1) + (theta["b2"][:, None, :] if bias else 0.0)
        shifted = z2 - z2.max(axis=2, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=2, keepdims=True)
        # backward: delta2 = probs − y (over N for "mean"), dW2 = delta2ᵀ h_drop, delta1 = (delta2 W2 ⊙ keep) ⊙ relu'(z1)
        delta2 = (probs - y) / (x.shape[0] if reduction == "mean" else 1.0)
        delta1 = (delta2 @ theta["W2"]) * keep * drelu(z1)
        grads = {"W1": delta1.transpose(0, 2, 1) @ x, "W2": delta2.transpose(0, 2, 1) @ h_drop}
        if bias:
            grads.update(b1=delta1.sum(axis=1), b2=delta2.sum(axis=1))
        # SGD: P ← P − lr · dP for every run at once
        theta = {name: P - lr * grads[name] for name, P in theta.items()}
    return theta
