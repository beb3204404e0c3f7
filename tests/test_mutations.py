"""The mutation suite (benchmarks/mutations.py): every catalogued mistake and every pair of them, and each
mistake made at one layer alone or with another, applied to every bundled task — contract submissions
graded in-process, free-form notebooks that print the mutated gradients graded in the real sandbox — is
named right or not at all, never wrongly; correct float32 submissions pass and get no diagnosis."""

import pytest

from benchmarks.mutation_notebooks import notebook_outcomes, reference_notebook
from benchmarks.mutations import VARIANTS, contract_outcomes, float32_correct
from grader.grade import grade_submission
from grader.rubric.files import load_rubric, rubric_hash
from reference.mistakes import CATALOGUE

# Made with a mistake at one layer, these change the forward pass (gradients after an update) or show only on
# the trials where the ReLU output is negative (its derivative at the output): the trials then disagree on
# where the chain rule breaks, and nothing is named (never wrongly).
NOT_NAMED_WITH = ("+gradients_after_update", "+output_activation_derivative")
# Gradient ascent on the logits blows up: its weights are not finite, like those of any other mistake that diverges.
DIVERGES = {"sign_flip+logits_instead_of_probs"}
# Applies only to a net with a hidden layer left without activation (the deep-relu notebooks' own nets).
NO_BUNDLED_TASK = {"derivative_without_activation"}


def wrong(outcomes):
    return [(o.rubric, o.variant, o.combo, o.detail) for o in outcomes if o.result == "wrong"]


@pytest.fixture(scope="module")
def catalogued():
    """Every catalogued mistake and pair on every contract task: float64, float32, the bs6207-a1 net batched
    with a mean loss, and the pairs with a transposed dW where (out, in) is required."""
    return [
        *contract_outcomes(variants=(VARIANTS[0], VARIANTS[1], VARIANTS[3]), local_variants=()),
        *contract_outcomes(
            variants=(VARIANTS[2],), local_variants=(), select=lambda combo: "transposed_gradient" in combo
        ),
    ]


def test_no_catalogued_mistake_or_pair_is_ever_named_wrongly(catalogued):
    assert wrong(catalogued) == []


def test_every_catalogued_mistake_and_pair_is_named_right_on_every_contract_task_where_it_shows(catalogued):
    assert {(o.combo, o.result) for o in catalogued if o.result not in ("right", "invisible")} == {
        (combo, "diverged") for combo in DIVERGES
    }
    right = {o.combo for o in catalogued if o.result == "right"}
    assert {m.id for m in CATALOGUE} - NO_BUNDLED_TASK <= right
    assert {
        "missing_factor_2+sign_flip",
        "missing_factor_2+transposed_gradient",
        "sum_instead_of_mean+bias_gradient_not_summed",
    } <= right


def test_each_mistake_made_at_one_layer_is_named_with_its_layer_and_never_wrongly():
    outcomes = [
        *contract_outcomes(
            rubric_ids=("bs6207-a1",), variants=(), local_variants=(VARIANTS[0], VARIANTS[1], VARIANTS[3])
        ),
        *contract_outcomes(rubric_ids=("deep-relu",), variants=(), local_variants=(VARIANTS[0],), layers=(1, 6, 11)),
    ]
    assert wrong(outcomes) == []
    alone = [o for o in outcomes if "+" not in o.combo and o.result != "invisible"]
    assert len(alone) > 20 and {o.result for o in alone} == {
        "right"
    }  # "right" includes the layer (benchmarks.mutations)
    unnamed = [o.combo for o in outcomes if o.result not in ("right", "invisible")]
    assert all(any(part in combo for part in NOT_NAMED_WITH) for combo in unnamed), unnamed


def test_free_form_notebooks_printing_mutated_gradients_are_named_right(grading_sandbox):
    outcomes = notebook_outcomes(grading_sandbox, local=True, local_pairs=False)
    assert wrong(outcomes) == []
    assert {o.result for o in outcomes} <= {"right", "invisible", "indistinguishable"}
    assert (
        sum(o.result == "right" for o in outcomes) > 80 and sum(o.result == "indistinguishable" for o in outcomes) <= 2
    )


def test_the_suites_notebook_with_the_right_gradients_gets_full_marks(grading_sandbox, tmp_path):
    path = tmp_path / "reference.ipynb"
    path.write_text(reference_notebook(), encoding="utf-8")
    report = grade_submission(
        load_rubric("bs6207-a1-notebook"), rubric_hash("bs6207-a1-notebook"), path, grading_sandbox
    )
    assert report.score == report.max_score and all(c.diagnosis is None for c in report.checks)


def test_correct_float32_submissions_pass_every_check_and_get_no_diagnosis():
    assert float32_correct() == []
