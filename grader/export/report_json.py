"""report.json: the GradeReport as JSON, and its JSON Schema."""

import json
from pathlib import Path

from grader.files import write_atomic
from grader.report import GradeReport


def write_report_json(report: GradeReport, folder: Path) -> Path:
    """Write `folder/report.json` atomically and return its path."""
    path = folder / "report.json"
    write_atomic(path, report.model_dump_json(indent=1) + "\n")
    return path


def report_schema() -> str:
    """The published JSON Schema of report.json."""
    return json.dumps(GradeReport.model_json_schema(), indent=1)
