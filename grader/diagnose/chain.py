"""The chain rule of one trial, laid out for testing a student's gradients relation by relation (DESIGN §7).

A backward pass is a chain of relations, from the output down: δ_L = dL/dŷ (softmax with cross-entropy:
probs − y); δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l); dW_l = δ_l a_{l−1}ᵀ; db_l = Σ_batch δ_l. `grader.diagnose.localize`
tests a student's gradients against them; this module holds what those tests need that does not depend
on the student: the reference forward pass, each relation's ingredients — f'(z_l) and what students put
in its place, what dW_l may be built from — and the reference δ_l, so a layer whose gradients passed can
hand its δ down. It is computed once per trial and task settings and shared by every student of a class.

Arrays are float64 in the math layout of the reference: one example per row, W_l as (out, in), so on
paper W_{l+1}ᵀ δ_{l+1} is `delta @ W` here. Every alternative is kept only where it differs from the
correct ingredient on this trial (ReLU's tie at 0 only where some z_l is exactly 0), so a repair is
never proposed for a mistake the trial cannot show.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.memo import remember
from reference import mlp_regression
from reference.activations import drelu, get_activation, relu
from reference.softmax_classifier import has_biases, linear, log_softmax

Array = np.ndarray
Options = tuple[tuple[str, Array], ...]  # ("correct", the reference's) first, then (repair id, what students use)

# f'(z) as students write it through the activation a = f(z): fed z instead of a, it is a different number.
_FORMULA = {"sigmoid": lambda v: v * (1.0 - v), "tanh": lambda v: 1.0 - v * v}
SYMBOL = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU"}


@dataclass(frozen=True)
class Layer:
    """Layer l's relations. `derivatives`: f'(z_l) and its stand-ins (None at the output, which has no
    activation); `inputs`: a_{l−1} and what else has dW_l's shape on this trial; `delta`: the reference δ_l."""

    index: int
    derivatives: Options | None
    inputs: Options
    delta: Array
    activation: str  # the layer's activation name ("identity" for none; "" at the output)


@dataclass(frozen=True)
class Notation:
    """How the course writes this net's backward pass, for what a localization says (grader.localize_text):
    `output`, dL/dz at the output ("2(ŷ − y)/N"); `source`, what δ_L follows from; `loss_named`, whether
    δ_L's relation is written δL = dL/dŷ = …; `hidden` and `top`, the symbols of the hidden layer and of
    the output's activation where the net names them (the classifier's h and probs; None: a_l); `factors`,
    the factors of the whole pass that are catalogued mistakes (½ at the squared loss: the missing 2)."""

    output: str
    source: str
    loss_named: bool
    hidden: str | None
    top: str | None
    factors: dict[float, str]


@dataclass(frozen=True)
class Chain:
    """Every relation of one trial's backward pass. `outputs`: δ_L and what students compute in its place;
    `weights[l]`: W_l; `divisor`: what a "mean" loss divides by (N·outputs for the squared loss, as
    MSELoss; N for cross-entropy), whichever reduction was asked, for naming a factor between the two;
    `notation`: how the course writes it."""

    notation: Notation
    layers: dict[int, Layer]
    outputs: Options
    weights: dict[int, Array]
    batch: int
    bias: bool
    reduction: str
    divisor: int
    main: str  # the net's hidden activation: the one its derivative mistakes are about

    @property
    def depth(self) -> int:
        return len(self.layers)


_CHAINS: dict[tuple, Chain] = {}


def mlp_chain(
    key: tuple, x: Array, y: Array, params: dict[str, Array], activation: str | Sequence[str], reduction: str
) -> Chain:
    """The regression net's chain on this trial (cached under `key`: task settings and the trial's
    fingerprint, shared by every student of a class)."""
    return remember(_CHAINS, key, lambda: _mlp_chain(x, y, params, activation, reduction), size=512)


def classifier_chain(key: tuple, x: Array, y: Array, params: dict[str, Array], reduction: str) -> Chain:
    """The softmax classifier's chain on this trial (cached under `key`, as `mlp_chain`)."""
    return remember(_CHAINS, key, lambda: _classifier_chain(x, y, params, reduction), size=512)


def hidden_names(activation: str | Sequence[str], L: int) -> list[str]:
    """The activation of each hidden layer 1..L−1: one name for all, or one per layer ("identity": none)."""
    return [activation] * (L - 1) if isinstance(activation, str) else list(activation)


def _main(names: list[str]) -> str:
    counts = Counter(name for name in names if name != "identity")
    return counts.most_common(1)[0][0] if counts else "identity"


def _derivative(name: str, z: Array) -> Array:
    return np.ones_like(z) if name == "identity" else get_activation(name).df(z)


def _kept(correct: Array, alternatives: list[tuple[str, Array]]) -> Options:
    """("correct", correct), then the alternatives of its shape that differ from it on this trial."""
    options = [("correct", correct)]
    for repair, value in alternatives:
        if value.shape == correct.shape and not np.array_equal(value, correct):
            options.append((repair, value))
    return tuple(options)


def _derivative_options(name: str, main: str, z: Array, a: Array) -> Options:
    """f'(z_l) first, then what students multiply by in its place at a layer with activation `name`."""
    correct = _derivative(name, z)
    if name == "identity":  # no activation here: its derivative is 1, yet some multiply by f'(z_l)
        return _kept(correct, [("derivative_without_activation", _derivative(main, z))] if main != "identity" else [])
    alternatives = [("hidden_derivative_omitted", np.ones_like(z))]
    if name in _FORMULA:
        alternatives += [
            ("derivative_at_activation", _derivative(name, a)),
            ("derivative_formula_on_preactivation", _FORMULA[name](z)),
        ]
    if name == "relu":
        alternatives.append(("relu_derivative_at_zero", (z >= 0).astype(np.float64)))
    return _kept(correct, alternatives)


def _input_options(l: int, cache: dict[str, Array]) -> Options:
    """a_{l−1} first, then what students build dW_l from instead, where it has the same shape."""
    alternatives = []
    if l > 1:
        alternatives.append(("preactivation_in_weight_gradient", cache[f"z{l - 1}"]))
        alternatives.append(("input_in_weight_gradient", cache["a0"]))
    alternatives.append(("next_activation_in_weight_gradient", cache[f"a{l}"]))
    return _kept(cache[f"a{l - 1}"], alternatives)


def _mlp_chain(x: Array, y: Array, params: dict[str, Array], activation: str | Sequence[str], reduction: str) -> Chain:
    L, bias = mlp_regression.count_layers(params)
    names = hidden_names(activation, L)
    main = _main(names)
    cache = mlp_regression.forward(x, params, activation)
    aL, zL = cache[f"a{L}"], cache[f"z{L}"]
    mean = aL.size if reduction == "mean" else 1
    correct = 2.0 * (aL - np.asarray(y, dtype=np.float64)) / mean
    outputs = [("loss_derivative_omitted", np.ones_like(aL) / mean)]
    if main != "identity":
        outputs.append(("output_activation_derivative", correct * _derivative(main, zL)))
    weights = {l: np.asarray(params[f"W{l}"], dtype=np.float64) for l in range(1, L + 1)}
    layers, delta = {}, correct
    for l in range(L, 0, -1):
        derivatives = None
        if l < L:
            derivatives = _derivative_options(names[l - 1], main, cache[f"z{l}"], cache[f"a{l}"])
            delta = (delta @ weights[l + 1]) * derivatives[0][1]
        layers[l] = Layer(l, derivatives, _input_options(l, cache), delta, names[l - 1] if l < L else "")
    notation = Notation(
        output="2(ŷ − y)" if reduction == "sum" else f"2(ŷ − y)/{aL.size}",
        source="dL/dŷ",
        loss_named=True,
        hidden=None,
        top=None,
        factors={0.5: "missing_factor_2", 2.0: "accumulated_gradients"},
    )
    return Chain(notation, layers, _kept(correct, outputs), weights, aL.shape[0], bias, reduction, aL.size, main)


def _classifier_chain(x: Array, y: Array, params: dict[str, Array], reduction: str) -> Chain:
    bias = has_biases(params)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z1 = linear(x, params, 1, bias)
    h = relu(z1)
    z2 = linear(h, params, 2, bias)
    probs = np.exp(log_softmax(z2))
    mean = x.shape[0] if reduction == "mean" else 1
    correct = (probs - y) / mean
    weights = {l: np.asarray(params[f"W{l}"], dtype=np.float64) for l in (1, 2)}
    cache = {"a0": x, "z1": z1, "a1": h, "z2": z2, "a2": probs}
    derivatives = _derivative_options("relu", "relu", z1, h)
    delta1 = (correct @ weights[2]) * drelu(z1)
    layers = {
        2: Layer(2, None, _input_options(2, cache), correct, ""),
        1: Layer(1, derivatives, _input_options(1, cache), delta1, "relu"),
    }
    notation = Notation(
        output="probs − y" if reduction == "sum" else f"(probs − y)/{x.shape[0]}",
        source="probs − y",
        loss_named=False,
        hidden="h",
        top="probs",
        factors={2.0: "accumulated_gradients"},
    )
    return Chain(
        notation,
        layers,
        _kept(correct, [("logits_instead_of_probs", (z2 - y) / mean)]),
        weights,
        x.shape[0],
        bias,
        reduction,
        x.shape[0],
        "relu",
    )
