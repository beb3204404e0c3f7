"""Known mistakes (DESIGN §7): the catalogue, every pair of its mistakes, and their mutants.

A Mistake (`reference.mistakes_catalogue`) has a stable id, a title, an explanation and a hint for
students, the task kinds it applies to, and its mutant: the quantities a submission with exactly this
mistake would produce on the same trial, keyed like the reference, or None where the mistake cannot
apply to the instance (a shape-incompatible one, or one that is the reference by construction there,
such as mean vs sum with one element). Real students make two mistakes at once, so every two catalogued
mistakes whose edits combine (`reference.mistakes_mutants.combine`) make a pair, "a+b", with a mutant of
its own. The grader diagnoses a failing quantity by running the applicable mutants and naming the one
that matches the student's values — a single mistake before a pair — and only where the mutant differs
from the reference, so a mutant may equal the reference on some trials (ReLU's derivative at 0 only
matters where a pre-activation is exactly 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reference.mistakes_catalogue import CATALOGUE, Mistake
from reference.mistakes_mutants import KINDS, Edit, Instance, Values, combine, needs

__all__ = [
    "CATALOGUE",
    "KINDS",
    "PAIRS",
    "UPDATE_LEARNING_RATES",
    "Mistake",
    "at_layer",
    "mistakes_for",
    "pair",
    "pairs_for",
    "run_mutant",
    "together",
]

Array = np.ndarray

# Learning rates the grader tries for "gradients_after_update": students' usual choices.
UPDATE_LEARNING_RATES = (0.1, 0.01, 0.001)


def pair(first: Mistake, second: Mistake) -> Mistake | None:
    """Both mistakes made together, on the kinds both apply to; None when their edits do not combine
    (two stand-ins for one step of the backward pass) or they share no kind."""
    kinds = tuple(kind for kind in first.kinds if kind in second.kinds)
    edit = combine(first.edit, second.edit)
    if not kinds or edit is None:
        return None
    return together(first, second, kinds, edit)


def together(first: Mistake, second: Mistake, kinds: tuple[str, ...] = (), edit: Edit | None = None) -> Mistake:
    """The two mistakes named as one, "first+second", with both explanations and hints. Without an edit
    it names two mistakes found at different layers, which no whole-pass mutant makes."""
    return Mistake(
        id=f"{first.id}+{second.id}",
        title=f"{first.title}, and {second.title}",
        explanation=f"Your values match two mistakes made together. First: {first.explanation} Second: {second.explanation}",
        hint=f"{first.hint} {second.hint}",
        kinds=kinds,
        edit=edit if edit is not None else Edit(),
        parts=(first.id, second.id),
    )


PAIRS: tuple[Mistake, ...] = tuple(
    both
    for i, first in enumerate(CATALOGUE)
    for second in CATALOGUE[i + 1 :]
    if (both := pair(first, second)) is not None
)


# MlpTwist fields that bend one layer's relations: a mistake made of these alone can be made at one layer.
LAYER_FIELDS = {"hidden_derivative", "untransposed_weights", "dW_input", "bias_summed", "derivative_without_activation"}


def at_layer(mistake: Mistake, layer: int) -> Mistake | None:
    """The mistake made at one layer only (as in one line of an unrolled backward pass), "id@layer", for
    mlp_regression; None for a mistake that is not about one layer's relations."""
    edit = mistake.edit
    fields = {name for name, _ in edit.mlp}
    only_twists = Edit(mlp=edit.mlp, classifier=edit.classifier, conditions=edit.conditions)
    if len(mistake.parts) != 1 or not fields or not fields <= LAYER_FIELDS or edit != only_twists:
        return None
    local = Edit(
        mlp=(*edit.mlp, ("layers", tuple((name, (layer,)) for name in sorted(fields)))), conditions=edit.conditions
    )
    return Mistake(
        f"{mistake.id}@{layer}",
        mistake.title,
        mistake.explanation,
        mistake.hint,
        ("mlp_regression",),
        local,
        mistake.parts,
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS + ("autograd_graph",):
        raise ValueError(f"unknown task kind {kind!r}; expected one of: {', '.join(KINDS)}, autograd_graph")


def mistakes_for(kind: str) -> list[Mistake]:
    """Every catalogued mistake that applies to task `kind` (none for autograd_graph)."""
    _check_kind(kind)
    return [m for m in CATALOGUE if kind in m.kinds]


def pairs_for(kind: str) -> list[Mistake]:
    """Every pair of catalogued mistakes that applies to task `kind`, in catalogue order."""
    _check_kind(kind)
    return [m for m in PAIRS if kind in m.kinds]


def run_mutant(
    mistake: Mistake,
    kind: str,
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    *,
    activation: str | tuple[str, ...] = "sigmoid",
    reduction: str = "sum",
    masks: Array | None = None,
    p: float = 0.0,
    lr: float = 0.0,
) -> Values | None:
    """The quantities a submission with `mistake` computes on this trial, keyed like the reference for
    `kind`; None when the mistake cannot apply here. lr is the training rate for dropout_training and
    the rate of the assumed optimizer step for mistakes that read gradients after an update (try
    UPDATE_LEARNING_RATES)."""
    instance = Instance(kind, x, y, params, activation, reduction, masks, p, lr)
    needs(instance)
    # A mutant may diverge (a sign flip trains uphill until the logits overflow): its inf and nan values
    # simply match nothing, so numpy's warnings about them are no news to print on the grader's console.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return mistake.compute(instance)
