"""Which file of /autograder/submission to grade.

Students upload one file, several, or a folder (a zip or a repository). The file graded is the only
.py/.ipynb file; among several, the one that defines the rubric's contract functions (contract rubrics)
or the only notebook (notebook rubrics). Anything else is reported to the student with what was found and
what to upload. Symbolic links are never followed: a link could point at the autograder's own files.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.discover import data_files
from grader.load import load_submission
from grader.rubric.model import Rubric

CODE_SUFFIXES = (".py", ".ipynb")
_SKIPPED = {"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git"}


@dataclass(frozen=True)
class Upload:
    """What a student's upload (as Gradescope laid it out in /autograder/submission) gives the grader: the file
    to grade (with, for notebook rubrics, the files beside it), or why there is none (status, student-facing
    message); notes for the student.

    Not `grader.found.Found` (what a submission produced, the check stage's input): this comes before any run."""

    path: Path | None = None
    problem: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    data_files: tuple[Path, ...] = ()  # notebook rubrics: the files beside the notebook (.dat, data), for its run


def find_submission(folder: Path, rubric: Rubric) -> Upload:
    """Pick the file to grade under `folder`; never raises for what students upload."""
    files, links = _files(folder)
    notes = [f"{name}: a symbolic link, not graded (upload the file itself)." for name in links]
    if not files:
        return Upload(
            problem=("empty", "No files were submitted. Upload your .py file or .ipynb notebook."), notes=notes
        )
    code = [f for f in files if f.suffix.lower() in CODE_SUFFIXES]
    if not code:
        if len(files) == 1:  # the load stage explains what is wrong with that one file
            return Upload(path=files[0], notes=notes)
        names = ", ".join(_name(folder, f) for f in files)
        return Upload(
            problem=(
                "wrong_file_type",
                f"Expected a .py file or a .ipynb notebook; found {names}. Upload your code as .py or .ipynb.",
            ),
            notes=notes,
        )
    if len(code) == 1:
        chosen = code[0]
    else:
        chosen, problem = _choose(folder, code, rubric)
        if chosen is None:
            return Upload(problem=("ambiguous", problem), notes=notes)
        notes = notes + [f"Several files were submitted; graded {_name(folder, chosen)}."]
    data: tuple[Path, ...] = ()
    if rubric.submission.kind == "notebook":  # its .dat and data files go beside it, as in a class folder
        data, left_out = data_files(chosen)
        notes = notes + list(left_out)
    return Upload(path=chosen, notes=notes + _ignored(folder, files, (chosen, *data)), data_files=data)


def _files(folder: Path) -> tuple[list[Path], list[str]]:
    """Regular files under `folder` (sorted, hidden and tool folders skipped), and the links skipped."""
    files, links = [], []
    if not folder.is_dir() or folder.is_symlink():
        return files, links
    pending = [folder]
    while pending:
        for entry in sorted(pending.pop().iterdir()):
            if entry.name.startswith(".") or entry.name in _SKIPPED:
                continue
            if entry.is_symlink():
                links.append(_name(folder, entry))
            elif entry.is_dir():
                pending.append(entry)
            elif entry.is_file():
                files.append(entry)
    return sorted(files), links


def _choose(folder: Path, code: list[Path], rubric: Rubric) -> tuple[Path | None, str]:
    names = ", ".join(_name(folder, f) for f in code)
    if rubric.submission.kind == "notebook":
        notebooks = [f for f in code if f.suffix.lower() == ".ipynb"]
        if len(notebooks) == 1:
            return notebooks[0], ""
        return None, (
            f"Expected one notebook; found {names}, and could not tell which one to grade. "
            "Upload only the notebook to be graded."
        )
    functions = [name for task in rubric.tasks for name in task.contract.functions().values()]
    defined = {f: _defined(f, functions) for f in code}
    best = max(defined.values())
    matches = [f for f, count in defined.items() if count == best]
    if best > 0 and len(matches) == 1:
        return matches[0], ""
    wanted = ", ".join(f"{name}()" for name in functions)
    return None, (
        f"Found several files ({names}) and could not tell which one to grade: expected exactly one "
        f"of them to define {wanted}. Upload only the file to be graded."
    )


def _defined(path: Path, functions: list[str]) -> int:
    """How many of `functions` the file defines at the top level (0 if it cannot be read)."""
    submission = load_submission(path)
    source = "\n".join(submission.cells)
    return sum(bool(re.search(rf"^def\s+{re.escape(name)}\s*\(", source, re.MULTILINE)) for name in functions)


def _ignored(folder: Path, files: list[Path], used: tuple[Path, ...]) -> list[str]:
    others = [_name(folder, f) for f in files if f not in used]
    return [f"Also submitted, not read by the grader (it runs your code): {', '.join(others)}."] if others else []


def _name(folder: Path, path: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return path.name
