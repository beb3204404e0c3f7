"""Trials: generated from (seed, index) with numpy, bit-identical on every run."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from grader.rubric_files import load_rubric
from grader.trials import make_trial, trials_for

from conftest import BUNDLED_RUBRICS, REPO


def digest(trial) -> str:
    h = hashlib.sha256()
    for name, array in sorted(trial.arrays().items()):
        h.update(name.encode() + np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("rubric_id", BUNDLED_RUBRICS)
def test_the_same_seed_gives_bit_identical_trials(rubric_id):
    rubric = load_rubric(rubric_id)
    for task in rubric.tasks:
        first = [digest(t) for t in trials_for(rubric, task, ("public", "hidden"))]
        again = [digest(t) for t in trials_for(rubric, task, ("public", "hidden"))]
        assert first == again
        assert len(set(first)) == len(first), "every trial differs from every other"


def test_trials_are_identical_in_a_fresh_process():
    code = (
        "from grader.rubric_files import load_rubric; from grader.trials import make_trial;"
        "r = load_rubric('bs6207-a1'); t = make_trial(r, r.tasks[0], 'hidden', 2);"
        "print(t.params['W2'].tobytes().hex())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    rubric = load_rubric("bs6207-a1")
    assert out.strip() == make_trial(rubric, rubric.tasks[0], "hidden", 2).params["W2"].tobytes().hex()


def test_parameters_lie_in_torch_default_init_range():
    rubric = load_rubric("deep-relu")
    trial = make_trial(rubric, rubric.tasks[0], "public", 1)
    for name, value in trial.params.items():
        fan_in = trial.params["W" + name[1:]].shape[1]
        assert np.all(np.abs(value) <= 1 / np.sqrt(fan_in)), name
    assert trial.x.shape == (1, 10) and np.all((0 <= trial.x) & (trial.x <= 1))
    assert np.allclose(trial.y, (trial.x**2).sum(axis=1, keepdims=True) / 10)


def test_hidden_trials_come_from_the_hidden_seed_and_can_be_overridden():
    rubric = load_rubric("bs6207-a1")
    task = rubric.tasks[0]
    public, hidden = make_trial(rubric, task, "public", 0), make_trial(rubric, task, "hidden", 0)
    other = make_trial(rubric, task, "hidden", 0, hidden_seed=12345)
    assert digest(public) != digest(hidden) != digest(other)


def test_public_trial_zero_of_softmax_dropout_is_the_handouts_instance():
    rubric = load_rubric("softmax-dropout")
    for task in rubric.tasks:
        trial = make_trial(rubric, task, "public", 0)
        assert trial.given
        assert trial.x.tolist() == [[1, 2, 3], [4, 5, 6]] and trial.y.tolist() == [[0, 1], [1, 0]]
        assert trial.params["W1"].shape == (4, 3) and trial.params["W1"][:, 0].tolist() == [0.1, 0.2, 0.3, 0.4]
        assert not make_trial(rubric, task, "public", 1).given


def test_dropout_keep_masks_are_binary_one_per_epoch_with_keep_probability_one_minus_p():
    rubric = load_rubric("softmax-dropout")
    task = rubric.task("dropout")
    trial = make_trial(rubric, task, "public", 1)
    assert trial.masks.shape == (100, 2, 4)
    assert set(np.unique(trial.masks)) <= {0.0, 1.0}
    assert abs(trial.masks.mean() - (1 - task.p)) < 0.06  # 800 draws: 4 standard deviations
    assert trial.scalars == {"p": 0.4, "lr": 0.01}
