"""The hidden seed is a secret of at least 128 bits: made by `rubric secret`, checked wherever one enters
(rubric files, --hidden-seed), and a bundled rubric's (public) secret is warned about by `grade`."""

import json
import re

import pytest
from conftest import REPO

from grader.rubric.files import load_rubric
from grader.secret import MIN_DIGITS, SECRET_BYTES, new_secret, secret_problem, trial_entropy

SAMPLE = REPO / "submissions" / "bs6207-a1" / "correct.py"


def test_rubric_secret_prints_a_new_128_bit_secret_each_time(cli):
    printed = [cli("rubric", "secret") for _ in range(2)]
    assert all(done.returncode == 0 for done in printed)
    first, second = (done.stdout.strip() for done in printed)
    assert first != second
    for secret in (first, second):
        assert re.fullmatch(r"[0-9a-f]{32}", secret) and len(secret) * 4 >= 128 and secret_problem(secret) is None
    assert "hidden_seed" in printed[0].stderr and "keep that file from students" in printed[0].stderr


def test_secrets_are_at_least_128_bits_and_other_values_are_refused_with_what_to_do():
    assert SECRET_BYTES * 8 >= 128 and MIN_DIGITS * 4 >= 128
    assert len({new_secret() for _ in range(100)}) == 100
    for value in (620701, 2**200, True, 1.5, "620701", "g" * 32, "ab" * 16):
        problem = secret_problem(value)
        assert problem and "backprop-grader rubric secret" in problem, value


def test_each_hidden_trial_gets_its_own_256_bit_seed_from_the_secret_task_and_index():
    secret = new_secret()
    seeds = {trial_entropy(secret, task, index) for task in ("backprop", "dropout") for index in range(50)}
    assert len(seeds) == 100 and max(seeds).bit_length() > 128
    assert trial_entropy(secret, "backprop", 0) == trial_entropy(secret.upper(), "backprop", 0)
    assert trial_entropy(new_secret(), "backprop", 0) != trial_entropy(secret, "backprop", 0)


@pytest.mark.parametrize(
    "command", [["grade", SAMPLE, "--rubric", "bs6207-a1"], ["solve", "--rubric", "bs6207-a1", "--hidden"]]
)
def test_an_integer_hidden_seed_option_exits_2_with_how_to_make_a_secret(cli, tmp_path, command):
    done = cli(
        *command,
        "--hidden-seed",
        "620701",
        "--out" if command[0] == "grade" else "--json",
        *([tmp_path / "out"] if command[0] == "grade" else []),
    )
    assert done.returncode == 2 and "--hidden-seed" in done.stderr and "backprop-grader rubric secret" in done.stderr


def test_solve_prints_the_hidden_trials_of_a_secret_given_on_the_command_line(cli):
    secret = new_secret()
    first = json.loads(cli("solve", "--rubric", "bs6207-a1", "--hidden", "--hidden-seed", secret, "--json").stdout)
    bundled = json.loads(cli("solve", "--rubric", "bs6207-a1", "--hidden", "--json").stdout)
    assert first["trial"] == bundled["trial"] == "hidden-0"
    assert first["tasks"]["backprop"]["inputs"]["x"] != bundled["tasks"]["backprop"]["inputs"]["x"]


def test_grade_warns_when_the_hidden_seed_is_a_bundled_one_and_not_with_the_instructors_own(cli, tmp_path):
    bundled = cli("grade", SAMPLE, "--rubric", "bs6207-a1", "--out", tmp_path / "bundled", "--jobs", "1")
    assert bundled.returncode == 0, bundled.stderr
    assert "warning: rubric bs6207-a1: its hidden seed is the one bundled with rubric bs6207-a1" in bundled.stderr
    assert "backprop-grader rubric secret" in bundled.stderr
    own = cli(
        "grade",
        SAMPLE,
        "--rubric",
        "bs6207-a1",
        "--out",
        tmp_path / "own",
        "--jobs",
        "1",
        "--hidden-seed",
        new_secret(),
    )
    assert own.returncode == 0, own.stderr
    assert "warning" not in own.stderr
    report = json.loads((tmp_path / "own" / "correct" / "report.json").read_text())
    assert report["trials"][-1] == "hidden-2" and report["score"] == load_rubric("bs6207-a1").max_points()
