"""`gradescope run` in a simulated container: a temporary directory laid out as /autograder, the command
run as a real subprocess, results.json validated against Gradescope's specification in every case."""

import io
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from conftest import REPO

from grader.gradescope.autograde import run_gradescope
from grader.gradescope.results import GRADER_FAILED, INSTRUCTOR_TEST
from grader.gradescope.submission import find_submission
from grader.rubric.files import load_rubric
from grader.rubric.model import SubmissionSpec
from grader.sandbox import isolation

SAMPLES = REPO / "submissions" / "bs6207-a1"
A1_POINTS = load_rubric("bs6207-a1").max_points()
ROOT_USER = os.geteuid() == 0


def student_text(results: dict) -> str:
    """Everything a student can ever see: top-level output and every test that is not hidden."""
    return "\n".join(
        [results["output"]] + [f"{t['name']}\n{t['output']}" for t in results["tests"] if t["visibility"] != "hidden"]
    )


def assert_consistent(results: dict, max_points: float = A1_POINTS) -> None:
    graded = [t for t in results["tests"] if t["name"] != INSTRUCTOR_TEST]
    assert sum(t["max_score"] for t in graded) == pytest.approx(max_points)
    assert sum(t["score"] for t in graded) == pytest.approx(results["score"])
    assert "Traceback" not in student_text(results)


# --- full, partial and zero scores ---------------------------------------------------------------


@pytest.mark.parametrize("sample", ["correct.py", "correct.ipynb"])
def test_a_correct_submission_scores_full_marks_with_hidden_trials_after_the_due_date(
    gradescope_container, gradescope_run, gradescope_schema, sample
):
    root = gradescope_container({sample: SAMPLES / sample})
    done, results = gradescope_run(root)
    assert done.returncode == 0, done.stderr
    gradescope_schema(results)
    assert_consistent(results)
    assert results["score"] == A1_POINTS
    assert all(t["status"] == "passed" for t in results["tests"])
    public = [t for t in results["tests"] if t["name"].endswith("(public trials)")]
    hidden = [t for t in results["tests"] if t["name"].endswith("(hidden trials)")]
    assert len(public) == len(hidden) == 17 and len(results["tests"]) == 34
    assert {t["visibility"] for t in public} == {"visible"} and {t["visibility"] for t in hidden} == {"after_due_date"}
    assert results["stdout_visibility"] == "hidden" and f"Graded file: {sample}" in results["output"]
    if ROOT_USER:  # the directories student code must not reach are private to root
        for name in ("source", "results", "submission"):
            assert stat.S_IMODE((root / name).stat().st_mode) == 0o700


def test_a_mistaken_submission_gets_partial_credit_and_the_mistake_named(
    gradescope_container, gradescope_run, gradescope_schema
):
    root = gradescope_container({"a1.py": SAMPLES / "missing_factor_2.py"})
    done, results = gradescope_run(root)
    assert done.returncode == 0, done.stderr
    gradescope_schema(results)
    assert_consistent(results)
    assert 0 < results["score"] < A1_POINTS
    dW1 = next(t for t in results["tests"] if t["name"] == "scratch.dW1 (public trials)")
    assert dW1["status"] == "failed" and dW1["score"] == 0 and dW1["visibility"] == "visible"
    assert "Likely mistake: missing factor 2" in dW1["output"] and "Hint:" in dW1["output"]
    assert "expected" in dW1["output"] and "found" in dW1["output"]
    torch_dW1 = next(t for t in results["tests"] if t["name"] == "torch.dW1 (hidden trials)")
    assert torch_dW1["status"] == "passed" and torch_dW1["score"] == torch_dW1["max_score"] > 0


def test_a_crashing_submission_scores_0_with_the_error_but_no_traceback(
    gradescope_container, gradescope_run, gradescope_schema
):
    source = "import numpy as np\n\nweights = np.zeros(3)\nraise ValueError('boom at import')\n"
    root = gradescope_container({"a1.py": source})
    done, results = gradescope_run(root)
    assert done.returncode == 0, done.stderr
    gradescope_schema(results)
    assert_consistent(results)
    assert results["score"] == 0
    assert "ValueError: boom at import" in results["output"] and "line 4" in results["output"]
    assert "Traceback" in done.stdout  # the student's own traceback goes to instructors (stdout) only


def test_a_submission_that_never_finishes_is_stopped_at_the_time_limit(
    gradescope_container, gradescope_run, gradescope_schema
):
    root = gradescope_container({"a1.py": "while True:\n    pass\n"})
    started = time.monotonic()
    done, results = gradescope_run(root, "--timeout", "2")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    gradescope_schema(results)
    assert_consistent(results)
    assert results["score"] == 0 and "2 s time limit" in results["output"]


# --- nothing gradable handed in -------------------------------------------------------------------


def test_a_timeout_beyond_the_limits_bounds_is_a_usage_error_as_in_check_and_grade(
    gradescope_container, gradescope_run
):
    """`--timeout 7200` was applied with model_copy, which does not validate: the run got two hours although
    a rubric's limits (and `grade --timeout`) allow at most 3600 s."""
    root = gradescope_container({"a1.py": SAMPLES / "correct.py"})
    done, results = gradescope_run(root, "--timeout", "7200")
    assert done.returncode == 2 and results is None
    assert "--timeout 7200: expected seconds in (0, 3600]" in done.stderr


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"a1.py": ""}, "the file is empty"),
        ({}, "No files were submitted"),
        ({"a1.txt": "def scratch_gradients(x, y, params): ..."}, "expected a .py file or a .ipynb notebook"),
        (
            {"a1.pdf": b"%PDF-1.4", "notes.docx": b"PK"},
            "Expected a .py file or a .ipynb notebook; found a1.pdf, notes.docx",
        ),
        ({"a1.py": SAMPLES / "correct.py", "copy/a1.py": SAMPLES / "correct.py"}, "could not tell which one to grade"),
    ],
)
def test_an_ungradable_hand_in_scores_0_with_a_message_saying_what_to_upload(
    gradescope_container, gradescope_run, gradescope_schema, files, expected
):
    root = gradescope_container(files)
    done, results = gradescope_run(root)
    assert done.returncode == 0, done.stderr
    gradescope_schema(results)
    assert_consistent(results)  # every check is still listed, so Gradescope's total is unchanged
    assert results["score"] == 0 and expected in results["output"]
    assert all(t["status"] == "failed" for t in results["tests"])


def test_of_several_files_the_one_defining_the_contract_functions_is_graded(
    gradescope_container, gradescope_run, gradescope_schema
):
    helper = "import numpy as np\n\ndef sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n"
    root = gradescope_container({"helpers.py": helper, "work/a1.py": SAMPLES / "correct.py", "README.md": "my notes"})
    done, results = gradescope_run(root)
    assert done.returncode == 0, done.stderr
    gradescope_schema(results)
    assert results["score"] == A1_POINTS
    assert "Graded file: work/a1.py" in results["output"] and "helpers.py" in results["output"]


# --- the grader fails ----------------------------------------------------------------------------


def assert_grader_failure(done, results, gradescope_schema, cause: str) -> None:
    assert done.returncode == 1
    gradescope_schema(results)
    assert results["score"] == 0 and results["output"] == GRADER_FAILED
    assert "Traceback" not in student_text(results) and cause not in student_text(results)
    instructor = [t for t in results["tests"] if t["visibility"] == "hidden"]
    assert [t["name"] for t in instructor] == [INSTRUCTOR_TEST] and cause in instructor[0]["output"]
    assert cause in done.stdout


def test_a_corrupt_rubric_is_a_grader_failure_reported_to_instructors_only(
    gradescope_container, gradescope_run, gradescope_schema
):
    root = gradescope_container({"a1.py": SAMPLES / "correct.py"})
    (root / "source" / "rubric.toml").write_text("id = 'bs6207-a1'\nseed = [unclosed\n")
    done, results = gradescope_run(root)
    assert_grader_failure(done, results, gradescope_schema, "not valid TOML")


def test_a_missing_rubric_is_a_grader_failure_reported_to_instructors_only(
    gradescope_container, gradescope_run, gradescope_schema
):
    root = gradescope_container({"a1.py": SAMPLES / "correct.py"})
    (root / "source" / "rubric.toml").unlink()
    done, results = gradescope_run(root)
    assert_grader_failure(done, results, gradescope_schema, "RubricNotFound")


def test_an_internal_error_of_the_grader_still_writes_results(gradescope_container, gradescope_schema):
    root = gradescope_container({"a1.py": SAMPLES / "correct.py"})
    script = (
        "import sys, grader.grader as session\n"
        "def broken(*args, **kwargs):\n    raise RuntimeError('simulated internal error')\n"
        "session.grade_loaded = broken\n"
        "from grader.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "gradescope", "run", "--rubric", "bs6207-a1", "--root", str(root)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )
    results = json.loads((root / "results" / "results.json").read_text())
    assert_grader_failure(done, results, gradescope_schema, "simulated internal error")


# --- hostile submissions -------------------------------------------------------------------------

HOSTILE = """\
import json, os, time
ROOT = {root!r}
FORGED = json.dumps({{"score": 1000, "output": "FORGED", "tests": []}})


def attempt(tag, action):
    try:
        action()
        print(tag, "ok")
    except Exception as error:
        print(tag, type(error).__name__)


def forge():
    with open(os.path.join(ROOT, "results", "results.json"), "w") as handle:
        handle.write(FORGED)


attempt("read-marker", lambda: open(os.path.join(ROOT, "marker.txt")).read())
attempt("read-source", lambda: print(open(os.path.join(ROOT, "source", "rubric.toml")).read()))
attempt("list-submission", lambda: print(os.listdir(os.path.join(ROOT, "submission"))))
attempt("write-results", forge)
attempt("chmod-results", lambda: os.chmod(os.path.join(ROOT, "results"), 0o777))
if os.fork() == 0:  # a daemon that keeps trying to rewrite results.json after the run
    os.setsid()
    if os.fork() == 0:
        for _ in range(400):
            time.sleep(0.05)
            try:
                forge()
            except Exception:
                pass
    os._exit(0)
"""


@pytest.mark.parametrize("mode", ["auto", "fallback"])
def test_a_hostile_submission_cannot_read_the_rubric_or_rewrite_results(
    gradescope_container, gradescope_run, gradescope_schema, mode
):
    root = gradescope_container({})
    (root / "marker.txt").write_text("world-readable")
    (root / "submission" / "a1.py").write_text(HOSTILE.format(root=str(root)) + (SAMPLES / "correct.py").read_text())
    env = {"BACKPROP_GRADER_SANDBOX": "fallback"} if mode == "fallback" else {}
    done, _ = gradescope_run(root, env=env)
    assert done.returncode == 0, done.stderr
    time.sleep(1.5)  # a surviving daemon would have rewritten results.json many times by now
    results = gradescope_schema(json.loads((root / "results" / "results.json").read_text()))
    assert results["score"] == A1_POINTS and "FORGED" not in json.dumps(results)
    assert sorted(p.name for p in (root / "results").iterdir()) == ["results.json"]
    for tag in ("read-source", "list-submission", "write-results", "chmod-results"):
        assert f"{tag} " in done.stdout and f"{tag} ok" not in done.stdout  # tried (student stdout is logged), denied
    assert "hidden_seed" not in done.stdout
    if mode == "fallback" and ROOT_USER:
        assert "protections off: bubblewrap" in done.stdout
        assert "read-marker ok" in done.stdout  # the student's uid reaches <root>: only the 0700 directories stop it
        assert stat.S_IMODE((root / "results").stat().st_mode) == 0o700


# --- which file is graded (in-process) ------------------------------------------------------------


def test_symbolic_links_are_never_followed(tmp_path):
    (tmp_path / "a1.py").symlink_to(REPO / "rubrics" / "bs6207-a1.toml")
    upload = find_submission(tmp_path, load_rubric("bs6207-a1"))
    assert upload.path is None and upload.problem[0] == "empty"
    assert any("symbolic link" in note for note in upload.notes)


def test_a_notebook_rubric_grades_the_only_notebook(tmp_path):
    rubric = load_rubric("bs6207-a1").model_copy(update={"submission": SubmissionSpec(kind="notebook")})
    (tmp_path / "scratch.py").write_text("x = 1\n")
    (tmp_path / "a1.ipynb").write_text("{}")
    (tmp_path / "torch_autograd.dat").write_text("dW1: ...")
    upload = find_submission(tmp_path, rubric)
    assert upload.path == tmp_path / "a1.ipynb" and upload.problem is None
    assert upload.data_files == (tmp_path / "torch_autograd.dat",)  # placed beside the notebook when it runs
    assert any(
        "not read by the grader" in note and "scratch.py" in note and ".dat" not in note for note in upload.notes
    )
    (tmp_path / "b.ipynb").write_text("{}")
    assert find_submission(tmp_path, rubric).problem[0] == "ambiguous"


def test_a_file_defining_more_contract_functions_wins(tmp_path):
    (tmp_path / "part.py").write_text("def scratch_gradients(x, y, params):\n    pass\n")
    (tmp_path / "full.py").write_text((SAMPLES / "correct.py").read_text())
    (tmp_path / ".hidden.py").write_text((SAMPLES / "correct.py").read_text())
    upload = find_submission(tmp_path, load_rubric("bs6207-a1"))
    assert upload.path == tmp_path / "full.py"


def test_a_notebook_uploaded_with_its_dat_files_is_graded_from_those_files(
    gradescope_container, gradescope_run, gradescope_schema, grading_sandbox
):
    """As in a class folder: the files beside the notebook are placed beside it when it runs."""
    from grader.load import load_submission
    from grader.notebook.grade import run_notebook

    notebooks = REPO / "submissions" / "bs6207-a1-notebooks"
    rubric = load_rubric("bs6207-a1-notebook")
    handed_in = run_notebook(
        rubric, load_submission(notebooks / "correct.ipynb"), grading_sandbox, rubric.limits, {}
    ).files
    notebook = json.loads((notebooks / "correct.ipynb").read_text())
    notebook["cells"] = [c for c in notebook["cells"] if ".dat" not in "".join(c["source"])]  # writes no .dat
    files = {
        "a1.ipynb": json.dumps(notebook),
        **{name: handed_in[name] for name in ("torch_autograd.dat", "my_autograd.dat")},
    }
    root = gradescope_container(files, rubric="bs6207-a1-notebook")
    done, results = gradescope_run(root)
    assert done.returncode == 0, done.stderr
    gradescope_schema(results)
    assert_consistent(results, rubric.max_points())
    assert results["score"] == rubric.max_points()
    assert "was not written" not in student_text(results) and "not read by the grader" not in results["output"]


# --- the sandbox in LMS containers ---------------------------------------------------------------

REFUSED = "PermissionError: [Errno 1] unshare(user): Operation not permitted"  # as a refusing container says it
NEEDS_BWRAP = pytest.mark.skipif(
    isolation.bwrap_problem(not ROOT_USER) is not None,
    reason="bubblewrap cannot run here, so there is nothing to fall back from",
)


@NEEDS_BWRAP
@pytest.mark.parametrize("fault", ["userns-jobs", "userns"])
@pytest.mark.parametrize("sample", ["correct.py", "missing_factor_2.py"])
def test_where_user_namespaces_are_refused_every_submission_is_graded_in_the_fallback_with_the_reason_logged(
    gradescope_container, gradescope_run, gradescope_schema, fault, sample
):
    """Issue 15: root may make mount namespaces but not user namespaces. `userns-jobs`: bubblewrap's start-up
    check and the workers' probe pass, and each job's unshare(user) fails; `userns`: the probe sees it."""
    root = gradescope_container({"a1.py": SAMPLES / sample})
    done, results = gradescope_run(root, env={isolation.ENV_FAULT: fault})
    assert done.returncode == 0, done.stdout + done.stderr
    gradescope_schema(results)
    assert_consistent(results)
    if sample == "correct.py":
        assert results["score"] == A1_POINTS
    else:
        assert 0 < results["score"] < A1_POINTS
        dW1 = next(t for t in results["tests"] if t["name"] == "scratch.dW1 (public trials)")
        assert "Likely mistake: missing factor 2" in dW1["output"]
    assert REFUSED in done.stdout and "falling back" in done.stdout  # the exact reason, in the staff log
    assert "sandbox mode: fallback" in done.stdout and "protections off: bubblewrap" in done.stdout
    assert REFUSED not in student_text(results) and "not your fault" not in results["output"]


@NEEDS_BWRAP
def test_a_sandbox_failure_says_one_thing_in_the_summary_and_in_every_test(
    gradescope_container, gradescope_run, gradescope_schema
):
    """Bubblewrap forced (no fallback allowed) in a container refusing each job's user namespace: nothing is
    graded, and the student reads the same sentence in the summary and in every test."""
    root = gradescope_container({"a1.py": SAMPLES / "correct.py"})
    done, results = gradescope_run(root, env={isolation.ENV_MODE: "bwrap", isolation.ENV_FAULT: "userns-jobs"})
    assert done.returncode == 1
    gradescope_schema(results)
    assert_consistent(results)
    assert results["score"] == 0 and results["output"].endswith(GRADER_FAILED)
    graded = [t for t in results["tests"] if t["name"] != INSTRUCTOR_TEST]
    assert graded and all(t["output"].endswith(f"not checked — {GRADER_FAILED}") for t in graded)
    assert "did not load" not in student_text(results) and "nothing was graded" not in student_text(results)
    [instructor] = [t for t in results["tests"] if t["name"] == INSTRUCTOR_TEST]
    assert instructor["visibility"] == "hidden" and REFUSED in instructor["output"]
    assert REFUSED in done.stdout and "SANDBOX FAILURE" in done.stdout


def test_a_worker_that_never_answers_is_logged_with_memory_as_the_likely_cause(
    gradescope_container, gradescope_schema, monkeypatch
):
    """What a 256 MB container gives (torch pages in and out for minutes): here the worker is given no time."""
    from grader.sandbox import process

    root = gradescope_container({"a1.py": SAMPLES / "correct.py"})
    monkeypatch.setattr(process, "START_TIMEOUT", 0.0)
    log = io.StringIO()
    code = run_gradescope(str(root / "source" / "rubric.toml"), root, out=log)
    results = gradescope_schema(json.loads((root / "results" / "results.json").read_text()))
    assert code == 1 and results["score"] == 0 and results["output"] == GRADER_FAILED
    staff = log.getvalue()
    assert "no answer from the worker in time" in staff and "too little memory" in staff and "512 MB" in staff
    assert "memory: " in staff  # the container's limit, read at the start of every run
