"""The softmax-with-dropout hand-ins as they were handed in (seed 003), graded in the real sandbox by
softmax-dropout-notebook: the classifier from both implementations, and each training replayed with the
dropout masks its own run drew, or judged against the spread of many runs where they cannot be read."""

import pytest
from conftest import REPO

from grader.grade import grade_submission
from grader.load import load_submission
from grader.notebook.grade import check_notebook, run_notebook
from grader.notebook.kinds import dropout
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

RUBRIC = "softmax-dropout-notebook"
SAMPLES = REPO / "submissions" / "softmax-dropout-notebooks"
TRAINED = ["W1", "W2"]


@pytest.fixture(scope="module")
def reports(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    return {
        path.stem: grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox)
        for path in sorted(SAMPLES.glob("*.ipynb"))
    }


def failed(report) -> dict[str, object]:
    return {c.quantity: c for c in report.checks if c.status != CheckStatus.passed}


def check(report, quantity):
    return next(c for c in report.checks if c.quantity == quantity)


def test_the_seed_style_correct_notebook_gets_full_marks_from_both_implementations(reports):
    report = reports["correct"]
    assert report.score == report.max_score and report.flags == [] and report.notes == []
    assert check(report, "torch.dW1").provenance.endswith("w1_torch.grad, read transposed (in, out)")
    assert "attribute w1 of `model` after training" in check(report, "scratch.W1").provenance
    assert "w1_torch (3, 4), w2_torch (4, 2)" in check(report, "architecture").message


def test_each_training_is_replayed_with_exactly_the_masks_its_run_drew(reports):
    report = reports["correct"]
    for source, drawn in (("torch", "F.dropout"), ("scratch", "np.random.binomial")):
        for name in TRAINED:
            result = check(report, f"{source}.{name}")
            assert result.status == CheckStatus.passed and result.message.endswith(")") and "matches" in result.message
            assert f"the reference replayed with the 100 masks {drawn} drew in cell" in result.provenance


def test_the_replay_with_other_masks_than_the_run_drew_fails_a_correct_training(grading_sandbox, monkeypatch):
    """What makes the exact check exact: the same masks reversed in order are not the student's."""
    rubric = load_rubric(RUBRIC)
    submission = load_submission(SAMPLES / "correct.ipynb")
    run = run_notebook(rubric, submission, grading_sandbox, rubric.limits, {})
    readings = dropout._readings

    def reversed_masks(*args):
        found, why = readings(*args)
        return [(masks[::-1].copy(), how) for masks, how in found], why

    monkeypatch.setattr(dropout, "_readings", reversed_masks)
    checks, _, _ = check_notebook(rubric, submission, run, {})
    assert {c.quantity for c in checks if c.status != CheckStatus.passed} == {
        f"{s}.{n}" for s in ("torch", "scratch") for n in TRAINED
    }


@pytest.mark.parametrize(
    "name, source, mistake",
    [
        ("dropout_without_rescaling", "scratch", "dropout_without_rescaling"),
        ("dropout_scaled_by_keep_probability", "scratch", "dropout_scaled_by_keep_probability"),
        ("p_used_as_keep_probability", "scratch", "p_used_as_keep_probability"),
        ("mask_not_in_backward", "scratch", "mask_not_in_backward"),
        ("masks_ignored", "torch", "masks_ignored"),
    ],
)
def test_the_catalogues_dropout_mistakes_fail_the_training_they_are_in_and_are_named(reports, name, source, mistake):
    wrong = failed(reports[name])
    assert set(wrong) == {f"{source}.{n}" for n in TRAINED}
    assert {c.diagnosis.mistake for c in wrong.values()} == {mistake}


def test_p_taken_as_the_keep_probability_is_replayed_with_its_uniform_draws_read_as_the_student_did(reports):
    result = check(reports["p_used_as_keep_probability"], "scratch.W1")
    assert (
        "the 100 masks np.random.rand drew in cell" in result.provenance
        and "read as np.random.rand(…) < 0.4" in result.provenance
    )


def test_dropout_run_with_training_false_draws_no_masks_and_is_named_by_the_spread(reports):
    report = reports["masks_ignored"]
    result = check(report, "torch.W1")
    assert (
        "F.dropout ran with training=False in cell" in result.message
        and "outside the spread of 200 reference runs" in result.message
    )
    assert any(
        note.startswith("torch training (cell ") and "spread of many reference runs" in note for note in report.notes
    )


def test_masks_the_sandbox_cannot_record_fall_back_to_the_spread_and_say_so(reports):
    """np.random.default_rng(…).binomial is not recorded: the right update is within the spread of 200 runs
    with other masks, the unscaled one outside it and inside the spread of its own mistake."""
    right, unscaled = reports["unrecoverable_masks"], reports["unrecoverable_masks_unscaled"]
    assert right.score == right.max_score
    for name in TRAINED:
        assert (
            "within the spread of 200 reference runs with other dropout masks"
            in check(right, f"scratch.{name}").message
        )
        assert check(right, f"torch.{name}").message.startswith(f"torch.{name} (update W_final − W_initial): matches")
    assert any("could not be recorded" in note and "spread" in note for note in right.notes)
    wrong = failed(unscaled)
    assert set(wrong) == {"scratch.W1", "scratch.W2"}
    assert {c.diagnosis.mistake for c in wrong.values()} == {"dropout_without_rescaling"}
    assert all(
        "outside the spread" in c.message and "Recognised by the spread of its own updates" in c.diagnosis.explanation
        for c in wrong.values()
    )


def test_the_seed_as_handed_in_passes_torch_and_its_numpy_dropout_is_named_for_its_missing_scaling(reports):
    report = reports["seed_003"]
    wrong = failed(report)
    assert set(wrong) == {"scratch.dW2", "scratch.W1", "scratch.W2"}
    assert wrong["scratch.dW2"].status == CheckStatus.missing  # Task 2's numpy backward returns dL_dw1 only
    for name in TRAINED:
        diagnosis = wrong[f"scratch.{name}"].diagnosis
        assert diagnosis is not None and "dropout without the 1/(1 − p) scaling" in diagnosis.title
    assert check(report, "torch.dW2").status == CheckStatus.passed  # w2_torch.grad exists, though not printed


def test_the_sample_folder_holds_exactly_the_samples_graded_here(reports):
    assert sorted(reports) == sorted(
        [
            "correct",
            "seed_003",
            "dropout_without_rescaling",
            "dropout_scaled_by_keep_probability",
            "p_used_as_keep_probability",
            "mask_not_in_backward",
            "masks_ignored",
            "unrecoverable_masks",
            "unrecoverable_masks_unscaled",
        ]
    )


def test_a_numpy_gradient_copied_from_autograd_earns_nothing_and_is_flagged(grading_sandbox, tmp_path):
    """The provenance run scales autograd's gradients: a 'numpy' dW1 that is w1_torch.grad moves with them."""
    import json

    notebook = json.loads((SAMPLES / "correct.ipynb").read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "grad_w1, grad_w2 = model.backward(x, y)" in source:
            source = source.replace(
                "grad_w1, grad_w2 = model.backward(x, y)",
                "_, grad_w2 = model.backward(x, y)\ngrad_w1 = w1_torch.grad.numpy().copy()",
            )
            cell.update(source=source.splitlines(keepends=True), outputs=[], execution_count=None)
    path = tmp_path / "copied.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    report = grade_submission(load_rubric(RUBRIC), rubric_hash(RUBRIC), path, grading_sandbox)
    dW1 = check(report, "scratch.dW1")
    assert dW1.status == CheckStatus.failed and dW1.diagnosis.mistake == "copied_from_autograd"
    assert "variable grad_w1" in dW1.message and any(
        f.startswith("scratch gradients copied from autograd (dW1") for f in report.flags
    )
    assert check(report, "scratch.dW2").status == CheckStatus.passed


def test_training_an_nn_module_with_nn_dropout_is_replayed_with_its_masks(grading_sandbox, tmp_path):
    """The torch implementation as an nn.Module (weights in torch's (out, in) layout, nn.Dropout, torch.optim.SGD):
    its parameters after the training cell and the masks nn.Dropout drew are found and replayed."""
    import json

    notebook = json.loads((SAMPLES / "correct.ipynb").read_text(encoding="utf-8"))
    module = (
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc1 = torch.nn.Linear(3, 4, bias=False)\n"
        "        self.fc2 = torch.nn.Linear(4, 2, bias=False)\n"
        "        self.drop = torch.nn.Dropout(p=0.4)\n"
        "        with torch.no_grad():\n"
        "            self.fc1.weight.copy_(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 1.1, 1.2]]).T)\n"
        "            self.fc2.weight.copy_(torch.tensor([[0.2, 0.3], [0.4, 0.5], [0.6, 0.7], [0.8, 0.9]]).T)\n"
        "    def forward(self, x):\n"
        "        return F.softmax(self.fc2(self.drop(F.relu(self.fc1(x)))), dim=1)\n"
        "\n"
        "net = Net()\n"
        "optimizer = torch.optim.SGD(net.parameters(), lr=0.01)\n"
        "for epoch in range(100):\n"
        "    optimizer.zero_grad()\n"
        "    loss = cross_entropy_loss(net(x_torch), y_torch)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "print(net.fc1.weight)\n"
    )
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and "F.dropout(F.relu(z1_torch)" in "".join(cell["source"]):
            cell.update(source=module.splitlines(keepends=True), outputs=[], execution_count=None)
    path = tmp_path / "module.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    report = grade_submission(load_rubric(RUBRIC), rubric_hash(RUBRIC), path, grading_sandbox)
    for name in TRAINED:
        result = check(report, f"torch.{name}")
        assert result.status == CheckStatus.passed, result.message
        assert (
            "attribute weight of `net.fc" in result.provenance
            and "the 100 masks F.dropout drew in cell" in result.provenance
        )
    assert report.score == report.max_score
