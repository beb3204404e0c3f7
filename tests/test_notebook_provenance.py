"""Provenance proven by the counterfactual run (grader/notebook/provenance.py): what follows autograd, what
does not, and how a notebook that reports autograd's values as its own is graded."""

import numpy as np
import pytest
from conftest import REPO

from grader.grade import grade_submission
from grader.notebook.provenance import FACTORS, Follows, counterfactual_factor, follows
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

RUBRIC = "bs6207-a1-notebook"
SAMPLES = REPO / "submissions" / "bs6207-a1-notebooks"


def gradient(seed=0, shape=(10, 2)):
    return np.random.default_rng(seed).normal(scale=0.05, size=shape).astype(np.float32).astype(np.float64)


def test_the_factor_is_fixed_by_the_submission_and_never_near_one_or_two():
    factors = {counterfactual_factor(f"{i:064x}", 0) for i in range(200)}
    assert all(FACTORS[0] <= f <= FACTORS[1] for f in factors) and len(factors) > 150
    assert counterfactual_factor("ab" * 32, 7) == counterfactual_factor("ab" * 32, 7)
    assert counterfactual_factor("ab" * 32, 7) != counterfactual_factor("ab" * 32, 8)


def test_a_value_scaled_like_autograd_follows_autograd_even_in_float32():
    found = gradient()
    again = (np.float32(1.45) * found.astype(np.float32)).astype(np.float64)  # autograd's float32 output, scaled
    assert follows(found, again, 1.45) == Follows.autograd


def test_an_unchanged_value_is_independent_and_a_trained_one_is_unknown():
    found = gradient()
    assert follows(found, found.copy(), 1.45) == Follows.independent
    assert follows(found, found + gradient(1), 1.45) == Follows.unknown
    assert follows(found, None, 1.45) == Follows.unknown
    assert follows(found, found[:5], 1.45) == Follows.unknown


def test_zeros_and_values_printed_too_coarsely_are_never_judged():
    assert follows(np.zeros((3, 2)), np.zeros((3, 2)), 1.45) == Follows.unknown
    found = np.round(gradient(), 1)  # 0.0 or ±0.1: printed to 1 decimal
    assert follows(found, np.round(1.45 * gradient(), 1), 1.45, np.full(found.shape, 0.05)) == Follows.unknown


def test_printed_values_follow_autograd_within_their_printed_precision():
    true = gradient()
    found, again = np.round(true, 5), np.round(1.45 * true, 5)
    assert follows(found, again, 1.45, np.full(found.shape, 5e-6)) == Follows.autograd
    assert follows(found, found, 1.45, np.full(found.shape, 5e-6)) == Follows.independent


@pytest.fixture(scope="module")
def copied(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    return grade_submission(rubric, rubric_hash(RUBRIC), SAMPLES / "copied_from_autograd.ipynb", grading_sandbox)


def test_autograd_values_written_to_my_autograd_dat_earn_no_scratch_points(copied):
    scratch = [c for c in copied.checks if c.quantity.startswith("scratch.")]
    assert len(scratch) == 6
    assert all(c.status == CheckStatus.failed and c.points == 0 for c in scratch)
    assert all(c.diagnosis and c.diagnosis.mistake == "copied_from_autograd" for c in scratch)
    assert all("my_autograd.dat line" in c.message and "copied from autograd" in c.message for c in scratch)


def test_the_copied_notebook_keeps_its_autograd_points_and_is_flagged(copied):
    torch_checks = [c for c in copied.checks if c.quantity.startswith("torch.") or c.quantity == "architecture"]
    assert all(c.status == CheckStatus.passed for c in torch_checks)
    assert any(f.startswith("scratch gradients copied from autograd") and "my_autograd.dat" in f for f in copied.flags)


def test_hand_computed_tensors_that_require_grad_are_the_students_own(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    report = grade_submission(rubric, rubric_hash(RUBRIC), SAMPLES / "scratch_requires_grad.ipynb", grading_sandbox)
    provenance = {c.quantity: c.provenance for c in report.checks}
    assert report.score == report.max_score and not report.flags
    assert provenance["scratch.dW1"].endswith("variable grad_w1") and ".grad" in provenance["torch.dW1"]
