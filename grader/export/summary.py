"""summary.html: the instructor's page for a whole class, built from the compact per-student records.

Score histogram (inline SVG), pass rate per check, the most frequent diagnoses, what to review (as
`grader.review` defines it: flags, runs that did not end normally, discovery notes such as duplicates and
rejected archive members) and a link to every student's report. It is instructor-only (it shows flags
and hidden checks), self-contained and deterministic: the same reports give the same bytes. This module
computes the figures; templates/summary.html lays them out, escaping every value.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, median

from markupsafe import Markup

from grader.export.page import points, render
from grader.export.results_jsonl import Record
from grader.export.svg import histogram
from grader.files import write_atomic
from grader.review import review_items
from grader.rubric.model import Rubric

BINS = 10
MAX_LINKS = 12


def write_summary(rubric: Rubric, records: list[Record], notes: list[str], out: Path) -> Path:
    """Write `out/summary.html` atomically and return its path."""
    path = out / "summary.html"
    write_atomic(path, render_summary(rubric, records, notes))
    return path


def render_summary(rubric: Rubric, records: list[Record], notes: list[str]) -> str:
    """The whole page (templates/summary.html)."""
    records = sorted(records, key=lambda r: r["student"])
    return render(
        "summary.html",
        rubric=rubric,
        stats=_stats(rubric, records),
        chart=_histogram(rubric, records),
        pass_rates=_pass_rates(rubric, records),
        several_tasks=len(rubric.tasks) > 1,
        diagnoses=_diagnoses(records),
        max_links=MAX_LINKS,
        review=review_items(records, notes),
        records=records,
        students=_students(records),
    )


def _stats(rubric: Rubric, records: list[Record]) -> list[tuple[str, str]]:
    """The cards at the top: (name, value)."""
    scores = [r["score"] for r in records]
    full = sum(1 for r in records if r["max_score"] and r["score"] >= r["max_score"] - 1e-9)
    not_graded = sum(1 for r in records if r["status"] != "graded")
    return [
        ("students", str(len(records))),
        ("mean score", f"{mean(scores):.2f}".rstrip("0").rstrip(".") if scores else "—"),
        ("median score", points(median(scores)) if scores else "—"),
        ("full marks", str(full)),
        ("did not run normally", str(not_graded)),
        ("points available", points(rubric.max_points())),
    ]


def _histogram(rubric: Rubric, records: list[Record]) -> Markup | None:
    """The score histogram (BINS bins from 0 to the rubric's points), or None for an empty class."""
    top = rubric.max_points()
    if not records or top <= 0:
        return None
    counts = [0] * BINS
    for record in records:
        counts[min(BINS - 1, max(0, int(record["score"] / top * BINS)))] += 1
    width = top / BINS
    labels = [f"{points(i * width)}–{points((i + 1) * width)}" for i in range(BINS)]
    return histogram(counts, labels, f"Histogram of scores out of {points(top)}")


@dataclass(frozen=True)
class PassRate:
    """How many students passed one check, and how the row's bar shows it."""

    task: str
    quantity: str
    visibility: str
    passed: int
    percent: str  # the bar's width
    tone: str
    rate: str  # the number shown


def _pass_rates(rubric: Rubric, records: list[Record]) -> list[PassRate]:
    """One row per check of the rubric, in its order (none for an empty class)."""
    rates = []
    for task in rubric.tasks:
        for check in task.checks if records else ():
            passed = sum(1 for r in records if r["checks"].get(f"{task.id}/{check.quantity}") == "passed")
            rate = passed / len(records)
            tone = "" if rate >= 0.8 else "mid" if rate >= 0.5 else "low"
            rates.append(
                PassRate(
                    task.id, check.quantity, check.visibility.value, passed, f"{rate * 100:.1f}", tone, f"{rate:.0%}"
                )
            )
    return rates


def _diagnoses(records: list[Record]) -> list[tuple[str, str, list[Record], int]]:
    """Each diagnosed mistake (mistake id, title), the students who made it and on how many checks, the
    most frequent first."""
    students: dict[tuple[str, str], list[Record]] = {}
    checks: Counter = Counter()
    for record in records:
        seen = set()
        for diagnosis in record["diagnoses"]:
            key = (diagnosis["mistake"], diagnosis["title"])
            checks[key] += 1
            if key not in seen:
                seen.add(key)
                students.setdefault(key, []).append(record)
    ranked = sorted(students.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(mistake, title, who, checks[(mistake, title)]) for (mistake, title), who in ranked]


def _students(records: list[Record]) -> list[tuple[Record, int, list[str]]]:
    """Each student's row: the record, how many checks did not pass and the titles of their diagnoses."""
    return [
        (
            record,
            sum(1 for status in record["checks"].values() if status != "passed"),
            sorted({d["title"] for d in record["diagnoses"]}),
        )
        for record in records
    ]
