"""Dropout training checked against the spread of many runs, when the masks a run drew cannot be replayed.

A free-form notebook draws its own dropout masks. Where the sandbox recorded them (grader/sandbox/child/draws.py)
the reference is replayed with exactly those (grader/notebook/kinds/dropout.py). Where it could not (a
generator it does not observe, such as `np.random.default_rng().binomial`; masks built in a way it cannot
read), the student's update W_final − W_initial is compared with the updates of RUNS reference runs from
the same initial weights, each with masks of its own (DESIGN §5): its distance from their mean, in units of
their spread, element by element over every weight the training moved (W2's update alone barely depends
on the dropout's scaling), must be within FACTOR times the largest distance the runs themselves reach. The catalogue's dropout scaling mistakes, and training without dropout, have spreads of their own:
an update outside the reference's spread and inside one of theirs is named by it. On the handout's
instance the runs reach a distance of ~3 and these mistakes lie beyond 20.
"""

from dataclasses import dataclass

import numpy as np

from grader.compare import within
from grader.memo import remember
from grader.report import CheckResult, CheckStatus, Diagnosis, TrialResult
from grader.rubric.checkspec import Quantity, Tolerance
from grader.rubric.model import Rubric
from grader.rubric.tasks import DropoutTrainingTask
from grader.trials import NOTEBOOK_TRIAL, Trial
from reference.dropout_training import train_many
from reference.mistakes import CATALOGUE

RUNS = 200
FACTOR = 3.0


@dataclass(frozen=True)
class Spread:
    """The updates of RUNS runs of one variant, every trained parameter flattened into one vector: mean and
    spread per element, and the largest distance a run of its own reaches."""

    mean: np.ndarray
    sd: np.ndarray
    reach: float

    def distance(self, update: np.ndarray, tolerance: Tolerance) -> float:
        """Mean squared distance from the mean in units of the spread; elements the masks do not move (a
        variant without dropout moves none) must equal the mean within the check's tolerance, else inf."""
        moving = self.sd > tolerance.rtol * np.abs(self.mean) + tolerance.atol
        fixed = ~moving
        if fixed.any() and not within(update[fixed], self.mean[fixed], tolerance):
            return np.inf
        return float(np.mean(((update[moving] - self.mean[moving]) / self.sd[moving]) ** 2)) if moving.any() else 0.0


# (keep probability, scale of the kept units) of each variant, given the drop probability p; None: no dropout.
VARIANTS = {
    "reference": lambda p: (1 - p, 1 / (1 - p)),
    "dropout_without_rescaling": lambda p: (1 - p, 1.0),
    "dropout_scaled_by_keep_probability": lambda p: (1 - p, 1 - p),
    "p_used_as_keep_probability": lambda p: (p, 1 / p) if 0 < p and p != 0.5 else None,
    "masks_ignored": lambda p: (1.0, None),
}
_CACHE: dict[tuple, object] = {}


def spreads(task: DropoutTrainingTask, trial: Trial, seed: int, tolerance: Tolerance) -> dict[str, Spread]:
    """variant → Spread of the updates of every parameter together, on the trial's initial weights (the same
    for every student of a class: computed once per batch)."""
    key = ("spread", trial.fingerprint, task.p, task.lr, task.epochs, task.reduction, task.hidden, seed, tolerance)
    return remember(_CACHE, key, lambda: _spreads(task, trial, seed, tolerance))


def _spreads(task: DropoutTrainingTask, trial: Trial, seed: int, tolerance: Tolerance) -> dict[str, Spread]:
    rng = np.random.default_rng([seed, RUNS, task.epochs])
    uniform = rng.random((RUNS, task.epochs, trial.x.shape[0], task.hidden))
    out = {}
    for variant, rule in VARIANTS.items():
        setting = rule(task.p)
        if setting is None:
            continue
        keep, scale = setting
        trained = train_many(
            trial.x, trial.y, trial.params, (uniform < keep).astype(np.float64), task.lr, scale, task.reduction
        )
        updates = np.concatenate(
            [(trained[name] - initial[None]).reshape(RUNS, -1) for name, initial in trial.params.items()], axis=1
        )
        spread = Spread(updates.mean(axis=0), updates.std(axis=0), 0.0)
        out[variant] = Spread(spread.mean, spread.sd, max(spread.distance(u, tolerance) for u in updates))
    return out


def check_by_spread(
    rubric: Rubric,
    task: DropoutTrainingTask,
    trial: Trial,
    source: str,
    values: dict[str, np.ndarray],
    provenance: dict[str, str],
    reason: str,
) -> list[CheckResult]:
    """The source's checks of trained weights, judged together: the update of every weight the training
    moved, against the spread of the reference's updates (one weight alone cannot tell: W2's update barely
    depends on the dropout's scaling)."""
    checks = [c for c in task.checks if Quantity.of(c.quantity).source == source]
    if not checks:
        return []
    if not set(trial.params) <= set(values):
        message = (
            f"not found — no trained {', '.join(sorted(set(trial.params) - set(values)))} was seen after the training"
        )
        return [_result(task, c, CheckStatus.missing, f"{c.quantity}: {message}", "", None) for c in checks]
    tolerance = rubric.tolerance_for(checks[0])
    found = spreads(task, trial, rubric.seed, tolerance)
    update = np.concatenate(
        [
            np.asarray(values[name], dtype=np.float64).reshape(-1) - initial.reshape(-1)
            for name, initial in trial.params.items()
        ]
    )
    reference = found["reference"]
    distance = reference.distance(update, tolerance)
    together = " and ".join(trial.params)
    inside = distance <= FACTOR * reference.reach
    verdict = "within" if inside else "outside"
    said = (
        f"the updates of {together} together are {verdict} the spread of {RUNS} reference runs with other "
        f"dropout masks (distance {distance:.3g}, the runs reach {reference.reach:.2g}) — {reason}"
    )
    diagnosis = None if inside else _closest(found, update, tolerance)
    status = CheckStatus.passed if inside else CheckStatus.failed
    return [
        _result(
            task,
            c,
            status,
            f"{c.quantity} (update W_final − W_initial): {said}",
            provenance.get(Quantity.of(c.quantity).name, ""),
            diagnosis,
        )
        for c in checks
    ]


def _closest(found: dict[str, Spread], update: np.ndarray, tolerance: Tolerance) -> Diagnosis | None:
    """The mistake whose own spread holds the update most tightly (distance over what its runs reach; one
    without dropout has no spread and holds it exactly or not at all), if any does."""
    fits = []
    for variant, spread in found.items():
        distance = spread.distance(update, tolerance)
        if variant != "reference" and distance <= FACTOR * spread.reach:
            fits.append((distance / (FACTOR * spread.reach) if spread.reach else 0.0, variant))
    return _diagnosis(min(fits)[1]) if fits else None


def _diagnosis(mistake_id: str) -> Diagnosis:
    mistake = next(m for m in CATALOGUE if m.id == mistake_id)
    return Diagnosis(
        mistake=mistake.id,
        title=mistake.title,
        explanation=mistake.explanation + " (Recognised by the spread of its own updates over many "
        "masks: the masks your run drew could not be replayed.)",
        hint=mistake.hint,
        trials=[NOTEBOOK_TRIAL],
    )


def _result(
    task, check, status: CheckStatus, message: str, provenance: str, diagnosis: Diagnosis | None
) -> CheckResult:
    points = check.points if status == CheckStatus.passed else 0.0
    return CheckResult(
        task=task.id,
        quantity=check.quantity,
        status=status,
        points=points,
        max_points=check.points,
        group_points={"notebook": points},
        group_max_points={"notebook": check.points},
        visibility=check.visibility,
        message=message,
        provenance=provenance,
        diagnosis=diagnosis,
        trials=[TrialResult(trial=NOTEBOOK_TRIAL, status=status, message=message)],
    )
