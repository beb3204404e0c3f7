"""Where the notebook's own code is running: the cell and line of a frame of student code.

Standalone on purpose: shipped as source into the sandbox (as bpg_places) and used in the child by the
notebook-mode shims that report a place to the student (bpg_missing, bpg_gpu); standard library only.

A frame is the student's when its code comes from a cell run so far (notebook.Session.names: "<cell N>",
or the file name of a single .py file); frames of the sandbox's own modules ("<sandbox ...>") are ours.
Cell numbers are 1-based positions in Job.cells, as everywhere in the child.
"""

import linecache
from collections.abc import Callable

OURS = "<sandbox "
IMPORT_MACHINERY = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
MAX_LINE_TEXT = 120


class Places:
    """Cell and line of student frames.

    `files` is the set of cell files run so far (shared with the session, which adds to it);
    `current` returns (number, cell file) of the cell running now, or None between cells."""

    def __init__(self, files: set, current: Callable[[], tuple | None]):
        self.files, self.current = files, current

    def cell_of(self, filename: str) -> int | None:
        """The cell a student file holds (a single .py file is cell 1), None for any other file."""
        if filename not in self.files:
            return None
        if filename.startswith("<cell ") and filename.endswith(">") and filename[6:-1].isdigit():
            return int(filename[6:-1])
        return 1

    def innermost(self, frame) -> tuple[int, int, object] | None:
        """(cell, line, frame) of the innermost student frame from `frame` outwards; None when a frame of
        ours comes first (our own code probing a value is not the student's use of it) or there is none."""
        while frame is not None:
            filename = frame.f_code.co_filename
            cell = self.cell_of(filename)
            if cell is not None:
                return cell, frame.f_lineno, frame
            if filename.startswith(OURS):
                return None
            frame = frame.f_back
        return None

    def importer(self, frame) -> tuple[int, int, object] | None:
        """(cell, line, frame) of the student frame whose import statement is being run, when the frame
        right outside the import machinery is the student's; None when a library (torch, numpy, importlib's
        own import_module or find_spec) is importing."""
        while frame is not None and frame.f_code.co_filename in IMPORT_MACHINERY:
            frame = frame.f_back
        if frame is None:
            return None
        cell = self.cell_of(frame.f_code.co_filename)
        return None if cell is None else (cell, frame.f_lineno, frame)

    def top_level(self, frame) -> tuple[int, int | None]:
        """(cell, line) of the running cell's top-level code around `frame` (the place a cell that stops
        there is reported at); the line is None when that frame is not on the stack."""
        current = self.current()
        if current is None:
            return 0, None
        number, cell_file = current
        line = None
        while frame is not None:
            if frame.f_code.co_filename == cell_file and frame.f_code.co_name == "<module>":
                line = frame.f_lineno
            frame = frame.f_back
        return number, line

    def text(self, frame) -> str:
        """The source line a student frame is running, stripped and shortened."""
        text = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
        return text if len(text) <= MAX_LINE_TEXT else text[: MAX_LINE_TEXT - 1] + "…"

    def student_frames(self, frame):
        """Every student frame from `frame` outwards."""
        while frame is not None:
            if frame.f_code.co_filename in self.files:
                yield frame
            frame = frame.f_back
