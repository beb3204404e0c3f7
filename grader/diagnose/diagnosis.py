"""Diagnosis: name the mistake behind failing checks and the layer where it enters (DESIGN §7).

For each contract source of a task (the student's scratch backprop, their autograd, their training):
1. The catalogue's mutants (`grader.diagnose.mutants`): the mistake that explains the most failing
   quantities of the source is named on them; when no single mistake explains them all, a pair of
   mistakes that explains more is named instead.
2. The chain rule's own relations (`grader.diagnose.localize`, gradient tasks): the student's backward pass is
   walked from the output down, and the first relation that breaks and the smallest change that repairs
   it are reported on every diagnosis of the source they agree with ("layer 1: your δ1 equals W2ᵀδ2
   without σ'(z1)"); a failure no mutant explains is named from it — one mistake, or two at different
   layers — and a break no known change repairs is reported as such (`chain_rule`).
3. A failure nothing else explains is tested for a uniform factor (found ≈ k·expected).
The layer where the error first appears is the first break going down (without a localization: the
failing gradient closest to the output, since backprop runs from the output down).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from grader.compare import align, within
from grader.diagnose.chain import Chain
from grader.diagnose.localize import Localization, localize
from grader.diagnose.localize_text import describe, ids
from grader.diagnose.mutants import activation, best_mutant, task_key
from grader.found import Found
from grader.kinds import kind_of
from grader.report import CheckResult, CheckStatus, Diagnosis
from grader.rubric.checkspec import Quantity, Tolerance
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task
from grader.run import call_id
from grader.sandbox.models import CallStatus
from grader.trials import Trial
from reference.mistakes import CATALOGUE, PAIRS, Mistake, mistakes_for, pairs_for, together

_LAYER = re.compile(r"^d[Wb](\d+)$")
_BY_ID = {m.id: m for m in (*CATALOGUE, *PAIRS)}
_ORDER = {m.id: i for i, m in enumerate(CATALOGUE)}


@dataclass(frozen=True)
class Located:
    """A source's localization, worded once: its breaks, the catalogue ids each is (None: no known name),
    the relation that first breaks and the student-facing text of every break."""

    chain: Chain
    localization: Localization
    named: list[list[str] | None]
    relation: str
    text: str


def diagnose(
    rubric: Rubric,
    task: Task,
    trials: list[Trial],
    expected: dict[str, dict],
    results: list[CheckResult],
    found_by_call: Mapping[str, Found],
) -> list[CheckResult]:
    """`results` with a diagnosis on each failed check that a known mistake, the chain rule's relations
    or a uniform factor explains."""
    if not kind_of(task).diagnosed:
        return results
    by_quantity = {r.quantity: r for r in results}
    tolerances: dict[str, Tolerance] = {}  # by quantity name: the first check of that name sets it
    for check in task.checks:
        tolerances.setdefault(Quantity.of(check.quantity).name, rubric.tolerance_for(check))
    prints = {trial.name: trial.fingerprint for trial in trials}
    for source in task.contract.functions():
        mine = [r for r in results if Quantity.of(r.quantity).source == source]
        failing = [r for r in mine if r.status == CheckStatus.failed]
        if not failing:
            continue
        found = {trial.name: _found(rubric, task, source, trial, found_by_call) for trial in trials}
        names = [Quantity.of(r.quantity).name for r in failing]
        failed_on = {
            Quantity.of(r.quantity).name: {t.trial for t in r.trials if t.status == CheckStatus.failed} for r in failing
        }
        passed_on = {
            Quantity.of(r.quantity).name: {t.trial for t in r.trials if t.status == CheckStatus.passed} for r in mine
        }
        arguments = (task, trials, expected, found, names, failed_on, prints, tolerances)
        explained = best_mutant(*arguments, mistakes_for(task.kind), passed_on)
        if explained is None or len(explained[1]) < len(names):
            both = best_mutant(*arguments, pairs_for(task.kind), passed_on, group="pairs")
            if both is not None and (explained is None or len(both[1]) > len(explained[1])):
                explained = both
        located = _located(task, trials, found, tolerances, failed_on)
        layer = _first_layer(names)
        factors: list[float] = []
        # Quantities of one number last: a single value fits any factor, so it only takes one the others showed.
        for result in sorted(failing, key=lambda r: -_size(found, Quantity.of(r.quantity).name)):
            name = Quantity.of(result.quantity).name
            trial_names = sorted(failed_on[name])
            if explained and name in explained[1]:
                diagnosis = _from_mistake(explained[0], layer, trial_names)
            else:
                diagnosis = _uniform_factor(
                    task, trials, expected, found, name, failed_on[name], layer, factors, tolerances[name]
                ) or _from_breaks(located, name, trial_names)
            if diagnosis is not None:
                by_quantity[result.quantity] = result.model_copy(update={"diagnosis": _placed(diagnosis, located)})
    return [by_quantity[r.quantity] for r in results]


def _found(
    rubric: Rubric, task: Task, source: str, trial: Trial, found_by_call: Mapping[str, Found]
) -> dict[str, np.ndarray]:
    """The student's values for this source and trial, in the expected layout where they can take it, else
    as they came (a bias gradient with one row per example is a mistake to name, not a value to drop)."""
    result = found_by_call.get(call_id(task, source, trial))
    if result is None or result.status != CallStatus.ok:
        return {}
    shapes = {**{f"d{p}": s for p, s in task.param_shapes().items()}, **task.param_shapes()}
    values = {}
    for name, value in result.values.items():
        target = shapes.get(name)
        aligned = value
        if target is not None:
            aligned, _ = align(value, np.zeros(target), rubric.submission.allow_in_out)
        values[name] = value if aligned is None else aligned
    return values


def _located(
    task: Task,
    trials: list[Trial],
    found: dict[str, dict[str, np.ndarray]],
    tolerances: dict[str, Tolerance],
    failed_on: dict[str, set[str]],
) -> Located | None:
    """The chain rule's breaks in this source's backward pass, with the chain that words them (gradient tasks)."""
    failing = {trial for trials_failed in failed_on.values() for trial in trials_failed}
    key = task_key(task)
    chains = {}
    for trial in trials:
        if trial.name in failing:
            chain = kind_of(task).chain(
                (*key, trial.fingerprint), trial.x, trial.y, trial.params, activation(task), task.reduction
            )
            if chain is None:
                return None
            chains[trial.name] = chain
    localization = localize(chains, found, tolerances, failed_on) if chains else None
    if localization is None:
        return None
    chain = next(iter(chains.values()))
    return Located(
        chain, localization, [ids(chain, brk) for brk in localization.breaks], *describe(chain, localization)
    )


def _from_breaks(located: Located | None, name: str, trials: list[str]) -> Diagnosis | None:
    """The mistake(s) the breaks behind quantity `name` are, named from the catalogue (one, or two at
    different layers), or the break itself when no known change repairs it."""
    if located is None or not _LAYER.match(name):
        return None
    behind = located.localization.behind(name)
    if not behind:
        return None
    layer = behind[0].layer
    named = [located.named[located.localization.breaks.index(brk)] for brk in behind]
    if any(part is None for part in named):
        relation, _ = describe(located.chain, Localization(tuple(behind)))
        return Diagnosis(
            mistake="chain_rule",
            title=f"the chain rule breaks at layer {layer}",
            explanation=f"Your backward pass stops following the chain rule at layer {layer}, in a way no known mistake explains.",
            hint=f"Check the lines of layer {layer} of your backward pass against the chain rule: {relation}.",
            layer=layer,
            trials=trials,
        )
    parts = sorted({part for part_ids in named for part in part_ids}, key=_ORDER.__getitem__)
    if len(parts) > 2:
        return None
    return _from_mistake(_mistake(parts), layer, trials)


def _mistake(parts: list[str]) -> Mistake:
    """The catalogued mistake, or the pair, with these ids (in catalogue order)."""
    if len(parts) == 1:
        return _BY_ID[parts[0]]
    return _BY_ID.get("+".join(parts)) or together(_BY_ID[parts[0]], _BY_ID[parts[1]])


def _placed(diagnosis: Diagnosis, located: Located | None) -> Diagnosis:
    """The diagnosis with the source's localization, where the breaks say the same: every break is named
    and the diagnosis names some of them (a factor found alone goes with the breaks that are factors)."""
    if located is None:
        return diagnosis
    localization, named = located.localization, located.named
    if diagnosis.mistake == "chain_rule":
        agrees = True
    elif diagnosis.mistake == "uniform_factor":
        agrees = all(
            b.repair is not None and "factor" in {used for _, used in b.repair.broken()} for b in localization.breaks
        )
    else:
        agrees = all(part is not None for part in named) and set(diagnosis.parts or [diagnosis.mistake]) <= {
            part for part_ids in named for part in part_ids
        }
    if not agrees:
        return diagnosis
    return diagnosis.model_copy(
        update={"relation": located.relation, "localization": located.text, "layer": localization.breaks[0].layer}
    )


def _size(found: dict[str, dict[str, np.ndarray]], name: str) -> int:
    sizes = [values[name].size for values in found.values() if name in values]
    return max(sizes, default=0)


def _uniform_factor(
    task, trials, expected, found, name, trial_names, layer, seen: list[float], tolerance: Tolerance
) -> Diagnosis | None:
    """found ≈ k·expected on every failing trial with one k, reported when no mutant explains it. A quantity
    of one number takes a factor only if a larger quantity of the same source showed it (`seen`)."""
    factors, compared = [], kind_of(task).compared  # trained weights: their updates
    for trial in trials:
        if trial.name not in trial_names:
            continue
        value = found[trial.name].get(name)
        if value is None:
            return None
        want = np.asarray(expected[trial.name][name], dtype=np.float64)
        value, want = compared(trial, name, value), compared(trial, name, want)
        if value.shape != want.shape or not np.any(want):
            return None
        k = float((value * want).sum() / (want * want).sum())
        if abs(k) < 1e-12 or not within(value, k * want, tolerance):  # zeros are no factor of anything
            return None
        factors.append(k)
    if not factors or max(factors) - min(factors) > 1e-3 * max(abs(f) for f in factors):
        return None
    k = factors[0]
    if _size(found, name) < 2 and not any(abs(k - other) <= 1e-3 * abs(other) for other in seen):
        return None  # one number is always some multiple of another: no evidence of a factor on its own
    seen.append(k)
    return Diagnosis(
        mistake="uniform_factor",
        title=f"off by a factor of {k:.4g}",
        explanation=f"Every value is the correct one times {k:.4g}: the computation is right up to a constant factor.",
        hint="Look for a constant you multiply or divide by (a factor 2, the batch size, a learning rate) or a sign.",
        factor=k,
        layer=layer,
        trials=sorted(trial_names),
    )


def _from_mistake(mistake: Mistake, layer: int | None, trials: list[str]) -> Diagnosis:
    parts = list(mistake.parts) if len(mistake.parts) > 1 else []
    return Diagnosis(
        mistake=mistake.id,
        title=mistake.title,
        explanation=mistake.explanation,
        hint=mistake.hint,
        layer=layer,
        trials=trials,
        parts=parts,
    )


def _first_layer(names: list[str]) -> int | None:
    """The failing gradient closest to the output (largest l), where a backward pass goes wrong first."""
    layers = [int(m.group(1)) for m in map(_LAYER.match, names) if m]
    return max(layers) if layers else None
