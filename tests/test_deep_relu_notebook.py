"""The deep-ReLU hand-ins as they were handed in (seed 002), graded in the real sandbox by deep-relu-notebook."""

import json
import re

import pytest
from conftest import REPO

from grader.grade import grade_submission
from grader.load import load_submission
from grader.notebook.grade import check_notebook, run_notebook
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

RUBRIC = "deep-relu-notebook"
SAMPLES = REPO / "submissions" / "deep-relu-notebooks"
HANDED_IN_FOLDERS = {"append_rerun"}  # a student's folder: the notebook and the .dat files beside it


def notebook_path(stem: str):
    return SAMPLES / stem / f"{stem}.ipynb" if stem in HANDED_IN_FOLDERS else SAMPLES / f"{stem}.ipynb"


def handed_in(stem: str) -> dict[str, bytes]:
    if stem not in HANDED_IN_FOLDERS:
        return {}
    return {p.name: p.read_bytes() for p in (SAMPLES / stem).iterdir() if p.suffix != ".ipynb"}


@pytest.fixture(scope="module")
def reports(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    stems = [p.stem for p in SAMPLES.glob("*.ipynb")] + sorted(HANDED_IN_FOLDERS)
    return {
        stem: grade_submission(rubric, rubric_hash(RUBRIC), notebook_path(stem), grading_sandbox, files=handed_in(stem))
        for stem in sorted(stems)
    }


def failed(report) -> dict[str, object]:
    return {c.quantity: c for c in report.checks if c.status != CheckStatus.passed}


def check(report, quantity):
    return next(c for c in report.checks if c.quantity == quantity)


@pytest.mark.parametrize("name", ["correct", "append_rerun", "graph_nodes_typed_torch1"])
def test_seed_style_notebooks_whose_answers_are_right_get_full_marks_and_no_flag(reports, name):
    report = reports[name]
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]
    assert report.flags == [] and report.run.status == "ok"


def test_gradients_printed_with_np_round_5_are_checked_on_the_values_they_were_printed_from(reports):
    """The first layers' gradients are ~1e-5: 5 decimals cannot tell them right from wrong, but the .grad and
    the student's variables they were printed from can, and they agree with every printed number."""
    report = reports["correct"]
    torch_dW1, scratch_dW2 = check(report, "torch.dW1"), check(report, "scratch.dW2")
    assert torch_dW1.status == scratch_dW2.status == CheckStatus.passed
    assert (
        "torch_autograd.dat line 2 ('Input_layer weight gradient:'); printed to ±5e-06, too coarse to check"
        in torch_dW1.provenance
    )
    assert "net.0.weight.grad" in torch_dW1.provenance
    assert "my_autograd.dat line" in scratch_dW2.provenance and "variable dws[0]" in scratch_dW2.provenance
    dW11 = check(report, "scratch.dW11")  # the output layer's gradient is large: its printed digits suffice
    assert (
        dW11.status == CheckStatus.passed
        and dW11.provenance.startswith("my_autograd.dat")
        and "full precision" not in dW11.provenance
    )


def test_the_seeds_extra_linear_without_relu_fails_only_the_architecture_which_says_so(reports):
    report = reports["extra_linear_layer"]
    assert list(failed(report)) == ["architecture"]
    message = check(report, "architecture").message
    assert (
        "found 10-21-21-21-21-21-21-21-21-21-21-21-1 with relu after every hidden layer but layer 1 (no activation)"
        in message
    )
    assert "12 linear layers where 11 were asked (one more); no activation after layer 1" in message
    assert message.endswith("its gradients are still checked on its own net")
    assert "net.0.weight.grad" in check(report, "torch.dW1").provenance  # the seed only printed the input layer's


def test_the_seeds_relu_derivative_at_its_linear_first_layer_is_named(reports):
    report = reports["relu_derivative_at_linear_layer"]
    wrong = failed(report)
    assert set(wrong) == {"architecture", "scratch.dW1", "scratch.db1"}
    assert {wrong[q].diagnosis.mistake for q in ("scratch.dW1", "scratch.db1")} == {"derivative_without_activation"}


def test_a_dat_file_appended_to_on_every_run_is_read_from_its_last_complete_copy_and_noted(reports):
    """The files handed in hold a copy from a run on other weights, then this run's; the grader's run appends
    a third: only the last is read."""
    report = reports["append_rerun"]
    notes = {n.split(":")[0]: n for n in report.notes if "copies of its 22 arrays" in n}
    assert sorted(notes) == ["my_autograd.dat", "torch_autograd.dat"]
    assert all("holds 3 copies" in n and "append mode ('a')" in n for n in notes.values())
    last_copy = {
        name: int(re.search(r"last complete copy \(from line (\d+)\)", n).group(1)) for name, n in notes.items()
    }
    read = [
        (c.provenance.split(" line ")[0], int(c.provenance.split(" line ")[1].split()[0]))
        for c in report.checks
        if ".dat line " in c.provenance
    ]
    assert len(read) == 44 and all(line >= last_copy[name] for name, line in read)


def test_node_names_typed_with_torch_1_names_count_and_a_walk_that_skips_the_leaves_does_not(reports):
    typed = check(reports["graph_nodes_typed_torch1"], "torch.nodes")
    assert typed.status == CheckStatus.passed and "every kind of node named (6 kinds" in typed.message
    listed = check(reports["correct"], "torch.nodes")
    assert listed.status == CheckStatus.passed and "all 77 nodes named" in listed.message
    skipped = check(reports["graph_without_leaves"], "torch.nodes")
    assert skipped.status == CheckStatus.failed and "missing AccumulateGrad" in skipped.message
    assert list(failed(reports["graph_without_leaves"])) == ["torch.nodes"]


def test_the_bs6207_notebook_rubric_changed_to_the_deep_net_grades_the_seed_instead_of_crashing(
    grading_sandbox, tmp_path
):
    """The issue's reproduction: bs6207-a1-notebook with `layers` and `activation` of the deep net."""
    text = (REPO / "rubrics" / "bs6207-a1-notebook.toml").read_text(encoding="utf-8")
    text = text.replace("layers = [2, 10, 10, 1]", f"layers = {json.dumps([10] + [21] * 10 + [1])}")
    text = text.replace('activation = "sigmoid"', 'activation = "relu"').replace(
        'id = "bs6207-a1-notebook"', 'id = "deep-by-hand"'
    )
    path = tmp_path / "deep-by-hand.toml"
    path.write_text(text, encoding="utf-8")
    rubric = load_rubric(str(path))
    submission = load_submission(SAMPLES / "extra_linear_layer.ipynb")
    run = run_notebook(rubric, submission, grading_sandbox, rubric.limits, {})
    checks, _, _ = check_notebook(rubric, submission, run, {})
    assert [c.quantity for c in checks if c.status != CheckStatus.passed] == ["architecture"]


def test_the_sample_folder_holds_exactly_the_samples_graded_here():
    notebooks = sorted(p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*.ipynb"))
    assert notebooks == sorted(
        notebook_path(stem).relative_to(SAMPLES).as_posix()
        for stem in [
            "correct",
            "extra_linear_layer",
            "relu_derivative_at_linear_layer",
            "append_rerun",
            "graph_nodes_typed_torch1",
            "graph_without_leaves",
        ]
    )
    assert sorted(p.name for p in (SAMPLES / "append_rerun").iterdir()) == [
        "append_rerun.ipynb",
        "my_autograd.dat",
        "torch_autograd.dat",
    ]
