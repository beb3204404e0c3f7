"""The command line, run as students and instructors run it: real subprocesses."""

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import BUNDLED_RUBRICS, CONTRACT_RUBRICS, REPO

from grader.cli.main import main
from grader.rubric.files import load_rubric
from grader.trials import make_trial
from reference import twins


def test_rubric_list_names_every_bundled_rubric(cli):
    result = cli("rubric", "list", "--ids")
    assert result.returncode == 0
    assert result.stdout.split() == BUNDLED_RUBRICS


def test_block_buffered_output_is_complete_although_the_cli_skips_the_interpreter_teardown():
    """The CLI ends with os._exit after flushing: with stdout a pipe and no PYTHONUNBUFFERED (it is set on
    these machines), nothing printed may be lost, and the exit code is the command's."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for argv in (["rubric", "list", "--ids"], ["rubric", "validate", "no-such-rubric.toml"]):
        done = subprocess.run(
            [sys.executable, "-m", "grader", *argv], capture_output=True, text=True, env=env, timeout=120
        )
        expected = main_in_process(argv)
        assert (done.returncode, done.stdout, done.stderr) == expected


def test_a_reader_that_stops_reading_ends_the_command_quietly():
    """`backprop-grader rubric list | head -0`: no BrokenPipeError traceback, exit code 1."""
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "rubric", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # before the command prints anything (its imports take longer)
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert stderr == ""


def main_in_process(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_rubric_show_lists_checks_points_and_hides_the_hidden_seed(cli):
    result = cli("rubric", "show", "bs6207-a1")
    assert result.returncode == 0
    assert "scratch.dW1" in result.stdout and "total: 15 points" in result.stdout
    assert "620701" not in result.stdout  # the hidden seed is never printed


def test_rubric_validate_fails_with_the_file_and_field(cli, tmp_path, rubric_source):
    bad = tmp_path / "bad.toml"
    bad.write_text(rubric_source("bs6207-a1").replace("layers = [2, 10, 10, 1]", "layers = [2, 10, 0, 1]"))
    result = cli("rubric", "validate", "bs6207-a1", str(bad))
    assert result.returncode == 1
    assert "ok " in result.stdout and str(bad) in result.stderr and "tasks[0].layers[2]" in result.stderr


def test_rubric_schema_is_json_schema_that_forbids_unknown_keys(cli):
    schema = json.loads(cli("rubric", "schema").stdout)
    assert schema["additionalProperties"] is False and "tasks" in schema["properties"]


def test_the_rubric_schema_has_one_command_and_schema_names_only_the_report(cli):
    """`rubric schema` prints the rubric files' schema; the duplicate `schema rubric` is gone."""
    assert cli("schema", "rubric").returncode == 2
    assert json.loads(cli("schema", "report").stdout)["title"] == "GradeReport"


def test_solve_softmax_dropout_prints_probs_loss_and_gradients_equal_to_autograd(cli):
    result = cli("solve", "--rubric", "softmax-dropout", "--json")
    assert result.returncode == 0, result.stderr
    key = json.loads(result.stdout)["tasks"]["classifier"]
    rubric = load_rubric("softmax-dropout")
    trial = make_trial(rubric, rubric.task("classifier"), "public", 0)
    assert key["given_instance"] and key["inputs"]["x"] == [[1, 2, 3], [4, 5, 6]]
    autograd = twins.softmax_classifier(trial.x, trial.y, trial.params, "sum")
    for name in ("probs", "loss", "dW1", "dW2"):
        np.testing.assert_allclose(np.array(key["expected"][name]), autograd[name], rtol=1e-12, atol=1e-14)


def test_solve_text_names_every_quantity(cli):
    result = cli("solve", "--rubric", "softmax-dropout")
    assert result.returncode == 0, result.stderr
    for name in ("probs", "loss", "dW1", "dW2", "W1", "masks"):
        assert name in result.stdout


@pytest.mark.parametrize("rubric_id", CONTRACT_RUBRICS)
def test_solve_works_for_every_bundled_rubric_and_hidden_trials(cli, rubric_id):
    assert cli("solve", "--rubric", rubric_id, "--trial", "1").returncode == 0
    assert cli("solve", "--rubric", rubric_id, "--hidden", "--trial", "2", "--json").returncode == 0


def test_solve_with_a_trial_out_of_range_says_how_many_there_are(cli):
    result = cli("solve", "--rubric", "bs6207-a1", "--trial", "7")
    assert result.returncode == 2 and "2 public trial(s), numbered 0 to 1" in result.stderr


def test_an_unknown_rubric_exits_2_with_the_bundled_ids(cli):
    result = cli("solve", "--rubric", "nope")
    assert result.returncode == 2 and "bs6207-a1" in result.stderr and "Traceback" not in result.stderr


def test_handout_refuses_to_overwrite_a_file(cli, tmp_path):
    target = tmp_path / "mine.py"
    target.write_text("my work")
    result = cli("handout", "--rubric", "bs6207-a1", "-o", str(target))
    assert result.returncode == 2 and "--force" in result.stderr
    assert target.read_text() == "my work"


def test_python_dash_m_grader_and_the_console_script_agree(cli):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = shutil.which("backprop-grader") or str(Path(sys.executable).parent / "backprop-grader")
    by_script = subprocess.run([script, "rubric", "list", "--ids"], capture_output=True, text=True)
    assert by_script.returncode == 0 and by_script.stdout == cli("rubric", "list", "--ids").stdout


def test_check_on_a_failure_of_the_grader_itself_writes_a_report_saying_so_and_exits_1(tmp_path):
    """The session reports its own failure as it reports a student's (status grader_error): check writes the
    report and the table, and the traceback goes to stderr, never into the report's student-facing text."""
    script = (
        "import sys, grader.grader as session\n"
        "def broken(*args, **kwargs):\n    raise RuntimeError('simulated internal error')\n"
        "session.grade_loaded = broken\n"
        "from grader.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    source = REPO / "submissions" / "bs6207-a1" / "correct.py"
    done = subprocess.run(
        [sys.executable, "-c", script, "check", str(source), "--rubric", "bs6207-a1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "simulated internal error" in done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "grader_error" and report["score"] == 0
    assert "simulated internal error" not in report["message"] + "".join(c["message"] for c in report["checks"])
