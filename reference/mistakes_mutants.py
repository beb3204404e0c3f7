"""The mutants of the mistake catalogue: the reference's quantities as a given mistake changes them.

`reference.mistakes` names and explains each mistake and points at one of these functions; they either
transform the reference's output (a sign, a factor, a transpose, another reduction, other weights) or
run the twisted backward pass of `reference.mistakes_backprop`. Each takes the trial as an `Instance`
and returns the reference's keys for its kind, or None where the mistake cannot apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from reference import dropout_training, mlp_regression, softmax_classifier
from reference.mistakes_backprop import ClassifierTwist, MlpTwist, classifier_pass, dropout_sgd, mlp_pass

Array = np.ndarray
Values = dict[str, Array]

KINDS = ("mlp_regression", "softmax_classifier", "dropout_training")


@dataclass(frozen=True)
class Instance:
    """One trial as a mutant sees it. lr: the training rate for dropout_training, else the rate of the
    one optimizer step that "gradients_after_update" assumes."""

    kind: str
    x: Array
    y: Array
    params: Mapping[str, Array]
    activation: mlp_regression.Activations = "sigmoid"  # one name, or one per hidden layer
    reduction: str = "sum"
    masks: Array | None = None
    p: float = 0.0
    lr: float = 0.0


Mutant = Callable[[Instance], "Values | None"]


def reference_values(inst: Instance) -> Values:
    """What the reference computes for the instance's kind: the values every mutant departs from."""
    if inst.kind == "mlp_regression":
        return mlp_regression.scratch(inst.x, inst.y, inst.params, inst.activation, inst.reduction)
    if inst.kind == "softmax_classifier":
        return softmax_classifier.scratch(inst.x, inst.y, inst.params, inst.reduction)
    if inst.kind == "dropout_training":
        return dropout_training.train(
            inst.x, inst.y, inst.params, inst.masks, inst.p, inst.lr, inst.reduction
        )
    raise ValueError(f"unknown task kind {inst.kind!r}; expected one of: {', '.join(KINDS)}")


# --- mutants of the reference's output ---------------------------------------------------------------
def scaled_gradients(factor: float, inst: Instance) -> Values:
    """Every dW/db times `factor`; prediction, probs and loss as in the reference."""
    return {k: factor * v if k.startswith("d") else v for k, v in reference_values(inst).items()}


def transposed_gradients(inst: Instance) -> Values:
    """Every dW_l transposed (in × out); db_l, prediction and loss as in the reference."""
    return {k: v.T if k.startswith("dW") else v for k, v in reference_values(inst).items()}


def other_reduction(reduction: str, inst: Instance) -> Values | None:
    """The reference with the other reduction, where `reduction` was asked and "mean" divides by > 1."""
    if inst.reduction != reduction or mean_divisor(inst) == 1:
        return None
    return reference_values(replace(inst, reduction="mean" if reduction == "sum" else "sum"))


def mean_divisor(inst: Instance) -> int:
    """What "mean" divides by: N · outputs for mlp_regression (as MSELoss), N for the classifiers."""
    N = np.shape(inst.x)[0]
    if inst.kind == "mlp_regression":
        return N * np.shape(inst.params[f"W{count_weights(inst)}"])[0]
    return N


def gradients_after_update(inst: Instance) -> Values | None:
    """The reference at the weights after one SGD step P ← P − lr·dP (needs lr > 0)."""
    if inst.lr <= 0:
        return None
    gradients = reference_values(inst)
    stepped = {name: np.asarray(P, dtype=np.float64) - inst.lr * gradients[f"d{name}"]
               for name, P in inst.params.items()}
    return reference_values(replace(inst, params=stepped))


def count_weights(inst: Instance) -> int:
    """L, the number of weight matrices W1..WL."""
    return sum(1 for name in inst.params if name.startswith("W"))


# --- mutants of the backward pass ----------------------------------------------------------------------
def mlp(twist: MlpTwist, inst: Instance) -> Values:
    """mlp_regression with the twisted backward pass."""
    return mlp_pass(inst.x, inst.y, inst.params, inst.activation, inst.reduction, twist)


def mlp_unless(activations: tuple[str, ...], twist: MlpTwist, inst: Instance) -> Values | None:
    """The twisted mlp, or None for the (main) activations on which the twist is the reference itself."""
    return None if mlp_regression.main_activation(inst.activation) in activations else mlp(twist, inst)


def mlp_relu_only(twist: MlpTwist, inst: Instance) -> Values | None:
    """The twisted mlp for ReLU nets only."""
    return mlp(twist, inst) if mlp_regression.main_activation(inst.activation) == "relu" else None


def mlp_layers_without_activation(twist: MlpTwist, inst: Instance) -> Values | None:
    """The twisted mlp where some hidden layer has no activation (per-layer activations), else None."""
    if isinstance(inst.activation, str) or "identity" not in inst.activation:
        return None
    return None if mlp_regression.main_activation(inst.activation) == "identity" else mlp(twist, inst)


def mlp_square_layers(twist: MlpTwist, inst: Instance) -> Values | None:
    """The twisted mlp where some W_l (l ≥ 2, the ones backpropagated through) is square, else None."""
    shapes = [np.shape(inst.params[f"W{l}"]) for l in range(2, count_weights(inst) + 1)]
    return mlp(twist, inst) if any(rows == cols for rows, cols in shapes) else None


def mlp_hidden(twist: MlpTwist, inst: Instance) -> Values | None:
    """The twisted mlp where there is a hidden layer (z and a to confuse), else None."""
    return mlp(twist, inst) if count_weights(inst) > 1 else None


def classifier(twist: ClassifierTwist, inst: Instance) -> Values:
    """softmax_classifier with the twisted backward pass."""
    return classifier_pass(inst.x, inst.y, inst.params, inst.reduction, None, twist)


def train(
    twist: ClassifierTwist, inst: Instance, *, ascend: bool = False, accumulate: bool = False
) -> Values:
    """dropout_training with the twisted pass and the reference's keep = mask / (1 − p)."""
    return dropout_sgd(inst.x, inst.y, inst.params, inst.masks, 1.0 / (1.0 - inst.p), inst.lr, inst.reduction,
                       twist, ascend=ascend, accumulate=accumulate)


def train_rescaled(
    scale: Callable[[float], float], excluded: tuple[float, ...], inst: Instance
) -> Values | None:
    """dropout_training with kept units scaled by scale(p) instead of 1/(1 − p), forward and backward;
    None for the p in `excluded`, where that scale is undefined or the reference's own."""
    if inst.p in excluded:
        return None
    return dropout_sgd(inst.x, inst.y, inst.params, inst.masks, scale(inst.p), inst.lr, inst.reduction)


def train_without_dropout(inst: Instance) -> Values:
    """Plain full-batch SGD, the masks never applied."""
    return dropout_sgd(inst.x, inst.y, inst.params, inst.masks, None, inst.lr, inst.reduction)
