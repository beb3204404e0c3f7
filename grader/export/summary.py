"""summary.html: the instructor's page for a whole class, built from the compact per-student records.

Score histogram (inline SVG), pass rate per check, the most frequent diagnoses, what to review (as
`grader.review` defines it: flags, runs that did not end normally, discovery notes such as duplicates and
rejected archive members) and a link to every student's report. It is instructor-only (it shows flags
and hidden checks), self-contained and deterministic: the same reports give the same bytes.
"""

from collections import Counter
from pathlib import Path
from statistics import mean, median
from urllib.parse import quote

from grader.export.page import esc, points, render_page
from grader.export.results_jsonl import Record
from grader.export.svg import histogram
from grader.files import write_atomic
from grader.review import review_items
from grader.rubric import Rubric

BINS = 10
MAX_LINKS = 12


def write_summary(rubric: Rubric, records: list[Record], notes: list[str], out: Path) -> Path:
    path = out / "summary.html"
    write_atomic(path, render_summary(rubric, records, notes))
    return path


def render_summary(rubric: Rubric, records: list[Record], notes: list[str]) -> str:
    records = sorted(records, key=lambda r: r["student"])
    parts = [
        f'<p class="eyebrow">Class summary · {esc(rubric.id)}</p>\n<h1>{esc(rubric.title)}</h1>',
        _stats(rubric, records),
        _histogram(rubric, records),
        _pass_rates(rubric, records),
        _diagnoses(records),
        _review(records, notes),
        _students(records),
        "<footer>Instructor page: it lists flags and hidden checks; hand students their own report.html only.</footer>",
    ]
    return render_page(f"Class summary — {rubric.title}", "\n".join(p for p in parts if p))


def _link(record: Record) -> str:
    return f'<a href="{esc(quote(record["report"]))}">{esc(record["student"])}</a>'


def _stats(rubric: Rubric, records: list[Record]) -> str:
    scores = [r["score"] for r in records]
    full = sum(1 for r in records if r["max_score"] and r["score"] >= r["max_score"] - 1e-9)
    not_graded = sum(1 for r in records if r["status"] != "graded")
    cards = [
        ("students", str(len(records))),
        ("mean score", f"{mean(scores):.2f}".rstrip("0").rstrip(".") if scores else "—"),
        ("median score", points(median(scores)) if scores else "—"),
        ("full marks", str(full)),
        ("did not run normally", str(not_graded)),
        ("points available", points(rubric.max_points())),
    ]
    return (
        '<div class="stats">'
        + "".join(
            f'<div class="card"><div class="value">{esc(value)}</div><div class="muted small">{esc(name)}</div></div>'
            for name, value in cards
        )
        + "</div>"
    )


def _histogram(rubric: Rubric, records: list[Record]) -> str:
    top = rubric.max_points()
    if not records or top <= 0:
        return ""
    counts = [0] * BINS
    for record in records:
        counts[min(BINS - 1, max(0, int(record["score"] / top * BINS)))] += 1
    width = top / BINS
    labels = [f"{points(i * width)}–{points((i + 1) * width)}" for i in range(BINS)]
    chart = histogram(counts, labels, f"Histogram of scores out of {points(top)}")
    return f'<h2>Scores</h2>\n<div class="card chart">{chart}</div>'


def _pass_rates(rubric: Rubric, records: list[Record]) -> str:
    if not records:
        return ""
    rows = []
    for task in rubric.tasks:
        for check in task.checks:
            key = f"{task.id}/{check.quantity}"
            passed = sum(1 for r in records if r["checks"].get(key) == "passed")
            rate = passed / len(records)
            tone = "" if rate >= 0.8 else "mid" if rate >= 0.5 else "low"
            label = esc(check.quantity) if len(rubric.tasks) == 1 else f"{esc(task.id)} / {esc(check.quantity)}"
            hidden = (
                ""
                if check.visibility == "visible"
                else f' <span class="muted small">({esc(check.visibility.value)})</span>'
            )
            rows.append(
                f'<tr><td class="mono">{label}{hidden}</td><td><div class="rate"><div class="track {tone}">'
                f'<span style="width:{rate * 100:.1f}%"></span></div><span class="small">{rate:.0%}</span></div></td>'
                f'<td class="num">{passed} / {len(records)}</td></tr>'
            )
    return (
        '<h2>Pass rate per check</h2>\n<div class="table-wrap"><table><thead><tr><th>check</th><th>pass rate</th>'
        '<th class="num">passed</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></div>"
    )


def _diagnoses(records: list[Record]) -> str:
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
    if not students:
        return '<h2>Most frequent diagnoses</h2>\n<p class="muted">No failing check matched a known mistake.</p>'
    ranked = sorted(students.items(), key=lambda item: (-len(item[1]), item[0]))
    rows = []
    for (mistake, title), who in ranked:
        links = ", ".join(_link(r) for r in who[:MAX_LINKS]) + (
            f" and {len(who) - MAX_LINKS} more" if len(who) > MAX_LINKS else ""
        )
        rows.append(
            f'<tr><td><b>{esc(title)}</b><br><span class="mono muted small">{esc(mistake)}</span></td>'
            f'<td class="num">{len(who)}</td><td class="num">{checks[(mistake, title)]}</td><td>{links}</td></tr>'
        )
    return (
        '<h2>Most frequent diagnoses</h2>\n<div class="table-wrap"><table><thead><tr><th>mistake</th><th class="num">students</th>'
        '<th class="num">checks</th><th>who</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></div>"
    )


def _review(records: list[Record], notes: list[str]) -> str:
    """The review list: exactly `grader.review.review_items`, one <li> each (what `grade` counts)."""
    items = []
    for item in review_items(records, notes):
        if item.record is None:
            items.append(f"<li>{esc(item.text)}</li>")
        elif item.status is None:
            items.append(f"<li>{_link(item.record)}: {esc(item.text)}</li>")
        else:
            message = f" — {esc(item.text)}" if item.text else ""
            items.append(f'<li>{_link(item.record)}: <span class="pill other">{esc(item.status)}</span>{message}</li>')
    if not items:
        return '<h2>To review</h2>\n<p class="muted">Nothing to review: no flags, every run ended normally, no discovery notes.</p>'
    return f'<h2>To review</h2>\n<div class="card"><ul class="plain review">{"".join(items)}</ul></div>'


def _students(records: list[Record]) -> str:
    rows = []
    for record in records:
        failing = sum(1 for status in record["checks"].values() if status != "passed")
        titles = sorted({d["title"] for d in record["diagnoses"]})
        status_class = "passed" if record["status"] == "graded" else "other"
        rows.append(
            f'<tr><td>{_link(record)}<br><span class="mono muted small">{esc(record["submission"])}</span></td>'
            f'<td class="num">{points(record["score"])} / {points(record["max_score"])}</td>'
            f'<td><span class="pill {status_class}">{esc(record["status"])}</span></td><td class="num">{failing}</td>'
            f'<td class="small">{esc(", ".join(titles))}</td></tr>'
        )
    if not rows:
        return '<h2>Students</h2>\n<p class="muted">No submissions were found.</p>'
    return (
        '<h2>Students</h2>\n<div class="table-wrap"><table><thead><tr><th>student · submission</th><th class="num">score</th>'
        '<th>status</th><th class="num">failed checks</th><th>diagnoses</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
    )
