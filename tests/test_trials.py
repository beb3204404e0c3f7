"""Trials: generated from (seed, index) with numpy, bit-identical on every run."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from conftest import BUNDLED_RUBRICS, CONTRACT_RUBRICS, REPO

from grader.rubric.files import load_rubric
from grader.secret import new_secret
from grader.trials import make_trial, trials_for


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
        "from grader.rubric.files import load_rubric; from grader.trials import make_trial;"
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
    other = make_trial(rubric, task, "hidden", 0, hidden_seed=new_secret())
    assert len({digest(public), digest(hidden), digest(other)}) == 3
    with pytest.raises(ValueError, match="backprop-grader rubric secret"):
        make_trial(rubric, task, "hidden", 0, hidden_seed=12345)  # an integer is never a hidden seed


def with_secret(rubric, secret):
    return rubric.model_copy(update={"trials": rubric.trials.model_copy(update={"hidden_seed": secret})})


@pytest.mark.parametrize("rubric_id", CONTRACT_RUBRICS)
def test_hidden_trials_are_not_those_of_any_integer_seed_near_the_public_one(rubric_id):
    """Issue 16 item 3: the bundled hidden seed was the public seed followed by 01, found by brute force in
    7 s. No integer seed the old scheme used, the public one and its neighbours included, gives a hidden trial."""
    rubric = load_rubric(rubric_id)
    candidates = {
        *range(1000),
        *(rubric.seed * 100 + k for k in range(100)),
        *(rubric.seed * 1000 + k for k in range(1000)),
    }
    for task in rubric.tasks:
        hidden = {make_trial(rubric, task, "hidden", i).x.tobytes() for i in range(rubric.trials.hidden)}
        for seed in candidates:
            as_public = rubric.model_copy(update={"seed": seed})  # public trials: the old scheme's [seed, index, task]
            for index in range(0 if task.given is None else 1, rubric.trials.hidden):
                assert make_trial(as_public, task, "public", index).x.tobytes() not in hidden, (task.id, seed, index)


def test_hidden_trials_change_with_every_digit_of_the_secret_and_not_with_the_public_seed():
    """A keyed hash of (secret, task id, index): one digit changes every hidden trial; the public seed, the
    task order and the digits' case change none."""
    rubric = load_rubric("softmax-dropout")
    secret = new_secret()
    base = with_secret(rubric, secret)
    flipped = with_secret(rubric, secret[:-1] + ("0" if secret[-1] != "0" else "1"))
    reseeded = base.model_copy(update={"seed": rubric.seed + 1})
    reordered = base.model_copy(update={"tasks": list(reversed(rubric.tasks))})
    capitals = with_secret(rubric, secret.upper())
    for task in rubric.tasks:
        first = [digest(t) for t in trials_for(base, task, ("hidden",))]
        assert not set(first) & {digest(t) for t in trials_for(flipped, task, ("hidden",))}
        for same in (reseeded, reordered, capitals):
            assert [digest(t) for t in trials_for(same, task, ("hidden",))] == first
        assert [digest(t) for t in trials_for(reseeded, task, ("public",))] != [
            digest(t) for t in trials_for(base, task, ("public",))
        ]


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
