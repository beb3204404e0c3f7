"""Free-form notebooks graded as an expert TA would: each sample trait gets its verdicts, notes and flags."""

import json

import pytest
from conftest import REPO

from grader.grade import grade_submission
from grader.notebook.saved_outputs import tokens
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

RUBRIC = "bs6207-a1-notebook"
SAMPLES = REPO / "submissions" / "bs6207-a1-notebooks"
GRADIENTS = ["dW1", "db1", "dW2", "db2", "dW3", "db3"]
FULL_MARKS = [
    "correct",
    "colab_drive_path",
    "unused_pandas",
    "in_out_layout",
    "four_decimals",
    "unseeded",
    "cell_raises",
    "scratch_with_torch_ops",
    "pandas_csv_dat",
    "no_dat_files",
    "run_out_of_order",
    "saved_by_other_cpu",
    "in_out_square",
    "in_out_variables",
    "scratch_requires_grad",
    "decoy_net_first",
    "pandas_first_line",
    "tensorflow_used",
    "colab_gpu_fallback",
    "colab_cuda_hardcoded",
    "raw_tensors",
    "raw_tensors_x_at_w",
    "numpy_class_attributes",
    "printed_in_a_function",
    "whole_data_forward_first",
]


@pytest.fixture(scope="module")
def reports(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    return {
        path.stem: grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox)
        for path in sorted(SAMPLES.glob("*.ipynb"))
    }


def verdicts(report, source):
    return {c.quantity.split(".")[1]: c.status for c in report.checks if c.quantity.startswith(f"{source}.")}


@pytest.mark.parametrize("name", FULL_MARKS)
def test_samples_whose_gradients_are_right_get_full_marks(reports, name):
    report = reports[name]
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]
    assert report.run.status == "ok"


def test_the_colab_drive_path_costs_nothing_and_is_noted(reports):
    notes = " ".join(reports["colab_drive_path"].notes)
    assert "'/content/drive/MyDrive/BS6207/torch_autograd.dat' was written as 'torch_autograd.dat'" in notes
    assert "drive.mount" in notes


def test_an_unused_pandas_import_is_noted_and_the_rest_runs(reports):
    assert any("module 'pandas' is not installed" in note for note in reports["unused_pandas"].notes)


def test_a_cell_that_raises_is_recorded_and_execution_goes_on(reports):
    notes = [n for n in reports["cell_raises"].notes if "execution went on" in n]
    assert len(notes) == 1 and "RuntimeError" in notes[0] and notes[0].startswith("cell ")


def test_the_in_out_layout_is_accepted_and_reported(reports):
    report = reports["in_out_layout"]
    dW1 = next(c for c in report.checks if c.quantity == "scratch.dW1")
    assert dW1.status == CheckStatus.passed
    assert "my_autograd.dat" in dW1.provenance and "transposed (in, out) layout" in dW1.provenance


def test_a_file_in_x_at_w_layout_reads_its_square_dW2_in_out_though_its_output_layer_is_a_vector(reports):
    report = reports["in_out_square"]
    dW2 = next(c for c in report.checks if c.quantity == "scratch.dW2")
    assert dW2.status == CheckStatus.passed and report.flags == []
    assert "my_autograd.dat" in dW2.provenance and "transposed (in, out) layout" in dW2.provenance


def test_gradients_in_variables_are_one_source_whose_square_dW2_takes_its_siblings_in_out_layout(reports):
    report = reports["in_out_variables"]
    dW2 = next(c for c in report.checks if c.quantity == "scratch.dW2")
    assert dW2.status == CheckStatus.passed and report.flags == []
    assert "variable dW2" in dW2.provenance
    assert (
        "(in, out) layout as the other weight gradients of this source (dW1 (2, 10) and dW3 (10, 1))" in dW2.provenance
    )


def test_values_printed_to_four_decimals_keep_their_precision(reports):
    report = reports["four_decimals"]
    dW1 = next(c for c in report.checks if c.quantity == "torch.dW1")
    assert dW1.status == CheckStatus.passed and "torch_autograd.dat line" in dW1.provenance


def test_a_2_10_5_1_net_fails_only_the_architecture_and_is_judged_on_its_own_net(reports):
    report = reports["architecture_2_10_5_1"]
    failed = [c for c in report.checks if c.status != CheckStatus.passed]
    assert [c.quantity for c in failed] == ["architecture"]
    assert "expected 2-10-10-1 with sigmoid, found 2-10-5-1 with sigmoid" in failed[0].message


def test_scratch_missing_the_factor_2_fails_with_its_diagnosis_while_autograd_passes(reports):
    report = reports["missing_factor_2"]
    assert set(verdicts(report, "torch").values()) == {CheckStatus.passed}
    scratch = [c for c in report.checks if c.quantity.startswith("scratch.")]
    assert all(c.status == CheckStatus.failed and c.diagnosis.mistake == "missing_factor_2" for c in scratch)


def test_gradients_reported_after_ten_sgd_steps_fail_are_explained_and_flagged(reports):
    report = reports["after_10_sgd_steps"]
    torch_checks = [c for c in report.checks if c.quantity.startswith("torch.")]
    assert all(c.status != CheckStatus.passed for c in torch_checks)
    assert all(
        c.diagnosis and c.diagnosis.mistake == "gradients_after_training"
        for c in torch_checks
        if c.status == CheckStatus.failed
    )
    assert any(flag.startswith("gradients reported after training steps") for flag in report.flags)


def saved_output_flags(report) -> list[str]:
    return [flag for flag in report.flags if flag.startswith("saved outputs differ from a fresh run")]


def first_saved_number(stem: str, code_cell: int) -> tuple[int, str]:
    """The notebook cell number of the `code_cell`-th code cell of a sample, and the first number it saved."""
    notebook = json.loads((SAMPLES / f"{stem}.ipynb").read_text())
    number, cell = [(n, c) for n, c in enumerate(notebook["cells"], start=1) if c["cell_type"] == "code"][code_cell - 1]
    text = "".join("".join(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream")
    return number, next(t.text for t in tokens(text) if t.value is not None)


def test_an_unseeded_notebook_is_graded_exactly_on_the_weights_it_drew(reports, grading_sandbox):
    assert reports["unseeded"].score == reports["unseeded"].max_score
    [flag] = saved_output_flags(reports["unseeded"])
    cell, saved = first_saved_number("unseeded", 2)  # x, drawn with no seed
    assert flag.startswith(f"saved outputs differ from a fresh run: cell {cell} printed {saved} when handed in, ")
    assert flag.endswith("(edited after running, or not seeded)")
    assert saved_output_flags(reports["correct"]) == []


def test_a_notebook_run_out_of_order_keeps_full_marks_and_is_flagged_for_its_execution_counts(reports):
    report = reports["run_out_of_order"]
    assert report.score == report.max_score
    [flag] = saved_output_flags(report)
    cell, saved = first_saved_number("run_out_of_order", 2)  # the model cell, run a second time
    assert flag.startswith(f"saved outputs differ from a fresh run: cell {cell} printed {saved} when handed in, ")
    assert "the saved execution counts (1, 4, 3, 5, 6, 7, 8) show the cells were run out of order" in flag
    assert "edited" not in flag and "not seeded" not in flag


@pytest.mark.parametrize("name", sorted(set(FULL_MARKS) - {"unseeded", "run_out_of_order"}))
def test_no_seeded_notebook_run_top_to_bottom_is_flagged_for_its_saved_outputs(reports, name):
    assert saved_output_flags(reports[name]) == []


def test_a_notebook_saved_on_another_cpu_and_torch_version_gets_full_marks_and_no_flag(reports):
    report = reports["saved_by_other_cpu"]
    assert report.score == report.max_score and report.flags == []


def test_the_grade_of_a_correct_notebook_does_not_depend_on_its_seed(grading_sandbox, tmp_path):
    rubric = load_rubric(RUBRIC)
    notebook = json.loads((SAMPLES / "correct.ipynb").read_text())
    scores = []
    for seed in (0, 1, 12345):
        for cell in notebook["cells"]:
            cell["source"] = [
                line.replace("torch.manual_seed(0)", f"torch.manual_seed({seed})") for line in cell["source"]
            ]
        path = tmp_path / f"seed{seed}.ipynb"
        path.write_text(json.dumps(notebook))
        report = grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox)
        scores.append(report.score)
        for cell in notebook["cells"]:
            cell["source"] = [
                line.replace(f"torch.manual_seed({seed})", "torch.manual_seed(0)") for line in cell["source"]
            ]
    assert scores == [rubric.max_points()] * 3


def test_gradients_found_only_in_variables_say_where_they_came_from(reports):
    report = reports["no_dat_files"]
    provenance = {c.quantity: c.provenance for c in report.checks}
    assert ".grad" in provenance["torch.dW1"] and "my_grads['W1']" in provenance["scratch.dW1"]
    assert any("my_autograd.dat was not written" in note for note in report.notes)


def test_a_notebook_handed_in_with_its_dat_files_is_graded_from_those_files(grading_sandbox, tmp_path):
    """The notebook does not write the files when run here, but the student handed them in beside it."""
    from grader.load import load_submission
    from grader.notebook.grade import run_notebook

    rubric = load_rubric(RUBRIC)
    handed_in = run_notebook(
        rubric, load_submission(SAMPLES / "correct.ipynb"), grading_sandbox, rubric.limits, {}
    ).files
    assert {"torch_autograd.dat", "my_autograd.dat"} <= set(handed_in)
    notebook = json.loads((SAMPLES / "correct.ipynb").read_text())
    notebook["cells"] = [c for c in notebook["cells"] if ".dat" not in "".join(c["source"])]
    path = tmp_path / "no_writes.ipynb"
    path.write_text(json.dumps(notebook))
    without = grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox)
    assert any("torch_autograd.dat was not written" in note for note in without.notes)
    report = grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox, files=handed_in)
    assert report.score == report.max_score
    assert all("autograd.dat line" in c.provenance for c in report.checks if c.quantity != "architecture")


def test_a_net_of_raw_tensors_is_seen_through_its_first_backward_pass(reports):
    report = reports["raw_tensors"]
    architecture = next(c for c in report.checks if c.quantity == "architecture")
    assert architecture.status == CheckStatus.passed
    assert architecture.message.startswith("architecture: 2-10-10-1 with sigmoid (cell ")
    assert "tensors w1, b1, w2, b2, w3, b3" in architecture.message
    assert not any("nn.Module" in note for note in report.notes)
    assert (
        report.flags == []
        and reports["raw_tensors_x_at_w"].flags == []
        and reports["numpy_class_attributes"].flags == []
    )


def test_raw_weights_stored_in_by_out_pass_with_their_layout_noted(reports):
    report = reports["raw_tensors_x_at_w"]
    architecture = next(c for c in report.checks if c.quantity == "architecture")
    assert (
        architecture.status == CheckStatus.passed
        and "weights stored in×out (x @ W) and read transposed" in architecture.message
    )


def test_a_raw_forward_that_sums_across_neurons_fails_the_architecture_saying_where(reports):
    report = reports["raw_forward_sums"]
    architecture = next(c for c in report.checks if c.quantity == "architecture")
    assert architecture.status == CheckStatus.failed
    assert "found 2-10-10-1 from raw tensors, but its forward pass is not an MLP's" in architecture.message
    assert "layer 1's pre-activation sums across neurons" in architecture.message
    assert set(verdicts(report, "scratch").values()) == {CheckStatus.passed}  # its numpy forward is an MLP
    assert CheckStatus.passed not in set(verdicts(report, "torch").values())  # autograd of its own forward


def test_gradients_kept_as_attributes_of_a_numpy_class_are_found_and_say_whose_they_are(reports):
    report = reports["numpy_class_attributes"]
    provenance = {c.quantity: c.provenance for c in report.checks}
    for key in GRADIENTS:
        assert f"attribute {key} of `model`" in provenance[f"scratch.{key}"]
        assert provenance[f"scratch.{key}"].startswith("cell 7: ")  # the notebook's cell that ran model.backward
    assert any("my_autograd.dat was not written" in note for note in report.notes)


def test_a_catalogued_mistake_is_named_for_values_read_from_attributes_of_the_students_object(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    report = grade_submission(
        rubric, rubric_hash(RUBRIC), SAMPLES / "missing_factor_2_attributes.ipynb", grading_sandbox
    )
    scratch = [c for c in report.checks if c.quantity.startswith("scratch.")]
    assert len(scratch) == 6 and all(c.status == CheckStatus.failed for c in scratch)
    assert all(c.diagnosis is not None and c.diagnosis.mistake == "missing_factor_2" for c in scratch)
    assert all(c.provenance.endswith(f"attribute {c.quantity.split('.')[1]} of `net`") for c in scratch)
    assert set(verdicts(report, "torch").values()) == {CheckStatus.passed}


def test_a_cell_nested_too_deep_for_the_parser_is_a_syntax_error_and_the_rest_keeps_its_marks(
    grading_sandbox, tmp_path
):
    """`x = ------…1` (a million signs) in a last cell: compile in the child and ast.parse in the grader's
    cell notes raised MemoryError, so the grader itself failed on a notebook whose answers are right."""
    rubric = load_rubric(RUBRIC)
    notebook = json.loads((SAMPLES / "correct.ipynb").read_text())
    deep = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": ["x = " + "-" * 1_000_000 + "1\n"],
    }
    notebook["cells"].append(deep)
    path = tmp_path / "deep_cell.ipynb"
    path.write_text(json.dumps(notebook))
    report = grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox)
    assert report.status == "graded" and report.score == rubric.max_points()
    assert any("syntax error: nested too deeply for Python's parser" in note for note in report.notes)


def test_gradients_only_printed_inside_a_function_are_read_from_the_cells_output(reports):
    report = reports["printed_in_a_function"]
    provenance = {c.quantity: c.provenance for c in report.checks}
    assert all(provenance[f"scratch.{k}"].startswith("printed in cell 4") for k in GRADIENTS), provenance
    assert all(".grad" in provenance[f"torch.{k}"] for k in GRADIENTS), provenance  # the net is local to main()
    assert report.flags == []


def test_autograd_gradients_printed_again_as_your_own_are_not_counted_as_yours(reports):
    report = reports["printed_copied_from_autograd"]
    assert verdicts(report, "torch") == dict.fromkeys(GRADIENTS, CheckStatus.passed)
    assert verdicts(report, "scratch") == dict.fromkeys(GRADIENTS, CheckStatus.missing)
    assert any("printed 2 times" in note and "none of them is counted" in note for note in report.notes)
