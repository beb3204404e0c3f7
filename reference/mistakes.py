"""The catalogue of known mistakes (DESIGN §7): each one a mutant of the reference's scratch implementation.

A Mistake has a stable id, a title, an explanation and a hint for students, the task kinds it applies
to, and `compute`: the mutant, which gives the quantities a submission with exactly this mistake would
produce on the same trial. It returns the same keys the reference returns for that kind, or None when
the mistake cannot apply to the instance (a shape-incompatible one, or one that is the reference by
construction there, such as mean vs sum with one element). The grader diagnoses a failing quantity by
running every applicable mutant and naming the one that matches the student's values; it only does so
where the mutant differs from the reference, so a mutant may equal the reference on some trials (ReLU's
derivative at 0 only matters where a pre-activation is exactly 0). The mutants live in
`reference.mistakes_mutants`, the twisted backward passes they run in `reference.mistakes_backprop`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from reference.dropout_training import check_drop_probability
from reference.mistakes_backprop import (
    ClassifierTwist,
    MlpTwist,
    derivative_at_activation,
    derivative_formula_on_preactivation,
    half_squared_loss_derivative,
    loss_derivative_one,
    relu_derivative_one_at_zero,
    relu_tie_to_one,
)
from reference.mistakes_mutants import (
    KINDS,
    Instance,
    Mutant,
    Values,
    classifier,
    gradients_after_update,
    mlp,
    mlp_hidden,
    mlp_layers_without_activation,
    mlp_relu_only,
    mlp_square_layers,
    mlp_unless,
    other_reduction,
    scaled_gradients,
    train,
    train_rescaled,
    train_without_dropout,
    transposed_gradients,
)

Array = np.ndarray

# Learning rates the grader tries for "gradients_after_update": students' usual choices.
UPDATE_LEARNING_RATES = (0.1, 0.01, 0.001)


@dataclass(frozen=True)
class Mistake:
    """A known mistake. `compute(Instance)` is its mutant: the values a submission with this mistake
    produces on the trial, keyed like the reference, or None where it cannot apply; call it through
    `run_mutant`. `kinds` are the task kinds it has a mutant for."""

    id: str
    title: str
    explanation: str
    hint: str
    kinds: tuple[str, ...]
    compute: Callable[..., Values | None]


def by_kind(computes: Mapping[str, Mutant], inst: Instance) -> Values | None:
    """Run the mutant written for the instance's kind (None for a kind the mistake does not cover)."""
    return computes[inst.kind](inst) if inst.kind in computes else None


def mistake(id: str, title: str, explanation: str, hint: str, **computes: Mutant) -> Mistake:
    """A Mistake whose kinds are those given a mutant, keyword by kind."""
    unknown = set(computes) - set(KINDS)
    if unknown:
        raise ValueError(f"mistake {id}: unknown task kinds {sorted(unknown)}")
    return Mistake(id, title, explanation, hint, tuple(computes), partial(by_kind, dict(computes)))


REFERENCE_PASS = ClassifierTwist()
RELU_ZERO_IS_ONE = ClassifierTwist(relu_derivative=relu_derivative_one_at_zero)


CATALOGUE: tuple[Mistake, ...] = (
    mistake(
        "missing_factor_2", "missing factor 2 of the squared loss",
        "Every gradient is exactly half of the correct one. That is what you get when the derivative of "
        "the loss (ŷ − y)² is taken as (ŷ − y), without its factor 2.",
        "Look at the first step of your backward pass: d/dŷ (ŷ − y)² = 2(ŷ − y).",
        mlp_regression=partial(mlp, MlpTwist(dL_daL=half_squared_loss_derivative))),
    mistake(
        "sign_flip", "gradient with the wrong sign",
        "Your gradients have the right size but the opposite sign (in training: your weights moved uphill). "
        "That comes from writing (y − ŷ) or (y − probs) where (ŷ − y) or (probs − y) belongs, or from "
        "adding lr·gradient in the update.",
        "Check the sign of the output error (2(ŷ − y) for the squared loss, probs − y for softmax with "
        "cross-entropy) and that the update subtracts: W ← W − lr·dW.",
        mlp_regression=partial(scaled_gradients, -1.0), softmax_classifier=partial(scaled_gradients, -1.0),
        dropout_training=partial(train, REFERENCE_PASS, ascend=True)),
    mistake(
        "transposed_gradient", "weight gradient transposed",
        "Your dW holds the values of the correct gradient, transposed: you computed aᵀ·δ (in × out) where "
        "δᵀ·a (out × in, the shape of W) belongs.",
        "Return dW_l = delta_lᵀ @ a_{l−1}, the same shape as W_l. For a square W the transposed gradient "
        "has the right shape but the wrong values.",
        mlp_regression=transposed_gradients, softmax_classifier=transposed_gradients),
    mistake(
        "derivative_at_activation", "activation derivative taken at the activation instead of at z",
        "Your hidden-layer gradients match a backward pass that evaluates the derivative at the activation "
        "a = σ(z) instead of at z, such as sigmoid_derivative(a) = σ(a)(1 − σ(a)) with a already "
        "activated: that applies the sigmoid twice.",
        "Use σ'(z) = σ(z)(1 − σ(z)) at the pre-activation z, or the same number a(1 − a) from the stored "
        "activation a; never σ(a)(1 − σ(a)).",
        mlp_regression=partial(mlp_unless, ("relu",), MlpTwist(hidden_derivative=derivative_at_activation))),
    mistake(
        "derivative_formula_on_preactivation", "derivative formula a(1 − a) applied to z",
        "Your hidden-layer gradients match a backward pass that uses z(1 − z) as the sigmoid's derivative "
        "(1 − z² for tanh): the formula meant for the activation a = σ(z), fed the pre-activation z.",
        "σ'(z) = a(1 − a) with a = σ(z): use the activation you stored in the forward pass, not z.",
        mlp_regression=partial(mlp_unless, ("relu",),
                               MlpTwist(hidden_derivative=derivative_formula_on_preactivation))),
    mistake(
        "output_activation_derivative", "activation derivative applied at the identity output",
        "Your gradients match a backward pass that multiplies the output error by the activation's "
        "derivative at the last layer. The output layer has no activation (prediction = z), so its "
        "derivative is 1.",
        "At the output, delta = dL/dŷ; apply f'(z) only at the hidden layers.",
        mlp_regression=partial(mlp, MlpTwist(output_derivative=True))),
    mistake(
        "loss_derivative_omitted", "loss derivative left out at the output",
        "Your gradients match a backward pass that starts from 1 instead of dL/dŷ = 2(ŷ − y): they are "
        "the gradients of the prediction, not of the loss.",
        "Start the backward pass with delta = 2(ŷ − y) (divided by the batch size for a mean loss).",
        mlp_regression=partial(mlp, MlpTwist(dL_daL=loss_derivative_one))),
    mistake(
        "derivative_without_activation", "activation derivative taken at a layer that has no activation",
        "Your gradients below a hidden layer that your net leaves without activation (a Linear followed "
        "directly by the next Linear) match a backward pass that still multiplies by the activation's "
        "derivative there. Where the forward pass applies no activation, the derivative is 1: the error "
        "passes through unchanged.",
        "Multiply by f'(z) only at the layers whose output went through f in your forward pass; at a layer "
        "without activation, delta = (next delta) @ W_next and nothing more.",
        mlp_regression=partial(mlp_layers_without_activation, MlpTwist(derivative_without_activation=True))),
    mistake(
        "backprop_through_w_instead_of_wt", "backpropagated through W instead of Wᵀ",
        "Your gradients below a square layer match a backward pass that sends the error back through the "
        "weight matrix the wrong way round (W instead of Wᵀ on paper). Square layers hide this: the "
        "shapes fit either way.",
        "With W stored as (out, in) and one example per row, dL/da_{l−1} = delta_l @ W_l (on paper "
        "W_lᵀ δ_l), not delta_l @ W_l.T.",
        mlp_regression=partial(mlp_square_layers, MlpTwist(untransposed_weights=True))),
    mistake(
        "preactivation_in_weight_gradient", "pre-activation z used in dW = δ·aᵀ",
        "Your weight gradients match dW = δᵀ·z, with the previous layer's pre-activation z where its "
        "output a = f(z) belongs.",
        "dW_l = delta_lᵀ @ a_{l−1}: use what went into the layer (after the activation, and after "
        "dropout), not the pre-activation.",
        mlp_regression=partial(mlp_hidden, MlpTwist(preactivation_in_dW=True)),
        softmax_classifier=partial(classifier, ClassifierTwist(preactivation_in_dW2=True)),
        dropout_training=partial(train, ClassifierTwist(preactivation_in_dW2=True))),
    mistake(
        "gradients_after_update", "gradients read after a weight update",
        "Your gradients are close to the correct ones and match the gradients at weights that already "
        "took one SGD step: an optimizer step (or a training loop) ran before you read .grad.",
        "Read the gradients at the initial weights: forward, loss.backward(), then read .grad before any "
        "optimizer.step() or in-place update of the weights.",
        mlp_regression=gradients_after_update, softmax_classifier=gradients_after_update),
    mistake(
        "accumulated_gradients", "gradients accumulated (no zero_grad)",
        "Your gradients are exactly twice the correct ones: backward() ran twice without zeroing .grad in "
        "between, and torch adds into .grad. In a training loop, each step used the sum of all gradients "
        "so far.",
        "Zero the gradients before every backward() (optimizer.zero_grad(), or P.grad = None) and call "
        "backward() once per forward pass.",
        mlp_regression=partial(scaled_gradients, 2.0), softmax_classifier=partial(scaled_gradients, 2.0),
        dropout_training=partial(train, REFERENCE_PASS, accumulate=True)),
    mistake(
        "mean_instead_of_sum", "loss averaged where a sum was asked",
        "Your loss and gradients are the correct ones divided by the batch size: you averaged the loss "
        "(as nn.MSELoss() and F.cross_entropy do by default) where the assignment sums it.",
        "Sum the loss over the batch: ((ŷ − y)**2).sum(), or reduction='sum'.",
        mlp_regression=partial(other_reduction, "sum"), softmax_classifier=partial(other_reduction, "sum"),
        dropout_training=partial(other_reduction, "sum")),
    mistake(
        "sum_instead_of_mean", "loss summed where a mean was asked",
        "Your loss and gradients are the correct ones times the batch size: you summed the loss over the "
        "batch where the assignment averages it.",
        "Average the loss over the batch: ((ŷ − y)**2).mean(), or divide the output error by N.",
        mlp_regression=partial(other_reduction, "mean"), softmax_classifier=partial(other_reduction, "mean"),
        dropout_training=partial(other_reduction, "mean")),
    mistake(
        "relu_derivative_at_zero", "ReLU derivative at 0 taken as 1",
        "Your gradients differ only at units whose pre-activation is exactly 0, where you used ReLU's "
        "derivative as 1, as (z >= 0) does. Torch uses 0 there: (z > 0).",
        "Use (z > 0) for ReLU's derivative.",
        mlp_regression=partial(mlp_relu_only, MlpTwist(hidden_derivative=relu_tie_to_one)),
        softmax_classifier=partial(classifier, RELU_ZERO_IS_ONE),
        dropout_training=partial(train, RELU_ZERO_IS_ONE)),
    mistake(
        "logits_instead_of_probs", "softmax left out of the output error",
        "Your gradients match an output error z − y built from the raw scores z (the logits): the softmax "
        "was left out. For softmax with cross-entropy the output error is probs − y.",
        "Compute probs = softmax(z) first, then delta = probs − y.",
        softmax_classifier=partial(classifier, ClassifierTwist(logits_for_probs=True)),
        dropout_training=partial(train, ClassifierTwist(logits_for_probs=True))),
    mistake(
        "dropout_without_rescaling", "dropout without the 1/(1 − p) scaling",
        "Your trained weights match dropout that only multiplies by the mask. Inverted dropout (what torch "
        "does) also divides the kept units by (1 − p), in the forward and in the backward pass.",
        "Use h * mask / (1 - p) in the forward pass and multiply dL/dh by the same mask / (1 - p).",
        dropout_training=partial(train_rescaled, lambda p: 1.0, (0.0,))),
    mistake(
        "dropout_scaled_by_keep_probability", "dropout multiplied by (1 − p) instead of divided",
        "Your trained weights match dropout that multiplies the kept units by (1 − p): that is the "
        "test-time scaling of classic dropout. Inverted dropout divides by (1 − p) during training.",
        "h * mask / (1 - p), not h * mask * (1 - p).",
        dropout_training=partial(train_rescaled, lambda p: 1.0 - p, (0.0,))),
    mistake(
        "p_used_as_keep_probability", "drop probability p used as the keep probability",
        "Your trained weights match dropout that scales the kept units by 1/p, as if p were the "
        "probability of keeping a unit. Here p is the probability of dropping one.",
        "The keep probability is 1 − p: scale the kept units by 1/(1 − p), as F.dropout(h, p) does.",
        dropout_training=partial(train_rescaled, lambda p: 1.0 / p, (0.0, 0.5))),
    mistake(
        "mask_not_in_backward", "dropout mask missing from the backward pass",
        "Your trained weights match a backward pass that does not multiply dL/dh by the dropout mask and "
        "1/(1 − p): dropped units still received a gradient.",
        "Backpropagate through dropout like any product: dL/dh = dL/dh_drop * mask / (1 - p).",
        dropout_training=partial(train, ClassifierTwist(keep_in_backward=False))),
    mistake(
        "masks_ignored", "dropout masks not used",
        "Your trained weights match plain training without dropout: the keep-masks handed to your "
        "function were not applied.",
        "In epoch e use masks[e]: h_drop = h * masks[e] / (1 - p), and the same factor in the backward pass.",
        dropout_training=train_without_dropout),
)


def mistakes_for(kind: str) -> list[Mistake]:
    """Every catalogued mistake that applies to task `kind` (none for autograd_graph)."""
    if kind not in KINDS + ("autograd_graph",):
        raise ValueError(f"unknown task kind {kind!r}; expected one of: {', '.join(KINDS)}, autograd_graph")
    return [m for m in CATALOGUE if kind in m.kinds]


def run_mutant(
    mistake: Mistake,
    kind: str,
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    *,
    activation: str = "sigmoid",
    reduction: str = "sum",
    masks: Array | None = None,
    p: float = 0.0,
    lr: float = 0.0,
) -> Values | None:
    """The quantities a submission with `mistake` computes on this trial, keyed like the reference for
    `kind`; None when the mistake cannot apply here. lr is the training rate for dropout_training and
    the rate of the assumed optimizer step for "gradients_after_update" (try UPDATE_LEARNING_RATES)."""
    if kind == "dropout_training":
        check_drop_probability(p)
        if masks is None or np.ndim(masks) != 3:
            raise ValueError(f"dropout_training: masks of shape (epochs, N, H) are needed to run a mutant; "
                             f"found {None if masks is None else np.shape(masks)}")
    if kind not in mistake.kinds:
        return None
    return mistake.compute(Instance(kind, x, y, params, activation, reduction, masks, p, lr))
