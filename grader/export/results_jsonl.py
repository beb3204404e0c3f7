"""results.jsonl: one compact JSON line per student, and the per-student record every class file reads.

Class files (results.jsonl, gradebook.csv, summary.html) are built from one record per student, made by
`student_record` from what a report.json holds (`report_record` from the report a batch just wrote,
`read_record` from a report.json on disk): a few hundred bytes each, so a class of any size never holds
its GradeReports in memory. Records are read from plain JSON (not re-validated models): a
report with a non-finite number in it still makes a row.
"""

import json
from pathlib import Path
from typing import Any

from grader.files import write_atomic
from grader.report import GradeReport

Record = dict[str, Any]


def outcome(report: dict[str, Any]) -> str:
    """One word per student: the report's status, or how the run ended when it did not end `ok`."""
    run = report.get("run") or {}
    if report.get("status") == "graded" and run.get("status", "ok") != "ok":
        return str(run["status"])
    return str(report.get("status", "unknown"))


def student_record(report: dict[str, Any], folder_name: str) -> Record:
    """The compact record of one report.json (as parsed JSON); `folder_name` is the student's folder in out/."""
    tasks: dict[str, float] = {}
    checks: dict[str, str] = {}
    diagnoses = []
    for check in report.get("checks", []):
        key = f"{check['task']}/{check['quantity']}"
        tasks[check["task"]] = round(tasks.get(check["task"], 0.0) + (check.get("points") or 0.0), 10)
        checks[key] = check["status"]
        diagnosis = check.get("diagnosis")
        if diagnosis:
            diagnoses.append(
                {"check": key, "mistake": diagnosis.get("mistake", ""), "title": diagnosis.get("title", "")}
            )
    return {
        "student": report.get("student", folder_name),
        "submission": report.get("submission", ""),
        "status": outcome(report),
        "score": report.get("score", 0.0),
        "max_score": report.get("max_score", 0.0),
        "tasks": tasks,
        "checks": checks,
        "diagnoses": diagnoses,
        "flags": report.get("flags", []),
        "message": report.get("message", ""),
        "rubric_id": report.get("rubric_id", ""),
        "rubric_hash": report.get("rubric_hash", ""),
        "submission_hash": report.get("submission_hash", ""),
        "grader_version": report.get("grader_version", ""),
        "report": f"{folder_name}/report.html",
    }


# What student_record reads of a report: a record is made from these alone.
_RECORD_FIELDS = {
    "student": True,
    "submission": True,
    "status": True,
    "score": True,
    "max_score": True,
    "flags": True,
    "message": True,
    "rubric_id": True,
    "rubric_hash": True,
    "submission_hash": True,
    "grader_version": True,
    "run": {"status"},
    "checks": {"__all__": {"task", "quantity", "points", "status", "diagnosis"}},
}


def report_record(report: GradeReport, folder_name: str) -> Record:
    """The record `read_record` would read back from this report's report.json, made without reading it
    (a batch keeps the records of the students it grades instead of parsing every report.json at the end)."""
    return student_record(report.model_dump(mode="json", include=_RECORD_FIELDS), folder_name)


def read_record(folder: Path) -> Record | None:
    """The record of `folder/report.json`, or None when there is no readable one."""
    try:
        return student_record(json.loads((folder / "report.json").read_text(encoding="utf-8")), folder.name)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def render_results_jsonl(records: list[Record]) -> str:
    """One compact line per record, sorted by student."""
    return "".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
        for r in sorted(records, key=lambda r: r["student"])
    )


def write_results_jsonl(records: list[Record], out: Path) -> Path:
    path = out / "results.jsonl"
    write_atomic(path, render_results_jsonl(records))
    return path
