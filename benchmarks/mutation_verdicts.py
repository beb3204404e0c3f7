"""What the mutation suite makes of a graded combination (`benchmarks.mutations`): whether the diagnoses of
its failing checks name it right, name another mistake that gives the same values (indistinguishable),
name nothing, or name it wrongly.

A diagnosis is *right* when it names the combination's mistakes — a mistake made at one layer alone with
its layer —, or some of them whose mutant, made as the combination made it, reproduces the check's values
(the rest not showing in that check); *indistinguishable* when it names another mistake whose mutant
reproduces them; *wrong* otherwise. A factor or a chain-rule break without a name counts as not named.
"""

import numpy as np

from grader.diagnose.mutants import activation, matches
from grader.report import CheckResult, CheckStatus
from grader.rubric.tasks import Task
from grader.trials import Trial
from reference.mistakes import CATALOGUE, PAIRS, UPDATE_LEARNING_RATES, Mistake, at_layer, run_mutant
from reference.mistakes_mutants import Instance

BY_ID = {m.id: m for m in (*CATALOGUE, *PAIRS)}
STUDENT_LEARNING_RATE = 0.01  # the rate of the one optimizer step a "gradients after update" student took


def instance(task: Task, trial: Trial, lr: float | None = None) -> Instance:
    """The trial as a mutant sees it, with the task's settings (lr: the training rate, or an update's)."""
    rate = task.lr if task.kind == "dropout_training" else STUDENT_LEARNING_RATE if lr is None else lr
    return Instance(
        task.kind,
        trial.x,
        trial.y,
        trial.params,
        activation(task),
        task.reduction,
        trial.masks,
        getattr(task, "p", 0.0),
        rate,
    )


def mutated_source(task: Task) -> str:
    return "trained" if task.kind == "dropout_training" else "scratch"


def classify(
    task: Task,
    trials: list[Trial],
    combo: Mistake,
    results: list[CheckResult],
    values: dict[str, dict[str, np.ndarray]],
    tolerance_for,
    allow_in_out: bool,
) -> tuple[str, str]:
    """(result, detail) of one graded combination, from the diagnoses of the mutated source's failing checks."""
    source = mutated_source(task)
    failing = [r for r in results if r.quantity.startswith(f"{source}.") and r.status != CheckStatus.passed]
    if not failing:
        return "invisible", ""
    verdicts, details = [], []
    for result in failing:
        verdict = _verdict(task, trials, combo, result, values, tolerance_for(result), allow_in_out)
        verdicts.append(verdict)
        if verdict != "right":
            named = result.diagnosis.mistake if result.diagnosis else None
            details.append(f"{result.quantity}: {verdict} ({named})")
    for outcome in ("wrong", "unnamed", "indistinguishable"):
        if outcome in verdicts:
            return outcome, "; ".join(details)
    return "right", ""


def _verdict(task, trials, combo, result, values, tolerance, allow_in_out) -> str:
    diagnosis = result.diagnosis
    if (
        result.status != CheckStatus.failed
        or diagnosis is None
        or diagnosis.mistake in ("uniform_factor", "chain_rule")
    ):
        return "unnamed"
    parts = set(diagnosis.parts or [diagnosis.mistake])
    if parts == set(combo.parts):
        layer = _layer_of(combo)
        return "right" if layer is None or diagnosis.layer == layer else "wrong"
    check = (task, trials, result, values, tolerance, allow_in_out)
    if any(set(part.parts) == parts and _reproduces(part, *check) for part in components(combo)):
        return "right"  # the combination's other mistake does not show in this check
    if not parts <= set(combo.parts) and diagnosis.mistake in BY_ID and _reproduces(BY_ID[diagnosis.mistake], *check):
        return "indistinguishable"
    return "wrong"


def components(combo: Mistake) -> list[Mistake]:
    """The mistakes a combination is made of, each as it was made (at one layer, "id@l", or at every layer)."""
    if len(combo.parts) == 1:
        return [combo]
    made = []
    for piece in combo.id.split("+"):
        base, _, layer = piece.partition("@")
        made.append(at_layer(BY_ID[base], int(layer)) if layer else BY_ID[base])
    return made


def _layer_of(combo: Mistake) -> int | None:
    """The layer a mistake made at one layer alone was made at (None for the others)."""
    if len(combo.parts) != 1 or "@" not in combo.id:
        return None
    return int(combo.id.rsplit("@", 1)[1])


def _reproduces(mistake, task, trials, result, values, tolerance, allow_in_out) -> bool:
    """Whether the mistake's mutant gives the student's value of the check on every failing trial (read as
    the rubric's layout rule may read it)."""
    name = result.quantity.split(".", 1)[1]
    failed = {t.trial for t in result.trials if t.status == CheckStatus.failed}
    for trial in (t for t in trials if t.name in failed):
        rates = UPDATE_LEARNING_RATES if mistake.steps and task.kind != "dropout_training" else (None,)
        variants = [run_mutant(mistake, **arguments(instance(task, trial, rate))) for rate in rates]
        student = values[trial.name].get(name)
        if student is None:
            return False
        student = np.asarray(student, dtype=np.float64)
        readings = [student, student.T] if allow_in_out and student.ndim == 2 else [student]
        if not any(
            v is not None and name in v and matches(task, trial, name, reading, v[name], tolerance)
            for v in variants
            for reading in readings
        ):
            return False
    return True


def arguments(inst: Instance) -> dict:
    return dict(
        kind=inst.kind,
        x=inst.x,
        y=inst.y,
        params=inst.params,
        activation=inst.activation,
        reduction=inst.reduction,
        masks=inst.masks,
        p=inst.p,
        lr=inst.lr,
    )
