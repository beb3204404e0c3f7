"""Diagnosis: name the mistake behind failing checks (DESIGN §7).

For each contract source of a task (the student's scratch backprop, their autograd, their training),
every catalogued mutant of the reference is run on the same trials, and a mutant explains a failing
quantity when, on every trial where it failed, the mutant's value matches the student's (same tolerance
as the check) while differing from the reference. The mutant that explains the most failing quantities
of the source wins (catalogue order breaks ties), so one mistake is named for one bug. A failure no
mutant explains is tested for a uniform factor (found ≈ k·expected). The layer where the error first
appears is the failing gradient closest to the output: backprop runs from the output down.
"""

import re
from collections.abc import Mapping

import numpy as np

from grader.checkspec import Tolerance
from grader.compare import align, allowed_rows, within
from grader.report import CheckResult, CheckStatus, Diagnosis
from grader.rubric import Rubric
from grader.run import call_id
from grader.found import Found
from grader.memo import remember
from grader.tasks import Task
from grader.trials import Trial
from reference.mistakes import UPDATE_LEARNING_RATES, Mistake, mistakes_for, run_mutant

_LAYER = re.compile(r"^d[Wb](\d+)$")


def diagnose(
    rubric: Rubric, task: Task, trials: list[Trial], expected: dict[str, dict], results: list[CheckResult],
    found_by_call: Mapping[str, Found],
) -> list[CheckResult]:
    """`results` with a diagnosis on each failed check that a known mistake or a uniform factor explains."""
    if task.kind == "autograd_graph":
        return results
    by_quantity = {r.quantity: r for r in results}
    tolerances: dict[str, Tolerance] = {}  # by quantity name: the first check of that name sets it
    for check in task.checks:
        tolerances.setdefault(check.quantity.split(".", 1)[-1], rubric.tolerance_for(check))
    prints = {trial.name: trial.fingerprint for trial in trials}
    for source in task.contract.functions():
        failing = [r for r in results if r.quantity.startswith(f"{source}.") and r.status == CheckStatus.failed]
        if not failing:
            continue
        found = {trial.name: _found(rubric, task, source, trial, found_by_call) for trial in trials}
        names = [r.quantity.split(".", 1)[1] for r in failing]
        failed_on = {r.quantity.split(".", 1)[1]: {t.trial for t in r.trials if t.status == CheckStatus.failed} for r in failing}
        explained = _best_mutant(task, trials, expected, found, names, failed_on, prints, tolerances)
        layer = _first_layer(names)
        factors: list[float] = []
        # Quantities of one number last: a single value fits any factor, so it only takes one the others showed.
        for result in sorted(failing, key=lambda r: -_size(found, r.quantity.split(".", 1)[1])):
            name = result.quantity.split(".", 1)[1]
            if explained and name in explained[1]:
                diagnosis = _from_mistake(explained[0], layer, sorted(failed_on[name]))
            else:
                diagnosis = _uniform_factor(task, trials, expected, found, name, failed_on[name], layer, factors, tolerances[name])
            if diagnosis is not None:
                by_quantity[result.quantity] = result.model_copy(update={"diagnosis": diagnosis})
    return [by_quantity[r.quantity] for r in results]


def _found(rubric: Rubric, task: Task, source: str, trial: Trial, found_by_call: Mapping[str, Found]) -> dict[str, np.ndarray]:
    """The student's values for this source and trial, in the expected layout (unreadable ones left out)."""
    result = found_by_call.get(call_id(task, source, trial))
    if result is None or result.status != "ok":
        return {}
    shapes = {**{f"d{p}": s for p, s in task.param_shapes().items()}, **task.param_shapes()}
    values = {}
    for name, value in result.values.items():
        target = shapes.get(name)
        aligned = value
        if target is not None:
            aligned, _ = align(value, np.zeros(target), rubric.submission.allow_in_out)
        if aligned is not None:
            values[name] = aligned
    return values


# Mutant values by (task settings, trial contents, mistake), and per quantity and tolerance the variants
# that differ from the reference, stacked with their allowed errors: every student of a class shares the
# trials, so each mutant runs once per trial per batch instead of once per failing student. Bounded; values
# are never modified by their users.
_MUTANT_CACHE: dict[tuple, object] = {}


def _mutants(task: Task, trial: Trial, mistake: Mistake, key: tuple) -> list[dict[str, np.ndarray]]:
    """Every variant of `mistake` on `trial` (one per learning rate for gradients_after_update); `key`
    identifies the three: the _task_key, the trial's fingerprint, the mistake's id."""
    return remember(_MUTANT_CACHE, key, lambda: _run_mutants(task, trial, mistake))


def _task_key(task: Task) -> tuple:
    """The task settings a mutant's values depend on (with the trial's arrays and the mistake)."""
    return (task.kind, getattr(task, "activation", "relu"), task.reduction, getattr(task, "p", 0.0), getattr(task, "lr", 0.0))


def _run_mutants(task: Task, trial: Trial, mistake: Mistake) -> list[dict[str, np.ndarray]]:
    rates = UPDATE_LEARNING_RATES if mistake.id == "gradients_after_update" else (task.lr if task.kind == "dropout_training" else 0.0,)
    variants = []
    for lr in rates:
        values = run_mutant(
            mistake, task.kind, trial.x, trial.y, trial.params,
            activation=getattr(task, "activation", "relu"), reduction=task.reduction,
            masks=trial.masks, p=getattr(task, "p", 0.0), lr=lr,
        )
        if values is not None:
            variants.append(values)
    return variants


def _matches(task: Task, trial: Trial, name: str, found: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> bool:
    """Whether `found` equals `candidate` within the check's tolerance (updates for trained weights)."""
    candidate = np.asarray(candidate, dtype=np.float64)
    if task.kind == "dropout_training":
        initial = trial.params[name]
        found, candidate = found - initial, candidate - initial
    if found.shape != candidate.shape:
        aligned, _ = align(found, candidate, False)
        if aligned is None:
            return False
        found = aligned
    return within(found, candidate, tolerance)


def _best_mutant(task, trials, expected, found, names, failed_on, prints, tolerances) -> tuple[Mistake, set[str]] | None:
    """The mistake explaining the most failing quantities, with the set it explains. A variant (mistake,
    variant index) explains a quantity when, on every trial where it failed, the variant's value differs
    from the reference's and matches the student's (`within`, the check's tolerance)."""
    settings, mistakes = _task_key(task), mistakes_for(task.kind)
    variants = {t.name: [_mutants(task, t, m, (*settings, prints[t.name], m.id)) for m in mistakes] for t in trials}
    explained: dict[str, set[str]] = {}
    for name in names:
        trial_names, tolerance = failed_on[name], tolerances[name]
        if not trial_names or any(name not in found[t] for t in trial_names):
            continue
        matching: set[tuple[str, int]] | None = None
        for trial in trials:
            if trial.name not in trial_names:
                continue
            key = ("rows", *settings, prints[trial.name], name, tolerance.rtol, tolerance.atol, tolerance.atol_rel)
            rows = remember(_MUTANT_CACHE, key, lambda: _candidate_rows(task, trial, mistakes, variants[trial.name], name, expected[trial.name][name], tolerance))
            matched = _matching_rows(task, trial, name, found[trial.name][name], rows)
            matching = matched if matching is None else matching & matched
            if not matching:
                break
        for mistake_id, _ in matching or ():
            explained.setdefault(mistake_id, set()).add(name)
    best: tuple[Mistake, set[str]] | None = None
    for mistake in mistakes:  # catalogue order breaks ties
        if mistake.id in explained and (best is None or len(explained[mistake.id]) > len(best[1])):
            best = (mistake, explained[mistake.id])
    return best


def _candidate_rows(task, trial, mistakes, variants, name, reference, tolerance: Tolerance) -> dict[tuple, tuple]:
    """Every variant's value of `name` on `trial` that differs from the reference's, stacked by shape with
    the error each is allowed (as `within` computes it): shape -> (row ids, values, allowed). The same for
    every student of a class, hence cached."""
    groups: dict[tuple, list] = {}
    for mistake, values in zip(mistakes, variants):
        for index, variant in enumerate(values):
            if name not in variant or _matches(task, trial, name, reference, variant[name], tolerance):
                continue  # no value, or the reference's own: it cannot be the explanation
            candidate = np.asarray(variant[name], dtype=np.float64)
            if task.kind == "dropout_training":
                candidate = candidate - trial.params[name]
            groups.setdefault(candidate.shape, []).append(((mistake.id, index), candidate))
    rows = {}
    for shape, members in groups.items():
        stacked = np.array([candidate for _, candidate in members])
        allowed = allowed_rows(np.abs(stacked).reshape(len(members), -1), tolerance)[2]
        rows[shape] = ([row for row, _ in members], stacked, allowed.reshape(stacked.shape))
    return rows


def _matching_rows(task, trial, name: str, value: np.ndarray, rows: dict[tuple, tuple]) -> set[tuple[str, int]]:
    """The variants whose value matches the student's `value` within tolerance (`_matches`, all at once)."""
    if task.kind == "dropout_training":  # trained weights: compare the updates
        value = value - trial.params[name]
    matched = set()
    for shape, (ids, stacked, allowed) in rows.items():
        aligned = value if value.shape == shape else align(value, np.zeros(shape), False)[0]
        if aligned is None:
            continue
        ok = (np.abs(aligned - stacked) <= allowed).reshape(len(ids), -1).all(axis=1)
        matched.update(row for row, hit in zip(ids, ok) if hit)
    return matched


def _size(found: dict[str, dict[str, np.ndarray]], name: str) -> int:
    sizes = [values[name].size for values in found.values() if name in values]
    return max(sizes, default=0)


def _uniform_factor(task, trials, expected, found, name, trial_names, layer, seen: list[float], tolerance: Tolerance) -> Diagnosis | None:
    """found ≈ k·expected on every failing trial with one k, reported when no mutant explains it. A quantity
    of one number takes a factor only if a larger quantity of the same source showed it (`seen`)."""
    factors = []
    for trial in trials:
        if trial.name not in trial_names:
            continue
        value = found[trial.name].get(name)
        if value is None:
            return None
        want = np.asarray(expected[trial.name][name], dtype=np.float64)
        if task.kind == "dropout_training":
            value, want = value - trial.params[name], want - trial.params[name]
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
    return Diagnosis(mistake=mistake.id, title=mistake.title, explanation=mistake.explanation, hint=mistake.hint, layer=layer, trials=trials)


def _first_layer(names: list[str]) -> int | None:
    """The failing gradient closest to the output (largest l), where a backward pass goes wrong first."""
    layers = [int(m.group(1)) for m in map(_LAYER.match, names) if m]
    return max(layers) if layers else None
