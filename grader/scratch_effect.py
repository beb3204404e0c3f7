"""From scratch, proven by effect (DESIGN §5): a contract scratch function that used autograd scores 0.

Scratch calls run with autograd off and its entry points refusing, but code in the same process can
switch that guard off (`sys.modules["bpg_runner"]._SCRATCH[0] = None`, `torch.autograd.grad.__wrapped__`)
and reach autograd under another name, which the static scan (grader/scan.py) does not follow. So the
sandbox makes every scratch call a second time on fresh copies of the same inputs, with every gradient
autograd produces scaled by a factor drawn for that call only (grader/sandbox/channel.py; CallResult.rerun,
Found.rerun), before or after the graded call as drawn for each call: code that hands its second call its
first call's result (by input) then hands in scaled values as graded ones on about half the trials, and
loses those checks. A returned value that comes back as factor × itself (grader.notebook.provenance.follows, the
judgement the notebooks' counterfactual run uses) was computed from autograd's answers; one computed by
hand does not move. When any value of a task's scratch function moved, every scratch check of that task
gets 0 points with the evidence, and the instructor gets a flag with the ratios.

Nothing is claimed from a value that did not answer twice, is (nearly) zero, or moved some other way
(code that draws random numbers): an honest function is never flagged by this, only one whose result
follows a factor no one but the grader knew.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from grader.found import Found
from grader.notebook.provenance import Follows, follows, no_points
from grader.report import CheckResult, Diagnosis
from grader.rubric.checkspec import Quantity
from grader.rubric.tasks import Task
from grader.run import call_id
from grader.sandbox.models import CallStatus
from grader.trials import Trial, group_of

SOURCE = "scratch"


@dataclass(frozen=True)
class Moved:
    """A returned value that followed autograd's scaled answers: on which trial, the factor and the ratio."""

    key: str
    trial: str
    factor: float
    ratio: float


def moved(task: Task, trials: list[Trial], found: Mapping[str, Found]) -> list[Moved]:
    """The values of `task`'s scratch calls (as returned, before any layout re-reading) that followed
    autograd's scaled answers in their rerun."""
    if SOURCE not in task.contract.functions():
        return []
    evidence = []
    for trial in trials:
        call = found.get(call_id(task, SOURCE, trial))
        rerun = call.rerun if call is not None and call.status == CallStatus.ok else None
        if rerun is None or rerun.status.value != "ok":
            continue
        for key, value in call.values.items():
            again = rerun.values.get(key)
            if again is None or np.array_equal(value, again):  # unmoved (what code by hand gives): no claim
                continue
            if follows(value, again, rerun.factor) == Follows.autograd:
                evidence.append(Moved(key, trial.name, rerun.factor, _ratio(value, again)))
    return evidence


def judged(
    tasks: list[Task], trials: Mapping[str, list[Trial]], found: Mapping[str, Found], checks: list[CheckResult]
) -> tuple[list[CheckResult], list[str]]:
    """`checks` with every scratch check of a task whose scratch function followed autograd at 0 points and
    the evidence, and the instructor's flags (one line per such task)."""
    flags = []
    for task in tasks:
        evidence = moved(task, trials.get(task.id, []), found)
        if evidence:
            checks = [_no_points(task, evidence, c) if c.task == task.id else c for c in checks]
            flags.append(_flag(task, evidence))
    return checks, flags


def _no_points(task: Task, evidence: list[Moved], result: CheckResult) -> CheckResult:
    quantity = Quantity.of(result.quantity)
    source, key = quantity.source, quantity.name
    if source != SOURCE:
        return result
    function = task.contract.functions()[SOURCE]
    keys = sorted({m.key for m in evidence})
    trials = sorted({m.trial for m in evidence if group_of(m.trial) == "public"})  # hidden trials stay unnamed
    where = f" ({', '.join(trials)})" if trials else ""
    torch_function = task.contract.functions().get("torch")
    autograd = f"; {torch_function}() is the place for autograd" if torch_function else ""
    diagnosis = Diagnosis(
        mistake="autograd_in_scratch",
        title="autograd used in the from-scratch function",
        explanation=f"{function}() is asked to compute the gradients by hand, but its {', '.join(keys)} came from "
        f"autograd: when the grader called it again on the same inputs with autograd's gradients scaled by a "
        f"factor only it knew, these values were scaled by that factor too{where}.",
        hint=f"Compute the gradients in {function}() with your own backward pass (the chain rule, with numpy or "
        f"tensor operations), without backward() or torch.autograd under any name{autograd}.",
        trials=trials,
    )
    how = (
        f"its {key} moved with autograd's answers"
        if key in keys
        else f"its {', '.join(keys)} moved with autograd's answers, so none of its results count as from scratch"
    )
    message = (
        f"{result.quantity}: not computed from scratch — {function}() used autograd: called again with "
        f"autograd's gradients scaled by a factor only the grader knew, {how}"
    )
    return no_points(result, message, diagnosis)


def _flag(task: Task, evidence: list[Moved]) -> str:
    first = evidence[0]
    seen = ", ".join(sorted({f"{m.key} ({m.trial})" for m in evidence}))
    return (
        f"task {task.id}: {task.contract.functions()[SOURCE]}() used autograd although it ran as from scratch: "
        f"called again with autograd's gradients scaled, {seen} followed the factor (e.g. {first.key} on "
        f"{first.trial}: rerun / first = {first.ratio:.6g}, factor {first.factor:.6g}); its scratch checks score 0"
    )


def _ratio(value: np.ndarray, again: np.ndarray) -> float:
    """again / value at the element of largest magnitude (the evidence, for the flag)."""
    value, again = np.asarray(value, dtype=np.float64).ravel(), np.asarray(again, dtype=np.float64).ravel()
    index = int(np.argmax(np.abs(value)))
    return float(again[index] / value[index])
