"""grader/run.py: the public and hidden trials of a submission run in one child, in two phases (DESIGN §5
property 8, issue 16 item 3). Nothing the child does once a hidden input was sent to it reaches what the
student sees before the due date: not a hidden call's output, and not a hook a public call left behind to
catch the hidden inputs later (a patched numpy, a thread, the runner itself replaced) and print them,
write them to stderr or raise them."""

import pytest
from conftest import REPO, hidden_traces

from grader.export.html import render_report_html
from grader.grade import grade_submission
from grader.gradescope.results import results_from_report
from grader.load import load_submission
from grader.rubric.checkspec import Visibility
from grader.rubric.files import load_rubric, rubric_hash
from grader.run import run_trials
from grader.sandbox import RunStatus
from grader.trials import make_trial

RUBRIC = "bs6207-a1"
CORRECT = (REPO / "submissions" / RUBRIC / "correct.py").read_text()
FAST = load_rubric(RUBRIC).limits.model_copy(update={"wall_seconds": 8, "cpu_seconds": 8, "memory_mb": 1536})

# Each is appended to the correct submission: the first public call installs the hook, then every call
# behaves correctly. What the hook catches is printed as float lists, so a hidden x shows as its reprs.
INSTALL = """
_correct_scratch, _hooked = scratch_gradients, []


def scratch_gradients(x, y, params):
    if not _hooked:
        _hooked.append(True)
        install()
    return _correct_scratch(x, y, params)
"""

HOOKS = {
    "numpy_patched": """
import os, sys
import numpy


def install():
    original = numpy.frombuffer

    def frombuffer(*args, **kwargs):  # the runner decodes each request's arrays with it
        array = original(*args, **kwargs)
        text = f"caught {array.ravel().tolist()}\\n"
        print(text, flush=True)
        sys.stderr.write(text)
        os.write(1, text.encode())
        return array

    numpy.frombuffer = frombuffer
""",
    "thread": """
import sys, threading, time


def install():
    def watch():  # reads the main thread's frames: the request being answered, its arrays
        seen = set()
        while True:
            frame = sys._current_frames().get(threading.main_thread().ident)
            while frame is not None:
                arrays = frame.f_locals.get("arrays")
                if isinstance(arrays, dict):
                    for name, value in list(arrays.items()):
                        if name not in seen and hasattr(value, "ravel"):
                            seen.add(name)
                            text = f"caught {name} {value.ravel().tolist()}"
                            print(text, flush=True)
                            print(text, file=sys.stderr, flush=True)
                            if ".hidden-" in name:
                                raise RuntimeError(text)  # the thread's traceback goes to stderr
                frame = frame.f_back
            time.sleep(0.001)

    threading.Thread(target=watch, daemon=True).start()


_before_thread = scratch_gradients


def scratch_gradients(x, y, params):
    time.sleep(0.05)  # time for the thread to look
    return _before_thread(x, y, params)
""",
    "runner_replaced": """
import atexit, sys


def install():
    serve = sys.modules["bpg_serve"]
    original = serve.run_call

    def run_call(call, namespace, arrays, converter, student_files):
        text = f"caught {call['id']} {[a.ravel().tolist() for a in arrays.values()]}"
        print(text, flush=True)
        atexit.register(print, text)
        if "hidden-" in call["id"]:
            raise RuntimeError(text)  # the runner cannot answer: its message goes to stderr
        return original(call, namespace, arrays, converter, student_files)

    serve.run_call = run_call
""",
}


def hooked(name: str) -> str:
    """The correct submission whose first public call installs the hook `name`."""
    return CORRECT + HOOKS[name] + INSTALL


def shown_before_the_due_date(report, rubric) -> list[str]:
    """Everything a student can read before the due date: report.html, the report's run, and the top-level
    output and the visible tests of Gradescope's results.json."""
    results = results_from_report(report, rubric, 1.0)
    visible = [f"{t['name']}\n{t['output']}" for t in results["tests"] if t["visibility"] == Visibility.visible.value]
    run = [report.run.message, report.run.stdout, report.run.stderr, report.message]
    return [render_report_html(report, rubric, "backprop-grader grade"), results["output"], *visible, *run]


def leaked(texts: list[str], rubric) -> list[str]:
    return [trace for trace in hidden_traces(rubric) if any(trace in text for text in texts)]


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_a_hook_a_public_call_leaves_behind_catches_hidden_inputs_only_where_the_student_cannot_see_them(
    grading_sandbox, tmp_path, hook
):
    rubric = load_rubric(RUBRIC)
    path = tmp_path / f"{hook}.py"
    path.write_text(hooked(hook))
    ran = run_trials(grading_sandbox, rubric, load_submission(path), ("public", "hidden"), FAST)
    assert ran.run.status == RunStatus.ok and "caught" in ran.run.stdout  # the hook ran in the public phase
    public = [found.message for call, found in ran.found.items() if "/public-" in call]
    assert leaked([ran.run.stdout, ran.run.stderr, ran.run.message, ran.run.detail, *public], rubric) == []
    hidden = [ran.hidden.stdout, ran.hidden.stderr, *(f.message for c, f in ran.found.items() if "/hidden-" in c)]
    assert leaked(hidden, rubric) != []  # it did catch them: in the hidden phase, for instructors
    report = grade_submission(rubric, rubric_hash(RUBRIC), path, grading_sandbox, ("public", "hidden"), FAST)
    assert leaked(shown_before_the_due_date(report, rubric), rubric) == []
    assert all(c.group_points["public"] == c.group_max_points["public"] > 0 for c in report.checks)


def test_what_the_public_calls_print_stays_in_the_report_and_the_hidden_calls_output_does_not(
    grading_sandbox, tmp_path
):
    """The runner flushes after each call and the grader reads the output before it sends a hidden input:
    a public call's print without a newline is the run's; the same print in a hidden call is not."""
    rubric = load_rubric(RUBRIC)
    path = tmp_path / "printer.py"
    path.write_text(
        CORRECT
        + "\n_quiet = scratch_gradients\n\n\ndef scratch_gradients(x, y, params):\n"
        + "    print('x is', x.ravel().tolist(), end='')\n    return _quiet(x, y, params)\n"
    )
    ran = run_trials(grading_sandbox, rubric, load_submission(path), ("public", "hidden"), FAST)
    public_x = [repr(v) for v in make_trial(rubric, rubric.tasks[0], "public", 0).x.ravel().tolist()]
    assert ran.run.status == RunStatus.ok and all(v in ran.run.stdout for v in public_x)
    assert leaked([ran.run.stdout], rubric) == [] and leaked([ran.hidden.stdout], rubric) != []
    assert all(v not in ran.hidden.stdout for v in public_x)


def test_a_child_that_times_out_in_the_hidden_phase_keeps_its_public_results_and_output(grading_sandbox, tmp_path):
    """The hidden phase has the wall time of a job of its own; running out of it changes nothing public."""
    rubric = load_rubric(RUBRIC)
    public_x = [make_trial(rubric, rubric.tasks[0], "public", i).x.tolist() for i in range(rubric.trials.public)]
    path = tmp_path / "stuck.py"
    path.write_text(
        f"PUBLIC_X = {public_x!r}\n"
        + CORRECT
        + "\n_correct = scratch_gradients\n\n\ndef scratch_gradients(x, y, params):\n"
        + "    print('called', flush=True)\n    if x.tolist() not in PUBLIC_X:\n        while True:\n"
        + "            pass\n    return _correct(x, y, params)\n"
    )
    limits = FAST.model_copy(update={"wall_seconds": 3, "cpu_seconds": 30})
    ran = run_trials(grading_sandbox, rubric, load_submission(path), ("public", "hidden"), limits)
    assert ran.run.status == RunStatus.ok and ran.run.message == ""
    assert ran.run.stdout.count("called") == rubric.trials.public * 2  # each public call and its rerun
    assert ran.hidden.status == RunStatus.timeout and ran.hidden.stdout.count("called") == 1
    assert all(f.status == "ok" for c, f in ran.found.items() if "/public-" in c and "scratch" in c)
    assert {f.status for c, f in ran.found.items() if "/hidden-" in c} == {"timeout", "not_run"}
