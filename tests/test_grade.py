"""Grading end to end: real sandbox, real samples, real subprocesses for the CLI."""

import json
import shutil

import numpy as np
import pytest
from conftest import CONTRACT_RUBRICS, REPO

from grader.expected import expected_values
from grader.grade import grade_submission
from grader.load import load_submission
from grader.report import CheckStatus, GradeReport
from grader.rubric.files import load_rubric, rubric_hash
from grader.run import plan
from grader.sandbox import channel
from grader.sandbox.process import frame

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
    assert json.dumps(first.model_dump(exclude=drop)) == json.dumps(
        second.model_dump(exclude=drop)
    )  # every float's repr


class FailingHiddenPhase:
    """The real sandbox, except that its job's hidden phase fails as the sandbox fails (never the student's fault)."""

    def __init__(self, sandbox):
        self.sandbox, self.jobs = sandbox, []

    def run_phases(self, job, limits):
        self.jobs.append(job)
        run, _ = self.sandbox.run_phases(job, limits)
        return run, self.sandbox._failed(job, "injected: the worker died in the hidden phase")


def test_hidden_trials_run_after_the_public_ones_and_a_sandbox_failure_there_is_no_lost_mark(grading_sandbox):
    """One job: the public calls first, the hidden ones last (asked for only after every public answer).
    When the sandbox fails in the hidden phase, the report says the grader failed (as when it fails on the
    public one): regraded, not scored 0."""
    box = FailingHiddenPhase(grading_sandbox)
    rubric = load_rubric("bs6207-a1")
    report = grade_submission(
        rubric, rubric_hash("bs6207-a1"), SAMPLES / "bs6207-a1" / "correct.py", box, ("public", "hidden")
    )
    (job,) = box.jobs
    public, hidden = job.calls[: -job.hidden_calls], job.calls[-job.hidden_calls :]
    assert all("/public-" in call.id for call in public) and job.hidden_calls == 2 * rubric.trials.hidden
    assert all("/hidden-" in call.id for call in hidden)
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
    path.write_text(
        source.replace("def scratch_gradients(", "def _unused(", 1).replace("def torch_gradients(", cheat, 1)
    )
    report = grade(grading_sandbox, "bs6207-a1", path)
    scratch = [c for c in report.checks if c.quantity.startswith("scratch.")]
    assert all(c.status != CheckStatus.passed and c.points == 0 for c in scratch)
    assert "from scratch" in scratch[0].message
    assert any("torch_gradients()" in flag and "backward" in flag for flag in report.flags)
    assert all(c.status == CheckStatus.passed for c in report.checks if c.quantity.startswith("torch."))


# --- nothing forged through the result channel or the scratch guard (issue 16, item 2) -------------

CORRECT_A1 = (SAMPLES / "bs6207-a1" / "correct.py").read_text()
# scratch_gradients with the from-scratch guard switched off from inside, autograd reached by a name the
# static scan does not follow: full marks for "by hand" gradients that were autograd's, until proven by effect.
FORWARD = (
    "    with torch.enable_grad():\n"
    "        p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}\n"
    "        h1 = torch.sigmoid(torch.tensor(x) @ p['W1'].T + p['b1'])\n"
    "        h2 = torch.sigmoid(h1 @ p['W2'].T + p['b2'])\n"
    "        y_hat = h2 @ p['W3'].T + p['b3']\n"
    "        loss = ((y_hat - torch.tensor(y)) ** 2).sum()\n"
)
GUARD_OFF = {
    "the guard's flag cleared through sys.modules, backward() through getattr": (
        "import sys\n\n\ndef scratch_gradients(x, y, params):\n"
        "    sys.modules['bpg_runner']._SCRATCH[0] = None\n" + FORWARD + "        getattr(loss, 'back' + 'ward')()\n"
        "    return {'prediction': y_hat.detach(), 'loss': loss.detach(), **{'d' + k: v.grad for k, v in p.items()}}\n"
    ),
    "the original behind the guard (__wrapped__) kept under an alias": (
        "_by_hand = torch.autograd.grad.__wrapped__\n\n\ndef scratch_gradients(x, y, params):\n"
        + FORWARD
        + "        grads = _by_hand(loss, list(p.values()))\n"
        "    return {'prediction': y_hat.detach(), 'loss': loss.detach(), **{'d' + k: g for k, g in zip(p, grads)}}\n"
    ),
}


@pytest.mark.parametrize("how", sorted(GUARD_OFF))
def test_autograd_behind_a_switched_off_guard_scores_no_scratch_points_and_is_flagged_with_the_evidence(
    grading_sandbox, tmp_path, how
):
    """Issue 16 item 2: with the guard off, such scratch values were autograd's and scored full marks. The
    rerun under scaled autograd shows them following the factor: 0 for every scratch check of the task."""
    source = CORRECT_A1.replace("def scratch_gradients(", "def _unused(", 1) + "\n\n" + GUARD_OFF[how]
    path = tmp_path / "guard_off.py"
    path.write_text(source)
    report = grade(grading_sandbox, "bs6207-a1", path, ("public", "hidden"))
    scratch = [c for c in report.checks if c.quantity.startswith("scratch.")]
    assert scratch and all(c.points == 0 and c.status == CheckStatus.failed for c in scratch), [
        c.message for c in scratch
    ]
    assert all(
        c.diagnosis.mistake == "autograd_in_scratch" and "not computed from scratch" in c.message for c in scratch
    )
    dW1 = next(c for c in scratch if c.quantity == "scratch.dW1")
    assert "its dW1 moved with autograd's answers" in dW1.message and "public-0" in dW1.diagnosis.explanation
    assert "hidden-" not in " ".join([c.message + c.diagnosis.explanation for c in scratch])
    flag = next(f for f in report.flags if "used autograd although it ran as from scratch" in f)
    assert "scratch_gradients()" in flag and "dW1 (public-0)" in flag and "rerun / first = " in flag
    others = [c for c in report.checks if not c.quantity.startswith("scratch.")]
    assert all(c.status == CheckStatus.passed for c in others) and report.score == sum(c.points for c in others) > 0


# The same autograd behind the guard, and the first answer handed in again when the call comes back with
# the same inputs: the rerun then never moves, whichever values autograd gave it.
CACHING = (
    "_by_hand = torch.autograd.grad.__wrapped__\n_answers = {}\n\n\ndef scratch_gradients(x, y, params):\n"
    "    key = (x.tobytes(), y.tobytes())\n"
    "    if key in _answers:\n"
    "        return _answers[key]\n" + FORWARD + "        grads = _by_hand(loss, list(p.values()))\n"
    "    _answers[key] = {'prediction': y_hat.detach(), 'loss': loss.detach(), **{'d' + k: g for k, g in zip(p, grads)}}\n"
    "    return _answers[key]\n"
)


def test_autograd_answers_cached_for_the_call_after_a_rerun_asked_first_lose_every_gradient_check(
    grading_sandbox, tmp_path, monkeypatch
):
    """The rerun is asked for before or after each scratch call, as drawn per call (channel._Draws.coin),
    so code that hands its second call its first answer hands in the scaled values as graded ones on about
    half the trials. The draw is forced here to "rerun first" (the grader's side runs in this process), so
    every trial shows it: every gradient check fails by the factor; the forward values are not scaled."""
    monkeypatch.setattr(channel._Draws, "coin", lambda self: True)
    source = CORRECT_A1.replace("def scratch_gradients(", "def _unused(", 1) + "\n\n" + CACHING
    path = tmp_path / "caching.py"
    path.write_text(source)
    report = grade(grading_sandbox, "bs6207-a1", path, ("public", "hidden"))
    scratch = {c.quantity: c for c in report.checks if c.quantity.startswith("scratch.")}
    gradients = [c for name, c in scratch.items() if name.startswith("scratch.d")]
    assert gradients and all(c.points == 0 and c.status == CheckStatus.failed for c in gradients), [
        c.message for c in gradients
    ]
    assert scratch["scratch.loss"].status == CheckStatus.passed and scratch["scratch.prediction"].points > 0
    torch_checks = [c for c in report.checks if c.quantity.startswith("torch.")]
    assert torch_checks and all(c.status == CheckStatus.passed for c in torch_checks)


def forged_run(rubric_id: str, calls, trials) -> bytes:
    """A complete, well-formed result stream of a contract job as the runner wrote it before answers had to
    carry their request's nonce: the reference's own values for every call, then "done"."""
    tasks = {task.id: task for task in load_rubric(rubric_id).tasks}
    parts = [
        {
            "kind": "cells",
            "status": "ok",
            "cell": None,
            "line": None,
            "error_type": "",
            "error": "",
            "traceback": "",
            "exit_code": None,
        }
    ]
    for call in calls:
        task_id, _, trial_name = call.id.split("/")
        trial = next(t for t in trials[task_id] if t.name == trial_name)
        values = {k: np.asarray(v, dtype="<f8") for k, v in expected_values(tasks[task_id], trial).items()}
        parts += [
            {"kind": "start", "id": call.id},
            {
                "kind": "call",
                "id": call.id,
                "status": "ok",
                "error_type": "",
                "error": "",
                "traceback": "",
                "suggestions": [],
                "found": "a dict",
                "memory": False,
                "seconds": 0.001,
                "texts": {},
                "problems": {},
                "values": {k: {"name": f"v{i}", "shape": list(v.shape)} for i, (k, v) in enumerate(values.items())},
            },
            b"".join(v.tobytes() for v in values.values()),
        ]
    parts.append({"kind": "done"})
    return b"".join(frame(p if isinstance(p, bytes) else json.dumps(p).encode()) for p in parts)


def test_a_whole_run_forged_on_the_result_channel_while_the_cells_run_scores_nothing(grading_sandbox, tmp_path):
    """Issue 16 item 2: a file defining no function wrote a complete, well-formed stream with the right
    values on fd 3 and exited: 17 of 17 checks passed. Answers must now carry the nonce of a request the
    grader makes only after the cells ran: the stream is rejected at its first answer."""
    rubric = load_rubric("bs6207-a1")
    planned = plan(rubric, load_submission(SAMPLES / "bs6207-a1" / "correct.py"), "public")
    stream = forged_run("bs6207-a1", planned.job.calls, planned.trials)
    path = tmp_path / "forger.py"
    path.write_text(
        f"import os\nview = memoryview({stream!r})\nwhile view:\n    view = view[os.write(3, view):]\nos._exit(0)\n"
    )
    report = grade(grading_sandbox, "bs6207-a1", path)
    assert report.score == 0 and report.run.status == "result_invalid", (report.score, report.run.status)
    assert all(c.points == 0 for c in report.checks) and len(report.checks) == 17


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


def test_check_with_a_timeout_over_the_limits_bound_exits_2_and_grades_nothing(cli, tmp_path):
    """`check --timeout 7200` was applied with model_copy, which does not validate, so the run got two hours
    although Limits (and `grade --timeout`) allow at most 3600 s."""
    shutil.copy(SAMPLES / "bs6207-a1" / "correct.py", tmp_path / "mine.py")
    result = cli("check", "mine.py", "--rubric", "bs6207-a1", "--out", "out", "--timeout", "7200", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--timeout 7200: expected seconds in (0, 3600]" in result.stderr
    assert not (tmp_path / "out" / "report.json").exists()


def test_report_schema_is_published(cli):
    schema = json.loads(cli("schema", "report").stdout)
    assert schema["additionalProperties"] is False and "checks" in schema["properties"]
