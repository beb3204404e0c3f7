"""Labels of arrays inside a CSV written by pandas (`DataFrame.to_csv`).

pandas writes an index column (header cell empty) unless told not to, quotes a cell that holds a comma,
a quote or a newline (a multi-line numpy str, a torch repr), and writes str() of every object. Seen:
long tables (`,name,value` / `0,dLdw1,"[[…]]"`, `layer,gradient` / `fc1.weight,"tensor(…)"`), wide ones
(`,dW1,db1,…` / `0,"[[…]]","[…]",…`), and a matrix as a table of numbers (`,0,1` / `0,0.1,0.2`).
An array's label is the text of the other cells in its row — with the column name before a number,
('layer 1') — or, when the row has none, the name of its own column.
"""

import bisect
import re
from dataclasses import dataclass, field

from grader.notebook.datfile.numbers import NUMBER_RE
from grader.notebook.datfile.scan import Block

_FIELD_RE = re.compile(r"^[\w .\-/]*$")
_LETTER_RE = re.compile(r"[A-Za-z]")
_BLANK_RE = re.compile(r'[ \t"]*')
MAX_LABEL_WORDS = 16  # a label longer than this is not a label a reader would write


@dataclass
class CsvLayout:
    """Column names, where the header line starts, and every cell after it as (start, end, column, row)."""

    names: list[str]
    header_start: int
    cells: list[tuple[int, int, int, int]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # cell starts, for bisect
    rows: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=dict)  # row -> its cells
    words: dict[int, list[tuple[int, str]]] = field(default_factory=dict, repr=False)  # row -> (column, word)
    leads: dict[int, int] = field(default_factory=dict, repr=False)  # cell start -> its first non-blank offset


def csv_layout(text: str) -> CsvLayout | None:
    """The layout of a file that starts with a pandas header line, else None."""
    stripped = text.lstrip("\n \t")
    first = stripped.split("\n", 1)[0]
    fields = first.split(",")
    if len(fields) < 2 or "\n" not in stripped or not all(_FIELD_RE.match(f) for f in fields):
        return None
    if not any(_LETTER_RE.search(f) for f in fields) and not first.startswith(","):
        return None
    start = len(text) - len(stripped)
    layout = CsvLayout([f.strip() for f in fields], start)
    cell, column, row, quoted = start + len(first) + 1, 0, 0, False
    for j in range(cell, len(text)):
        char = text[j]
        if char == '"':
            quoted = not quoted
        elif char in ",\n" and not quoted:
            layout.cells.append((cell, j, column, row))
            cell = j + 1
            column, row = (column + 1, row) if char == "," else (0, row + 1)
    layout.cells.append((cell, len(text), column, row))
    layout.starts = [c[0] for c in layout.cells]
    for c in layout.cells:
        layout.rows.setdefault(c[3], []).append(c)
    return layout


def csv_label(layout: CsvLayout, text: str, offset: int) -> str:
    """The label of the array starting at `offset` (see the module docstring); '' if there is none."""
    k = bisect.bisect_right(layout.starts, offset) - 1
    if k < 0:
        return ""
    cell_start, _, own_column, row = layout.cells[k]
    if cell_start not in layout.leads:
        layout.leads[cell_start] = _BLANK_RE.match(text, cell_start).end()
    if layout.leads[cell_start] < offset or len(layout.rows[row]) != len(layout.names):
        return ""  # not a pandas cell: pandas starts an array at its cell and writes every column
    if row not in layout.words:
        layout.words[row] = _row_words(layout, text, row)
    words = [word for column, word in layout.words[row] if column != own_column][:MAX_LABEL_WORDS]
    if words:
        return " ".join(words)
    name = layout.names[own_column] if own_column < len(layout.names) else ""
    return name if _LETTER_RE.search(name) else ""


def _row_words(layout: CsvLayout, text: str, row: int) -> list[tuple[int, str]]:
    """(column, word) of the cells of `row` that can label an array in it: text, or a number under a named
    column ('layer 1'); at most MAX_LABEL_WORDS + 1 of them (one may be the array's own cell), read once
    per row so that a wide row costs time in its width, not its width squared."""
    words = []
    for start, end, column, _ in layout.rows[row]:
        cell = text[start:end].strip().strip('"').strip()
        name = layout.names[column] if column < len(layout.names) else ""
        if "[" in cell or "(" in cell:
            continue
        if NUMBER_RE.fullmatch(cell):
            if _LETTER_RE.search(name):
                words.append((column, f"{name} {cell}"))
        elif _LETTER_RE.search(cell):
            words.append((column, cell))
        if len(words) > MAX_LABEL_WORDS:
            break
    return words


def drop_index_column(layout: CsvLayout | None, text: str, block: Block) -> Block:
    """A table of numbers written by pandas starts each row with its index 0, 1, …: drop that column."""
    if layout is None or len(block.shape) != 2 or layout.names[0] or block.shape[1] != len(layout.names):
        return block
    rows, columns = block.shape
    index = block.tokens[::columns]
    if [float(t) for t in index] != list(range(rows)):
        return block
    tokens = [t for k, t in enumerate(block.tokens) if k % columns]
    return Block(block.start, block.end, tokens, (rows, columns - 1))
