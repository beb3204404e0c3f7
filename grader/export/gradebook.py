"""gradebook.csv: one row per student, one column per task of the rubric, the total and the status.

Columns are stable for a rubric (`student`, each task id in rubric order, `total`, `status`) whatever the
reports hold, so a spreadsheet or LMS import keeps working from one batch to the next. Rows are sorted by
student. Student ids are sanitised by discovery ([A-Za-z0-9._-], never a leading `=`, `+`, `-` or `@`), so
no cell can be read as a spreadsheet formula; the status is one of the grader's own words.
"""

import csv
import io
from pathlib import Path

from grader.export.results_jsonl import Record
from grader.files import write_atomic
from grader.rubric.model import Rubric


def gradebook_columns(rubric: Rubric) -> list[str]:
    return ["student", *(task.id for task in rubric.tasks), "total", "status"]


def render_gradebook(rubric: Rubric, records: list[Record]) -> str:
    """The CSV text (RFC 4180, \\r\\n line ends as the csv module writes them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(gradebook_columns(rubric))
    for record in sorted(records, key=lambda r: r["student"]):
        tasks = [_number(record["tasks"].get(task.id, 0.0)) for task in rubric.tasks]
        writer.writerow([record["student"], *tasks, _number(record["score"]), record["status"]])
    return buffer.getvalue()


def write_gradebook(rubric: Rubric, records: list[Record], out: Path) -> Path:
    path = out / "gradebook.csv"
    write_atomic(path, render_gradebook(rubric, records))
    return path


def _number(value: float) -> str:
    return format(round(float(value), 6), ".12g")
