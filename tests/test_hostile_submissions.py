"""DESIGN §11 at the level that matters: scores. Every hostile submission ends with a clear status and
zero for what could not be verified; none raises its own score, changes another's, leaves a process
behind or reads an expected value. After each one, a correct submission graded by the same sandbox keeps
its full score."""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO, hidden_traces

from grader.export.html import render_report_html
from grader.grade import grade_submission
from grader.gradescope.results import results_from_report
from grader.report import CheckStatus
from grader.rubric.checkspec import Visibility
from grader.rubric.files import load_rubric, rubric_hash
from grader.trials import make_trial

RUBRIC = "bs6207-a1"
CORRECT = (REPO / "submissions" / RUBRIC / "correct.py").read_text()
FAST = load_rubric(RUBRIC).limits.model_copy(update={"wall_seconds": 8, "cpu_seconds": 8, "memory_mb": 1536})
CONSTANT = "def scratch_gradients(x, y, params):\n    return {k: v * 0 for k, v in params.items()}\n"

HOSTILE = {
    "infinite_loop": ("while True:\n    pass\n", "timeout", "time"),
    "memory_bomb": ("blocks = []\nwhile True:\n    blocks.append(bytearray(10**8))\n", "memory_limit", "memory"),
    "fork_bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", None, ""),
    "exit_zero_at_import": ("import sys\nsys.exit(0)\n" + CORRECT, "exited", "exit"),
    "os_exit_3_at_import": ("import os\nos._exit(3)\n" + CORRECT, "exited", "3"),
    "exception_at_import": (
        "import numpy as np\nvalues = np.zeros(3)\nvalues[7] = 1\n" + CORRECT,
        "import_error",
        "IndexError",
    ),
    "syntax_error": ("def scratch_gradients(x, y, params)\n    return {}\n", "syntax_error", "line 1"),
    "misspelled_functions": (
        CORRECT.replace("def scratch_gradients", "def scratch_gradient").replace(
            "def torch_gradients", "def torch_gradiants"
        ),
        "ok",
        "",
    ),
    "wrong_return_types": (
        "def scratch_gradients(x, y, params):\n    return 'dW1'\n\ndef torch_gradients(x, y, params):\n    return None\n",
        "ok",
        "",
    ),
    "nan_and_inf": (
        "import numpy as np\ndef scratch_gradients(x, y, params):\n    return {k: np.full_like(v, np.nan) for k, v in params.items()} | {'loss': np.inf}\n",
        "ok",
        "",
    ),
    "wrong_shapes": (
        "import numpy as np\ndef scratch_gradients(x, y, params):\n    return {'d' + k: np.zeros(3) for k in params}\n",
        "ok",
        "",
    ),
    "huge_return": (
        "import numpy as np\ndef scratch_gradients(x, y, params):\n    return {'dW1': np.broadcast_to(np.float64(1), (10**9,))}\n",
        None,
        "",
    ),
    "object_array": (
        "import numpy as np\ndef scratch_gradients(x, y, params):\n    return {'dW1': np.array([object(), 1], dtype=object)}\n",
        "ok",
        "",
    ),
    "reads_the_reference_and_rubric": (
        "import os, sys\nroots = [REPO] + sys.path\n"
        "found = [r for r in roots if os.path.exists(os.path.join(r, 'reference', 'mlp_regression.py'))]\n"
        "rubric_visible = any(os.path.exists(os.path.join(r, 'rubrics', 'bs6207-a1.toml')) for r in roots)\n"
        "if found:\n    sys.path.insert(0, found[0])\n"
        "    from reference.mlp_regression import scratch as _s\n"
        "    def scratch_gradients(x, y, params):\n        return _s(x, y, params)\n".replace("REPO", repr(str(REPO))),
        "ok",
        "",
    ),
    "monkeypatches_numpy_and_harness": (
        "import numpy as np, builtins\nnp.allclose = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None\n"
        "np.array_equal = lambda *a, **k: True\nbuiltins.abs = lambda v: 0\nimport json\njson.dumps = lambda *a, **k: '{}'\n"
        + CONSTANT,
        None,
        "",
    ),
    "forges_observation_files": (
        "import json, numpy as np\nfor name in ('observations.json', 'results.json', 'report.json', 'out.json'):\n"
        "    open(name, 'w').write(json.dumps({'score': 15, 'status': 'ok', 'calls': {}}))\nnp.savez('results.npz', dW1=np.zeros(1))\n"
        + CONSTANT,
        "ok",
        "",
    ),
}


def grade(sandbox, path):
    rubric = load_rubric(RUBRIC)
    return grade_submission(rubric, rubric_hash(RUBRIC), path, sandbox, ("public",), FAST)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_submission_scores_zero_with_a_clear_status_and_a_correct_one_keeps_full_marks(
    grading_sandbox, tmp_path, case
):
    source, status, words = HOSTILE[case]
    path = tmp_path / f"{case}.py"
    path.write_text(source)
    report = grade(grading_sandbox, path)
    assert report.score == 0, [c.message for c in report.checks if c.points]
    if status is not None:
        assert report.run.status == status, (report.run.status, report.run.message)
    if words:
        assert words.lower() in report.run.message.lower(), report.run.message
    assert all(c.message for c in report.checks)
    assert "Traceback" not in report.run.message
    honest = tmp_path / "honest.py"
    honest.write_text(CORRECT)
    after = grade(grading_sandbox, honest)
    assert after.score == after.max_score, [c.message for c in after.checks if c.status != CheckStatus.passed]


def test_a_missing_function_is_named_with_a_did_you_mean(grading_sandbox, tmp_path):
    path = tmp_path / "typo.py"
    path.write_text(HOSTILE["misspelled_functions"][0])
    report = grade(grading_sandbox, path)
    message = next(c for c in report.checks if c.quantity == "scratch.dW1").message
    assert "scratch_gradients" in message and "scratch_gradient" in message and "did you mean" in message.lower()


@pytest.mark.parametrize("content, status", [(b"", "empty"), (b"x = '\xe9'\n", "not_utf8")])
def test_empty_and_non_utf8_files_score_zero_and_say_what_to_do(grading_sandbox, tmp_path, content, status):
    path = tmp_path / "bad.py"
    path.write_bytes(content)
    report = grade(grading_sandbox, path)
    assert report.status == status and report.score == 0 and report.run is None
    assert "hand" in report.message or "save" in report.message


def test_writes_outside_the_work_directory_land_nowhere_on_the_host(grading_sandbox, tmp_path):
    target = tmp_path / "escaped.txt"
    source = (
        f"for path in ['../escape.txt', {str(target)!r}, '/tmp/escape-{os.getpid()}.txt']:\n"
        "    try:\n        open(path, 'w').write('x')\n    except OSError:\n        pass\n" + CORRECT
    )
    path = tmp_path / "writer.py"
    path.write_text(source)
    report = grade(grading_sandbox, path)
    assert report.score == report.max_score  # writing is not cheating; it just goes nowhere
    assert not target.exists() and not (tmp_path.parent / "escape.txt").exists()
    assert not os.path.exists(f"/tmp/escape-{os.getpid()}.txt")


def test_a_background_process_cannot_outlive_the_run_or_rewrite_the_report(grading_sandbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    report_path = out / "report.json"
    report_path.write_text("graded")
    marker = f"outlive-{os.getpid()}"
    source = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        for _ in range(30):\n            time.sleep(0.1)\n            try:\n"
        f"                open({str(report_path)!r}, 'w').write('forged')\n            except OSError:\n                pass\n"
        f"        os.execvp('sleep', ['sleep', '30', {marker!r}])\n    os._exit(0)\n" + CONSTANT
    )
    path = tmp_path / "daemon.py"
    path.write_text(source)
    report = grade(grading_sandbox, path)
    time.sleep(3.5)
    assert report.score == 0 and report_path.read_text() == "graded"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert marker not in ps


# --- hidden trials (DESIGN §5 property 8) ----------------------------------------------------------

# Finds every array named as a hidden trial's that this process can reach: in the runner's frames and
# anywhere on the heap. It prints them at import and, from every graded call, raises with them.
LEAKER = """\
import gc, sys
import numpy as np


def hidden_inputs():
    spaces = [o for o in gc.get_objects() if isinstance(o, dict)]
    frame = sys._getframe()
    while frame is not None:
        spaces.append(frame.f_locals)
        spaces += [v for v in frame.f_locals.values() if isinstance(v, dict)]
        frame = frame.f_back
    found = {}
    for space in spaces:
        for key, value in list(space.items()):
            if isinstance(key, str) and ".hidden-" in key and isinstance(value, np.ndarray):
                found[key] = value.ravel().tolist()
    return found


print("at import:", hidden_inputs())


def scratch_gradients(x, y, params):
    seen = hidden_inputs()
    inputs = {name: value for name, value in seen.items() if name.endswith(".x")}
    raise ValueError(f"my x {x.ravel().tolist()}; leaked {len(seen)} hidden arrays: {inputs}")


torch_gradients = scratch_gradients
"""


def shown_before_the_due_date(report, rubric) -> list[str]:
    """Everything a student can read before the due date: report.html, and the top-level output and the
    visible tests of Gradescope's results.json."""
    results = results_from_report(report, rubric, 1.0)
    visible = [f"{t['name']}\n{t['output']}" for t in results["tests"] if t["visibility"] == Visibility.visible.value]
    return [render_report_html(report, rubric, "backprop-grader grade"), results["output"], *visible]


def test_a_public_call_that_reads_every_array_it_can_reach_cannot_show_a_hidden_input(grading_sandbox, tmp_path):
    """Issue 16 item 3: with all trials in one job a public call read the hidden inputs and put them in
    its exception text, which students see."""
    rubric = load_rubric(RUBRIC)
    path = tmp_path / "leaker.py"
    path.write_text(LEAKER)
    report = grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox, ("public", "hidden"), FAST)
    public = [t.message for c in report.checks for t in c.trials if t.trial.startswith("public")]
    hidden = [t.message for c in report.checks for t in c.trials if t.trial.startswith("hidden")]
    assert any("leaked " in m for m in public) and report.run.status == "ok", public  # the attack ran in the public job
    texts = [
        *shown_before_the_due_date(report, rubric),
        *public,
        report.run.message,
        report.run.stdout,
        report.run.stderr,
    ]
    leaked = [trace for trace in hidden_traces(rubric) if any(trace in text for text in texts)]
    assert leaked == []
    own = [repr(v) for v in make_trial(rubric, rubric.tasks[0], "hidden", 0).x.ravel().tolist()]
    assert any(all(v in m for v in own) for m in hidden), hidden  # a hidden input in a text would be seen
    assert report.score == 0


def test_a_submission_that_stops_only_on_hidden_trials_keeps_its_public_marks_and_shows_nothing_of_it(
    grading_sandbox, tmp_path
):
    """The hidden job's output, status and message are instructors' until the due date: a flag, not the run."""
    rubric = load_rubric(RUBRIC)
    public_x = [make_trial(rubric, rubric.tasks[0], "public", i).x.tolist() for i in range(rubric.trials.public)]
    detector = f"import os\nPUBLIC_X = {public_x!r}\n" + CORRECT.replace(
        "def scratch_gradients(x, y, params):\n",
        "def scratch_gradients(x, y, params):\n    if x.tolist() not in PUBLIC_X:  # inputs `solve` did not show\n"
        "        print('hidden inputs:', x.tolist(), flush=True)\n        os._exit(3)\n",
    )
    path = tmp_path / "detector.py"
    path.write_text(detector)
    report = grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox, ("public", "hidden"), FAST)
    assert report.run.status == "ok" and report.message == "" and "hidden inputs" not in report.run.stdout
    assert all(c.group_points["public"] == c.group_max_points["public"] > 0 for c in report.checks)
    assert all(c.group_points["hidden"] == 0 for c in report.checks)
    assert any("hidden trials" in flag and "exited" in flag for flag in report.flags), report.flags
    texts = shown_before_the_due_date(report, rubric)
    assert not [trace for trace in hidden_traces(rubric) if any(trace in text for text in texts)]
    assert not any("os._exit" in text or "exit code 3" in text or "exited" in text for text in texts)


# --- what a student returns or writes never makes the grader fail (DESIGN §5 property 9, issue 16 items 5-6)


def returning(extra: str) -> str:
    """The correct submission whose scratch_gradients also does `extra` to its dict `out` before returning it."""
    return CORRECT + (
        "\n_correct_scratch = scratch_gradients\n\n\ndef scratch_gradients(x, y, params):\n"
        "    out = dict(_correct_scratch(x, y, params))\n" + extra + "    return out\n"
    )


def test_a_list_of_strings_as_a_gradient_fails_that_check_with_what_was_expected(grading_sandbox, tmp_path, cli):
    """Issue 16 item 6: `check` exited with a traceback, `grade` recorded grader_error."""
    path = tmp_path / "strings.py"
    path.write_text(returning("    out['dW1'] = ['0.1'] * 10\n"))
    report = grade(grading_sandbox, path)
    wrong = [c for c in report.checks if c.status != CheckStatus.passed]
    assert [c.quantity for c in wrong] == ["scratch.dW1"] and wrong[0].status == CheckStatus.missing
    assert (
        wrong[0].trials[0].message == "dW1: expected an array of numbers of shape (10, 2), found a list of 10 strings"
    )
    done = cli("check", path, "--rubric", RUBRIC, "--out", tmp_path / "out")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "dW1: expected an array of numbers of shape (10, 2)" in done.stdout


FORGE_DEEP_FRAME = (
    "import os, struct\npayload = ('[' * 100_000 + ']' * 100_000).encode()\n"
    "os.write(3, struct.pack('>Q', len(payload)) + payload)\n"
)


def test_a_result_frame_nested_a_hundred_thousand_deep_is_an_invalid_result_not_a_grader_error(
    grading_sandbox, tmp_path
):
    """json.loads raised RecursionError on it, recorded as sandbox_error (the grader's fault)."""
    path = tmp_path / "deep_frame.py"
    path.write_text(FORGE_DEEP_FRAME + CORRECT)
    report = grade(grading_sandbox, path)
    assert report.run.status == "result_invalid" and report.score == 0
    assert "nested too deep" in report.run.detail
    notebook = json.loads((REPO / "submissions" / "bs6207-a1-notebooks" / "correct.ipynb").read_text())
    notebook["cells"].insert(
        0, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": FORGE_DEEP_FRAME}
    )
    path = tmp_path / "deep_frame.ipynb"
    path.write_text(json.dumps(notebook))
    rubric = load_rubric("bs6207-a1-notebook")
    report = grade_submission(rubric, rubric_hash(rubric.id), path, grading_sandbox, ("public",), FAST)
    assert report.run.status == "result_invalid" and report.score == 0
    assert "nested too deep" in report.run.detail


MEMORY_PROBE = """\
import json, resource, sys
from pathlib import Path
from grader.grade import grade_submission
from grader.limits import Limits
from grader.rubric.files import load_rubric, rubric_hash
from grader.sandbox import Sandbox

rubric = load_rubric("bs6207-a1")
limits = Limits(**json.loads(sys.argv[3]))
with Sandbox(jobs=1) as sandbox:
    grade = lambda path: grade_submission(rubric, rubric_hash("bs6207-a1"), Path(path), sandbox, ("public", "hidden"), limits)
    grade(sys.argv[1])  # imports, trials and the answer key made once, as in a batch
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = grade(sys.argv[2])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before, "score": report.score, "max": report.max_score, "status": report.status}))
"""


def test_extra_keys_of_ten_thousand_strings_cost_the_grader_no_memory_to_speak_of(tmp_path):
    """Issue 16 item 5: 240 extra keys of 10,000 short strings from every call made the grader take 1 GB per
    student (and a result over 16 MiB, so 0 points). The child now sends back the contract's quantities only,
    and at most 64 Ki characters of texts a call. Peak RSS of the grading process (the sandbox's workers are
    processes of their own), measured around that one student."""
    extra = "    for k in range(240):\n        out[f'extra{k}'] = [str(i) for i in range(10_000)]\n"
    hostile = tmp_path / "extra_keys.py"
    hostile.write_text(returning(extra) + "\n\ntorch_gradients = scratch_gradients\n")
    honest = tmp_path / "honest.py"
    honest.write_text(CORRECT)
    limits = FAST.model_copy(update={"wall_seconds": 30, "cpu_seconds": 30})
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(honest), str(hostile), limits.model_dump_json()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.splitlines()[-1])
    assert measured["status"] == "graded" and measured["score"] == measured["max"], measured  # not a grader error
    assert measured["growth_kb"] < 50 * 1024, measured


def test_code_nested_too_deep_for_the_parser_scores_zero_and_never_makes_the_grader_fail(grading_sandbox, tmp_path):
    """`x = ------…1` (a million signs): ast.parse raised MemoryError in the grader's scan of scratch code, and
    compile in the child (result_invalid: 'output that is damaged or larger than 256 MiB')."""
    path = tmp_path / "deep_code.py"
    path.write_text("x = " + "-" * 1_000_000 + "1\n" + CORRECT)
    report = grade(grading_sandbox, path)
    assert report.status == "graded" and report.score == 0 and report.run.status == "syntax_error"
    assert "nested too deeply for Python's parser" in report.run.message and "Traceback" not in report.run.message
