"""Hidden-layer activations and their derivatives, in numpy.

Each derivative is evaluated at the pre-activation z (not at the activation a = f(z)): backprop needs
df/dz at the z the forward pass saw, and taking it at a is one of the catalogued student mistakes.
ReLU's derivative at exactly 0 is 0, as in torch, so a reference gradient matches autograd bit for bit
on dead units. "identity" (no activation: a linear layer followed directly by the next, as in a student's
net with one activation left out) is a layer's activation too (`layer_activation`), never a task's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """An element-wise nonlinearity `f` and its derivative `df`, both taking the pre-activation z."""

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]


def sigmoid(z: Array) -> Array:
    """σ(z) = 1 / (1 + e^{-z}), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))  # in (0, 1], never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def dsigmoid(z: Array) -> Array:
    """σ'(z) = σ(z)(1 − σ(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(z: Array) -> Array:
    """max(z, 0)."""
    z = np.asarray(z, dtype=np.float64)
    return np.maximum(z, 0.0)


def drelu(z: Array) -> Array:
    """1 where z > 0, else 0 (0 at z = 0, as torch's ReluBackward)."""
    z = np.asarray(z, dtype=np.float64)
    return (z > 0).astype(np.float64)


def tanh(z: Array) -> Array:
    """tanh(z)."""
    return np.tanh(np.asarray(z, dtype=np.float64))


def dtanh(z: Array) -> Array:
    """tanh'(z) = 1 − tanh²(z)."""
    t = tanh(z)
    return 1.0 - t * t


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, dsigmoid),
    "relu": Activation("relu", relu, drelu),
    "tanh": Activation("tanh", tanh, dtanh),
}


def identity(z: Array) -> Array:
    """z itself: a layer without activation."""
    return np.array(z, dtype=np.float64)


def didentity(z: Array) -> Array:
    """1 everywhere."""
    return np.ones_like(np.asarray(z, dtype=np.float64))


IDENTITY = Activation("identity", identity, didentity)


def layer_activation(name: str) -> Activation:
    """The activation of one hidden layer: one of ACTIVATIONS, or "identity" for a layer without one."""
    return IDENTITY if name == "identity" else get_activation(name)


def get_activation(name: str) -> Activation:
    """The activation called `name`; an unknown name says which names exist."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; expected one of: {known}") from None
