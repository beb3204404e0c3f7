"""What the instructor must look at after grading a class: one definition, for `grade`'s closing line
("N notes to review") and summary.html's "To review" list, so the count printed is the count listed.

An item is one of:
- a flag of a student's report (instructor-only: autograd in scratch code, gradients reported after
  training, a notebook where most cells failed, …), one item per flag;
- a student whose submission did not run normally, one item: not graded at all (empty, ambiguous,
  unreadable, …), a run that did not end ok (syntax error, timeout, sandbox_error, …) or the grader's
  own failure (grader_error);
- a note of the batch itself: discovery (duplicate ids, skipped files, rejected archive members) and
  students whose report could not be read back.

Student-facing notes (a cell that raised, a .dat file that held nothing) are not items: they are the
student's feedback, and what makes a report doubtful becomes a flag where the report is made.
"""

from dataclasses import dataclass

from grader.export.results_jsonl import Record


@dataclass(frozen=True)
class ReviewItem:
    """One line of the review list: what to look at, and whose report it is about (None for a batch note)."""

    text: str
    record: Record | None = None
    status: str | None = None  # the outcome word of a run that did not end normally


def review_items(records: list[Record], notes: list[str]) -> list[ReviewItem]:
    """Every item to review, in a fixed order: flags, then runs that did not end normally (each by
    student), then the batch's notes as given."""
    records = sorted(records, key=lambda r: r["student"])
    items = [ReviewItem(str(flag), record) for record in records for flag in record["flags"]]
    items += [
        ReviewItem(str(record["message"]), record, str(record["status"]))
        for record in records
        if record["status"] != "graded"
    ]
    items += [ReviewItem(note) for note in notes]
    return items
