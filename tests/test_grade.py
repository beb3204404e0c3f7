"""Grading end to end: real sandbox, real samples, real subprocesses for the CLI."""

import json
import shutil

import pytest

from grader.grade import grade_submission
from grader.report import CheckStatus, GradeReport
from grader.rubric_files import load_rubric, rubric_hash

from conftest import CONTRACT_RUBRICS, REPO

SAMPLES = REPO / "submissions"


def grade(sandbox, rubric_id: str, path, groups=("public",)) -> GradeReport:
    rubric = load_rubric(rubric_id)
    return grade_submission(rubric, rubric_hash(rubric_id), path, sandbox, groups)


@pytest.mark.parametrize("rubric_id", CONTRACT_RUBRICS)
@pytest.mark.parametrize("suffix", [".py", ".ipynb"])
def test_correct_samples_score_full_marks_on_public_and_hidden_trials(grading_sandbox, rubric_id, suffix):
    report = grade(grading_sandbox, rubric_id, SAMPLES / rubric_id / f"correct{suffix}", ("public", "hidden"))
    failing = [c.message for c in report.checks if c.status != CheckStatus.passed]
    assert failing == [], failing
    assert report.status == "graded" and report.run.status == "ok"
    assert report.score == report.max_score == load_rubric(rubric_id).max_points()
    assert report.trials[-1].startswith("hidden") and report.seeds["hidden"] == "set"
    assert report.flags == []


def test_the_notebook_sample_notes_its_dropped_shell_and_magic_lines(grading_sandbox):
    report = grade(grading_sandbox, "bs6207-a1", SAMPLES / "bs6207-a1" / "correct.ipynb")
    assert any("!pip install torch numpy" in note for note in report.notes)
    assert any("%matplotlib inline" in note for note in report.notes)


def test_the_report_records_rubric_submission_trials_and_protections(grading_sandbox):
    report = grade(grading_sandbox, "bs6207-a1", SAMPLES / "bs6207-a1" / "correct.py")
    assert report.rubric_hash == rubric_hash("bs6207-a1") and len(report.submission_hash) == 64
    assert report.trials == ["public-0", "public-1"] and report.seeds == {"public": 6207}
    assert report.environment["numpy"] and report.environment["torch"].startswith("2.")
    assert report.run.protections.get("bubblewrap") is True
    assert all(report.run.protections.values()), report.run.protections


def test_regrading_reproduces_every_number(grading_sandbox):
    first = grade(grading_sandbox, "softmax-dropout", SAMPLES / "softmax-dropout" / "correct.py")
    second = grade(grading_sandbox, "softmax-dropout", SAMPLES / "softmax-dropout" / "correct.py")
    drop = {"timing": True, "run": {"wall_seconds", "usage"}}
    assert first.model_dump(exclude=drop) == second.model_dump(exclude=drop)


@pytest.mark.parametrize("rubric_id, sample", [("softmax-dropout", "correct.py"), ("bs6207-a1", "missing_factor_2.py")])
def test_regrading_on_hidden_trials_reproduces_every_number_bit_for_bit(grading_sandbox, rubric_id, sample):
    """Two jobs per submission (public, then hidden), trials from the secret by a keyed hash: the same
    rubric gives the same report, float64 values and diagnoses included, every time."""
    first = grade(grading_sandbox, rubric_id, SAMPLES / rubric_id / sample, ("public", "hidden"))
    second = grade(grading_sandbox, rubric_id, SAMPLES / rubric_id / sample, ("public", "hidden"))
    assert first.trials[-1] == "hidden-2" and all("hidden" in c.group_max_points for c in first.checks)
    drop = {"timing": True, "run": {"wall_seconds", "usage"}}
    assert first.model_dump(exclude=drop) == second.model_dump(exclude=drop)
    assert json.dumps(first.model_dump(exclude=drop)) == json.dumps(second.model_dump(exclude=drop))  # every float's repr


class FailingSecondJob:
    """The real sandbox, except that its second job fails as the sandbox fails (never the student's fault)."""

    def __init__(self, sandbox):
        self.sandbox, self.jobs = sandbox, []

    def run(self, job, limits):
        self.jobs.append(job)
        if len(self.jobs) == 2:
            return self.sandbox._failed(job, "injected: the hidden job's worker died")
        return self.sandbox.run(job, limits)


def test_hidden_trials_run_in_a_job_of_their_own_and_its_sandbox_failure_is_no_lost_mark(grading_sandbox):
    """Public job first, holding no hidden array; then the hidden job. When the sandbox fails on the hidden
    job, the report says the grader failed (as when it fails on the public one): regraded, not scored 0."""
    box = FailingSecondJob(grading_sandbox)
    rubric = load_rubric("bs6207-a1")
    report = grade_submission(rubric, rubric_hash("bs6207-a1"), SAMPLES / "bs6207-a1" / "correct.py", box, ("public", "hidden"))
    public, hidden = box.jobs
    assert all(".public-" in name for name in public.arrays) and all("/public-" in call.id for call in public.calls)
    assert all(".hidden-" in name for name in hidden.arrays) and len(hidden.calls) == 2 * rubric.trials.hidden
    assert report.run.status == "sandbox_error" and report.message == report.run.message != ""
    assert report.run.stdout == report.run.stderr == "" and "injected" in report.run.detail


def test_a_transposed_weight_gradient_is_accepted_and_its_layout_reported(grading_sandbox, tmp_path):
    source = (SAMPLES / "bs6207-a1" / "correct.py").read_text()
    source = source.replace('"dW1": dW1,', '"dW1": dW1.T,')
    path = tmp_path / "transposer.py"
    path.write_text(source)
    report = grade(grading_sandbox, "bs6207-a1", path)
    dW1 = next(c for c in report.checks if c.quantity == "scratch.dW1")
    assert dW1.status == CheckStatus.passed
    assert dW1.trials[0].layout == "transposed (in, out) layout"


def test_scratch_code_that_calls_backward_is_stopped_and_flagged(grading_sandbox, tmp_path):
    source = (SAMPLES / "bs6207-a1" / "correct.py").read_text()
    cheat = "def scratch_gradients(x, y, params):\n    return torch_gradients(x, y, params)\n\n\ndef torch_gradients("
    path = tmp_path / "cheater.py"
    path.write_text(source.replace("def scratch_gradients(", "def _unused(", 1).replace("def torch_gradients(", cheat, 1))
    report = grade(grading_sandbox, "bs6207-a1", path)
    scratch = [c for c in report.checks if c.quantity.startswith("scratch.")]
    assert all(c.status != CheckStatus.passed and c.points == 0 for c in scratch)
    assert "from scratch" in scratch[0].message
    assert any("torch_gradients()" in flag and "backward" in flag for flag in report.flags)
    assert all(c.status == CheckStatus.passed for c in report.checks if c.quantity.startswith("torch."))


def test_check_prints_the_table_writes_report_json_and_exits_0_when_all_visible_checks_pass(cli, tmp_path):
    shutil.copy(SAMPLES / "softmax-dropout" / "correct.py", tmp_path / "mine.py")
    result = cli("check", "mine.py", "--rubric", "softmax-dropout", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scratch.dW1" in result.stdout and "PASS" in result.stdout and "20 of 20 points" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["score"] == 20 and report["trials"] == ["public-0", "public-1"]


def test_check_exits_1_and_says_why_when_a_check_fails(cli, tmp_path):
    source = (SAMPLES / "bs6207-a1" / "correct.py").read_text().replace("d3 = 2 * (y_hat - y)", "d3 = (y_hat - y)")
    (tmp_path / "half.py").write_text(source)
    result = cli("check", "half.py", "--rubric", "bs6207-a1", cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "→ missing factor 2 of the squared loss" in result.stdout
    assert (tmp_path / "backprop-grader-report" / "report.json").is_file()


def test_check_on_a_missing_file_exits_2_with_what_to_do(cli, tmp_path):
    result = cli("check", "nope.py", "--rubric", "bs6207-a1", cwd=tmp_path)
    assert result.returncode == 2 and "no such file" in result.stderr


def test_report_schema_is_published(cli):
    schema = json.loads(cli("schema", "report").stdout)
    assert schema["additionalProperties"] is False and "checks" in schema["properties"]
