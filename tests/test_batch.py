"""Grading a class end to end: real CLI subprocesses, the real sandbox, real sample submissions."""

import csv
import html
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conftest import CLASS_RUBRIC, CLASS_STUDENTS, REPO, SCRIPT_LINE, grade_cli

from grader.report import GradeReport

# A run that did not end ok keeps its measurements (cpu, wall, max rss) in the instructor's `run.detail` text.
MEASURED = re.compile(r"cpu [0-9.]+ s, wall [0-9.]+ s, max rss [0-9]+ KiB")


def reports(out):
    """student → parsed report.json without the timing fields."""
    found = {}
    for path in sorted(out.glob("*/report.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("timing")
        data["run"].pop("wall_seconds")
        data["run"].pop("usage", None)
        data["run"]["detail"] = MEASURED.sub("(measured)", data["run"]["detail"])
        found[path.parent.name] = data
    return found


def test_grading_a_class_folder_and_an_lms_zip_writes_every_report_and_the_class_files(graded_class):
    done, out = graded_class.done, graded_class.out
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) == CLASS_STUDENTS
    for student in CLASS_STUDENTS:
        report = GradeReport.model_validate_json((out / student / "report.json").read_text(encoding="utf-8"))
        assert report.student == student and report.status == "graded"  # ben's syntax error too: it ran
        assert report.trials[-1].startswith("hidden")  # grade runs public and hidden trials
        assert (out / student / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    rows = list(csv.reader(io.StringIO((out / "gradebook.csv").read_text(encoding="utf-8"))))
    assert rows[0] == ["student", "backprop", "total", "status"]
    assert [row[0] for row in rows[1:]] == CLASS_STUDENTS
    totals = {row[0]: float(row[2]) for row in rows[1:]}
    assert totals["correct.py"] == totals["zoe"] == totals["printer"] == 15.0
    assert totals["missing_factor_2"] < 15.0 and totals["ben_1002"] == 0.0
    assert {row[0]: row[3] for row in rows[1:]}["ben_1002"] == "syntax_error"
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["student"] for line in lines] == CLASS_STUDENTS
    summary = (out / "summary.html").read_text(encoding="utf-8")
    assert all(f'href="{student}/report.html"' in summary for student in CLASS_STUDENTS)
    entries = review_entries(summary)  # ben's syntax error, the duplicate id, the rejected archive member
    assert len(entries) >= 3 and any("ben_1002" in e and "syntax_error" in e for e in entries)
    assert (
        done.stdout.strip()
        .splitlines()[-1]
        .startswith(
            f"9 students: 8 graded, 1 syntax_error; 7 with full marks; 9 graded in this run; {len(entries)} notes to review"
        )
    )
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".extract-")]
    assert leftovers == []


def review_entries(summary: str) -> list[str]:
    """The entries of summary.html's "To review" list, as HTML."""
    review = summary[summary.index("<h2>To review</h2>") : summary.index("<h2>Students</h2>")]
    return re.findall(r"<li>(.*?)</li>", review)


def printed_to_review(done: subprocess.CompletedProcess) -> int:
    return int(re.search(r"; (\d+) notes? to review; ", done.stdout.strip().splitlines()[-1]).group(1))


def test_the_notes_to_review_grade_prints_are_the_entries_summary_html_lists(graded_notebook_class):
    """Every flag (a notebook whose cells mostly failed is one) and every batch note is one entry; the
    student whose my_autograd.dat is empty has one note in their report and no entry."""
    done, out = graded_notebook_class.done, graded_notebook_class.out
    assert done.returncode == 0, done.stderr
    entries = review_entries((out / "summary.html").read_text(encoding="utf-8"))
    assert printed_to_review(done) == len(entries)
    flags = {p.parent.name: json.loads(p.read_text(encoding="utf-8"))["flags"] for p in out.glob("*/report.json")}
    assert any(flag.startswith("most cells failed: ") for flag in flags["never_closed"])
    assert any(flags["after_10_sgd_steps"])
    for student, student_flags in flags.items():
        for flag in student_flags:
            assert sum(f'">{student}</a>: {flag}' in html.unescape(e) for e in entries) == 1, (student, flag)
    skipped = [e for e in entries if e.startswith("skipped ") and "notes.txt" in e]
    assert len(entries) == sum(map(len, flags.values())) + len(skipped) and len(skipped) == 1
    assert not [e for e in entries if ">dan<" in e]
    dan = json.loads((out / "dan" / "report.json").read_text(encoding="utf-8"))
    assert [n for n in dan["notes"] if "my_autograd.dat" in n] == [
        n for n in dan["notes"] if n.startswith("my_autograd.dat is empty: ")
    ]
    assert len([n for n in dan["notes"] if "my_autograd.dat" in n]) == 1


def test_junk_is_skipped_and_the_duplicate_student_is_reported(graded_class):
    out, stderr = graded_class.out, graded_class.done.stderr
    assert not any(
        "checkpoint" in p.name or "MACOSX" in p.name or "hidden" in p.name or "DS_Store" in p.name
        for p in out.iterdir()
    )
    assert "duplicate: student id 'correct' is claimed by 2 submissions" in stderr
    summary = html.unescape((out / "summary.html").read_text(encoding="utf-8"))
    assert "duplicate: student id 'correct' is claimed by 2 submissions" in summary
    both = {json.loads((out / s / "report.json").read_text())["submission"] for s in ("correct.py", "correct.ipynb")}
    assert both == {"correct.py", "correct.ipynb"}  # never mixed: each id keeps its own file


def test_a_student_folder_is_graded_from_its_single_notebook_under_the_folder_name(graded_class):
    report = json.loads((graded_class.out / "zoe" / "report.json").read_text(encoding="utf-8"))
    assert report["student"] == "zoe" and report["submission"] == "a1.ipynb"
    assert report["score"] == report["max_score"] == 15.0


def test_a_script_printed_by_a_student_shows_as_text(graded_class):
    page = (graded_class.out / "printer" / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(" in page and "<script>alert('student')</script>" in html.unescape(page)
    assert "<script" not in page and SCRIPT_LINE not in page


def masked(path):
    """A report.json's bytes with the timing fields (`timing`, `run.wall_seconds`, measurements) blanked."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'"timing": \{[^}]*\}', '"timing": {}', text)
    text = re.sub(r'"wall_seconds": [0-9.e+-]+', '"wall_seconds": 0', text)
    text = re.sub(r'"usage": \{[^}]*\}', '"usage": {}', text)
    return MEASURED.sub("(measured)", text)


def test_a_killed_batch_resumes_without_regrading_finished_students_and_gives_byte_identical_reports(
    graded_class, tmp_path
):
    """Also: grading twice gives byte-identical reports apart from timing (every report here is a second grading)."""
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "grader",
        "grade",
        *map(str, graded_class.inputs),
        "--rubric",
        CLASS_RUBRIC,
        "--out",
        str(out),
        "--jobs",
        "1",
    ]
    batch = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("*/report.json")) and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.01)
    batch.send_signal(signal.SIGKILL)  # at the first report; correct_but_slow sleeps 1 s, so it is not done
    batch.wait(timeout=30)
    finished = {p.parent.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("*/report.json")}
    assert finished and "correct_but_slow" not in finished and len(finished) < len(CLASS_STUDENTS), sorted(finished)
    for path in out.glob("*/report.json"):  # whatever exists is whole
        GradeReport.model_validate_json(path.read_text(encoding="utf-8"))

    resumed = grade_cli(*graded_class.inputs, "--rubric", CLASS_RUBRIC, "--out", out, "--jobs", 1, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"{len(CLASS_STUDENTS) - len(finished)} graded in this run, {len(finished)} unchanged and kept (--resume)"
        in resumed.stdout
    )
    for student, (mtime, data) in finished.items():
        path = out / student / "report.json"
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data, student
    assert reports(out) == reports(graded_class.out)
    for student in CLASS_STUDENTS:
        assert masked(out / student / "report.json") == masked(graded_class.out / student / "report.json"), student
        assert (out / student / "report.html").read_bytes() == (
            graded_class.out / student / "report.html"
        ).read_bytes(), student
    for name in ("gradebook.csv", "results.jsonl", "summary.html"):
        assert (out / name).read_bytes() == (graded_class.out / name).read_bytes(), name
    assert [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".extract-")] == []


def test_an_lms_zip_is_graded_per_student_and_its_path_traversal_member_rejected(graded_class):
    done, out = graded_class.done, graded_class.out
    assert "member '../../escaped.py' rejected: its path leaves the archive's folder" in done.stderr
    assert not list(out.parent.rglob("escaped.py")) and not list(
        graded_class.inputs[1].parent.parent.rglob("escaped.py")
    )
    ann = json.loads((out / "Ann_Lee_1001_assignsubmission_file_" / "report.json").read_text())
    assert ann["score"] == ann["max_score"] and ann["submission"] == "a1.py"
    ben = json.loads((out / "ben_1002" / "report.json").read_text())
    assert ben["run"]["status"] == "syntax_error" and ben["score"] == 0


def test_usage_errors_exit_2_and_name_the_problem(tmp_path):
    missing = grade_cli(tmp_path / "nowhere", "--rubric", CLASS_RUBRIC, "--out", tmp_path / "out")
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    (tmp_path / "a.py").write_text("x = 1\n")
    jobs = grade_cli(tmp_path / "a.py", "--rubric", CLASS_RUBRIC, "--out", tmp_path / "out", "--jobs", 0)
    assert jobs.returncode == 2 and "--jobs 0" in jobs.stderr
    rubric = grade_cli(tmp_path / "a.py", "--rubric", "no-such-rubric", "--out", tmp_path / "out")
    assert rubric.returncode == 2 and "bundled ids" in rubric.stderr
    assert not (tmp_path / "out").exists()  # made for the sandbox's early start, removed when the run stopped


def test_problems_found_by_discovery_get_a_report_and_do_not_stop_the_batch(tmp_path):
    folder = tmp_path / "class"
    (folder / "amy").mkdir(parents=True)
    (folder / "amy" / "a.py").write_text("x = 1\n")
    (folder / "amy" / "b.ipynb").write_text("{}")
    (folder / "bo").mkdir()
    (folder / "bo" / "notes.txt").write_text("I forgot")
    os.symlink(tmp_path / "gone.py", folder / "cy.py")
    (folder / "readme.md").write_text("read me")
    done = grade_cli(folder, "--rubric", CLASS_RUBRIC, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    statuses = {
        s: json.loads((tmp_path / "out" / s / "report.json").read_text())["status"] for s in ("amy", "bo", "cy")
    }
    assert statuses == {"amy": "ambiguous", "bo": "no_code", "cy": "unreadable"}
    assert "skipped" in done.stderr and "readme.md" in done.stderr
    amy = (tmp_path / "out" / "amy" / "report.html").read_text()
    assert "hand in exactly one .py or .ipynb file" in amy
    assert done.stdout.strip().endswith(f"summary: {tmp_path / 'out' / 'summary.html'}")


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_is_a_bar_with_eta_on_a_terminal_and_sparse_lines_in_a_log():
    from grader.progress import Progress

    now = [0.0]
    log = _Stream(tty=False)
    progress = Progress(100, log, clock=lambda: now[0])
    for i in range(100):
        now[0] = i + 1.0  # one student per second
        progress.advance(f"s{i}")
    lines = log.getvalue().splitlines()
    assert (
        len(lines) == 10
        and lines[0] == "grading: 10/100 (10%), about 1:30 left"
        and lines[-1] == "grading: 100/100 (100%)"
    )
    terminal = _Stream(tty=True)
    now[0] = 0.0
    progress = Progress(4, terminal, clock=lambda: now[0])
    now[0] = 5.0
    progress.advance("ann")
    progress.finish()
    assert terminal.getvalue().startswith("\r\x1b[Kgrading █") and "1/4  25% · ETA 0:15  ann" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")


def test_inside_a_grade_run_the_class_folder_and_the_reports_are_hidden():
    """The workers are launched before the rubric is loaded (so before --out's default is known); what
    they hide must still cover the inputs and the output folder, for every student. Both lie in the Python
    environment, which the sandbox shows read-only (elsewhere they would not be visible in the first place)."""
    base = Path(tempfile.mkdtemp(dir=sys.prefix, prefix="bpg-test-hidden-"))
    base.chmod(0o755)  # readable by the job's unprivileged user, were it not hidden
    try:
        _spy_on_a_class(base / "class", base / "reports")
    finally:
        shutil.rmtree(base)


def _spy_on_a_class(folder: Path, out: Path) -> None:
    folder.mkdir(mode=0o755)
    spy = (
        f"import os\nfor p in ({str(folder)!r}, {str(out)!r}, {str(folder / 'ann.py')!r}):\n"
        "    print(p, os.path.exists(p) and bool(os.listdir(p) if os.path.isdir(p) else open(p).read()))\n"
    )
    (folder / "ann.py").write_text("# ann's secret answer\n")
    (folder / "zed.py").write_text(spy)
    done = grade_cli(folder, "--rubric", CLASS_RUBRIC, "--out", out, "--jobs", 2)
    assert done.returncode == 0, done.stderr
    printed = json.loads((out / "zed" / "report.json").read_text())["run"]["stdout"]
    assert printed.count(" False") == 3 and " True" not in printed, printed
