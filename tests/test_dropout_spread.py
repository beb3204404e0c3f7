"""Dropout training judged by the spread of many runs when its own masks cannot be replayed."""

import numpy as np
import pytest

from grader.dropout_spread import check_by_spread
from grader.rubric.files import load_rubric
from grader.trials import Trial, make_trial
from reference import dropout_training
from reference.mistakes_backprop import dropout_sgd


@pytest.fixture(scope="module")
def setting():
    rubric = load_rubric("softmax-dropout-notebook")
    task = rubric.task("dropout")
    given = make_trial(rubric, task, "public", 0)
    return rubric, task, Trial(task.id, "notebook", 0, given.x, given.y, given.params, given=True)


def trained(trial, seed, scale="inverted"):
    """Weights trained with masks of their own (not the grader's), as a notebook's run would."""
    masks = (np.random.default_rng(seed).random((100, 2, 4)) >= 0.4).astype(np.float64)
    if scale == "inverted":
        return dropout_training.train(trial.x, trial.y, trial.params, masks, 0.4, 0.01)
    return dropout_sgd(trial.x, trial.y, trial.params, masks, scale, 0.01, "sum")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_training_with_masks_of_its_own_is_within_the_spread(setting, seed):
    rubric, task, trial = setting
    results = check_by_spread(rubric, task, trial, "scratch", trained(trial, seed), {}, "masks not recorded")
    assert [r.status for r in results] == ["passed", "passed"] and all(
        "within the spread" in r.message for r in results
    )


@pytest.mark.parametrize(
    "scale, mistake",
    [(1.0, "dropout_without_rescaling"), (0.6, "dropout_scaled_by_keep_probability"), (None, "masks_ignored")],
)
def test_a_scaling_mistake_is_outside_the_spread_and_named_by_its_own(setting, scale, mistake):
    rubric, task, trial = setting
    results = check_by_spread(rubric, task, trial, "torch", trained(trial, 14, scale), {}, "masks not recorded")
    assert [r.quantity for r in results] == ["torch.W1", "torch.W2"]
    assert all(r.status == "failed" and r.diagnosis.mistake == mistake for r in results)
