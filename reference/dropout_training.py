"""Task 3, dropout_training: the softmax classifier with inverted dropout, trained by full-batch SGD.

Net: z1 = x W1ᵀ (+ b1), h = relu(z1), h_drop = h ⊙ mask / (1 − p), z2 = h_drop W2ᵀ (+ b2),
probs = softmax(z2), L = −Σ y · log(probs) (over N for "mean"). `mask` (N, H) holds 0/1 keep indicators
drawn by the grader, one per epoch, so a stochastic task is graded exactly; kept units are scaled by
1/(1 − p) as torch's F.dropout does, so the expected activation is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reference import softmax_classifier
from reference.mlp_regression import check_reduction

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
    """probs, loss, dW1, dW2 (and db1, db2) of one forward/backward pass through the given keep-mask: the
    softmax classifier's pass (softmax_classifier.scratch) with inverted dropout after the ReLU."""
    check_drop_probability(p)
    mask = np.asarray(mask, dtype=np.float64)

    def drop(a: Array) -> Array:
        """Inverted dropout: kept units scaled by 1/(1 − p), dropped ones 0. Being diagonal, it is also
        its own backward: dL/dh = dL/dh_drop ⊙ mask/(1 − p)."""
        return a * mask / (1.0 - p)

    return softmax_classifier.scratch(x, y, params, reduction, drop)


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
    K = masks.shape[0]
    theta = {name: np.repeat(np.asarray(value, dtype=np.float64)[None], K, axis=0) for name, value in params.items()}
    for e in range(masks.shape[1]):
        keep = None if keep_scale is None else masks[:, e] * keep_scale  # (K, N, H)
        # the classifier's pass, batched over the K runs: h_drop = h ⊙ keep
        grads = softmax_classifier.scratch(x, y, theta, reduction, softmax_classifier.kept(keep))
        # SGD: P ← P − lr · dP for every run at once
        theta = {name: P - lr * grads[f"d{name}"] for name, P in theta.items()}
    return theta
