"""A GradeReport as Gradescope's results.json: one test per check and trial group, the right visibility,
student-facing text only where students look, and a valid document in every case."""

import pytest
from conftest import BUNDLED_RUBRICS

from grader.grader import Grader
from grader.gradescope.results import (
    GRADER_FAILED,
    INSTRUCTOR_TEST,
    failure_results,
    problem_results,
    results_from_report,
)
from grader.report import CheckResult, CheckStatus, Diagnosis, GradeReport, RunRecord, TrialResult
from grader.rubric.checkspec import Visibility
from grader.rubric.files import load_rubric

A1 = load_rubric("bs6207-a1")


def trial(name: str, passed: bool) -> TrialResult:
    message = "ok" if passed else f"scratch.dW1: expected 0.5 at (0, 0), found 0.25 [{name}]"
    return TrialResult(trial=name, status=CheckStatus.passed if passed else CheckStatus.failed, message=message)


def check(
    quantity: str, points: float, public_ok: bool, hidden_ok: bool, visibility=Visibility.visible, **extra
) -> CheckResult:
    trials = [
        trial("public-0", public_ok),
        trial("public-1", public_ok),
        *(trial(f"hidden-{i}", hidden_ok) for i in range(3)),
    ]
    share = {"public": points / 2, "hidden": points / 2}
    earned = {"public": share["public"] * public_ok, "hidden": share["hidden"] * hidden_ok}
    ok = public_ok and hidden_ok
    return CheckResult(
        task="backprop",
        quantity=quantity,
        status=CheckStatus.passed if ok else CheckStatus.failed,
        points=sum(earned.values()),
        max_points=points,
        group_points=earned,
        group_max_points=share,
        visibility=visibility,
        message="summary",
        trials=trials,
        **extra,
    )


def report(checks: list[CheckResult], **fields) -> GradeReport:
    base = dict(
        grader_version="0.1.0",
        rubric_id="bs6207-a1",
        rubric_hash="0" * 64,
        student="s",
        submission="s.py",
        submission_hash="1" * 64,
        trials=["public-0", "public-1", "hidden-0", "hidden-1", "hidden-2"],
        seeds={"public": 6207, "hidden": "set"},
        environment={},
        status="graded",
        score=sum(c.points for c in checks),
        max_score=sum(c.max_points for c in checks),
        checks=checks,
    )
    return GradeReport(**{**base, **fields})


def by_name(results: dict) -> dict[str, dict]:
    return {t["name"]: t for t in results["tests"]}


def test_each_check_becomes_a_public_and_a_hidden_test_scored_per_group(gradescope_schema):
    checks = [check("scratch.dW1", 1.0, public_ok=True, hidden_ok=False), check("scratch.db1", 2.0, True, True)]
    results = gradescope_schema(results_from_report(report(checks), A1, 3.4))
    tests = by_name(results)
    assert list(tests) == [
        "scratch.dW1 (public trials)",
        "scratch.db1 (public trials)",
        "scratch.dW1 (hidden trials)",
        "scratch.db1 (hidden trials)",
    ]
    assert [t["number"] for t in results["tests"]] == ["1.1", "1.2", "1.1h", "1.2h"]
    public, hidden = tests["scratch.dW1 (public trials)"], tests["scratch.dW1 (hidden trials)"]
    assert (public["score"], public["max_score"], public["status"]) == (0.5, 0.5, "passed")
    assert (hidden["score"], hidden["max_score"], hidden["status"]) == (0.0, 0.5, "failed")
    assert public["visibility"] == "visible" and hidden["visibility"] == A1.trials.hidden_visibility == "after_due_date"
    assert "failed on 3 of 3 hidden trials" in hidden["output"] and "[hidden-2]" in hidden["output"]
    assert results["score"] == 2.5 and results["execution_time"] == 3
    assert results["visibility"] == "visible" and results["stdout_visibility"] == "hidden"


def test_a_hidden_check_stays_hidden_in_both_parts():
    results = results_from_report(report([check("scratch.dW1", 1.0, True, True, Visibility.hidden)]), A1, 1)
    assert {t["visibility"] for t in results["tests"]} == {"hidden"}


def test_the_diagnosis_goes_with_the_failing_part_only(gradescope_schema):
    diagnosis = Diagnosis(
        mistake="missing_factor_2",
        title="missing factor 2 of the squared loss",
        explanation="Every gradient is exactly half of the correct one.",
        hint="d/dŷ (ŷ − y)² = 2(ŷ − y).",
        layer=3,
        trials=["hidden-0", "hidden-1", "hidden-2"],
    )
    checks = [check("scratch.dW1", 1.0, True, False, diagnosis=diagnosis)]
    tests = by_name(gradescope_schema(results_from_report(report(checks), A1, 1)))
    hidden = tests["scratch.dW1 (hidden trials)"]["output"]
    assert "Likely mistake: missing factor 2 of the squared loss, first at layer 3." in hidden
    assert "exactly half" in hidden and "Hint: d/dŷ" in hidden
    assert "Likely mistake" not in tests["scratch.dW1 (public trials)"]["output"]


def test_instructor_only_detail_never_reaches_student_visible_text(gradescope_schema):
    run = RunRecord(
        status="sandbox_error",
        message="The grader failed to run your submission.",
        detail="Traceback (most recent call last):\n  WorkerDied: secret detail",
    )
    graded = report(
        [check("scratch.dW1", 1.0, False, False)],
        run=run,
        message=run.message,
        flags=["scratch_gradients(): calls .backward()"],
    )
    results = gradescope_schema(results_from_report(graded, A1, 1))
    visible = results["output"] + "".join(t["output"] for t in results["tests"] if t["visibility"] != "hidden")
    assert "Traceback" not in visible and "secret detail" not in visible and ".backward()" not in visible
    instructor = results["tests"][-1]
    assert instructor["name"] == INSTRUCTOR_TEST and instructor["visibility"] == "hidden"
    assert instructor["score"] == instructor["max_score"] == 0
    assert "secret detail" in instructor["output"] and ".backward()" in instructor["output"]


def test_no_instructor_test_when_there_is_nothing_only_instructors_should_see():
    results = results_from_report(report([check("scratch.dW1", 1.0, True, True)]), A1, 1)
    assert INSTRUCTOR_TEST not in by_name(results)


def test_a_check_that_never_ran_is_split_like_a_run_one():
    unrun = CheckResult(
        task="backprop",
        quantity="scratch.dW1",
        status=CheckStatus.missing,
        points=0,
        max_points=1.0,
        visibility=Visibility.visible,
        message="scratch.dW1: not checked — empty file",
    )
    tests = by_name(results_from_report(report([unrun], status="empty", score=0), A1, 1))
    assert [(t["score"], t["max_score"], t["status"]) for t in tests.values()] == [
        (0, 0.5, "failed"),
        (0, 0.5, "failed"),
    ]
    assert tests["scratch.dW1 (hidden trials)"]["output"] == "scratch.dW1: not checked — empty file"


def test_without_hidden_trials_each_check_is_one_test():
    checks = [check("scratch.dW1", 1.0, True, True)]
    public_only = checks[0].model_copy(
        update={
            "trials": checks[0].trials[:2],
            "group_points": {"public": 1.0},
            "group_max_points": {"public": 1.0},
            "points": 1.0,
        }
    )
    results = results_from_report(report([public_only], trials=["public-0", "public-1"]), A1, 1)
    assert [(t["name"], t["score"], t["max_score"]) for t in results["tests"]] == [("scratch.dW1", 1.0, 1.0)]
    assert "hidden" not in results["output"]


@pytest.mark.parametrize("rubric_id", BUNDLED_RUBRICS)
def test_when_nothing_can_be_graded_every_check_scores_0_and_the_total_is_kept(gradescope_schema, rubric_id):
    grader = Grader.load(rubric_id)
    rubric = grader.rubric
    results = gradescope_schema(
        problem_results(rubric, "empty", "No files were submitted.", 0.2, grader.hidden_trials())
    )
    assert results["score"] == 0 and "No files were submitted." in results["output"]
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(rubric.max_points())
    assert all(t["status"] == "failed" and "No files were submitted." in t["output"] for t in results["tests"])
    if len(rubric.tasks) > 1:  # names say which task a check belongs to
        assert all(t["name"].split(":")[0] in {task.id for task in rubric.tasks} for t in results["tests"])


def test_a_grader_failure_scores_0_with_a_student_safe_message_and_hidden_detail(gradescope_schema):
    results = gradescope_schema(failure_results("Traceback (most recent call last):\nKeyError: 'W9'", 2.2, "bs6207-a1"))
    assert results["score"] == 0 and results["output"] == GRADER_FAILED and "Traceback" not in results["output"]
    [test] = results["tests"]
    assert test["visibility"] == "hidden" and "KeyError: 'W9'" in test["output"] and test["status"] == "failed"


def test_a_trial_group_other_than_public_and_hidden_is_kept_as_one_test(gradescope_schema):
    own_run = CheckResult(
        task="backprop",
        quantity="scratch.dW1",
        status=CheckStatus.passed,
        points=1.0,
        max_points=1.0,
        group_points={"notebook": 1.0},
        group_max_points={"notebook": 1.0},
        visibility=Visibility.visible,
        message="ok",
        trials=[trial("notebook-0", True)],
    )
    results = gradescope_schema(results_from_report(report([own_run], trials=["notebook-0"]), A1, 1))
    assert [(t["name"], t["score"], t["status"], t["visibility"]) for t in results["tests"]] == [
        ("scratch.dW1", 1.0, "passed", "visible")
    ]
