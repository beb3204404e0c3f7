"""`grade --resume`: which students of an earlier run in the same folder can be kept as they are.

A student is kept when its report.json and report.html are whole, were made from this very file (and the
data files beside a notebook) and this rubric, did not end in the grader's own failure, and the run's
settings (rubric, limits, hidden seed) are those of the last run there, recorded in SETTINGS.
"""

import hashlib
import json
from pathlib import Path
from typing import TextIO

from grader.discover import Candidate, read_data_files
from grader.export.results_jsonl import outcome
from grader.files import write_atomic
from grader.grader import Grader
from grader.load import submission_hash

SETTINGS = ".grade-settings.json"
REGRADE = {"grader_error", "sandbox_error"}  # never reused by --resume: the grader's fault, worth another try


def settings(grader: Grader) -> dict:
    """What besides the rubric and the file changes a grade. The hidden seed is stored only as a hash."""
    seed = grader.hidden_seed
    return {
        "rubric_hash": grader.rubric_hash,
        "limits": grader.limits.model_dump(),
        "hidden_seed": None if seed is None else hashlib.sha256(f"{grader.rubric_hash}:{seed}".encode()).hexdigest(),
    }


def write_settings(grader: Grader, out: Path) -> None:
    """Record this run's settings in `out`, for the next --resume there."""
    write_atomic(out / SETTINGS, json.dumps(settings(grader), indent=1) + "\n")


def same_settings(grader: Grader, out: Path, err: TextIO) -> bool:
    """Whether the last run in `out` had this run's settings; if not, says on `err` that all are graded again."""
    try:
        previous = json.loads((out / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if previous == settings(grader):
        return True
    print(
        "note: --resume: the rubric, --timeout or --hidden-seed differ from the last run in this folder "
        "(or it left no record); grading every student again",
        file=err,
    )
    return False


def up_to_date(candidate: Candidate, folder: Path, rubric_hash: str) -> bool:
    """Whether the student's files are complete and were made from this very file and rubric."""
    if candidate.problem is not None or candidate.source is None or not (folder / "report.html").is_file():
        return False
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(report, dict)
        and report.get("rubric_hash") == rubric_hash
        and report.get("student") == candidate.student
        and outcome(report) not in REGRADE
        and report.get("submission_hash") == current_hash(candidate)
    )


def current_hash(candidate: Candidate) -> str | None:
    """The hash grading this candidate now would record (the file, and the data files beside a notebook)."""
    source = file_hash(candidate.source)
    if source is None:
        return None
    return submission_hash(source, read_data_files(candidate.data_files))


def file_hash(path: Path | None) -> str | None:
    """SHA-256 of the file, read in chunks; None without a path or when it cannot be read."""
    if path is None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
