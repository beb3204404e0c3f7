"""A GradeReport as Gradescope's results.json.

Every check becomes one Gradescope test for its public trials (the check's own visibility) and, when
hidden trials ran, one for its hidden trials (the rubric's `trials.hidden_visibility`, or the check's if
that is stricter). Scores come from CheckResult.group_points, so the tests add up to the report's score.

Two audiences, one file: Gradescope has no instructor-only field in results.json, so everything at the
top level and in visible tests is student-facing text only (messages, diagnoses, notes), never a
traceback. Instructor-only detail goes into a test with visibility "hidden" (grader failures, review
flags) and into run_autograder's stdout, which `stdout_visibility: "hidden"` keeps from students.
"""

from grader import __version__
from grader.report import CheckResult, CheckStatus, GradeReport, unchecked
from grader.rubric.checkspec import Visibility
from grader.rubric.model import Rubric
from grader.sandbox.models import RunStatus
from grader.trials import group_of

OUTPUT_FORMAT = "text"
INSTRUCTOR_TEST = "Instructor notes (never shown to students)"
GRADER_FAILED = (
    "The autograder could not grade this submission because of a problem on the course staff's side, not in "
    "your code. The score of 0 is a placeholder: your instructor can see what went wrong and will re-run the "
    "autograder. You do not need to change your code for this."
)
_STRICTNESS = [Visibility.visible, Visibility.after_due_date, Visibility.after_published, Visibility.hidden]
_WHEN = {
    Visibility.visible: "shown now",
    Visibility.after_due_date: "shown after the due date",
    Visibility.after_published: "shown when grades are published",
    Visibility.hidden: "never shown one by one, but they count toward your score",
}


def results_from_report(
    report: GradeReport, rubric: Rubric, execution_time: float, preface: list[str] = (), instructor: list[str] = ()
) -> dict:
    """results.json for a graded (or ungradable) submission; `preface` and `instructor` add lines for
    students (top-level output) and instructors (the hidden test) respectively.

    When the sandbox failed (in every mode it tried), nothing was graded: the summary and every test say
    the same thing, GRADER_FAILED, and the sandbox's detail goes to the instructors' test."""
    hidden_ran = any(group_of(trial) == "hidden" for trial in report.trials)
    private = list(instructor)
    if report.flags:
        private += ["To review:", *(f"- {flag}" for flag in report.flags)]
    extra = {
        "grader_version": report.grader_version,
        "rubric_id": report.rubric_id,
        "rubric_hash": report.rubric_hash,
        "submission": report.submission,
        "submission_hash": report.submission_hash,
        "status": report.status,
        "run_status": report.run.status if report.run else None,
    }
    if report.run is not None and report.run.status == RunStatus.sandbox_error:
        private += ["The sandbox failed (not the student's fault):", report.run.detail]
        return assemble(
            rubric,
            unchecked(rubric, GRADER_FAILED),
            hidden_ran,
            0.0,
            execution_time,
            [*preface, GRADER_FAILED],
            private,
            extra,
        )
    notes = [*preface, *([report.message] if report.message else []), *report.notes]
    return assemble(rubric, report.checks, hidden_ran, report.score, execution_time, notes, private, extra)


def problem_results(
    rubric: Rubric, status: str, message: str, execution_time: float, hidden_ran: bool, preface: list[str] = ()
) -> dict:
    """results.json when no file could be graded (nothing handed in, several candidates): every check 0,
    split into public and hidden tests as a graded submission's are when `hidden_ran` (Grader.hidden_trials)."""
    extra = {"grader_version": __version__, "rubric_id": rubric.id, "status": status}
    return assemble(
        rubric,
        unchecked(rubric, message),
        hidden_ran,
        0.0,
        execution_time,
        [*preface, message],
        [],
        extra,
    )


def failure_results(detail: str, execution_time: float, rubric_id: str | None = None) -> dict:
    """results.json when the grader itself failed: score 0, a student-safe message, the detail hidden."""
    return {
        "score": 0.0,
        "execution_time": _seconds(execution_time),
        "output": GRADER_FAILED,
        "output_format": OUTPUT_FORMAT,
        "visibility": Visibility.visible.value,
        "stdout_visibility": Visibility.hidden.value,
        "extra_data": {"grader_version": __version__, "rubric_id": rubric_id, "status": "grader_error"},
        "tests": [
            _instructor_test(["The grader failed; the student was told it is not their fault.", detail], failed=True)
        ],
    }


def assemble(
    rubric: Rubric,
    checks: list[CheckResult],
    hidden_ran: bool,
    score: float,
    execution_time: float,
    notes: list[str],
    private: list[str],
    extra: dict,
) -> dict:
    """The results.json document: public tests first, then hidden-trial tests, then instructor notes."""
    several_tasks = len(rubric.tasks) > 1
    public, hidden = [], []
    task_number = {task.id: n for n, task in enumerate(rubric.tasks, start=1)}
    counters: dict[str, int] = {}
    for check in checks:
        counters[check.task] = counters.get(check.task, 0) + 1
        number = f"{task_number.get(check.task, 0)}.{counters[check.task]}"
        for group, points, maximum in _parts(check, rubric.trials.hidden_weight, hidden_ran):
            test = _test(rubric, check, group, points, maximum, number, hidden_ran, several_tasks)
            (hidden if group == "hidden" else public).append(test)
    tests = public + hidden
    if private:
        tests.append(_instructor_test(private, failed=False))
    return {
        "score": round(score, 10),
        "execution_time": _seconds(execution_time),
        "output": "\n".join([_summary(rubric, hidden_ran), *notes]).strip(),
        "output_format": OUTPUT_FORMAT,
        "visibility": Visibility.visible.value,
        "stdout_visibility": Visibility.hidden.value,
        "extra_data": extra,
        "tests": tests,
    }


def _parts(check: CheckResult, hidden_weight: float, hidden_ran: bool) -> list[tuple[str, float, float]]:
    """(group, points, max points) per trial group; an unrun check is split as a run one would be."""
    if check.group_max_points:  # public first, hidden last, any other group (a notebook's own run) between
        order = sorted(check.group_max_points, key=lambda g: (g == "hidden", g != "public", g))
        return [(g, check.group_points.get(g, 0.0), check.group_max_points[g]) for g in order]
    if not hidden_ran:
        return [("public", check.points, check.max_points)]
    hidden = round(check.max_points * hidden_weight, 10)
    return [("public", 0.0, round(check.max_points - hidden, 10)), ("hidden", 0.0, hidden)]


def _test(
    rubric: Rubric,
    check: CheckResult,
    group: str,
    points: float,
    maximum: float,
    number: str,
    hidden_ran: bool,
    several_tasks: bool,
) -> dict:
    trials = [t for t in check.trials if group_of(t.trial) == group]
    passed = bool(trials) and all(t.status == CheckStatus.passed for t in trials)
    name = f"{check.task}: {check.quantity}" if several_tasks else check.quantity
    if hidden_ran:
        name += f" ({group} trials)"
    visibility = check.visibility
    if group == "hidden":
        visibility = max(visibility, rubric.trials.hidden_visibility, key=_STRICTNESS.index)
    return {
        "name": name,
        "number": number + ("h" if group == "hidden" else ""),
        "score": round(points, 10),
        "max_score": round(maximum, 10),
        "status": "passed" if passed else "failed",
        "output": _output(check, trials, passed, group),
        "output_format": OUTPUT_FORMAT,
        "visibility": Visibility(visibility).value,
    }


def _output(check: CheckResult, trials: list, passed: bool, group: str) -> str:
    """Student-facing: what was checked, what was found on each failing trial, and the likely mistake."""
    if not trials:
        return check.message
    if passed:
        every = f"the {group} trial" if len(trials) == 1 else f"each of the {len(trials)} {group} trials"
        lines = [f"{check.quantity}: passed on {every}."]
        layouts = sorted({t.layout for t in trials if t.layout and t.layout != "as expected"})
        lines += [f"Read in the {layout}." for layout in layouts]
    else:
        failing = [t for t in trials if t.status != CheckStatus.passed]
        lines = [f"{check.quantity}: failed on {len(failing)} of {len(trials)} {group} trials."]
        seen = set()
        for trial in failing:
            if trial.message not in seen:
                seen.add(trial.message)
                lines.append(f"{trial.trial}: {trial.message}")
        lines += _diagnosis(check, {t.trial for t in failing})
    if check.provenance:
        lines.append(f"Value taken from {check.provenance}.")
    return "\n".join(lines)


def _diagnosis(check: CheckResult, failing: set[str]) -> list[str]:
    diagnosis = check.diagnosis
    if diagnosis is None or (diagnosis.trials and not failing & set(diagnosis.trials)):
        return []
    where = f", first at layer {diagnosis.layer}" if diagnosis.layer is not None else ""
    return ["", f"Likely mistake: {diagnosis.title}{where}.", diagnosis.explanation, f"Hint: {diagnosis.hint}"]


def _summary(rubric: Rubric, hidden_ran: bool) -> str:
    lines = [f"{rubric.title} — graded by backprop-grader {__version__}."]
    public = f"{rubric.trials.public} public trial{'s' * (rubric.trials.public != 1)}"
    if hidden_ran:
        when = _WHEN[Visibility(rubric.trials.hidden_visibility)]
        lines.append(
            f"Each check ran on {public} (results shown now, as with `backprop-grader check`) and on "
            f"{rubric.trials.hidden} hidden trials with inputs you have not seen (results {when})."
        )
    else:
        lines.append(f"Each check ran on {public}, the same as `backprop-grader check` runs.")
    return "\n".join(lines)


def _instructor_test(lines: list[str], failed: bool) -> dict:
    return {
        "name": INSTRUCTOR_TEST,
        "number": "0",
        "score": 0.0,
        "max_score": 0.0,
        "status": "failed" if failed else "passed",
        "output": "\n".join(lines),
        "output_format": OUTPUT_FORMAT,
        "visibility": Visibility.hidden.value,
    }


def _seconds(seconds: float) -> int:
    return max(0, int(round(seconds)))
