"""Check stage: each rubric check, on each trial, from what the submission returned against the reference.

Scores come only from what was verified: a quantity that is missing, unreadable or not finite fails.
A check passes on a group of trials (public, hidden) only if it passes on every trial of the group;
public trials earn (1 − hidden_weight) of its points and hidden trials the rest when hidden trials ran.
Where the rubric accepts the (in, out) layout, each source is first read in its own layout (a square
weight gradient takes its siblings' layout, `grader.source_layout`); the diagnosis sees the same values.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from grader.compare import Comparison, Verdict, align, compare, compare_trials
from grader.diagnose.diagnosis import diagnose
from grader.expected import expected_values
from grader.found import Found
from grader.kinds import kind_of
from grader.report import CheckResult, CheckStatus, TrialResult
from grader.rubric.checkspec import Check, Quantity, Tolerance
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task
from grader.run import call_id
from grader.sandbox.models import CallStatus
from grader.source_layout import TRANSPOSED_NOTE, read_in_source_layout, single_layout_square, weight_shapes
from grader.trials import Trial, group_of

_VERDICT_STATUS = {Verdict.passed: CheckStatus.passed, Verdict.not_verifiable: CheckStatus.not_verifiable}


def check_task(rubric: Rubric, task: Task, trials: list[Trial], found: Mapping[str, Found]) -> list[CheckResult]:
    """Every check of `task` over `trials`, from what the submission produced (keyed by call id)."""
    expected = {trial.name: expected_values(task, trial) for trial in trials}
    shapes = {trial.name: weight_shapes(expected[trial.name]) for trial in trials}  # once, not once per check
    if rubric.submission.allow_in_out:
        found = _in_source_layouts(task, trials, shapes, found)
    results = []
    for check in task.checks:
        per_trial = _judged(
            [
                _check_trial(rubric, task, check, trial, expected[trial.name], shapes[trial.name], found)
                for trial in trials
            ]
        )
        first = found.get(call_id(task, Quantity.of(check.quantity).source, trials[0])) if trials else None
        results.append(_score(rubric, task, check, per_trial, first))
    return diagnose(rubric, task, trials, expected, results, found)


def _in_source_layouts(
    task: Task, trials: list[Trial], shapes: dict[str, dict], found: Mapping[str, Found]
) -> dict[str, Found]:
    """`found` with each source of `task` on each trial read in its own layout (`read_in_source_layout`);
    `shapes` are each trial's weight gradient shapes (`weight_shapes`)."""
    read = dict(found)
    for trial in trials:
        for source in task.contract.functions():
            call = call_id(task, source, trial)
            if shapes[trial.name] and call in read:
                read[call] = read_in_source_layout(read[call], shapes[trial.name])
    return read


@dataclass(frozen=True)
class _Pending:
    """A comparison still to make: what `compare` takes, and the trial it is for."""

    trial: str
    label: str
    found: object
    expected: np.ndarray
    tolerance: Tolerance
    allow_in_out: bool
    uncertainty: object
    layout: str | None = None  # the layout the value was re-read in, when its source decided it
    square: bool = False  # a square weight gradient of a source with a single layout: TRANSPOSED_NOTE may apply


def _judged(per_trial: list[TrialResult | _Pending]) -> list[TrialResult]:
    """Make the pending comparisons of one check: together where they can be (one label, tolerance and
    layout rule, no printed precision), otherwise one by one."""
    pending = [p for p in per_trial if isinstance(p, _Pending)]
    if not pending:
        return per_trial
    if len({(p.label, p.tolerance, p.allow_in_out) for p in pending}) == 1 and all(
        p.uncertainty is None for p in pending
    ):
        first = pending[0]
        outcomes = compare_trials(
            first.label, [p.found for p in pending], [p.expected for p in pending], first.tolerance, first.allow_in_out
        )
    else:
        outcomes = [compare(p.label, p.found, p.expected, p.tolerance, p.allow_in_out, p.uncertainty) for p in pending]
    made = iter(_trial_result(p, outcome) for p, outcome in zip(pending, outcomes))
    return [next(made) if isinstance(p, _Pending) else p for p in per_trial]


def _trial_result(pending: _Pending, outcome: Comparison) -> TrialResult:
    message = outcome.message
    if outcome.verdict == Verdict.failed and pending.square and _transpose_passes(pending):
        message += TRANSPOSED_NOTE.format(key=pending.label.split(".", 1)[-1])
    return TrialResult(
        trial=pending.trial,
        status=_VERDICT_STATUS.get(outcome.verdict, CheckStatus.failed),
        message=message,
        layout=(pending.layout or outcome.layout) if outcome.verdict != Verdict.wrong_shape else None,
        max_abs_error=outcome.max_abs_error,
        max_rel_error=outcome.max_rel_error,
        where=list(outcome.where) if outcome.where is not None else None,
        tolerance=pending.tolerance,
        atol_eff=outcome.atol_eff,
        excess=outcome.excess.tolist() if outcome.excess is not None and outcome.excess.ndim else None,
    )


def _transpose_passes(pending: _Pending) -> bool:
    """Whether the failing square value, transposed, would pass (with its printed precision, if any)."""
    found = np.asarray(pending.found, dtype=np.float64)
    uncertainty = None if pending.uncertainty is None else np.asarray(pending.uncertainty).T
    return (
        compare(pending.label, found.T, pending.expected, pending.tolerance, False, uncertainty).verdict
        == Verdict.passed
    )


def _check_trial(
    rubric: Rubric,
    task: Task,
    check: Check,
    trial: Trial,
    expected: dict,
    shapes: dict[str, tuple[int, ...]],
    found_by_call: Mapping[str, Found],
) -> TrialResult | _Pending:
    """One check on one trial: its result when no comparison is needed, else the comparison to make.
    `shapes` are the trial's weight gradient shapes (`weight_shapes(expected)`)."""
    if check.quantity == "architecture":
        return _architecture(rubric, task, trial, found_by_call)
    quantity = Quantity.of(check.quantity)
    source, name = quantity.source, quantity.name
    result = found_by_call.get(call_id(task, source, trial))
    found, problem = _found(result, name, check.quantity, task.contract.functions()[source])
    if problem is not None:
        return TrialResult(trial=trial.name, status=CheckStatus.missing, message=problem)
    if name == "nodes":
        return _nodes(check.quantity, trial, found, expected["nodes"])
    if name not in expected:  # a free-form notebook's own net can have fewer layers than the rubric's
        return TrialResult(
            trial=trial.name, status=CheckStatus.failed, message=f"{check.quantity}: the net that ran has no {name[1:]}"
        )
    want = expected[name]
    label = check.quantity
    kind = kind_of(task)
    if kind.trains:  # trained weights: the check compares their update (Kind.compared), and says so
        aligned, _ = align(np.asarray(found, dtype=np.float64), want, rubric.submission.allow_in_out)
        if aligned is not None:
            found, want = kind.compared(trial, name, aligned), kind.compared(trial, name, want)
            label = f"{check.quantity} (update W_final − W_initial)"
    allow_in_out = rubric.submission.allow_in_out and name.startswith("dW")
    square = allow_in_out and single_layout_square(result, name, shapes)
    return _Pending(
        trial.name,
        label,
        found,
        want,
        rubric.tolerance_for(check),
        allow_in_out,
        result.uncertainty.get(name),
        result.layouts.get(name),
        square,
    )


def _found(result: Found | None, name: str, quantity: str, function: str) -> tuple[object, str | None]:
    """The returned value for `name`, or a student-facing reason it is not there."""
    if result is not None and result.sandbox_failed:  # the grader's failure: say so, no details
        return (
            None,
            f"{quantity}: not checked — the grader's sandbox failed and nothing was graded; this is not your fault",
        )
    if result is None or result.status == CallStatus.not_run:
        return None, f"{quantity}: not run — {function}() was never called because the code did not load"
    if result.status != CallStatus.ok:
        return None, f"{quantity}: {result.message}"
    if name in result.problems:
        return None, result.problems[name]
    if name in result.values:
        return result.values[name], None
    if name in result.texts:
        return result.texts[name], None
    returned = sorted([*result.values, *result.texts, *result.problems])
    return None, (
        f"{quantity}: {function}() returned no {name!r}; expected a dict with key {name!r}, "
        f"found keys {returned or 'none'}; add {name!r} to the returned dict"
    )


def _nodes(quantity: str, trial: Trial, found: object, expected: list[str]) -> TrialResult:
    found_sorted = sorted(str(node) for node in found) if isinstance(found, list) else None
    if found_sorted == sorted(expected):
        return TrialResult(
            trial=trial.name, status=CheckStatus.passed, message=f"{quantity}: all {len(expected)} nodes named"
        )
    if found_sorted is None:
        message = f"{quantity}: expected a list of node names, found {type(found).__name__}"
    else:
        missing = sorted(set(expected) - set(found_sorted))
        extra = sorted(set(found_sorted) - set(expected))
        message = f"{quantity}: expected {len(expected)} nodes, found {len(found_sorted)}; missing {missing or 'none'}, unexpected {extra or 'none'}"
    return TrialResult(trial=trial.name, status=CheckStatus.failed, message=message)


def _architecture(rubric: Rubric, task: Task, trial: Trial, found_by_call: Mapping[str, Found]) -> TrialResult:
    """Contract submissions: every returned parameter-shaped value has the task's shapes."""
    wrong, seen = [], 0
    shapes = task.param_shapes()
    names = kind_of(task).returned_parameters(task)
    for source in task.contract.functions():
        result = found_by_call.get(call_id(task, source, trial))
        if result is None or result.status != CallStatus.ok:
            continue
        for name, shape in names.items():
            if name in result.values:
                seen += 1
                aligned, _ = align(result.values[name], np.zeros(shape), rubric.submission.allow_in_out)
                if aligned is None:
                    wrong.append(f"{source}.{name} {tuple(result.values[name].shape)} (expected {shape})")
    if wrong:
        return TrialResult(
            trial=trial.name,
            status=CheckStatus.failed,
            message="architecture: shapes differ from the rubric's net: " + ", ".join(wrong),
        )
    if not seen:
        return TrialResult(
            trial=trial.name,
            status=CheckStatus.missing,
            message="architecture: no parameter-shaped values were returned to check",
        )
    return TrialResult(
        trial=trial.name,
        status=CheckStatus.passed,
        message=f"architecture: every returned shape matches {list(shapes.values())}",
    )


def _score(rubric: Rubric, task: Task, check: Check, per_trial: list[TrialResult], first: Found | None) -> CheckResult:
    groups = {}
    for result in per_trial:
        groups.setdefault(group_of(result.trial), []).append(result.status == CheckStatus.passed)
    hidden_share = rubric.trials.hidden_weight if "hidden" in groups else 0.0
    share = {group: hidden_share if group == "hidden" else 1.0 - hidden_share for group in groups}
    group_max = {group: round(check.points * share[group], 10) for group in groups}
    group_points = {group: group_max[group] if all(passed) else 0.0 for group, passed in groups.items()}
    points = sum(group_points.values())
    failing = [r for r in per_trial if r.status != CheckStatus.passed]
    status = CheckStatus.passed if not failing else _worst(failing)
    message = failing[0].message if failing else per_trial[0].message if per_trial else check.quantity
    if failing and len(per_trial) > 1:
        message += f" [trial {failing[0].trial}; fails on {len(failing)} of {len(per_trial)} trials]"
    name = Quantity.of(check.quantity).name
    provenance = first.provenance.get(name, "") if first is not None else ""
    return CheckResult(
        task=task.id,
        quantity=check.quantity,
        status=status,
        points=round(points, 10),
        max_points=check.points,
        group_points=group_points,
        group_max_points=group_max,
        visibility=check.visibility,
        message=message,
        provenance=provenance,
        trials=per_trial,
    )


def _worst(failing: list[TrialResult]) -> CheckStatus:
    statuses = {r.status for r in failing}
    for status in (CheckStatus.failed, CheckStatus.missing, CheckStatus.not_verifiable, CheckStatus.error):
        if status in statuses:
            return status
    return CheckStatus.failed
