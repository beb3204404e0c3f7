"""summary.html and results.jsonl: the class at a glance, from compact per-student records."""

import json
import re

from grader.export.results_jsonl import outcome, read_record, render_results_jsonl, student_record
from grader.export.summary import render_summary
from grader.rubric.files import load_rubric

RUBRIC = load_rubric("bs6207-a1")
QUANTITIES = [c.quantity for c in RUBRIC.tasks[0].checks]


def report_dict(
    student, score, failing=(), diagnosis=None, flags=(), status="graded", run_status="ok", submission=None
):
    checks = []
    for quantity in QUANTITIES:
        failed = quantity in failing
        checks.append(
            {
                "task": "backprop",
                "quantity": quantity,
                "status": "failed" if failed else "passed",
                "points": 0.0 if failed else 1.0,
                "diagnosis": {"mistake": diagnosis[0], "title": diagnosis[1]} if failed and diagnosis else None,
            }
        )
    return {
        "student": student,
        "submission": submission or f"{student}.py",
        "status": status,
        "score": score,
        "max_score": 15.0,
        "checks": checks,
        "flags": list(flags),
        "message": "" if status == "graded" else "the file is empty",
        "run": {"status": run_status},
        "rubric_id": "bs6207-a1",
        "rubric_hash": "ab",
        "submission_hash": "cd",
        "grader_version": "0.1.0",
    }


def records():
    return [
        student_record(report_dict("cy", 15.0), "cy"),
        student_record(
            report_dict("ann", 9.0, ["scratch.dW1", "scratch.dW2"], ("missing_factor_2", "missing factor 2")), "ann"
        ),
        student_record(
            report_dict(
                "bob",
                9.5,
                ["scratch.dW1"],
                ("missing_factor_2", "missing factor 2"),
                flags=["autograd <b>in</b> scratch"],
            ),
            "bob",
        ),
        student_record(
            report_dict("dee", 14.0, ["scratch.dW3"], ("sign_flip", "sign flip"), submission="<script>x</script>.py"),
            "dee",
        ),
        student_record(report_dict("eve", 0.0, QUANTITIES, run_status="timeout"), "eve"),
        student_record(report_dict("fay", 0.0, QUANTITIES, status="empty"), "fay"),
    ]


def test_each_record_is_compact_and_names_the_outcome():
    ann = records()[1]
    assert ann["tasks"] == {"backprop": 15.0} and ann["checks"]["backprop/scratch.dW1"] == "failed"
    assert ann["diagnoses"] == [
        {"check": "backprop/scratch.dW1", "mistake": "missing_factor_2", "title": "missing factor 2"},
        {"check": "backprop/scratch.dW2", "mistake": "missing_factor_2", "title": "missing factor 2"},
    ]
    assert ann["report"] == "ann/report.html" and len(json.dumps(ann)) < 2000
    assert outcome({"status": "graded", "run": {"status": "timeout"}}) == "timeout"
    assert (
        outcome({"status": "empty", "run": None}) == "empty"
        and outcome({"status": "graded", "run": {"status": "ok"}}) == "graded"
    )


def test_results_jsonl_has_one_compact_line_per_student_sorted(tmp_path):
    text = render_results_jsonl(records())
    lines = text.splitlines()
    assert [json.loads(line)["student"] for line in lines] == ["ann", "bob", "cy", "dee", "eve", "fay"]
    assert all(": " not in line.split('"message"')[0] for line in lines) and text.endswith("\n")


def test_a_record_is_read_from_a_report_json_even_one_with_nulls_in_it(tmp_path):
    (tmp_path / "ann").mkdir()
    data = report_dict("ann", 9.0)
    data["checks"][0]["trials"] = [{"excess": [[None, 1.0]]}]  # how pydantic writes nan
    (tmp_path / "ann" / "report.json").write_text(json.dumps(data))
    assert read_record(tmp_path / "ann")["score"] == 9.0
    assert read_record(tmp_path / "missing") is None


def test_the_summary_has_a_histogram_pass_rates_diagnoses_review_items_and_links():
    page = render_summary(RUBRIC, records(), ["duplicate: student id 'x' is claimed by 2 submissions"])
    histogram = page[page.index("<svg") : page.index("</svg>")]
    bars = re.findall(r'<text [^>]*fill="#1f2328">(\d+)</text>', histogram)
    assert bars == ["2", "2", "2"]  # 0–1.5: eve, fay · 9–10.5: ann, bob · 13.5–15: dee, cy
    row = page[page.index(">scratch.dW1<") :]
    assert "33%" in row[:300] and "2 / 6" in row[:300] and "track low" in row[:100]  # only cy and dee pass it
    diagnoses = page[page.index("Most frequent diagnoses") : page.index("To review")]
    assert diagnoses.index("missing factor 2") < diagnoses.index("sign flip")
    assert '<td class="num">2</td><td class="num">3</td>' in diagnoses  # 2 students, 3 checks
    review = page[page.index("To review") : page.index("<h2>Students")]
    assert "autograd &lt;b&gt;in&lt;/b&gt; scratch" in review and "timeout" in review and "empty" in review
    assert "duplicate: student id &#39;x&#39; is claimed by 2 submissions" in review
    for student in ("ann", "bob", "cy", "dee", "eve", "fay"):
        assert f'<a href="{student}/report.html">{student}</a>' in page
    assert "&lt;script&gt;x&lt;/script&gt;.py" in page and "<script" not in page


def test_the_summary_is_deterministic_and_handles_an_empty_class():
    assert render_summary(RUBRIC, records(), []) == render_summary(RUBRIC, list(reversed(records())), [])
    empty = render_summary(RUBRIC, [], [])
    assert "No submissions were found." in empty and "<svg" not in empty


def test_the_record_a_batch_keeps_is_the_one_its_report_json_gives(grading_sandbox, tmp_path):
    """A batch builds the class files from records made from the reports it wrote, not read back; they must
    be the records report.json gives (graded, diagnosed, and a run that did not end ok)."""
    from conftest import REPO

    from grader.export.report_json import write_report_json
    from grader.export.results_jsonl import report_record
    from grader.grade import grade_submission
    from grader.rubric.files import rubric_hash

    broken = tmp_path / "broken.py"
    broken.write_text("import a_module_that_does_not_exist\n")
    rubric = load_rubric("bs6207-a1")
    for path in (REPO / "submissions/bs6207-a1/correct.py", REPO / "submissions/bs6207-a1/sign_flip.py", broken):
        report = grade_submission(rubric, rubric_hash("bs6207-a1"), path, grading_sandbox, ("public", "hidden"))
        folder = tmp_path / "out" / path.stem
        folder.mkdir(parents=True)
        write_report_json(report, folder)
        assert report_record(report, path.stem) == read_record(folder)
    assert read_record(folder)["status"] == "import_error" and report_record(report, path.stem)["diagnoses"] == []


def test_the_review_list_is_one_entry_per_item_of_the_one_review_definition():
    """What `grade` counts as notes to review (grader.review) is what the page lists, entry for entry."""
    from grader.review import review_items

    notes = ["duplicate: student id 'x' is claimed by 2 submissions", "skipped readme.md: not a .py or .ipynb file"]
    class_ = [
        *records(),
        student_record(report_dict("gus", 15.0, flags=["most cells failed: 5 of 7", "autograd in scratch"]), "gus"),
    ]
    items = review_items(class_, notes)
    assert [(i.record or {}).get("student") for i in items] == ["bob", "gus", "gus", "eve", "fay", None, None]
    page = render_summary(RUBRIC, list(reversed(class_)), notes)
    review = page[page.index("<h2>To review</h2>") : page.index("<h2>Students</h2>")]
    entries = re.findall(r"<li>(.*?)</li>", review)
    assert len(entries) == len(items) == 7
    assert entries[1] == '<a href="gus/report.html">gus</a>: most cells failed: 5 of 7'
    assert "timeout" in entries[3] and entries[5] == "duplicate: student id &#39;x&#39; is claimed by 2 submissions"
    nothing = render_summary(RUBRIC, [records()[0]], [])
    assert "Nothing to review" in nothing and review_items([records()[0]], []) == []
