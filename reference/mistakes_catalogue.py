"""The catalogue of known mistakes (DESIGN §7): what each is called and told to students, and its mutant.

A Mistake has a stable id, a title, an explanation and a hint for students, the task kinds it applies
to, and its `edit` of the reference (`reference.mistakes_mutants`): the values a submission with exactly
this mistake would produce on a trial. Entries are listed in the order the grader prefers them when two
explain a student's values equally well. `reference.mistakes` builds every pair from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from reference.mistakes_backprop import (
    derivative_at_activation,
    derivative_formula_on_preactivation,
    derivative_omitted,
    half_squared_loss_derivative,
    loss_derivative_one,
    relu_derivative_omitted,
    relu_derivative_one_at_zero,
    relu_tie_to_one,
)
from reference.mistakes_mutants import (
    KINDS,
    Edit,
    Instance,
    Values,
    batch_with_biases,
    has_hidden,
    input_fits,
    layer_without_activation,
    not_on,
    p_not_in,
    relu_net,
    run_edit,
    square_backprop,
    square_layer,
)

MLP = ("mlp_regression",)
GRADIENTS = ("mlp_regression", "softmax_classifier")
CLASSIFIERS = ("softmax_classifier", "dropout_training")
DROPOUT = ("dropout_training",)


@dataclass(frozen=True)
class Mistake:
    """A known mistake, or two made together (`parts`: their ids; a single mistake's is its own). Its
    mutant is `edit` on the task kinds in `kinds`; call it through `reference.mistakes.run_mutant`."""

    id: str
    title: str
    explanation: str
    hint: str
    kinds: tuple[str, ...]
    edit: Edit
    parts: tuple[str, ...] = ()

    def compute(self, inst: Instance) -> Values | None:
        """The mutant's values on the instance, None where the mistake cannot apply (or for another kind)."""
        return run_edit(self.edit, inst) if inst.kind in self.kinds else None

    @property
    def steps(self) -> bool:
        """Whether the mutant assumes an optimizer step, whose learning rate the grader has to guess."""
        return self.edit.step


def mistake(id: str, title: str, explanation: str, hint: str, edit: Edit, kinds: tuple[str, ...]) -> Mistake:
    """A single catalogued mistake."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"mistake {id}: unknown task kinds {sorted(unknown)}")
    return Mistake(id, title, explanation, hint, kinds, edit, (id,))


def unscaled(p: float) -> float:
    """Kept units multiplied by the mask only."""
    return 1.0


def times_keep_probability(p: float) -> float:
    """Kept units multiplied by (1 − p), classic dropout's test-time scaling."""
    return 1.0 - p


def over_drop_probability(p: float) -> float:
    """Kept units divided by p, as if p were the keep probability."""
    return 1.0 / p


CATALOGUE: tuple[Mistake, ...] = (
    mistake(
        "missing_factor_2",
        "missing factor 2 of the squared loss",
        "Every gradient is exactly half of the correct one. That is what you get when the derivative of "
        "the loss (ŷ − y)² is taken as (ŷ − y), without its factor 2.",
        "Look at the first step of your backward pass: d/dŷ (ŷ − y)² = 2(ŷ − y).",
        Edit(mlp=(("dL_daL", half_squared_loss_derivative),)),
        MLP,
    ),
    mistake(
        "sign_flip",
        "gradient with the wrong sign",
        "Your gradients have the right size but the opposite sign (in training: your weights moved uphill). "
        "That comes from writing (y − ŷ) or (y − probs) where (ŷ − y) or (probs − y) belongs, or from "
        "adding lr·gradient in the update.",
        "Check the sign of the output error (2(ŷ − y) for the squared loss, probs − y for softmax with "
        "cross-entropy) and that the update subtracts: W ← W − lr·dW.",
        Edit(negate=True),
        KINDS,
    ),
    mistake(
        "transposed_gradient",
        "weight gradient transposed",
        "Your dW holds the values of the correct gradient, transposed: you computed aᵀ·δ (in × out) where "
        "δᵀ·a (out × in, the shape of W) belongs.",
        "Return dW_l = delta_lᵀ @ a_{l−1}, the same shape as W_l. For a square W the transposed gradient "
        "has the right shape but the wrong values.",
        Edit(transpose=True),
        GRADIENTS,
    ),
    mistake(
        "derivative_at_activation",
        "activation derivative taken at the activation instead of at z",
        "Your hidden-layer gradients match a backward pass that evaluates the derivative at the activation "
        "a = σ(z) instead of at z, such as sigmoid_derivative(a) = σ(a)(1 − σ(a)) with a already "
        "activated: that applies the sigmoid twice.",
        "Use σ'(z) = σ(z)(1 − σ(z)) at the pre-activation z, or the same number a(1 − a) from the stored "
        "activation a; never σ(a)(1 − σ(a)).",
        Edit(mlp=(("hidden_derivative", derivative_at_activation),), conditions=(not_on("relu"),)),
        MLP,
    ),
    mistake(
        "derivative_formula_on_preactivation",
        "derivative formula a(1 − a) applied to z",
        "Your hidden-layer gradients match a backward pass that uses z(1 − z) as the sigmoid's derivative "
        "(1 − z² for tanh): the formula meant for the activation a = σ(z), fed the pre-activation z.",
        "σ'(z) = a(1 − a) with a = σ(z): use the activation you stored in the forward pass, not z.",
        Edit(mlp=(("hidden_derivative", derivative_formula_on_preactivation),), conditions=(not_on("relu"),)),
        MLP,
    ),
    mistake(
        "output_activation_derivative",
        "activation derivative applied at the identity output",
        "Your gradients match a backward pass that multiplies the output error by the activation's "
        "derivative at the last layer. The output layer has no activation (prediction = z), so its "
        "derivative is 1.",
        "At the output, delta = dL/dŷ; apply f'(z) only at the hidden layers.",
        Edit(mlp=(("output_derivative", True),)),
        MLP,
    ),
    mistake(
        "loss_derivative_omitted",
        "loss derivative left out at the output",
        "Your gradients match a backward pass that starts from 1 instead of dL/dŷ = 2(ŷ − y): they are "
        "the gradients of the prediction, not of the loss.",
        "Start the backward pass with delta = 2(ŷ − y) (divided by the batch size for a mean loss).",
        Edit(mlp=(("dL_daL", loss_derivative_one),)),
        MLP,
    ),
    mistake(
        "derivative_without_activation",
        "activation derivative taken at a layer that has no activation",
        "Your gradients below a hidden layer that your net leaves without activation (a Linear followed "
        "directly by the next Linear) match a backward pass that still multiplies by the activation's "
        "derivative there. Where the forward pass applies no activation, the derivative is 1: the error "
        "passes through unchanged.",
        "Multiply by f'(z) only at the layers whose output went through f in your forward pass; at a layer "
        "without activation, delta = (next delta) @ W_next and nothing more.",
        Edit(mlp=(("derivative_without_activation", True),), conditions=(layer_without_activation,)),
        MLP,
    ),
    mistake(
        "backprop_through_w_instead_of_wt",
        "backpropagated through W instead of Wᵀ",
        "Your gradients below a square layer match a backward pass that sends the error back through the "
        "weight matrix the wrong way round (W instead of Wᵀ on paper). Square layers hide this: the "
        "shapes fit either way.",
        "With W stored as (out, in) and one example per row, dL/da_{l−1} = delta_l @ W_l (on paper "
        "W_lᵀ δ_l), not delta_l @ W_l.T.",
        Edit(mlp=(("untransposed_weights", True),), conditions=(square_backprop,)),
        MLP,
    ),
    mistake(
        "preactivation_in_weight_gradient",
        "pre-activation z used in dW = δ·aᵀ",
        "Your weight gradients match dW = δᵀ·z, with the previous layer's pre-activation z where its "
        "output a = f(z) belongs.",
        "dW_l = delta_lᵀ @ a_{l−1}: use what went into the layer (after the activation, and after "
        "dropout), not the pre-activation.",
        Edit(
            mlp=(("dW_input", "preactivation"),), classifier=(("preactivation_in_dW2", True),), conditions=(has_hidden,)
        ),
        KINDS,
    ),
    mistake(
        "gradients_after_update",
        "gradients read after a weight update",
        "Your gradients are close to the correct ones and match the gradients at weights that already "
        "took one SGD step: an optimizer step (or a training loop) ran before you read .grad.",
        "Read the gradients at the initial weights: forward, loss.backward(), then read .grad before any "
        "optimizer.step() or in-place update of the weights.",
        Edit(step=True),
        GRADIENTS,
    ),
    mistake(
        "accumulated_gradients",
        "gradients accumulated (no zero_grad)",
        "Your gradients are exactly twice the correct ones: backward() ran twice without zeroing .grad in "
        "between, and torch adds into .grad. In a training loop, each step used the sum of all gradients "
        "so far.",
        "Zero the gradients before every backward() (optimizer.zero_grad(), or P.grad = None) and call "
        "backward() once per forward pass.",
        Edit(accumulate=True),
        KINDS,
    ),
    mistake(
        "mean_instead_of_sum",
        "loss averaged where a sum was asked",
        "Your loss and gradients are the correct ones divided by the batch size: you averaged the loss "
        "(as nn.MSELoss() and F.cross_entropy do by default) where the assignment sums it.",
        "Sum the loss over the batch: ((ŷ − y)**2).sum(), or reduction='sum'.",
        Edit(reduction="mean"),
        KINDS,
    ),
    mistake(
        "sum_instead_of_mean",
        "loss summed where a mean was asked",
        "Your loss and gradients are the correct ones times the batch size: you summed the loss over the "
        "batch where the assignment averages it.",
        "Average the loss over the batch: ((ŷ − y)**2).mean(), or divide the output error by N.",
        Edit(reduction="sum"),
        KINDS,
    ),
    mistake(
        "relu_derivative_at_zero",
        "ReLU derivative at 0 taken as 1",
        "Your gradients differ only at units whose pre-activation is exactly 0, where you used ReLU's "
        "derivative as 1, as (z >= 0) does. Torch uses 0 there: (z > 0).",
        "Use (z > 0) for ReLU's derivative.",
        Edit(
            mlp=(("hidden_derivative", relu_tie_to_one),),
            classifier=(("relu_derivative", relu_derivative_one_at_zero),),
            conditions=(relu_net,),
        ),
        KINDS,
    ),
    mistake(
        "logits_instead_of_probs",
        "softmax left out of the output error",
        "Your gradients match an output error z − y built from the raw scores z (the logits): the softmax "
        "was left out. For softmax with cross-entropy the output error is probs − y.",
        "Compute probs = softmax(z) first, then delta = probs − y.",
        Edit(classifier=(("logits_for_probs", True),)),
        CLASSIFIERS,
    ),
    mistake(
        "dropout_without_rescaling",
        "dropout without the 1/(1 − p) scaling",
        "Your trained weights match dropout that only multiplies by the mask. Inverted dropout (what torch "
        "does) also divides the kept units by (1 − p), in the forward and in the backward pass.",
        "Use h * mask / (1 - p) in the forward pass and multiply dL/dh by the same mask / (1 - p).",
        Edit(keep_scale=unscaled, conditions=(p_not_in(0.0),)),
        DROPOUT,
    ),
    mistake(
        "dropout_scaled_by_keep_probability",
        "dropout multiplied by (1 − p) instead of divided",
        "Your trained weights match dropout that multiplies the kept units by (1 − p): that is the "
        "test-time scaling of classic dropout. Inverted dropout divides by (1 − p) during training.",
        "h * mask / (1 - p), not h * mask * (1 - p).",
        Edit(keep_scale=times_keep_probability, conditions=(p_not_in(0.0),)),
        DROPOUT,
    ),
    mistake(
        "p_used_as_keep_probability",
        "drop probability p used as the keep probability",
        "Your trained weights match dropout that scales the kept units by 1/p, as if p were the "
        "probability of keeping a unit. Here p is the probability of dropping one.",
        "The keep probability is 1 − p: scale the kept units by 1/(1 − p), as F.dropout(h, p) does.",
        Edit(keep_scale=over_drop_probability, conditions=(p_not_in(0.0, 0.5),)),
        DROPOUT,
    ),
    mistake(
        "mask_not_in_backward",
        "dropout mask missing from the backward pass",
        "Your trained weights match a backward pass that does not multiply dL/dh by the dropout mask and "
        "1/(1 − p): dropped units still received a gradient.",
        "Backpropagate through dropout like any product: dL/dh = dL/dh_drop * mask / (1 - p).",
        Edit(classifier=(("keep_in_backward", False),)),
        DROPOUT,
    ),
    mistake(
        "dropout_not_in_backward",
        "dropout left out of the backward pass",
        "Your trained weights match a backward pass that ignores dropout altogether: dW2 computed from the "
        "hidden activations before dropout, and dL/dh not multiplied by the mask (and 1/(1 − p)). The units the "
        "forward pass dropped were still trained.",
        "Backpropagate through the dropout you applied: dW2 = delta2ᵀ @ h_drop, and dL/dh = dL/dh_drop * mask "
        "/ (1 - p).",
        # dW2's input is this mistake's own: it makes no pair with preactivation_in_weight_gradient
        Edit(classifier=(("keep_in_backward", False), ("dropped_in_dW2", False), ("preactivation_in_dW2", False))),
        DROPOUT,
    ),
    mistake(
        "masks_ignored",
        "dropout masks not used",
        "Your trained weights match plain training without dropout: the keep-masks handed to your "
        "function were not applied.",
        "In epoch e use masks[e]: h_drop = h * masks[e] / (1 - p), and the same factor in the backward pass.",
        Edit(no_dropout=True),
        DROPOUT,
    ),
    mistake(
        "hidden_derivative_omitted",
        "activation derivative left out at a hidden layer",
        "Your hidden-layer gradients match a backward pass that sends the error back through the weights "
        "and stops there: δ_l = W_{l+1}ᵀδ_{l+1}, without multiplying by the activation's derivative f'(z_l).",
        "At every hidden layer, after multiplying by W_{l+1}ᵀ multiply element-wise by f'(z_l): a(1 − a) "
        "for the sigmoid, 1 − a² for tanh, (z > 0) for ReLU.",
        Edit(
            mlp=(("hidden_derivative", derivative_omitted),),
            classifier=(("relu_derivative", relu_derivative_omitted),),
            conditions=(has_hidden,),
        ),
        KINDS,
    ),
    mistake(
        "bias_gradient_not_summed",
        "bias gradient not summed over the batch",
        "Your bias gradients keep one row per example (shape (N, n)): db_l = δ_l where the sum over the "
        "batch belongs. The same bias is added to every example, so its gradient adds up their δ_l.",
        "db_l = delta_l.sum(axis=0), with the shape of b_l.",
        Edit(mlp=(("bias_summed", False),), classifier=(("bias_summed", False),), conditions=(batch_with_biases,)),
        GRADIENTS,
    ),
    mistake(
        "next_activation_in_weight_gradient",
        "the layer's own output a_l used in dW = δ·aᵀ",
        "Your weight gradients match dW_l = δ_l a_lᵀ, with the layer's own output a_l where its input "
        "a_{l−1} belongs: an index one layer off. Square layers hide it: the shapes fit either way.",
        "dW_l = delta_lᵀ @ a_{l−1}: the activation that went into layer l, not the one that came out.",
        Edit(mlp=(("dW_input", "next"),), conditions=(square_layer,)),
        MLP,
    ),
    mistake(
        "input_in_weight_gradient",
        "the input x used in dW of a deeper layer",
        "Your weight gradients match dW_l = δ_l xᵀ at a layer below the first, with the net's input x where "
        "the previous layer's output a_{l−1} belongs.",
        "Only the first layer takes x: dW_1 = delta_1ᵀ @ x, and dW_l = delta_lᵀ @ a_{l−1} above it.",
        Edit(mlp=(("dW_input", "input"),), conditions=(input_fits,)),
        MLP,
    ),
)
