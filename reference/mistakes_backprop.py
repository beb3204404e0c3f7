"""The backprop passes the mistake catalogue mutates: the reference chain rule with named departures.

`reference.mistakes` describes each known student mistake; this module holds the arithmetic they share.
A *twist* names where a hand-written backward pass departs from the chain rule; its defaults are the
reference, so `mlp_pass(..., MlpTwist())` equals `mlp_regression.scratch` and `classifier_pass` with the
default `ClassifierTwist` equals `softmax_classifier.scratch` (keep = None) or `dropout_training.step`
(keep = mask / (1 − p)). The forward pass, loss and layer helpers are the reference's own; only the
backward pass is written out again, once per task, with the departures as switches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from reference import mlp_regression
from reference.activations import drelu, layer_activation, relu
from reference.softmax_classifier import cross_entropy, has_biases, linear, log_softmax

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
    mlp_regression.check_reduction(reduction)
    L, has_bias = mlp_regression.count_layers(params)
    hidden = [f.name for f in mlp_regression.hidden_activations(activation, L)]
    main = mlp_regression.main_activation(activation)
    df = layer_activation(main).df
    cache = mlp_regression.forward(x, params, activation)
    y = np.asarray(y, dtype=np.float64)
    aL = cache[f"a{L}"]
    out: dict[str, Array] = {"prediction": aL, "loss": np.array(mlp_regression.loss(aL, y, reduction))}

    # dL/daL (2 (aL − y) in the reference), over the element count for "mean"
    dL_daL = twist.dL_daL(aL, y)
    if reduction == "mean":
        dL_daL = dL_daL / aL.size
    # identity output: deltaL = dL/daL (the twist multiplies by f'(zL) all the same)
    delta = dL_daL * df(cache[f"z{L}"]) if twist.output_derivative else dL_daL

    for l in range(L, 0, -1):
        W = np.asarray(params[f"W{l}"], dtype=np.float64)
        # dW_l = delta_lᵀ a_{l-1} (the twist takes z_{l-1}, a_l or x),  db_l = Σ_rows delta_l (or delta_l)
        out[f"dW{l}"] = delta.T @ weight_input(cache, l, twist.at("dW_input", l))
        if has_bias:
            out[f"db{l}"] = delta.sum(axis=0) if twist.at("bias_summed", l) else delta.copy()
        if l > 1:
            # dL/da_{l-1} = delta_l W_l (the twist: delta_l W_lᵀ, where W_l is square)
            through = W.T if twist.at("untransposed_weights", l - 1) and W.shape[0] == W.shape[1] else W
            # delta_{l-1} = dL/da_{l-1} ⊙ f_{l-1}'(z_{l-1}) (the twist: f' where layer l − 1 has no f)
            name = hidden[l - 2]
            if name == "identity" and twist.at("derivative_without_activation", l - 1):
                name = main
            delta = (delta @ through) * twist.at("hidden_derivative", l - 1)(name, cache[f"z{l - 1}"])
    return out


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
    mlp_regression.check_reduction(reduction)
    bias = has_biases(params)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    W2 = np.asarray(params["W2"], dtype=np.float64)

    # forward, dropout (when keep is given) after the ReLU
    z1 = linear(x, params, 1, bias)
    h = relu(z1)
    h_drop = h if keep is None else h * keep
    z2 = linear(h_drop, params, 2, bias)
    log_probs = log_softmax(z2)
    probs = np.exp(log_probs)
    out: dict[str, Array] = {"probs": probs, "loss": np.array(cross_entropy(log_probs, y, reduction))}

    # softmax + cross-entropy: dL/dz2 = probs − y (the twist: z2 − y), over N for "mean"
    delta2 = (z2 if twist.logits_for_probs else probs) - y
    if reduction == "mean":
        delta2 = delta2 / x.shape[0]
    # z2 = h_drop W2ᵀ + b2  ⇒  dW2 = delta2ᵀ h_drop (the twist: delta2ᵀ z1)
    out["dW2"] = delta2.T @ (z1 if twist.preactivation_in_dW2 else h_drop if twist.dropped_in_dW2 else h)
    # dL/dh_drop = delta2 W2;  h_drop = h ⊙ keep  ⇒  dL/dh = dL/dh_drop ⊙ keep (the twist forgets keep)
    dL_dh = delta2 @ W2
    if keep is not None and twist.keep_in_backward:
        dL_dh = dL_dh * keep
    # h = relu(z1)  ⇒  delta1 = dL/dh ⊙ relu'(z1)
    delta1 = dL_dh * twist.relu_derivative(z1)
    # z1 = x W1ᵀ + b1  ⇒  dW1 = delta1ᵀ x
    out["dW1"] = delta1.T @ x
    if bias:
        out["db2"] = delta2.sum(axis=0) if twist.bias_summed else delta2.copy()
        out["db1"] = delta1.sum(axis=0) if twist.bias_summed else delta1.copy()
    return out


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
