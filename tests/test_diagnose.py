"""Diagnosis: every mistake sample is graded in the real sandbox and named by its catalogue id (a pair by
both), and the report says where in the backward pass the error enters."""

import json
import re

import numpy as np
import pytest
from conftest import BUNDLED_RUBRICS, REPO

from grader.export.html import render_report_html
from grader.export.table import render_table
from grader.grade import grade_submission
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

SAMPLES = REPO / "submissions"
HEADER = re.compile(r"^# mistake: ([\w+]+)")


def mistake_samples():
    for rubric_id in BUNDLED_RUBRICS:
        for path in sorted((SAMPLES / rubric_id).glob("*.py")):
            match = HEADER.match(path.read_text().splitlines()[0])
            if match:
                yield pytest.param(rubric_id, path, match.group(1), id=f"{rubric_id}/{path.stem}")


def grade(sandbox, rubric_id, path, groups=("public", "hidden")):
    return grade_submission(load_rubric(rubric_id), rubric_hash(rubric_id), path, sandbox, groups)


@pytest.mark.parametrize("rubric_id, path, mistake", list(mistake_samples()))
def test_every_mistake_sample_is_diagnosed_by_its_id(grading_sandbox, rubric_id, path, mistake):
    report = grade(grading_sandbox, rubric_id, path)
    failed = [c for c in report.checks if c.status != CheckStatus.passed]
    if mistake == "transposed_gradient" and load_rubric(rubric_id).submission.allow_in_out:
        # Every dW (in, out), square ones too, is one layout for the whole source, which the rubric accepts: not a mistake.
        assert failed == [] and any(t.layout == "transposed (in, out) layout" for c in report.checks for t in c.trials)
        return
    assert failed, "the sample must fail something"
    assert {c.diagnosis.mistake if c.diagnosis else None for c in failed} == {mistake}, [
        (c.quantity, c.diagnosis and c.diagnosis.mistake) for c in failed
    ]


@pytest.mark.parametrize("name", ["correct.py", "correct.ipynb", "correct_float32.py"])
def test_correct_samples_in_float64_and_float32_get_no_diagnosis(grading_sandbox, name):
    report = grade(grading_sandbox, "bs6207-a1", SAMPLES / "bs6207-a1" / name)
    assert all(c.diagnosis is None and c.status == CheckStatus.passed for c in report.checks)


def test_the_layer_where_the_error_first_appears_is_reported(grading_sandbox):
    report = grade(grading_sandbox, "bs6207-a1", SAMPLES / "bs6207-a1" / "derivative_at_activation.py")
    failed = [c for c in report.checks if c.status == CheckStatus.failed]
    assert {c.quantity for c in failed} == {"scratch.dW1", "scratch.db1", "scratch.dW2", "scratch.db2"}
    assert {c.diagnosis.layer for c in failed} == {2}  # σ'(z2) is the first wrong factor going backwards
    assert {c.diagnosis.localization for c in failed} == {
        "layer 2: your δ2 uses σ'(a2) = σ'(σ(z2)) where σ'(z2) belongs; layer 1: your δ1 uses σ'(a1) = σ'(σ(z1)) where σ'(z1) belongs"
    }


def test_a_failure_no_mistake_explains_reports_its_uniform_factor(grading_sandbox, tmp_path):
    source = (SAMPLES / "bs6207-a1" / "correct.py").read_text().replace("d3 = 2 * (y_hat - y)", "d3 = 6 * (y_hat - y)")
    path = tmp_path / "triple.py"
    path.write_text(source)
    report = grade(grading_sandbox, "bs6207-a1", path, ("public",))
    failed = [c for c in report.checks if c.status == CheckStatus.failed]
    assert failed and all(c.diagnosis.mistake == "uniform_factor" for c in failed)
    assert all(np.isclose(c.diagnosis.factor, 3.0) for c in failed)
    assert "factor of 3" in failed[0].diagnosis.title


def test_a_failure_no_known_mistake_explains_is_placed_at_the_relation_that_breaks(grading_sandbox, tmp_path):
    source = (SAMPLES / "bs6207-a1" / "correct.py").read_text().replace("dW1 = d1.T @ x", "dW1 = d1.T @ x + 0.01")
    path = tmp_path / "noise.py"
    path.write_text(source)
    report = grade(grading_sandbox, "bs6207-a1", path, ("public",))
    dW1 = next(c for c in report.checks if c.quantity == "scratch.dW1")
    assert dW1.status == CheckStatus.failed and dW1.diagnosis.mistake == "chain_rule" and dW1.diagnosis.layer == 1
    assert dW1.diagnosis.relation == "dW1 = δ1 xᵀ"
    assert (
        dW1.diagnosis.localization
        == "layer 1: your dW1 does not follow from δ1 by dW1 = δ1 xᵀ, and no single known change explains it"
    )


def test_a_failure_nothing_explains_and_no_backward_relation_holds_gets_no_diagnosis(grading_sandbox, tmp_path):
    source = (
        (SAMPLES / "bs6207-a1" / "correct.py")
        .read_text()
        .replace('{"prediction": y_hat,', '{"prediction": y_hat + 0.01,', 1)
    )
    path = tmp_path / "noisy_prediction.py"
    path.write_text(source)
    report = grade(grading_sandbox, "bs6207-a1", path, ("public",))
    prediction = next(c for c in report.checks if c.quantity == "scratch.prediction")
    assert (
        prediction.status == CheckStatus.failed and prediction.diagnosis is None
    )  # a forward value: no relation to blame


def test_the_forgotten_sigma_prime_of_layer_1_is_named_with_its_layer_in_the_report_json_and_html(grading_sandbox):
    rubric = load_rubric("bs6207-a1")
    report = grade(grading_sandbox, "bs6207-a1", SAMPLES / "bs6207-a1" / "sigma_prime_omitted_layer1.py")
    failed = [c for c in report.checks if c.status == CheckStatus.failed]
    assert {c.quantity for c in failed} == {"scratch.dW1", "scratch.db1"}
    where = "layer 1: your δ1 equals W2ᵀδ2 without σ'(z1)"
    for check in failed:
        assert (check.diagnosis.mistake, check.diagnosis.layer) == ("hidden_derivative_omitted", 1)
        assert (check.diagnosis.relation, check.diagnosis.localization) == ("δ1 = (W2ᵀδ2) ⊙ σ'(z1)", where)
    dumped = json.loads(report.model_dump_json())
    assert {c["diagnosis"]["localization"] for c in dumped["checks"] if c["diagnosis"]} == {where}
    html = render_report_html(report, rubric, "backprop-grader grade")
    html = html.replace("&#x27;", "'").replace("&#39;", "'")  # either spelling of an escaped quote
    assert "<b>Where:</b> layer 1: your δ1 equals W2ᵀδ2 without σ'(z1)." in html
    assert "the chain rule: <code>δ1 = (W2ᵀδ2) ⊙ σ'(z1)</code>" in html


def test_the_check_table_shows_the_diagnosis_on_one_line_per_failed_check(grading_sandbox):
    report = grade(grading_sandbox, "bs6207-a1", SAMPLES / "bs6207-a1" / "missing_factor_2.py", ("public",))
    table = render_table(report)
    rows = [line for line in table.splitlines() if " FAIL " in line]
    assert len(rows) == 6 and all("→ missing factor 2 of the squared loss" in row for row in rows)
    assert "hint: Look at the first step of your backward pass" in table


def test_a_class_runs_each_mutant_once_per_trial_and_every_student_gets_the_same_diagnosis(
    grading_sandbox, monkeypatch
):
    """The mutants depend on the trial only, so the second student with a mistake reuses the first one's."""
    import grader.diagnose.mutants as diagnose_module

    runs = []
    real = diagnose_module.run_mutant
    monkeypatch.setattr(diagnose_module, "run_mutant", lambda *a, **k: runs.append(a[0].id) or real(*a, **k))
    monkeypatch.setattr(diagnose_module, "_MUTANT_CACHE", {})
    path = SAMPLES / "bs6207-a1" / "sign_flip.py"
    first = grade(grading_sandbox, "bs6207-a1", path)
    ran_for_first = len(runs)
    second = grade(grading_sandbox, "bs6207-a1", path)
    assert ran_for_first > 0 and len(runs) == ran_for_first
    assert [c.diagnosis for c in second.checks] == [c.diagnosis for c in first.checks]
    assert any(c.diagnosis and c.diagnosis.mistake == "sign_flip" for c in second.checks)
