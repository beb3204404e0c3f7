"""`gradescope run`: grade /autograder/submission inside the container and write results/results.json.

results.json is written in every case (a crash, a timeout, nothing handed in, a wrong file type, a
failure of the grader itself), atomically and only after the sandbox has shut down, so nothing the
submission started can still be running when it is written. Before any student code runs, the
autograder's own directories (source: the rubric with its hidden seed; results; submission) are made
private to their owner (mode 0700): as root, student code runs as an unprivileged user in both sandbox
modes, so it can neither read the rubric nor write results, even where bubblewrap is not available.

Everything instructors need (sandbox mode and protections, the student's own traceback and output,
review flags) is printed to stdout, which Gradescope keeps in results/stdout and shows only to staff.
"""

import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TextIO

from grader.discover import read_data_files
from grader.doctor import memory_report
from grader.files import write_atomic
from grader.grader import GRADER_ERROR, Grader
from grader.gradescope.build import public_hidden_seed
from grader.gradescope.results import failure_results, problem_results, results_from_report
from grader.gradescope.submission import find_submission
from grader.report import GradeReport
from grader.rubric.files import find_rubric
from grader.sandbox.models import RunStatus

GRADED, GRADER_FAILED = 0, 1
PRIVATE_DIRS = ("source", "results", "submission")
LOG_CHARS = 4000


class GraderStageFailed(Exception):
    """A stage of the grader failed on the submission (Grader's `grader_error` report); the message is the
    report's flag, the traceback, which goes to the instructors only, as any other failure of the grader."""


class Terminated(Exception):
    """SIGTERM arrived (Gradescope's own time limit): stop grading, still write results.json."""


def run_gradescope(rubric_name: str, root: Path, timeout: float | None = None, out: TextIO | None = None) -> int:
    """Grade `<root>/submission` with the rubric and write `<root>/results/results.json`.

    Returns 0 when the submission was graded (whatever its score), 1 when the grader itself failed (then
    results.json holds score 0, a student-safe message and the detail in a hidden test).
    """
    out = out or sys.stdout
    started = time.monotonic()
    root = Path(os.path.abspath(root))
    log = [f"backprop-grader gradescope run: rubric {rubric_name}, root {root}"]
    rubric_id, code = None, GRADED
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        log += protect(root)
        log.append(f"memory: {memory_report()}")
        grader = Grader.load(rubric_name, groups=("public", "hidden"), timeout=timeout)
        rubric = grader.rubric
        rubric_id = rubric.id
        public = public_hidden_seed(rubric)
        if public:
            log.append(
                f"WARNING: rubric {rubric.id}: {public}: students can compute the hidden trials; build the "
                "zip from your own copy of the rubric (see `backprop-grader gradescope build`)"
            )
        upload = find_submission(root / "submission", rubric)
        log += [f"student note: {note}" for note in upload.notes]
        if upload.problem is not None:
            log.append(f"no file graded: {upload.problem[0]}: {upload.problem[1]}")
            results = problem_results(
                rubric, *upload.problem, time.monotonic() - started, grader.hidden_trials(), upload.notes
            )
        else:
            log.append(f"grading {upload.path.relative_to(root / 'submission')}")
            hide = [root / name for name in PRIVATE_DIRS] + _outside(find_rubric(rubric_name), root)
            report = grade(grader, upload.path, hide, read_data_files(upload.data_files), log)
            if report.status == GRADER_ERROR[0]:  # a stage of the grader failed: its traceback is the flag
                raise GraderStageFailed(report.flags[0])
            log += describe(report)
            graded = f"Graded file: {upload.path.relative_to(root / 'submission')}"
            results = results_from_report(report, rubric, time.monotonic() - started, [graded, *upload.notes])
            if report.run is not None and report.run.status == RunStatus.sandbox_error:
                log.append(
                    "SANDBOX FAILURE (the student sees only that it is not their fault; fix it, then "
                    "Regrade): see the run detail above"
                )
                code = GRADER_FAILED
    except Exception as error:
        detail = str(error) if isinstance(error, GraderStageFailed) else traceback.format_exc()
        log += ["GRADER FAILURE (the student sees only that it is not their fault):", detail]
        results = failure_results(detail, time.monotonic() - started, rubric_id)
        code = GRADER_FAILED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    path = root / "results" / "results.json"
    write_atomic(path, json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    log.append(f"score {results['score']:g}; wrote {path} after {time.monotonic() - started:.1f} s")
    print("\n".join(log), file=out, flush=True)
    return code


def grade(grader: Grader, path: Path, hide: list[Path], files: dict[str, bytes], log: list[str]) -> GradeReport:
    """Grade one file in a sandbox of its own that hides `hide`, shut down when this returns.

    A file the load stage rejects (empty, not UTF-8, wrong type, ...) never starts the sandbox. `log`
    receives the sandbox's mode and, for the fallback, its exact reason (staff only)."""
    from grader.sandbox import Sandbox  # the sandbox is imported only by commands that run code

    grader.sandbox = Sandbox(jobs=1, hide=hide, notify=log.append)
    with grader:
        report = grader.grade(path, files)
    if report.run is not None:
        log.append(f"sandbox mode: {grader.sandbox.mode}")  # a fallback's reason was logged when it was chosen
    return report


def protect(root: Path) -> list[str]:
    """Make <root>/source, results and submission private to their owner (0700), creating missing ones.

    Student code runs as another, unprivileged uid when the grader runs as root (bubblewrap: nobody;
    fallback: a uid of its own), so it can then neither read the rubric nor write results.json.
    """
    for name in PRIVATE_DIRS:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    if os.geteuid() == 0:
        return [f"{', '.join(PRIVATE_DIRS)}: mode 0700; student code runs as an unprivileged user"]
    return [
        f"{', '.join(PRIVATE_DIRS)}: mode 0700, but the grader is not root, so student code runs as the "
        "same user; only bubblewrap (if available) keeps these directories out of its reach"
    ]


def describe(report: GradeReport) -> list[str]:
    """Instructor-only lines about one graded submission."""
    lines = [
        f"status {report.status}: {report.score:g} / {report.max_score:g} points; trials {', '.join(report.trials)}"
    ]
    if report.message:
        lines.append(f"message to the student: {report.message}")
    run = report.run
    if run is None:
        return lines
    off = sorted(name for name, on in run.protections.items() if not on)
    lines.append(f"sandbox: run {run.status} in {run.wall_seconds:.2f} s; protections off: {', '.join(off) or 'none'}")
    if run.detail:
        lines += ["run detail (instructors only):", run.detail[-LOG_CHARS:]]
    lines += [f"flag: {flag}" for flag in report.flags]
    for name, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        if text:
            shown = text[:LOG_CHARS] + (
                f"\n[... {len(text) - LOG_CHARS} more characters]" if len(text) > LOG_CHARS else ""
            )
            lines += [f"student {name}:", shown]
    return lines


def _outside(path: Path, root: Path) -> list[Path]:
    """The rubric file, unless a directory the sandbox hides anyway holds it (root's, the packages')."""
    from grader.sandbox.isolation import package_dirs

    path = Path(os.path.abspath(path))
    hidden = [root, *package_dirs()]
    return (
        []
        if any(folder in path.parents or folder in Path(os.path.realpath(path)).parents for folder in hidden)
        else [path]
    )


def _terminate(signum: int, frame) -> None:
    raise Terminated(f"received signal {signum} (Gradescope's time limit for the whole autograder?)")
