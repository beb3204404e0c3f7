"""The check table printed in a terminal by `check`: one row per visible check, then the score. A reason
several checks share is printed once above the rows (grader.export.reasons)."""

from grader.export.reasons import plain, shared_reasons
from grader.report import CheckResult, CheckStatus, GradeReport
from grader.rubric.checkspec import Visibility
from grader.sandbox.models import RunStatus

_MARK = {
    CheckStatus.passed: "PASS",
    CheckStatus.failed: "FAIL",
    CheckStatus.missing: "MISSING",
    CheckStatus.not_verifiable: "UNVERIFIABLE",
    CheckStatus.error: "ERROR",
}


def render_table(report: GradeReport, width: int = 100) -> str:
    """Student-facing table of the visible checks; instructor-only fields never appear."""
    visible = [c for c in report.checks if c.visibility == Visibility.visible]
    lines = [f"{report.submission} — rubric {report.rubric_id}, trials {', '.join(report.trials)}"]
    if report.message:
        lines.append(f"! {report.message}")
    if report.run is not None and report.run.status != RunStatus.ok and report.run.message not in lines[-1]:
        lines.append(f"! {report.run.message}")
    lines += [f"note: {note}" for note in report.notes]
    rows = [(c.quantity, c.message, c.status, plain(c)) for c in visible]
    shared = shared_reasons(rows)
    lines += [shared.headline(group) for group in shared.groups]
    name_width = max([len(c.quantity) for c in visible] + [8])
    lines.append(f"{'check':<{name_width}}  {'result':<12} {'points':>9}  detail")
    for check, row in zip(visible, rows):
        group = shared.group_of(row)
        if group is not None:
            detail = f"({group.label})" if group.label else ""
        else:
            detail = "" if check.status == CheckStatus.passed else _detail(check)
        if len(detail) > width:
            detail = detail[: width - 1] + "…"
        points = f"{check.points:g}/{check.max_points:g}"
        lines.append(f"{check.quantity:<{name_width}}  {_MARK[check.status]:<12} {points:>9}  {detail}".rstrip())
    earned = sum(c.points for c in visible)
    available = sum(c.max_points for c in visible)
    passed = sum(c.status == CheckStatus.passed for c in visible)
    lines.append(f"{passed} of {len(visible)} visible checks passed; {earned:g} of {available:g} points")
    diagnoses = {c.diagnosis.mistake: c.diagnosis for c in visible if c.diagnosis is not None}
    for diagnosis in diagnoses.values():
        lines += ["", f"{diagnosis.title}: {diagnosis.explanation}", f"  hint: {diagnosis.hint}"]
    return "\n".join(lines)


def _detail(check: CheckResult) -> str:
    """One line: the diagnosis when there is one (with where it first appears), else what was found."""
    if check.diagnosis is None:
        return check.message
    where = f", first at layer {check.diagnosis.layer}" if check.diagnosis.layer else ""
    return f"→ {check.diagnosis.title}{where}  ({check.message.split(': ', 1)[-1]})"
