"""What a notebook run says as a whole, stated once instead of once per cell or per quantity.

- Most cells failed: one instructor flag (the grade rests on the few cells that ran, so someone should
  look), naming the failed cells and the first failure, which the others usually cascade from.
- A .dat file with nothing readable in it (empty, or text without a printed array): one student note
  instead of one "not found" note per gradient, and every check still missing points at that note.
"""

import dataclasses

from grader.load import Submission
from grader.notebook.datfile import assign_gradients, parse_dat
from grader.notebook.observation import Observed, written_file
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task
from grader.run import call_id
from grader.sandbox import CellStatus, RunResult

FIRST_FAILURE_CHARS = 200


def failed_cells_flag(run: RunResult, submission: Submission) -> list[str]:
    """A flag when more than half of the code cells with code in them stopped with an error (raised, did
    not compile, exited). Cells a hard exit or a limit kept from running are not counted: the run's own
    status already says so."""
    ran = {record.cell: record for record in run.cells}
    cells = [position for position, source in enumerate(submission.cells, start=1) if source.strip()]
    failed = [ran[p] for p in cells if p in ran and ran[p].status != CellStatus.ok]
    if len(failed) * 2 <= len(cells):
        return []
    first = failed[0]
    where = f"cell {submission.notebook_cell(first.cell)}" + (f", line {first.line}" if first.line else "")
    message = first.message.rstrip(". ")
    message = message if len(message) <= FIRST_FAILURE_CHARS else message[: FIRST_FAILURE_CHARS - 1] + "…"
    numbers = ", ".join(str(submission.notebook_cell(record.cell)) for record in failed)
    return [
        f"most cells failed: {len(failed)} of {len(cells)} code cells stopped with an error (cells {numbers}), "
        f"the first at {where}: {message}; the grade rests on the {len(cells) - len(failed)} that ran: "
        "open the notebook to see whether it runs as handed in"
    ]


def one_note_per_unread_file(rubric: Rubric, task: Task, observed: Observed, texts: dict[str, str]) -> Observed:
    """`observed` with each .dat file that holds no printed array stated once.

    `observe` notes every gradient such a file lacks ("my_autograd.dat: dW1 not found: …", one per
    quantity) and each check it could not fill says "not in my_autograd.dat"; here those become one note
    saying what the file holds, and the checks' messages point at it. What the parser says about lines it
    could not read is kept (it tells the student what to fix)."""
    if observed.net is None or observed.trial is None:
        return observed
    notes, found = list(observed.notes), dict(observed.found)
    for source, name in (("torch", rubric.submission.files.torch), ("scratch", rubric.submission.files.scratch)):
        text = written_file(texts, name)
        key = call_id(task, source, observed.trial)
        if text is None or key not in found:
            continue
        parsed = parse_dat(text)
        if parsed:
            continue
        state = "is empty" if not text.strip() else "holds no printed array of numbers"
        what = state if not text.strip() else f"{state} (its first line: {_first_line(text)!r})"
        dropped = {
            f"{name}: {problem}"
            for problem in assign_gradients(parsed, observed.net.layers).problems
            if problem not in parsed.problems
        }
        missing = list(found[key].problems)
        if not missing:
            tail = f"your {source} gradients were read from the notebook's variables instead"
        elif len(missing) == len(observed.net.params):
            tail = f"no variable of the notebook holds your {source} gradients either"
        else:
            tail = f"no variable of the notebook holds {', '.join(f'{source}.{k}' for k in missing)} either"
        note = f"{name} {what}: nothing in it could be graded; {tail}. Write every gradient to {name} with a label such as 'dW1'."
        at = next((i for i, n in enumerate(notes) if n in dropped), len(notes))
        notes = [*notes[:at], note, *(n for n in notes[at:] if n not in dropped)]
        problems = {
            k: f"{source}.{k}: not found — {name} {state} (see the notes) and no variable holds it" for k in missing
        }
        found[key] = dataclasses.replace(found[key], problems=problems)
    return dataclasses.replace(observed, notes=notes, found=found)


def _first_line(text: str) -> str:
    line = next(line for line in text.splitlines() if line.strip()).strip()
    return line if len(line) <= 40 else line[:39] + "…"
