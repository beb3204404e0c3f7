"""The backprop passes the mistake catalogue mutates: the reference chain rule with named departures.

`reference.mistakes` describes each known student mistake; this module holds the arithmetic they share.
A *twist* names where a hand-written backward pass departs from the chain rule; its defaults are the
reference, so `mlp_pass(..., MlpTwist())` equals `mlp_regression.scratch` and `classifier_pass` with the
default `ClassifierTwist` equals `softmax_classifier.scratch` (keep = None) or `dropout_training.step`
(keep = mask / (1 − p)). The backward pass is not written again here: a twist becomes a subclass of the
reference's `ChainRule` (TwistedMlp, TwistedClassifier) that replaces the steps it bends, and the
reference's own `scratch` runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from reference import mlp_regression, softmax_classifier
from reference.activations import Activation, drelu, layer_activation

Array = np.ndarray

# f'(z) written through the activation a = f(z), as students write it: σ' = a(1 − a), tanh' = 1 − a².
DERIVATIVE_OF_ACTIVATION: dict[str, Callable[[Array], Array]] = {
    "sigmoid": lambda a: a * (1.0 - a),
    "tanh": lambda a: 1.0 - a * a,
    "relu": lambda a: (a > 0).astype(np.float64),
    "identity": np.ones_like,
}


def derivative_at_preactivation(activation: str, z: Array) -> Array:
    """f'(z): the reference."""
    return layer_activation(activation).df(z)


def derivative_at_activation(activation: str, z: Array) -> Array:
    """f'(a) with a = f(z) already activated: e.g. sigmoid_derivative(a) = σ(a)(1 − σ(a))."""
    f = layer_activation(activation)
    return f.df(f.f(z))


def derivative_formula_on_preactivation(activation: str, z: Array) -> Array:
    """The formula meant for a = f(z), fed z instead: z(1 − z) for sigmoid, 1 − z² for tanh."""
    return DERIVATIVE_OF_ACTIVATION[activation](np.asarray(z, dtype=np.float64))


def relu_derivative_omitted(z: Array) -> Array:
    """1 everywhere: ReLU's derivative left out of delta1."""
    return np.ones_like(np.asarray(z, dtype=np.float64))


def relu_derivative_one_at_zero(z: Array) -> Array:
    """1 where z ≥ 0, else 0: ReLU's derivative with the tie at z = 0 going to 1."""
    return (np.asarray(z, dtype=np.float64) >= 0).astype(np.float64)


def squared_loss_derivative(aL: Array, y: Array) -> Array:
    """d/daL (aL − y)² = 2 (aL − y): the reference."""
    return 2.0 * (aL - y)


def half_squared_loss_derivative(aL: Array, y: Array) -> Array:
    """(aL − y): the derivative of (aL − y)² without its factor 2."""
    return aL - y


def loss_derivative_one(aL: Array, y: Array) -> Array:
    """1 everywhere: backprop of the prediction itself instead of the loss."""
    return np.ones_like(aL)


def derivative_omitted(activation: str, z: Array) -> Array:
    """1 everywhere: the activation's derivative left out of delta."""
    return np.ones_like(np.asarray(z, dtype=np.float64))


def relu_tie_to_one(activation: str, z: Array) -> Array:
    """The hidden derivative of a ReLU layer with relu'(0) = 1 (a layer without activation keeps its 1)."""
    return derivative_at_preactivation(activation, z) if activation == "identity" else relu_derivative_one_at_zero(z)


@dataclass(frozen=True)
class MlpTwist:
    """Where an mlp_regression backward pass departs from the chain rule; the defaults are the reference.

    dL_daL: dL/daL before the "mean" division. output_derivative: multiply deltaL by f'(zL) although the
    output is the identity. hidden_derivative(activation, z): what stands for f'(z_l) at hidden layers.
    untransposed_weights: backpropagate through W_lᵀ where the reference uses W_l (torch layout; W_l
    instead of W_lᵀ on paper) at every square layer, the only ones where the shapes let that run.
    dW_input: what dW_l = delta_lᵀ · (…) is built from: "previous" a_{l-1} (the reference), "preactivation"
    z_{l-1} (layer 1 keeps a0 = x), "next" the layer's own output a_l, "input" the net's input x; each
    twist only where it has a_{l-1}'s shape (elsewhere the student's code could not have run).
    bias_summed: db_l = Σ_rows delta_l; False keeps one row per example (shape (N, out)).
    derivative_without_activation: at a hidden layer the net leaves without activation, multiply by the
    net's (main) activation's derivative all the same, where the reference multiplies by 1.
    layers: (field, layers) for a twist made at some layers only — the layers l whose relation it bends:
    δ_l's for hidden_derivative, untransposed_weights and derivative_without_activation, dW_l's for dW_input,
    db_l's for bias_summed; a field not listed bends every layer. A mistake made once, in one line of an
    unrolled backward pass.
    """

    dL_daL: Callable[[Array, Array], Array] = squared_loss_derivative
    output_derivative: bool = False
    hidden_derivative: Callable[[str, Array], Array] = derivative_at_preactivation
    untransposed_weights: bool = False
    dW_input: str = "previous"
    bias_summed: bool = True
    derivative_without_activation: bool = False
    layers: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def at(self, field: str, l: int) -> object:
        """The twist's `field` at layer l: its own value where it bends that layer, else the reference's."""
        restricted = dict(self.layers).get(field)
        return getattr(self if restricted is None or l in restricted else REFERENCE_MLP, field)


REFERENCE_MLP = MlpTwist()


class TwistedMlp(mlp_regression.ChainRule):
    """The MLP's chain-rule steps with an MlpTwist's departures, each at the layers the twist bends; the
    pass is the reference's. `main` is the net's main hidden activation (mlp_regression.main_activation)."""

    def __init__(self, twist: MlpTwist, main: str) -> None:
        self.twist = twist
        self.main = main

    def dL_daL(self, aL: Array, y: Array) -> Array:
        """The twist's dL/daL (2 (aL − y) in the reference)."""
        return self.twist.dL_daL(aL, y)

    def output_delta(self, dL_daL: Array, zL: Array) -> Array:
        """dL/daL, or that times f'(zL) of the main activation although the output is the identity."""
        delta = super().output_delta(dL_daL, zL)
        return delta * layer_activation(self.main).df(zL) if self.twist.output_derivative else delta

    def dW_input(self, cache: Mapping[str, Array], l: int) -> Array:
        """a_{l-1}, or z_{l-1}, a_l or x where that has a_{l-1}'s shape (MlpTwist.dW_input)."""
        return weight_input(cache, l, self.twist.at("dW_input", l))

    def db(self, delta: Array, l: int) -> Array:
        """Σ_rows delta_l, or one row per example left unsummed."""
        return super().db(delta, l) if self.twist.at("bias_summed", l) else delta.copy()

    def back_through(self, W: Array, l: int) -> Array:
        """W_{l+1}, or W_{l+1}ᵀ where it is square (elsewhere the student's code could not have run)."""
        W = super().back_through(W, l)
        return W.T if self.twist.at("untransposed_weights", l) and W.shape[0] == W.shape[1] else W

    def derivative(self, f: Activation, z: Array, l: int) -> Array:
        """The twist's stand-in for f_l'(z_l), with the main activation's at a layer without one when the
        twist multiplies by a derivative there all the same."""
        name = f.name
        if name == "identity" and self.twist.at("derivative_without_activation", l):
            name = self.main
        return self.twist.at("hidden_derivative", l)(name, z)


def mlp_pass(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    activation: mlp_regression.Activations,
    reduction: str,
    twist: MlpTwist = MlpTwist(),
) -> dict[str, Array]:
    """prediction, loss, dW_l (and db_l) of mlp_regression with the backward pass bent by `twist`
    (`activation`: one name for every hidden layer, or one per hidden layer)."""
    rule = TwistedMlp(twist, mlp_regression.main_activation(activation))
    return mlp_regression.scratch(x, y, params, activation, reduction, rule)


def weight_input(cache: Mapping[str, Array], l: int, choice: str) -> Array:
    """What dW_l is built from under MlpTwist.dW_input `choice`, where that has a_{l-1}'s shape."""
    previous = cache[f"a{l - 1}"]
    used = {
        "previous": previous,
        "preactivation": cache[f"z{l - 1}"] if l > 1 else previous,
        "next": cache[f"a{l}"],
        "input": cache["a0"] if l > 1 else previous,
    }[choice]
    return used if used.shape == previous.shape else previous


@dataclass(frozen=True)
class ClassifierTwist:
    """Where a softmax-classifier backward pass departs from the chain rule; the defaults are the reference.

    logits_for_probs: dL/dz2 = z2 − y (the logits) instead of probs − y. relu_derivative(z1): what stands
    for relu'(z1). preactivation_in_dW2: dW2 = delta2ᵀ z1 (before ReLU and dropout) instead of
    delta2ᵀ h_drop. keep_in_backward: multiply dL/dh by the dropout keep factor, as the forward did.
    dropped_in_dW2: dW2 = delta2ᵀ h_drop; False: delta2ᵀ h, the activations before dropout.
    bias_summed: db_l = Σ_rows delta_l; False keeps one row per example.
    """

    logits_for_probs: bool = False
    relu_derivative: Callable[[Array], Array] = drelu
    preactivation_in_dW2: bool = False
    keep_in_backward: bool = True
    bias_summed: bool = True
    dropped_in_dW2: bool = True


class TwistedClassifier(softmax_classifier.ChainRule):
    """The classifier's chain-rule steps with a ClassifierTwist's departures; the pass is the reference's."""

    def __init__(self, twist: ClassifierTwist) -> None:
        self.twist = twist

    def dL_dz2(self, probs: Array, z2: Array, y: Array) -> Array:
        """probs − y, or z2 − y: the logits where the probabilities belong."""
        return super().dL_dz2(z2 if self.twist.logits_for_probs else probs, z2, y)

    def dW2_input(self, z1: Array, h: Array, h_drop: Array) -> Array:
        """h_drop, or z1 (before ReLU and dropout), or h (before dropout)."""
        if self.twist.preactivation_in_dW2:
            return z1
        return super().dW2_input(z1, h, h_drop) if self.twist.dropped_in_dW2 else h

    def dL_dh(self, dL_dh_drop: Array, drop: softmax_classifier.Drop | None) -> Array:
        """Through the dropout as the forward pass went, or past it as if it had not been there."""
        return super().dL_dh(dL_dh_drop, drop if self.twist.keep_in_backward else None)

    def relu_derivative(self, z1: Array) -> Array:
        """The twist's stand-in for relu'(z1)."""
        return self.twist.relu_derivative(z1)

    def db(self, delta: Array) -> Array:
        """Σ_rows delta, or one row per example left unsummed."""
        return super().db(delta) if self.twist.bias_summed else delta.copy()


def classifier_pass(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    reduction: str,
    keep: Array | None = None,
    twist: ClassifierTwist = ClassifierTwist(),
) -> dict[str, Array]:
    """probs, loss, dW1, dW2 (and db1, db2); dropout as h_drop = h ⊙ keep, keep = mask/(1 − p) in the
    reference (None: no dropout)."""
    return softmax_classifier.scratch(x, y, params, reduction, softmax_classifier.kept(keep), TwistedClassifier(twist))


def dropout_sgd(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    masks: Array,
    keep_scale: float | None,
    lr: float,
    reduction: str,
    twist: ClassifierTwist = ClassifierTwist(),
    *,
    ascend: bool = False,
    accumulate: bool = False,
) -> dict[str, Array]:
    """Full-batch SGD as `dropout_training.train`, epoch e through keep = masks[e] · keep_scale.

    keep_scale is 1/(1 − p) in the reference; None trains without dropout. ascend steps along +dP;
    accumulate steps along the running sum of every epoch's gradients so far (.grad never zeroed).
    Returns the final "W1", "W2" (and "b1", "b2") and "losses" (E,), like the reference.
    """
    masks = np.asarray(masks, dtype=np.float64)
    theta = {name: np.array(value, dtype=np.float64) for name, value in params.items()}  # copies
    summed = {name: np.zeros_like(P) for name, P in theta.items()}
    losses = np.empty(masks.shape[0])
    direction = 1.0 if ascend else -1.0
    for e in range(masks.shape[0]):
        keep = None if keep_scale is None else masks[e] * keep_scale
        grads = classifier_pass(x, y, theta, reduction, keep, twist)
        losses[e] = grads["loss"]
        for name in theta:
            # .grad accumulates across backward() calls unless it is zeroed
            summed[name] = summed[name] + grads[f"d{name}"] if accumulate else grads[f"d{name}"]
        # SGD: P ← P − lr · dP (ascent: P + lr · dP)
        theta = {name: P + direction * lr * summed[name] for name, P in theta.items()}
    return {**theta, "losses": losses}
