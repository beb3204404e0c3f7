"""report.html: a student's feedback as one self-contained page (inline CSS and SVG, no requests).

The page is for the student, so it shows only what the rubric lets them see: checks whose visibility is
`visible`, and hidden-trial results only when `trials.hidden_visibility` is `visible` (otherwise the
score shown is the score on what is shown, and a note says hidden trials exist). Instructor-only fields
(`run.detail`, tracebacks, `flags`, timing, sandbox protections) never appear.

This module decides what the page says (which checks and trials, the score on them, which reason is said
once, which facts a failing check shows); templates/report.html says it, escaping everything, so stdout,
file names and messages are text, never markup.
"""

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from markupsafe import Markup

from grader.export.page import number, render
from grader.export.reasons import Group, plain, shared_reasons
from grader.export.svg import heat_map, levels_of
from grader.files import write_atomic
from grader.report import CheckResult, CheckStatus, Diagnosis, GradeReport, TrialResult
from grader.rubric.checkspec import Visibility
from grader.rubric.model import Rubric
from grader.trials import group_of

OUTPUT_CHARS = 6000
LABEL = {
    CheckStatus.passed: "pass",
    CheckStatus.failed: "fail",
    CheckStatus.missing: "missing",
    CheckStatus.not_verifiable: "unverifiable",
    CheckStatus.error: "error",
}
_WORST_FIRST = (CheckStatus.failed, CheckStatus.missing, CheckStatus.not_verifiable, CheckStatus.error)


@dataclass(frozen=True)
class ShownCheck:
    """One check as the student may see it: only the trials they may see, and the points earned on them."""

    check: CheckResult
    trials: list[TrialResult]
    status: CheckStatus
    points: float
    max_points: float
    message: str
    diagnosis: Diagnosis | None


def write_report_html(report: GradeReport, folder: Path, rubric: Rubric, command: str) -> Path:
    """Write `folder/report.html` atomically and return its path."""
    path = folder / "report.html"
    write_atomic(path, render_report_html(report, rubric, command))
    return path


def shown_checks(report: GradeReport, rubric: Rubric) -> list[ShownCheck]:
    """The visible checks, each cut down to the trials the student may see."""
    hidden_shown = rubric.trials.hidden_visibility == Visibility.visible
    return [_shown(check, hidden_shown) for check in report.checks if check.visibility == Visibility.visible]


def _shown(check: CheckResult, hidden_shown: bool) -> ShownCheck:
    groups = [g for g in check.group_max_points if hidden_shown or g != "hidden"]
    trials = [t for t in check.trials if hidden_shown or group_of(t.trial) != "hidden"]
    if len(trials) == len(check.trials) or not trials:
        status, message = check.status, check.message
        earned, available = check.points, check.max_points
    else:
        failing = [t for t in trials if t.status != CheckStatus.passed]
        status = next((s for s in _WORST_FIRST if any(t.status == s for t in failing)), CheckStatus.passed)
        message = failing[0].message if failing else trials[0].message
        if failing and len(trials) > 1:
            message += f" [trial {failing[0].trial}; fails on {len(failing)} of {len(trials)} trials shown]"
        earned = sum(check.group_points.get(g, 0.0) for g in groups)
        available = sum(check.group_max_points[g] for g in groups)
    names = {t.trial for t in trials}
    diagnosis = check.diagnosis
    if diagnosis is not None and (
        status == CheckStatus.passed or (diagnosis.trials and not names & set(diagnosis.trials))
    ):
        diagnosis = None
    return ShownCheck(check, trials, status, earned, available, message, diagnosis)


@dataclass(frozen=True)
class HeatFigure:
    """Where a failing matrix differs on its first failing trial: the SVG and its caption."""

    svg: Markup
    caption: str


@dataclass(frozen=True)
class Row:
    """One row of the check list, of one of three kinds: a task's heading (`task`); a `line`, a check shown
    on one line (passed, or its reason said above the list, with the reason's letter in `label`); or
    `details`, a check that did not pass with its own message, `opened` when the page opens it, with the
    `facts` and `figure` it shows."""

    kind: Literal["task", "line", "details"]
    item: ShownCheck | None = None
    task: str = ""
    label: str = ""
    opened: bool = False
    facts: tuple[tuple[str, str], ...] = ()
    figure: HeatFigure | None = None


def render_report_html(report: GradeReport, rubric: Rubric, command: str) -> str:
    """The whole page (templates/report.html)."""
    shown = shown_checks(report, rubric)
    reasons = [(item.check.quantity, item.message, item.status, plain(item.check)) for item in shown]
    shared = shared_reasons(reasons)
    return render(
        "report.html",
        report=report,
        rubric=rubric,
        score=_score(report, rubric, shown),
        where=_where(report),
        mistakes=_mistakes(shown),
        shared=shared,
        rows=_rows(shown, rubric, [shared.group_of(row) for row in reasons]),
        outputs=_outputs(report),
        command=command,
        check_command=f"backprop-grader check {shlex.quote(report.submission)} --rubric {report.rubric_id}",
        environment=_environment(report),
        labels=LABEL,
    )


def _score(report: GradeReport, rubric: Rubric, shown: list[ShownCheck]) -> dict[str, object]:
    """Points on what is shown, the bar's length and tone, a pill per status and the facts line."""
    earned = sum(s.points for s in shown)
    available = sum(s.max_points for s in shown)
    fraction = earned / available if available else 0.0
    counts: dict[CheckStatus, int] = {}
    for item in shown:
        counts[item.status] = counts.get(item.status, 0) + 1
    notes = []
    if (
        any("hidden" in s.check.group_max_points for s in shown)
        and rubric.trials.hidden_visibility != Visibility.visible
    ):
        hidden = sum(1 for t in report.trials if group_of(t) == "hidden")
        notes.append(
            f"{hidden} hidden trial{'s' * (hidden != 1)} also count ({rubric.trials.hidden_weight:.0%} of each check); "
            f"their results are not shown here ({rubric.trials.hidden_visibility.value.replace('_', ' ')})."
        )
    unseen = len(report.checks) - len(shown)
    if unseen:
        notes.append(f"{unseen} more check{'s' * (unseen != 1)} will be shown later.")
    passed = counts.get(CheckStatus.passed, 0)
    return {
        "earned": earned,
        "available": available,
        "percent": f"{fraction * 100:.1f}",
        "tone": "" if fraction >= 0.999 else "partial" if fraction >= 0.5 else "low",
        "pills": [(status, counts[status]) for status in (CheckStatus.passed, *_WORST_FIRST) if counts.get(status)],
        "facts": f"{passed} of {len(shown)} checks passed" + "".join(f" · {n}" for n in notes),
    }


def _where(report: GradeReport) -> str:
    """Where the code stopped, as ' in cell 3, line 2' or ' at line 12 of ann.py' ('' when unknown)."""
    run = report.run
    if run is None or (run.cell is None and run.line is None):
        return ""
    if report.submission.lower().endswith(".ipynb") and run.cell is not None:
        return f" in cell {run.cell}" + (f", line {run.line}" if run.line is not None else "")
    return f" at line {run.line} of {report.submission}" if run.line is not None else ""


def _rows(shown: list[ShownCheck], rubric: Rubric, groups: list[Group | None]) -> list[Row]:
    """The check list: task headings when the rubric has several tasks; a check whose reason is said above
    as one line; a passed check as one line; a failed one opened on what went wrong (of many missing
    ones, only the first)."""
    rows = []
    tasks = {task.id: task.title for task in rubric.tasks}
    current, opened = None, False
    for item, group in zip(shown, groups):
        if len(tasks) > 1 and item.check.task != current:
            current = item.check.task
            rows.append(Row("task", task=tasks.get(current, current)))
        if group is not None:
            rows.append(Row("line", item, label=group.label))
        elif item.status == CheckStatus.passed:
            rows.append(Row("line", item))
        else:
            open_it = not (item.status == CheckStatus.missing and opened)
            rows.append(Row("details", item, opened=open_it, facts=_facts(item), figure=_heat_figure(item)))
            opened = opened or item.status == CheckStatus.missing
    return rows


def _facts(item: ShownCheck) -> tuple[tuple[str, str], ...]:
    """What a failing check shows under its message: its worst trial's errors, where it was read from, and
    the other failing trials' messages."""
    failing = [t for t in item.trials if t.status != CheckStatus.passed]
    worst = next((t for t in failing if t.excess), None) or (failing[0] if failing else None)
    facts = []
    if worst is not None:
        facts.append(("trial", worst.trial))
        if worst.layout and worst.layout != "as expected":
            facts.append(("layout found", worst.layout))
        if worst.max_abs_error is not None:
            facts.append(("largest error", f"{number(worst.max_abs_error)} (relative {number(worst.max_rel_error)})"))
        if worst.where:
            facts.append(("worst element", f"({', '.join(map(str, worst.where))})"))
        if worst.tolerance is not None:
            facts.append(("tolerance", f"rtol {worst.tolerance.rtol:g}, atol {number(worst.atol_eff)}"))
    if item.check.provenance:
        facts.append(("read from", item.check.provenance))
    for other in failing[1:] if item.status == CheckStatus.failed else []:
        facts.append((f"trial {other.trial}", other.message))
    return tuple(facts)


def _heat_figure(item: ShownCheck) -> HeatFigure | None:
    """The heat map of the first failing trial that has an excess map, or None."""
    trial = next((t for t in item.trials if t.status != CheckStatus.passed and t.excess), None)
    if trial is None:
        return None
    quantity = item.check.quantity
    values = [v for row in trial.excess for v in (row if isinstance(row, list) else [row])]
    off = int((levels_of(values) > 0).sum())
    matrix = trial.excess and isinstance(trial.excess[0], list)
    shape = f"{len(trial.excess)} × {len(trial.excess[0])}" if matrix else f"{len(trial.excess)}"
    caption = (
        f"{quantity} on trial {trial.trial}: {off} of {len(values)} values outside the tolerance "
        f"(shape {shape}, in the expected layout; darker = further off"
        + (", outlined = the worst)" if trial.where else ")")
    )
    return HeatFigure(heat_map(trial.excess, trial.where, f"Where {quantity} differs on trial {trial.trial}"), caption)


def _mistakes(shown: list[ShownCheck]) -> list[tuple[Diagnosis, str, list[str]]]:
    """One entry per diagnosed mistake: the diagnosis, its tags ('first at layer 2 · found ≈ 0.5 ×
    expected') and every check it explains (a bug usually fails several)."""
    groups: dict[tuple, list[ShownCheck]] = {}
    for item in shown:
        if item.diagnosis is not None:
            d = item.diagnosis
            groups.setdefault((d.mistake, d.title, d.explanation, d.hint, d.factor, d.localization), []).append(item)
    mistakes = []
    for items in groups.values():
        diagnosis = items[0].diagnosis
        tags = []
        if diagnosis.layer is not None:
            tags.append(f"first at layer {diagnosis.layer}")
        if diagnosis.factor is not None:
            tags.append(f"found ≈ {number(diagnosis.factor, 4)} × expected")
        mistakes.append((diagnosis, " · ".join(tags), [i.check.quantity for i in items]))
    return mistakes


def _outputs(report: GradeReport) -> list[tuple[str, str, int]]:
    """stdout and stderr when not empty: name, the text shown (cut at OUTPUT_CHARS) and its full length."""
    run = report.run
    outputs = []
    for name, text in (("stdout", run.stdout), ("stderr", run.stderr)) if run is not None else ():
        if text:
            cut = f"\n… ({len(text) - OUTPUT_CHARS} more characters not shown)"
            outputs.append((name, text if len(text) <= OUTPUT_CHARS else text[:OUTPUT_CHARS] + cut, len(text)))
    return outputs


def _environment(report: GradeReport) -> list[tuple[str, str]]:
    """The facts that reproduce the grade: versions, hashes, trials, seeds, the sandbox's packages."""
    facts = [
        ("grader", f"backprop-grader {report.grader_version}"),
        ("rubric", f"{report.rubric_id} (sha256 {report.rubric_hash[:16]}…)"),
        ("submission", f"{report.submission} (sha256 {report.submission_hash[:16]}…)"),
        ("trials", ", ".join(report.trials)),
        ("seeds", ", ".join(f"{k} {v}" for k, v in report.seeds.items())),
    ]
    return facts + [(name, str(value)) for name, value in report.environment.items()]
