"""Which catalogued mistake, or pair of mistakes, explains a source's failing quantities (DESIGN §7).

Every mutant of the kind is run on the same trials (once per class: the values depend on the trial
alone), and a mutant explains a failing quantity when, on every trial where it failed, the mutant's
value matches the student's (the check's tolerance) while differing from the reference. A mutant that
differs from the reference on a quantity the student got right, on a trial where it passed, is ruled out:
it would have failed that check too. The mutant that explains the most failing quantities wins, the
catalogue's order breaking ties (so a single mistake before a pair).
"""

from collections.abc import Sequence

import numpy as np

from grader.compare import align, allowed_rows, within
from grader.kinds import kind_of
from grader.memo import remember
from grader.rubric.checkspec import Tolerance
from grader.rubric.tasks import Task
from grader.trials import Trial
from reference.mistakes import Mistake, run_mutant

# Mutant values by (task settings, trial contents, mistake), and per quantity and tolerance the variants
# that differ from the reference, stacked with their allowed errors: every student of a class shares the
# trials, so each mutant runs once per trial per batch instead of once per failing student. Bounded; values
# are never modified by their users.
_MUTANT_CACHE: dict[tuple, object] = {}


def task_key(task: Task) -> tuple:
    """The task settings a mutant's values depend on (with the trial's arrays and the mistake)."""
    return (task.kind, activation(task), task.reduction, getattr(task, "p", 0.0), getattr(task, "lr", 0.0))


def activation(task: Task) -> str | tuple[str, ...]:
    """The task's hidden activation: one name, or one per hidden layer (a notebook's own net)."""
    value = getattr(task, "activation", "relu")
    return value if isinstance(value, str) else tuple(value)


def mutant_values(task: Task, trial: Trial, mistake: Mistake, key: tuple) -> list[dict[str, np.ndarray]]:
    """Every variant of `mistake` on `trial` (one per learning rate for a mistake that assumes an
    optimizer step); `key` identifies the three: the task_key, the trial's fingerprint, the mistake's id."""
    return remember(_MUTANT_CACHE, key, lambda: _run_mutants(task, trial, mistake))


def _run_mutants(task: Task, trial: Trial, mistake: Mistake) -> list[dict[str, np.ndarray]]:
    variants = []
    for lr in kind_of(task).mutant_rates(task, mistake):
        values = run_mutant(
            mistake,
            task.kind,
            trial.x,
            trial.y,
            trial.params,
            activation=activation(task),
            reduction=task.reduction,
            masks=trial.masks,
            p=getattr(task, "p", 0.0),
            lr=lr,
        )
        if values is not None:
            variants.append(values)
    return variants


def matches(
    task: Task, trial: Trial, name: str, found: np.ndarray, candidate: np.ndarray, tolerance: Tolerance
) -> bool:
    """Whether `found` equals `candidate` within the check's tolerance (updates for trained weights)."""
    kind = kind_of(task)
    found, candidate = (
        kind.compared(trial, name, found),
        kind.compared(trial, name, np.asarray(candidate, dtype=np.float64)),
    )
    if found.shape != candidate.shape:
        aligned, _ = align(found, candidate, False)
        if aligned is None:
            return False
        found = aligned
    return within(found, candidate, tolerance)


def best_mutant(
    task,
    trials,
    expected,
    found,
    names,
    failed_on,
    prints,
    tolerances,
    mistakes: Sequence[Mistake],
    passed_on: dict[str, set[str]],
    group: str = "singles",
) -> tuple[Mistake, set[str]] | None:
    """Of `mistakes`, the one explaining the most failing quantities `names`, with the set it explains.
    A variant (mistake, variant index) explains a quantity when, on every trial where it failed, the
    variant's value differs from the reference's and matches the student's (`within`, the check's
    tolerance); `passed_on` (quantity → trials where its check passed) rules out every variant that
    differs from the reference there. `group` names the list `mistakes` in the shared cache."""
    settings = task_key(task)

    def rows_of(trial: Trial, name: str) -> dict[tuple, tuple]:
        tolerance = tolerances[name]
        key = ("rows", group, *settings, prints[trial.name], name, tolerance.rtol, tolerance.atol, tolerance.atol_rel)
        return remember(
            _MUTANT_CACHE,
            key,
            lambda: _candidate_rows(
                task,
                trial,
                mistakes,
                [mutant_values(task, trial, m, (*settings, prints[trial.name], m.id)) for m in mistakes],
                name,
                expected[trial.name][name],
                tolerance,
            ),
        )

    def mistakes_of(trial: Trial, name: str) -> frozenset[str]:
        """The mistakes with a variant whose value of `name` on `trial` differs from the reference's: each
        is ruled out where the student's check of `name` passed (cached with the rows it is read from)."""
        tolerance = tolerances[name]
        key = ("ids", group, *settings, prints[trial.name], name, tolerance.rtol, tolerance.atol, tolerance.atol_rel)
        return remember(
            _MUTANT_CACHE,
            key,
            lambda: frozenset(row_id[0] for ids, _, _ in rows_of(trial, name).values() for row_id in ids),
        )

    by_name = {t.name: t for t in trials}
    ruled_out: set[str] = set()
    for name, passed in passed_on.items():
        if name in tolerances:
            for trial in passed:
                if trial in by_name and name in expected[trial]:
                    ruled_out |= mistakes_of(by_name[trial], name)
    explained: dict[str, set[str]] = {}
    for name in names:
        trial_names = failed_on[name]
        if not trial_names or any(name not in found[t] for t in trial_names):
            continue
        matching: set[tuple[str, int]] | None = None
        for trial in trials:
            if trial.name not in trial_names:
                continue
            matched = _matching_rows(task, trial, name, found[trial.name][name], rows_of(trial, name))
            matching = matched if matching is None else matching & matched
            if not matching:
                break
        for mistake_id, _ in matching or ():
            if mistake_id not in ruled_out:
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
            if name not in variant or matches(task, trial, name, reference, variant[name], tolerance):
                continue  # no value, or the reference's own: it cannot be the explanation
            candidate = kind_of(task).compared(trial, name, np.asarray(variant[name], dtype=np.float64))
            groups.setdefault(candidate.shape, []).append(((mistake.id, index), candidate))
    rows = {}
    for shape, members in groups.items():
        stacked = np.array([candidate for _, candidate in members])
        allowed = allowed_rows(np.abs(stacked).reshape(len(members), -1), tolerance)[2]
        rows[shape] = ([row for row, _ in members], stacked, allowed.reshape(stacked.shape))
    return rows


def _matching_rows(task, trial, name: str, value: np.ndarray, rows: dict[tuple, tuple]) -> set[tuple[str, int]]:
    """The variants whose value matches the student's `value` within tolerance (`matches`, all at once)."""
    value = kind_of(task).compared(trial, name, value)  # trained weights: their update
    matched = set()
    for shape, (ids, stacked, allowed) in rows.items():
        aligned = value if value.shape == shape else align(value, np.zeros(shape), False)[0]
        if aligned is None:
            continue
        ok = (np.abs(aligned - stacked) <= allowed).reshape(len(ids), -1).all(axis=1)
        matched.update(row for row, hit in zip(ids, ok) if hit)
    return matched
