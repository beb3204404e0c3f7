"""The check stage: each source read in one layout (a square weight gradient takes its siblings'), then checked."""

import pytest
from conftest import REPO

from grader.checks import check_task
from grader.expected import expected_values
from grader.found import Found
from grader.grade import grade_submission
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash
from grader.run import call_id
from grader.trials import trials_for

RUBRIC = load_rubric("bs6207-a1")
TASK = RUBRIC.tasks[0]
TRIALS = trials_for(RUBRIC, TASK, ("public",))
SQUARE_NOTE = "transposed, it matches: dW2 is not in the layout of this source's other weight gradients"
AS_SIBLINGS = "(in, out) layout, as the other weight gradients of this source"


def checked(transposed: set[str], keep: set[str] | None = None, rubric=RUBRIC) -> dict:
    """check_task on scratch values that are the reference's, the weight gradients in `transposed` given
    (in, out); only the quantities in `keep` (all when None) handed over. Quantity → CheckResult."""
    found = {}
    for trial in TRIALS:
        expected = expected_values(TASK, trial)
        values = {
            key: (value.T if key in transposed else value).copy()
            for key, value in expected.items()
            if keep is None or key in keep
        }
        found[call_id(TASK, "scratch", trial)] = Found(
            values=values, provenance={key: f"scratch_gradients() returned {key!r}" for key in values}
        )
    return {c.quantity: c for c in check_task(rubric, TASK, TRIALS, found)}


def test_a_source_giving_every_weight_gradient_in_x_at_w_layout_passes_its_square_dW2_and_says_how_it_was_read():
    results = checked({"dW1", "dW2", "dW3"})
    assert all(results[f"scratch.{key}"].status == CheckStatus.passed for key in ("dW1", "dW2", "dW3", "db2"))
    dW2 = results["scratch.dW2"]
    assert {t.layout for t in dW2.trials} == {AS_SIBLINGS} and dW2.diagnosis is None
    assert (
        "read in the (in, out) layout as the other weight gradients of this source (dW1 (2, 10) and dW3 (10, 1))"
        in dW2.provenance
    )
    assert results["scratch.dW1"].provenance.endswith(", in the (in, out) layout")


def test_one_square_gradient_in_the_other_layout_from_its_in_out_siblings_fails_and_is_named_transposed():
    results = checked({"dW1", "dW3"})  # dW2 as torch has it, the others (in, out)
    dW2 = results["scratch.dW2"]
    assert dW2.status == CheckStatus.failed and dW2.points == 0
    assert dW2.diagnosis is not None and dW2.diagnosis.mistake == "transposed_gradient"
    assert SQUARE_NOTE in dW2.message
    assert all(results[f"scratch.{key}"].status == CheckStatus.passed for key in ("dW1", "dW3", "db1", "db2", "db3"))


def test_one_square_gradient_transposed_among_out_in_siblings_still_fails_and_is_named_transposed():
    dW2 = checked({"dW2"})["scratch.dW2"]
    assert dW2.status == CheckStatus.failed and dW2.diagnosis.mistake == "transposed_gradient"
    assert SQUARE_NOTE in dW2.message and {t.layout for t in dW2.trials} == {"as expected"}


@pytest.mark.parametrize(
    "transposed, keep",
    [
        ({"dW1", "dW2"}, None),  # dW1 (in, out) but dW3 (out, in): the source shows no single layout
        ({"dW2"}, {"dW2", "db2"}),  # no non-square weight gradient: nothing to take a layout from
    ],
    ids=["mixed", "only-square"],
)
def test_a_source_without_a_single_layout_has_its_square_gradient_compared_as_before(transposed, keep):
    dW2 = checked(transposed, keep)["scratch.dW2"]
    assert dW2.status == CheckStatus.failed and {t.layout for t in dW2.trials} == {"as expected"}
    assert SQUARE_NOTE not in dW2.message
    assert checked(transposed - {"dW2"}, keep)["scratch.dW2"].status == CheckStatus.passed


def test_nothing_is_read_in_another_layout_where_the_rubric_refuses_in_out():
    refusing = RUBRIC.model_copy(update={"submission": RUBRIC.submission.model_copy(update={"allow_in_out": False})})
    results = checked({"dW1", "dW2", "dW3"}, rubric=refusing)
    assert results["scratch.dW2"].status == CheckStatus.failed and SQUARE_NOTE not in results["scratch.dW2"].message
    assert {t.layout for t in results["scratch.dW2"].trials} == {"as expected"}
    assert "transpose" in results["scratch.dW1"].message


# --- contract submissions in the sandbox ---------------------------------------------------------------
def grade(sandbox, rubric_id, path):
    return grade_submission(load_rubric(rubric_id), rubric_hash(rubric_id), path, sandbox, ("public", "hidden"))


def test_the_in_out_contract_sample_gets_full_marks_with_no_flag_and_its_layout_stated(grading_sandbox):
    report = grade(grading_sandbox, "bs6207-a1", REPO / "submissions" / "bs6207-a1" / "correct_in_out_layout.py")
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]
    assert report.flags == [] and all(c.diagnosis is None for c in report.checks)
    dW2 = next(c for c in report.checks if c.quantity == "scratch.dW2")
    assert (
        "(in, out) layout as the other weight gradients of this source (dW1 (2, 10) and dW3 (10, 1))" in dW2.provenance
    )
    assert {t.layout for t in dW2.trials} == {AS_SIBLINGS} and len(dW2.trials) == 5


def test_a_deep_relu_contract_with_every_gradient_in_x_at_w_layout_takes_it_from_the_first_and_last_layer(
    grading_sandbox, tmp_path
):
    source = (REPO / "submissions" / "deep-relu" / "correct.py").read_text()
    in_out = source.replace(
        'grads[f"dW{l}"] = delta.T @ activations[l - 1]', 'grads[f"dW{l}"] = activations[l - 1].T @ delta'
    )
    assert in_out != source
    path = tmp_path / "deep_in_out.py"
    path.write_text(in_out)
    report = grade(grading_sandbox, "deep-relu", path)
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]
    assert report.flags == []
    hidden = [c for c in report.checks if c.quantity in {f"scratch.dW{l}" for l in range(2, 11)}]
    assert len(hidden) == 9
    for check in hidden:  # every 21×21 one read (in, out), as dW1 (10, 21) and dW11 (21, 1) show
        assert "the other weight gradients of this source (dW1 (10, 21) and dW11 (21, 1))" in check.provenance
        assert {t.layout for t in check.trials} == {AS_SIBLINGS}


class FailingSandbox:
    """A real sandbox whose worker dies on every job: the result is the one the sandbox gives then
    (Sandbox._failed), with a traceback in its instructor-only detail."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def run(self, job, limits):
        return self.sandbox._failed(job, "Traceback (most recent call last):\nWorkerDied: injected")


def test_a_check_on_a_run_the_graders_sandbox_failed_says_so_and_not_that_the_code_did_not_load(grading_sandbox):
    path = REPO / "submissions" / "bs6207-a1" / "correct.py"
    rubric = load_rubric("bs6207-a1")
    report = grade_submission(rubric, rubric_hash("bs6207-a1"), path, FailingSandbox(grading_sandbox), ("public",))
    assert report.run.status == "sandbox_error"
    trials = [t for c in report.checks if c.quantity != "architecture" for t in c.trials]
    assert trials and all(t.status == CheckStatus.missing for t in trials)
    for trial in trials:
        assert "the grader's sandbox failed and nothing was graded" in trial.message
        assert "did not load" not in trial.message and "Traceback" not in trial.message
        assert "injected" not in trial.message
