"""Localize a mistake by the chain rule's own relations: the layer where it enters and the smallest
change that repairs it (DESIGN §7), for any mistake, catalogued or not.

From the output down, each layer's dW_l and db_l are predicted from the δ that the student's own layer
above implies, one relation at a time (`grader.diagnose.chain`): δ_L = dL/dŷ; δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l);
dW_l = δ_l a_{l−1}ᵀ; db_l = Σ_batch δ_l. A layer whose values match hands its δ_l down. At the first that
does not, the stand-ins students use for each relation are tried — f' left out, f' at a, the a(1 − a)
formula fed z, W instead of Wᵀ, z or a_l or x in dW, a transposed dW, an unsummed db, a factor or a sign —
alone and two at a layer, and the walk goes on below with the δ the repair implies: a second mistake
lower down is found too, and an error above is never blamed on the layers it only flows through. When two
repairs fit a layer equally (without biases, a factor in δ_l or in dW_l only) the one the layers below
agree with wins. Each comparison is the check's own (`within`, the quantity's tolerance).

A walk runs on every trial where the source failed, starting at its highest failing layer (the layers
above passed, so their δ is the reference's); only what every walk agrees on is kept. Forward-pass errors
are not the backward relations' business: a source whose prediction or probabilities failed is not
localized (a loss that fails alone, such as a sum where a mean was asked, is no forward error), and neither
is one whose output layer breaks with no known repair: gradients computed at other weights (after a
training step, say) show there first, and its gradients alone cannot tell the two apart. Below the output
the layer above vouches for the forward pass: dW_{l+1} = δ_{l+1} a_lᵀ held. A few numpy operations per
layer per trial; the chain itself is shared by the whole class.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from grader.diagnose.chain import Chain
from grader.diagnose.localize_layer import CLEAN, Relations, Repair
from grader.rubric.checkspec import Tolerance

Array = np.ndarray
FORWARD = ("prediction", "probs")  # the loss may fail alone: a sum for a mean changes it, not the forward pass


@dataclass(frozen=True)
class Break:
    """Layer `layer` does not follow from the layer above by the chain rule; `repair` is the smallest
    change that makes it follow (None: no known one)."""

    layer: int
    repair: Repair | None


@dataclass(frozen=True)
class Localization:
    """The breaks every failing trial agrees on, from the output down (the first is where the error enters)."""

    breaks: tuple[Break, ...]

    def behind(self, name: str) -> list[Break]:
        """The breaks that change quantity `name` (dW_l or db_l): a δ break at layer ≥ l flows down to it,
        a dW or db break only reaches its own quantity; a break with no repair may have changed anything below."""
        layer = int(name[2:])
        relation = name[:2]
        found = []
        for brk in self.breaks:
            if brk.layer < layer:
                continue
            if (
                brk.repair is None
                or brk.repair.delta != "correct"
                or (brk.layer == layer and getattr(brk.repair, relation) != "correct")
            ):
                found.append(brk)
        return found


def localize(
    chains: Mapping[str, Chain],
    found: Mapping[str, Mapping[str, Array]],
    tolerances: Mapping[str, Tolerance],
    failed_on: Mapping[str, set[str]],
) -> Localization | None:
    """The breaks of one source's backward pass. `chains` and `found` by trial name; `failed_on`: quantity
    name → the trials where its check failed. None when there is nothing to localize or the trials disagree.
    The first failing trial is walked in full; the others only test what it found (a few comparisons each)."""
    if any(failed_on.get(name) for name in FORWARD):
        return None
    walks: list[list[tuple[int, list[Repair]]]] = []
    for trial, chain in chains.items():
        layers = [int(name[2:]) for name, trials in failed_on.items() if trial in trials and name[:2] in ("dW", "db")]
        if not layers:
            continue
        start = max(layers)
        up = chain.layers[start + 1].delta if start < chain.depth else None
        step = Relations(chain, found[trial], tolerances)
        walk = _walk(step, start, up) if not walks else _follow(step, start, up, walks[0])
        if not walk:
            return None  # failing, yet every relation holds: errors under the tolerance added up; nothing to say
        walks.append(walk)
    localization = _agreed(walks) if walks else None
    if localization is None:
        return None
    first, depth = localization.breaks[0], next(iter(chains.values())).depth
    if first.layer == depth and (
        first.repair is None or "unknown" in (first.repair.delta, first.repair.dW, first.repair.db)
    ):
        return None  # the output's relations are where gradients of other weights (another forward pass) show first
    return localization


def _agreed(walks: list[list[tuple[int, list[Repair]]]]) -> Localization | None:
    """The breaks every walk has at the same layers, each with the first repair (in the first walk's order)
    that every walk admits; the first break without a common repair ends the list."""
    breaks = []
    for position in range(min(len(walk) for walk in walks)):
        layers = {walk[position][0] for walk in walks}
        if len(layers) > 1:
            break
        options = [walk[position][1] for walk in walks]
        common = [r for r in options[0] if all(any(_same(r, other) for other in rest) for rest in options[1:])]
        breaks.append(Break(layers.pop(), common[0] if common else None))
        if not common:
            break
    return Localization(tuple(breaks)) if breaks else None


def _same(first: Repair, second: Repair) -> bool:
    if (first.delta, first.dW, first.db) != (second.delta, second.dW, second.db):
        return False
    if first.factor is None or second.factor is None:
        return first.factor == second.factor
    return abs(first.factor - second.factor) <= 1e-3 * max(abs(first.factor), abs(second.factor))


def _walk(step: Relations, layer: int, up: Array | None) -> list[tuple[int, list[Repair]]]:
    """From `layer` down: (layer, every repair that explains it) at each layer that breaks the chain rule;
    [] at a layer nothing explains, which ends the walk (what the δ below would be is unknown)."""
    breaks: list[tuple[int, list[Repair]]] = []
    while layer >= 1:
        options = step.explain(layer, up)
        if options is None:  # neither dW_l nor db_l to read: the walk cannot go on
            return breaks
        if not options:
            return [*breaks, (layer, [])]
        if options[0][0] == CLEAN:
            up, layer = options[0][1], layer - 1
            continue
        carried = _by_delta(options)
        if len(carried) > 1 and layer > 1:  # the layers below tell which δ the student really had
            tails = [_walk(step, layer - 1, delta) for delta, _ in carried]
            best = min(range(len(carried)), key=lambda i: (len(tails[i]), sum(1 for _, r in tails[i] if not r), i))
            return [*breaks, (layer, carried[best][1]), *tails[best]]
        breaks.append((layer, [repair for repair, _ in options]))
        up, layer = options[0][1], layer - 1
    return breaks


def _follow(
    step: Relations, layer: int, up: Array | None, path: list[tuple[int, list[Repair]]]
) -> list[tuple[int, list[Repair]]]:
    """Another trial's walk along the first one's `path`: the layers between its breaks must hold, and at
    each break only the repairs found there are tried. Ends where the trial departs from the path."""
    walked: list[tuple[int, list[Repair]]] = []
    for at, repairs in path:
        while layer > at:
            up = step.check(layer, up, CLEAN)
            if up is None:
                return [*walked, (layer, [])]
            layer -= 1
        if layer != at:
            return walked
        admitted = [(repair, delta) for repair in repairs if (delta := step.check(layer, up, repair)) is not None]
        walked.append((layer, [repair for repair, _ in admitted]))
        if not admitted:
            return walked
        up, layer = admitted[0][1], layer - 1
    return walked


def _by_delta(options: list[tuple[Repair, Array]]) -> list[tuple[Array, list[Repair]]]:
    """The repairs grouped by the δ_l they hand down, in order of first appearance."""
    groups: dict[tuple, tuple[Array, list[Repair]]] = {}
    for repair, delta in options:
        key = (repair.delta, repair.factor if repair.delta == "factor" else None)
        groups.setdefault(key, (delta, []))[1].append(repair)
    return list(groups.values())
