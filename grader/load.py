"""Load stage: a submission file becomes cells of Python source, or a clear reason why it cannot.

Nothing here executes student code. A notebook's `!shell` and `%magic` lines (and whole `%%cell`
magics) are dropped and noted, never run; so is IPython automagic such as a bare `pip install …` line.
A file that cannot be used at all (empty, not UTF-8, corrupt or non-v4 notebook, no code) gets a
`problem` the report shows the student, and the run is skipped.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_SOURCE_BYTES = 20 * 1024 * 1024  # a notebook with embedded plots is a few MB; 20 MB is not a hand-in
_AUTOMAGIC = re.compile(r"^\s*(pip|conda|cd|ls|mkdir|rm|cp|mv|wget|curl|unzip|apt|apt-get)\s+\S")
_MAGIC = re.compile(r"^\s*[!%]")


@dataclass(frozen=True)
class Submission:
    """A loaded submission: its cells (a .py file is one cell), what was dropped, and any problem."""

    path: Path
    kind: str
    sha256: str
    cells: list[str] = field(default_factory=list)
    cell_numbers: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: tuple[str, str] | None = None
    saved_outputs: list[str] = field(default_factory=list)
    saved_counts: list[int | None] = field(default_factory=list)  # each code cell's saved execution_count
    partly_run: list[bool] = field(default_factory=list)  # shell/magic lines dropped: its saved output shows them

    def notebook_cell(self, position: int) -> int:
        """The notebook's own number for the 1-based `position` among the code cells that ran."""
        return self.cell_numbers[position - 1] if 0 < position <= len(self.cell_numbers) else position

    @property
    def student(self) -> str:
        """The student id: the file name without its suffix."""
        return self.path.stem


def submission_hash(source_sha256: str, files: dict[str, bytes]) -> str:
    """The hash a report records: the file's sha256, combined with the files handed in beside it (if any),
    so a changed .dat file beside a notebook counts as a changed submission (`grade --resume`)."""
    if not files:
        return source_sha256
    digest = hashlib.sha256(source_sha256.encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def load_submission(path: Path) -> Submission:
    """Read `path` (.py or .ipynb); never raises for bad content, only records a problem."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    kind = path.suffix.lower().lstrip(".")

    def problem(status: str, message: str) -> Submission:
        return Submission(path, kind, digest, problem=(status, message))

    if kind not in {"py", "ipynb"}:
        return problem(
            "wrong_file_type",
            f"{path.name}: expected a .py file or a .ipynb notebook, found a .{kind} file; hand in your code as .py or .ipynb.",
        )
    if len(data) > MAX_SOURCE_BYTES:
        return problem(
            "too_large",
            f"{path.name}: expected at most {MAX_SOURCE_BYTES // 2**20} MB, found {len(data) / 2**20:.1f} MB; clear the notebook's outputs and hand it in again.",
        )
    if not data.strip():
        return problem("empty", f"{path.name}: the file is empty; hand in the file with your code in it.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return problem(
            "not_utf8",
            f"{path.name}: not UTF-8 text (invalid byte 0x{data[error.start]:02x} at offset {error.start}); save the file as UTF-8 and hand it in again.",
        )
    if kind == "py":
        return Submission(path, kind, digest, [text], [1])
    return _notebook(path, digest, text)


def _notebook(path: Path, digest: str, text: str) -> Submission:
    def problem(status: str, message: str) -> Submission:
        return Submission(path, "ipynb", digest, problem=(status, message))

    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        return problem(
            "corrupt_notebook",
            f"{path.name}: not a readable notebook (JSON error at line {error.lineno}: {error.msg}); download it again from Jupyter or Colab (File → Download .ipynb).",
        )
    except RecursionError:  # json.loads cannot read arrays or objects nested thousands deep; no notebook nests them
        return problem(
            "corrupt_notebook",
            f"{path.name}: not a readable notebook (its JSON is nested more deeply than any notebook's); download it again from Jupyter or Colab (File → Download .ipynb).",
        )
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        return problem(
            "corrupt_notebook",
            f"{path.name}: expected a notebook with a list of cells, found none; download it again from Jupyter or Colab.",
        )
    if notebook.get("nbformat") != 4:
        return problem(
            "old_notebook",
            f"{path.name}: expected notebook format 4, found {notebook.get('nbformat')!r}; open it in a current Jupyter and save it again.",
        )
    cells, numbers, notes, saved, counts, partly = [], [], [], [], [], []
    for number, cell in enumerate(notebook["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _text(cell.get("source", ""))
        if source is None:
            return problem(
                "corrupt_notebook",
                f"{path.name}: cell {number} has a source that is neither text nor a list of lines; download the notebook again from Jupyter or Colab.",
            )
        kept, dropped = strip_magics(source)
        notes += [
            f"cell {number}: `{line.strip()}` was not run (shell and magic lines never run here)" for line in dropped
        ]
        cells.append(kept)
        numbers.append(number)
        saved.append(_stream_text(cell.get("outputs")))
        count = cell.get("execution_count")
        counts.append(count if isinstance(count, int) and not isinstance(count, bool) else None)
        partly.append(bool(dropped))
    if not any(cell.strip() for cell in cells):
        return problem("no_code", f"{path.name}: the notebook has no code cells; put your functions in code cells.")
    return Submission(
        path, "ipynb", digest, cells, numbers, notes, saved_outputs=saved, saved_counts=counts, partly_run=partly
    )


def _stream_text(outputs: object) -> str:
    """The stdout a code cell printed when the student last ran it (stream outputs only)."""
    if not isinstance(outputs, list):
        return ""
    parts = []
    for output in outputs:
        if isinstance(output, dict) and output.get("output_type") == "stream" and output.get("name") == "stdout":
            parts.append(_text(output.get("text", "")) or "")
    return "".join(parts)


def _text(value: object) -> str | None:
    """A notebook's multi-line string as nbformat stores it (a string, a list of strings, or null), else None:
    anything else (numbers, lists nested 10^5 deep) is no text, and printing it could itself fail."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return None


def strip_magics(source: str) -> tuple[str, list[str]]:
    """Source with shell/magic lines replaced by `pass` lines (line numbers kept), and the dropped lines."""
    lines = source.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        return "\n".join("" for _ in lines), [lines[0]]
    kept, dropped = [], []
    for line in lines:
        if _MAGIC.match(line) or (_AUTOMAGIC.match(line) and not _is_python(line.strip())):
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(f"{indent}pass")
            dropped.append(line)
        else:
            kept.append(line)
    return "\n".join(kept), dropped


def _is_python(line: str) -> bool:
    """Whether a line parses as Python on its own (`cd = 3` does; `pip install torch` does not)."""
    try:
        compile(line, "<line>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # `pip -------…1`: the parser runs out of depth
        return False
    return True
