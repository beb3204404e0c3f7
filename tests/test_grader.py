"""The grading session the three commands share: one rubric, its limits and hidden seed, one sandbox's life,
and a GradeReport for every outcome. Real sandbox, real samples."""

import pytest
from conftest import REPO

import grader.grader as session
from grader.errors import UsageError
from grader.grade import grade_submission
from grader.grader import Grader
from grader.report import CheckStatus
from grader.sandbox import Sandbox

SAMPLES = REPO / "submissions" / "bs6207-a1"


def without_timings(report) -> dict:
    """A report's fields minus the ones that vary run to run (stage timings, the run's time and usage)."""
    data = report.model_dump(exclude={"timing"})
    if data["run"] is not None:
        data["run"] = {k: v for k, v in data["run"].items() if k not in ("wall_seconds", "usage")}
    return data


def test_the_session_grades_a_file_as_the_grading_pipeline_does(grading_sandbox):
    with Grader.load("bs6207-a1", groups=("public", "hidden"), sandbox=Sandbox(jobs=1)) as grader:
        report = grader.grade(SAMPLES / "missing_factor_2.py")
    direct = grade_submission(
        grader.rubric, grader.rubric_hash, SAMPLES / "missing_factor_2.py", grading_sandbox, ("public", "hidden")
    )
    assert report.status == "graded" and 0 < report.score < report.max_score
    assert without_timings(report) == without_timings(direct)


def test_a_file_the_load_stage_rejects_is_reported_without_a_sandbox(tmp_path):
    empty = tmp_path / "ann.py"
    empty.write_text("\n")
    grader = Grader.load("bs6207-a1", groups=("public", "hidden"))  # no sandbox: none may be needed
    report = grader.grade(empty)
    assert (report.status, report.student, report.submission, report.score) == ("empty", "ann", "ann.py", 0)
    assert report.max_score == grader.rubric.max_points() and report.run is None
    assert len(report.checks) == sum(len(task.checks) for task in grader.rubric.tasks)
    assert all(c.status == CheckStatus.missing and report.message in c.message for c in report.checks)
    assert report.trials == [f"{g}-{i}" for g in ("public", "hidden") for i in range(getattr(grader.rubric.trials, g))]


def test_a_file_that_needs_running_without_a_sandbox_is_a_programming_error():
    grader = Grader.load("bs6207-a1", groups=("public",))
    with pytest.raises(RuntimeError, match="no sandbox"):
        grader.grade(SAMPLES / "correct.py")


def test_a_failure_of_the_grader_itself_is_a_report_with_every_check_unchecked_and_the_traceback_flagged(
    monkeypatch,
):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated failure of a grading stage")

    monkeypatch.setattr(session, "grade_loaded", broken)
    with Grader.load("bs6207-a1", groups=("public",), sandbox=Sandbox(jobs=1)) as grader:
        report = grader.grade(SAMPLES / "correct.py")
    assert (report.status, report.score, report.student) == ("grader_error", 0, "correct")
    assert "not yours" in report.message and all(c.status == CheckStatus.missing for c in report.checks)
    assert len(report.flags) == 1 and "simulated failure of a grading stage" in report.flags[0]
    assert "Traceback" in report.flags[0] and "Traceback" not in report.message


def test_a_notebook_rubric_s_unrunnable_report_names_the_notebook_s_own_run_as_a_graded_one_does(tmp_path):
    empty = tmp_path / "bea.ipynb"
    empty.write_text("")
    report = Grader.load("bs6207-a1-notebook").grade(empty)
    assert report.status == "empty" and report.trials == ["notebook-0"]


def test_a_timeout_beyond_the_limits_bounds_is_refused_when_the_session_is_made():
    with pytest.raises(UsageError, match="--timeout 7200"):
        Grader.load("bs6207-a1", timeout=7200)
    assert Grader.load("bs6207-a1", timeout=20).limits.wall_seconds == 20


def test_hidden_trials_are_in_the_session_only_when_asked_for():
    assert Grader.load("bs6207-a1", groups=("public",)).groups == ("public",)
    assert Grader.load("bs6207-a1", groups=("public", "hidden")).groups == ("public", "hidden")
