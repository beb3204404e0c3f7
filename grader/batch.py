"""Grading a class: discover submissions, grade them on N sandbox workers fed by 2N threads, write every file.

    run_batch(Grader, BatchOptions) -> BatchResult

Per student, out/<student>/report.html then out/<student>/report.json are written atomically, in that
order, as soon as the student is graded: a batch killed at any moment leaves only whole files, and a
report.json means the student is done. Nothing per student is kept in memory but its compact record (a few
hundred bytes, made once its report.json is written); the class files (results.jsonl, gradebook.csv,
summary.html) are built at the end from those records, and from the report.json files of the students a
`--resume` kept (which ones: grader/resume.py).
"""

import hashlib
import json
import queue
import shlex
import shutil
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from grader.discover import Candidate, discover, read_data_files
from grader.export.gradebook import write_gradebook
from grader.export.html import write_report_html
from grader.export.report_json import write_report_json
from grader.export.results_jsonl import read_record, report_record, write_results_jsonl
from grader.export.summary import write_summary
from grader.grader import GRADER_ERROR, Grader, traceback_flags
from grader.progress import Progress
from grader.report import GradeReport
from grader.resume import file_hash, same_settings, up_to_date, write_settings
from grader.review import review_items
from grader.sandbox import Sandbox

MAX_NOTES_PRINTED = 20
# Grading threads per sandbox worker: while one thread checks a finished student and writes the reports
# (grader CPU), another has the worker run the next one, so no worker waits.
THREADS_PER_JOB = 2


@dataclass(frozen=True)
class BatchOptions:
    """What a batch does beyond grading (the Grader's part): where it reads and writes, how many at once,
    whether it resumes, and the --timeout as given (for the command each report shows)."""

    paths: tuple[Path, ...]
    out: Path
    jobs: int = 1
    resume: bool = False
    timeout: float | None = None


@dataclass
class BatchResult:
    """What a batch did: outcome word → number of students, the batch's own notes (discovery, unreadable
    reports), how many items summary.html lists to review (`grader.review`), and where the class files are."""

    counts: Counter = field(default_factory=Counter)
    graded: int = 0
    reused: int = 0
    full_marks: int = 0
    notes: list[str] = field(default_factory=list)
    to_review: int = 0
    out: Path = Path(".")

    def closing_line(self) -> str:
        total = sum(self.counts.values())
        statuses = ", ".join(
            f"{n} {status}" for status, n in sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        )
        resumed = f", {self.reused} unchanged and kept (--resume)" if self.reused else ""
        return (
            f"{total} student{'s' * (total != 1)}: {statuses or 'none found'}; {self.full_marks} with full marks; "
            f"{self.graded} graded in this run{resumed}; {self.to_review} note{'s' * (self.to_review != 1)} to review; "
            f"summary: {self.out / 'summary.html'}"
        )


@dataclass
class _Context:
    grader: Grader
    options: BatchOptions
    out: Path
    stopping: threading.Event = field(default_factory=threading.Event)
    records: dict[str, str] = field(default_factory=dict)  # compact JSON records of the students this run wrote


def run_batch(grader: Grader, options: BatchOptions, err: TextIO = sys.stderr) -> BatchResult:
    """Grade every submission under `options.paths`; never stops for anything a submission does. The
    grader's sandbox is one the caller launched early (hiding at least the output folder and the inputs),
    or None to make one here; it is started when there is something to run, and closed."""
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)  # hidden from submissions, so it must exist before the sandbox starts
    _remove_leftovers(out)
    ctx = _Context(grader, options, out)
    result = BatchResult(out=options.out)
    with tempfile.TemporaryDirectory(dir=out, prefix=".extract-") as workdir:
        found = discover(list(options.paths), Path(workdir), exclude=(out,))
        result.notes = found.notes
        _print_notes(found.notes, err)
        resume = options.resume and same_settings(grader, out, err)
        write_settings(grader, out)
        rubric_hash = grader.rubric_hash
        pending = [c for c in found.candidates if not (resume and up_to_date(c, out / c.student, rubric_hash))]
        result.reused = len(found.candidates) - len(pending)
        result.graded = len(pending)
        runnable = sum(1 for c in pending if c.problem is None)
        with grader:
            if runnable:
                if grader.sandbox is None:
                    hide = [out, *(p.resolve() for p in options.paths)]
                    grader.sandbox = Sandbox(jobs=max(1, min(options.jobs, runnable)), hide=hide)
                grader.start()
            else:
                grader.close()
            _grade_all(ctx, pending, Progress(len(pending), err))
    _write_class_files(ctx, found.candidates, result)
    return result


def _grade_all(ctx: _Context, pending: list[Candidate], progress: Progress) -> None:
    """Grade on THREADS_PER_JOB × `jobs` threads sharing `jobs` sandbox workers; the calling thread only
    reports progress."""
    work: queue.SimpleQueue[Candidate] = queue.SimpleQueue()
    for candidate in pending:
        work.put(candidate)
    finished: queue.SimpleQueue[str] = queue.SimpleQueue()

    def worker() -> None:
        while not ctx.stopping.is_set():
            try:
                candidate = work.get_nowait()
            except queue.Empty:
                return
            try:
                _grade_one(ctx, candidate)
            except Exception as error:
                print(
                    f"error: {candidate.student}: the report could not be written: {printable(str(error))}",
                    file=sys.stderr,
                )
            finished.put(candidate.student)

    threads = [
        threading.Thread(target=worker, name=f"grade-{i}", daemon=True)
        for i in range(max(1, min(THREADS_PER_JOB * ctx.options.jobs, len(pending))))
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in pending:
            progress.advance(finished.get())
    except BaseException:
        ctx.stopping.set()  # threads finish their current student, write nothing more, and stop
        raise
    for thread in threads:
        thread.join()
    progress.finish()


def _grade_one(ctx: _Context, candidate: Candidate) -> None:
    """Grade one student and write their two files (html first: a report.json means the student is done)."""
    if candidate.problem is not None:
        report = _not_graded(ctx, candidate, candidate.problem)
    else:
        try:
            files = read_data_files(candidate.data_files)
        except OSError:
            report = _not_graded(ctx, candidate, GRADER_ERROR, traceback_flags())
        else:
            report = ctx.grader.grade(candidate.source, files)
        if report.student != candidate.student or candidate.notes:  # a folder's or a duplicate's id
            report = report.model_copy(
                update={"student": candidate.student, "notes": [*report.notes, *candidate.notes]}
            )
    if ctx.stopping.is_set():
        return
    folder = ctx.out / candidate.student
    write_report_html(report, folder, ctx.grader.rubric, _command(ctx, candidate))
    write_report_json(report, folder)
    ctx.records[candidate.student] = json.dumps(
        report_record(report, candidate.student)
    )  # a quarter of the dict's memory


def _not_graded(
    ctx: _Context, candidate: Candidate, problem: tuple[str, str], flags: Sequence[str] = ()
) -> GradeReport:
    """The report of a student whose submission could not be run at all (discovery found none to run)."""
    digest = file_hash(candidate.source) or hashlib.sha256(candidate.name.encode()).hexdigest()
    return ctx.grader.could_not_grade(candidate.student, candidate.name, digest, problem, flags)


def _command(ctx: _Context, candidate: Candidate) -> str:
    """The command that reproduces this grade (the hidden seed, a secret, only as a placeholder)."""
    words = ["backprop-grader", "grade", shlex.quote(candidate.name), "--rubric", ctx.grader.rubric.id]
    words += ["--out", "regraded"]
    if ctx.options.timeout is not None:
        words += ["--timeout", f"{ctx.options.timeout:g}"]
    if ctx.grader.hidden_seed is not None:
        words += ["--hidden-seed", "HIDDEN_SEED"]
    return " ".join(words)


def _write_class_files(ctx: _Context, candidates: list[Candidate], result: BatchResult) -> None:
    records = []
    for candidate in candidates:
        kept = ctx.records.get(candidate.student)
        record = json.loads(kept) if kept else read_record(ctx.out / candidate.student)
        if record is None:
            result.notes.append(
                f"missing: no readable report for {candidate.student} ({candidate.origin}); grade again with --resume"
            )
            continue
        records.append(record)
        result.counts[record["status"]] += 1
        result.full_marks += bool(record["max_score"]) and record["score"] >= record["max_score"] - 1e-9
    write_results_jsonl(records, ctx.out)
    write_gradebook(ctx.grader.rubric, records, ctx.out)
    write_summary(ctx.grader.rubric, records, result.notes, ctx.out)
    result.to_review = len(review_items(records, result.notes))  # what summary.html lists


def _remove_leftovers(out: Path) -> None:
    """Temporary files of a batch that was killed: extraction folders and half-written files (never read)."""
    for path in out.glob(".extract-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in [*out.glob(".*.tmp"), *out.glob("*/.*.tmp")]:
        path.unlink(missing_ok=True)


def _print_notes(notes: list[str], err: TextIO) -> None:
    for note in notes[:MAX_NOTES_PRINTED]:
        print(f"note: {printable(note)}", file=err)
    if len(notes) > MAX_NOTES_PRINTED:
        print(f"note: … and {len(notes) - MAX_NOTES_PRINTED} more (see summary.html)", file=err)


def printable(text: str) -> str:
    """File names are student-controlled: no terminal control characters reach the instructor's terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
