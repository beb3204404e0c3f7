"""The mutants of the mistake catalogue: the reference's quantities as a mistake, or two at once, change them.

Each catalogued mistake is an `Edit` of the reference, made of parts two mistakes can share: fields of
the twisted backward passes (`reference.mistakes_backprop`), a sign or a factor 2 on the gradients (for
training: steps uphill, or along the running sum of gradients), every dW transposed, the other loss
reduction, an optimizer step before the gradients are read, and for training the dropout scaling. Two
edits `combine` when no part is set by both, so every pair of mistakes has a mutant without one being
written for it: a student who drops the factor 2 and flips the sign is one combined edit away from the
reference. `run_edit` computes an edit's values on a trial (an `Instance`), keyed like the reference for
its kind, or None where the edit cannot apply there (each part's condition: a square layer, a ReLU net,
a batch of more than one …). What an edit bends of each kind's reference (its values, the backward pass
or the training, what "mean" divides by) is that kind's entry of `MATHS`: a new kind's mutants are an
entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from reference import dropout_training, mlp_regression, softmax_classifier
from reference.mistakes_backprop import ClassifierTwist, MlpTwist, classifier_pass, dropout_sgd, mlp_pass

Array = np.ndarray
Values = dict[str, Array]


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


Condition = Callable[[Instance], bool]


@dataclass(frozen=True)
class Edit:
    """How a mistake bends the reference; the defaults are the reference. `mlp` and `classifier`: fields
    of MlpTwist and ClassifierTwist (the latter also for training). negate: gradients × −1 (training
    steps uphill); accumulate: gradients × 2, .grad added into twice (training steps along the running
    sum); transpose: every dW_l transposed; reduction: the one used where the other was asked; step: the
    gradients at the weights after one SGD step of lr; keep_scale(p): kept units scaled by it instead of
    1/(1 − p); no_dropout: the masks never applied. `conditions`: where the edit can apply at all."""

    mlp: tuple[tuple[str, object], ...] = ()
    classifier: tuple[tuple[str, object], ...] = ()
    negate: bool = False
    accumulate: bool = False
    transpose: bool = False
    reduction: str | None = None
    step: bool = False
    keep_scale: Callable[[float], float] | None = None
    no_dropout: bool = False
    conditions: tuple[Condition, ...] = ()


def combine(first: Edit, second: Edit) -> Edit | None:
    """Both edits at once, or None when they set the same part (two stand-ins for one derivative, two
    reductions …) or one undoes the other's subject (no dropout with a dropout scaling or mask mistake)."""
    parts = {}
    for field in fields(Edit):
        a, b = getattr(first, field.name), getattr(second, field.name)
        if field.name in ("mlp", "classifier"):
            if {key for key, _ in a} & {key for key, _ in b}:
                return None
            parts[field.name] = a + b
        elif field.name == "conditions":
            parts[field.name] = a + b
        elif a != field.default and b != field.default:
            return None
        else:
            parts[field.name] = b if a == field.default else a
    merged = Edit(**parts)
    if merged.no_dropout and (
        merged.keep_scale is not None or dict(merged.classifier).get("keep_in_backward") is False
    ):
        return None
    return merged


def run_edit(edit: Edit, inst: Instance) -> Values | None:
    """The values a submission with this edit's mistakes computes on the instance, or None where it
    cannot apply. The optimizer step of `step` uses the gradients the edited pass computed."""
    if not all(condition(inst) for condition in edit.conditions):
        return None
    if edit.reduction is not None:
        if inst.reduction == edit.reduction or mean_divisor(inst) == 1:
            return None  # the reduction asked, or one where "mean" and "sum" agree
        inst = replace(inst, reduction=edit.reduction)
    maths = _maths(inst)
    if maths.train is not None:
        return maths.train(edit, inst)
    values = maths.backward(edit, inst)
    if edit.step:
        if inst.lr <= 0:
            return None
        stepped = {
            name: np.asarray(P, dtype=np.float64) - inst.lr * values[f"d{name}"] for name, P in inst.params.items()
        }
        values = maths.backward(edit, replace(inst, params=stepped))
    factor = (-1.0 if edit.negate else 1.0) * (2.0 if edit.accumulate else 1.0)
    if factor != 1.0:
        values = {k: factor * v if k.startswith("d") else v for k, v in values.items()}
    if edit.transpose:
        values = {k: v.T if k.startswith("dW") else v for k, v in values.items()}
    return values


def reference_values(inst: Instance) -> Values:
    """What the reference computes for the instance's kind: the values every mutant departs from."""
    return _maths(inst).reference(inst)


def mean_divisor(inst: Instance) -> int:
    """What "mean" divides by: N · outputs for mlp_regression (as MSELoss), N for the classifiers."""
    return _maths(inst).mean_divisor(inst)


def count_weights(inst: Instance) -> int:
    """L, the number of weight matrices W1..WL."""
    return sum(1 for name in inst.params if name.startswith("W"))


# --- where a part can apply (each None-free: an mlp condition holds for the other kinds) ------------------
def _mlp_only(test: Callable[[Instance], bool]) -> Condition:
    return lambda inst: not _is_mlp(inst) or test(inst)


def _is_mlp(inst: Instance) -> bool:
    """The regression net, whose twists (MlpTwist) and layer conditions apply."""
    return inst.kind in MATHS and MATHS[inst.kind].mlp


def _shapes(inst: Instance) -> list[tuple[int, int]]:
    """(out, in) of W1..WL."""
    return [np.shape(inst.params[f"W{l}"]) for l in range(1, count_weights(inst) + 1)]


def not_on(*activations: str) -> Condition:
    """An mlp whose (main) hidden activation is none of these: there the twist is the reference itself."""
    return _mlp_only(lambda inst: mlp_regression.main_activation(inst.activation) not in activations)


relu_net = _mlp_only(lambda inst: mlp_regression.main_activation(inst.activation) == "relu")
has_hidden = _mlp_only(lambda inst: count_weights(inst) > 1)
square_backprop = _mlp_only(lambda inst: any(rows == cols for rows, cols in _shapes(inst)[1:]))  # W_l, l ≥ 2
square_layer = _mlp_only(lambda inst: any(rows == cols for rows, cols in _shapes(inst)))  # a_l fits for a_{l−1}
input_fits = _mlp_only(lambda inst: any(cols == np.shape(inst.x)[1] for _, cols in _shapes(inst)[1:]))


def layer_without_activation(inst: Instance) -> bool:
    """An mlp given per-layer activations with a hidden layer left without one (and one with one)."""
    if not _is_mlp(inst):
        return True
    names = inst.activation
    return not isinstance(names, str) and "identity" in names and mlp_regression.main_activation(names) != "identity"


def batch_with_biases(inst: Instance) -> bool:
    """More than one example and biases: only then can a bias gradient be left unsummed."""
    return np.shape(inst.x)[0] > 1 and "b1" in inst.params


def p_not_in(*excluded: float) -> Condition:
    """Dropout probabilities where a rescaling is undefined or the reference's own are excluded."""
    return lambda inst: inst.p not in excluded


# --- each kind's reference, as the mutants bend it ------------------------------------------------------
@dataclass(frozen=True)
class KindMaths:
    """What the mutants need of one task kind's reference: its values; for a gradient kind the pass an
    edit twists (its sign, factor, transposes and optimizer step then applied alike), for a training kind
    the training an edit bends whole; what "mean" divides by; whether the regression net's twists and
    layer conditions apply (`mlp`); what an instance must hold for its mutants to run at all (`needs`:
    raises ValueError saying what is missing)."""

    reference: Callable[[Instance], Values]
    backward: Callable[[Edit, Instance], Values] | None = None
    train: Callable[[Edit, Instance], Values] | None = None
    mean_divisor: Callable[[Instance], int] = lambda inst: np.shape(inst.x)[0]
    mlp: bool = False
    needs: Callable[[Instance], None] = lambda inst: None


def _mlp_backward(edit: Edit, inst: Instance) -> Values:
    return mlp_pass(inst.x, inst.y, inst.params, inst.activation, inst.reduction, MlpTwist(**dict(edit.mlp)))


def _classifier_backward(edit: Edit, inst: Instance) -> Values:
    return classifier_pass(inst.x, inst.y, inst.params, inst.reduction, None, ClassifierTwist(**dict(edit.classifier)))


def _dropout_needs(inst: Instance) -> None:
    """A dropout mutant trains with the trial's own keep-masks and drop probability."""
    dropout_training.check_drop_probability(inst.p)
    if inst.masks is None or np.ndim(inst.masks) != 3:
        raise ValueError(
            f"dropout_training: masks of shape (epochs, N, H) are needed to run a mutant; "
            f"found {None if inst.masks is None else np.shape(inst.masks)}"
        )


def _dropout_train(edit: Edit, inst: Instance) -> Values:
    keep = None if edit.no_dropout else edit.keep_scale(inst.p) if edit.keep_scale else 1.0 / (1.0 - inst.p)
    return dropout_sgd(
        inst.x,
        inst.y,
        inst.params,
        inst.masks,
        keep,
        inst.lr,
        inst.reduction,
        ClassifierTwist(**dict(edit.classifier)),
        ascend=edit.negate,
        accumulate=edit.accumulate,
    )


MATHS: dict[str, KindMaths] = {
    "mlp_regression": KindMaths(
        reference=lambda inst: mlp_regression.scratch(inst.x, inst.y, inst.params, inst.activation, inst.reduction),
        backward=_mlp_backward,
        mean_divisor=lambda inst: np.shape(inst.x)[0] * np.shape(inst.params[f"W{count_weights(inst)}"])[0],
        mlp=True,
    ),
    "softmax_classifier": KindMaths(
        reference=lambda inst: softmax_classifier.scratch(inst.x, inst.y, inst.params, inst.reduction),
        backward=_classifier_backward,
    ),
    "dropout_training": KindMaths(
        reference=lambda inst: dropout_training.train(
            inst.x, inst.y, inst.params, inst.masks, inst.p, inst.lr, inst.reduction
        ),
        train=_dropout_train,
        needs=_dropout_needs,
    ),
}
KINDS = tuple(MATHS)


def needs(inst: Instance) -> None:
    """ValueError when `inst` lacks what its kind's mutants need (an unknown kind included)."""
    _maths(inst).needs(inst)


def _maths(inst: Instance) -> KindMaths:
    """The instance's kind's reference, or a clear error for a kind that has no mutants."""
    if inst.kind not in MATHS:
        raise ValueError(f"unknown task kind {inst.kind!r}; expected one of: {', '.join(KINDS)}")
    return MATHS[inst.kind]
