"""Discovery: the PATHs given to `grade` become one candidate per student, and notes for the instructor.

    PATH is a .py/.ipynb file  → one student, id from the file name
    PATH is a folder or a .zip → a class: each entry in it is one student:
        a .py/.ipynb file      → that file (id from its name)
        a folder               → the student's folder (notebook plus .dat and data files); the single
                                 .py/.ipynb in it (at any depth) is graded, several are reported
        a .zip                 → the student's folder, zipped
      a class .zip whose only entry is a folder is unwrapped (a zipped folder of submissions)

Junk (.DS_Store, __MACOSX, .ipynb_checkpoints, hidden files) is skipped silently; other files are skipped
with a note. Nothing here is fatal: an unreadable file, a folder without code or with several code files
becomes a candidate with a `problem` (its report says so), and an id claimed twice is disambiguated and
noted. Files of one student are never mixed with another's: a candidate is one file or one folder.
"""

import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.archive import ArchiveError, Budget, extract_zip, is_junk
from grader.load import MAX_SOURCE_BYTES

CODE_SUFFIXES = (".py", ".ipynb")
# Files beside a folder's notebook go into its work directory (the sandbox's Job.files caps these too).
MAX_DATA_FILES, MAX_DATA_FILE_BYTES, MAX_DATA_TOTAL_BYTES = 100, 16 * 2**20, 32 * 2**20
RESERVED_IDS = frozenset({"summary.html", "gradebook.csv", "results.jsonl"})
MAX_DEPTH = 6


@dataclass(frozen=True)
class Candidate:
    """One student's submission: the code file to grade, or why there is none."""

    student: str  # safe as a directory name; unique in the batch
    name: str  # the file or folder name as handed in (student-controlled: escape it)
    origin: str  # where it was found, for the instructor
    source: Path | None = None
    problem: tuple[str, str] | None = None  # (status, student-facing message)
    data_files: tuple[Path, ...] = ()  # a folder's files beside its notebook (.dat, data), handed to its run
    notes: tuple[str, ...] = ()  # student-facing: data files left out, and why


@dataclass
class Discovery:
    """Every candidate, sorted by student id, and what the instructor should know."""

    candidates: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    junk: int = 0


def student_id(name: str) -> str:
    """A file or folder name made safe as a directory name: [A-Za-z0-9._-] (accents dropped: José → Jose),
    no leading dot or dash, never the name of a class file."""
    ascii_name = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).lstrip(".-")[:100] or "student"
    return f"{cleaned}_" if cleaned in RESERVED_IDS else cleaned


def discover(
    paths: list[Path], workdir: Path, exclude: tuple[Path, ...] = (), budget: Budget | None = None
) -> Discovery:
    """Candidates from `paths` (each must exist); archives are extracted under `workdir`."""
    finder = _Finder(workdir, tuple(p.resolve() for p in exclude), budget or Budget())
    for path in paths:
        label = str(path)
        if path.is_dir():
            finder.class_folder(path, label)
        elif path.suffix.lower() == ".zip":
            extracted = finder.extract(path, label)
            if extracted is not None:
                finder.class_folder(_unwrap(extracted), label)
        else:
            finder.student_file(path, label)
    finder.found.notes[:0] = finder.budget.notes
    finder.found.candidates = _unique(finder.found.candidates, finder.found.notes)
    return finder.found


class _Finder:
    def __init__(self, workdir: Path, exclude: tuple[Path, ...], budget: Budget):
        self.workdir, self.exclude, self.budget = workdir, exclude, budget
        self.found = Discovery()
        self.archives = 0

    def extract(self, archive: Path, label: str) -> Path | None:
        self.archives += 1
        destination = self.workdir / f"{self.archives:05d}"
        try:
            extract_zip(archive, destination, self.budget, label)
        except ArchiveError as error:
            self.found.notes.append(f"unreadable: {error}")
            return None
        return destination

    def class_folder(self, folder: Path, label: str) -> None:
        for entry, kind in self.entries(folder, f"{label}/"):
            entry_label = f"{label}/{entry.name}"
            if kind == "dir":
                self.student_folder(entry, student_id(entry.name), entry.name, entry_label)
            elif entry.suffix.lower() == ".zip":
                extracted = self.extract(entry, entry_label)
                if extracted is None:
                    self.add(
                        Candidate(
                            student_id(entry.stem),
                            entry.name,
                            entry_label,
                            problem=(
                                "unreadable",
                                f"{entry.name}: not a readable .zip archive; zip your folder again and hand it in again.",
                            ),
                        )
                    )
                else:
                    self.student_folder(extracted, student_id(entry.stem), entry.name, entry_label)
            elif entry.suffix.lower() in CODE_SUFFIXES or kind == "unreadable":
                self.student_file(entry, entry_label)
            else:
                self.found.notes.append(f"skipped {entry_label}: not a .py or .ipynb file, a folder or a .zip")

    def student_file(self, path: Path, label: str) -> None:
        self.add(Candidate(student_id(path.stem), path.name, label, source=path, problem=_unusable(path)))

    def student_folder(self, folder: Path, student: str, name: str, label: str) -> None:
        code, others = self.code_files(folder, label, 0)
        if len(code) == 1:
            path = code[0]
            data, notes = data_files(path)
            self.add(
                Candidate(
                    student,
                    name,
                    f"{label}/{path.relative_to(folder)}",
                    source=path,
                    problem=_unusable(path),
                    data_files=data,
                    notes=notes,
                )
            )
            return
        if code:
            listed = ", ".join(str(p.relative_to(folder)) for p in code)
            problem = (
                "ambiguous",
                f"{name}: the folder holds {len(code)} code files ({listed}); hand in exactly one .py or .ipynb file.",
            )
        else:
            listed = ", ".join(others[:8]) + (", …" if len(others) > 8 else "") if others else "nothing"
            problem = (
                "no_code",
                f"{name}: no .py or .ipynb file in the folder (found {listed}); hand in your notebook or .py file.",
            )
        self.add(Candidate(student, name, label, problem=problem))

    def code_files(self, folder: Path, label: str, depth: int) -> tuple[list[Path], list[str]]:
        """Code files under `folder` (zips inside a student's folder are opened too), and the other names."""
        code, others = [], []
        for entry, kind in self.entries(folder, f"{label}/"):
            if kind == "dir" and depth < MAX_DEPTH:
                found, rest = self.code_files(entry, f"{label}/{entry.name}", depth + 1)
                code += found
                others += [f"{entry.name}/{name}" for name in rest]
            elif entry.suffix.lower() == ".zip" and depth < 2:
                extracted = self.extract(entry, f"{label}/{entry.name}")
                if extracted is not None:
                    code += self.code_files(extracted, f"{label}/{entry.name}", depth + 1)[0]
            elif entry.suffix.lower() in CODE_SUFFIXES:
                code.append(entry)
            else:
                others.append(entry.name)
        return code, others

    def entries(self, folder: Path, label: str) -> list[tuple[Path, str]]:
        """Non-junk entries of `folder`, sorted by name, each as (path, 'dir' | 'file' | 'unreadable')."""
        try:
            names = sorted(os.listdir(folder))
        except OSError as error:
            self.found.notes.append(f"unreadable: {label}: {error.strerror or error}")
            return []
        result = []
        for name in names:
            path = folder / name
            if is_junk(name):
                self.found.junk += 1
            elif path.resolve() in self.exclude:
                continue
            elif path.is_dir():
                result.append((path, "dir"))
            else:
                result.append((path, "file" if path.is_file() else "unreadable"))
        return result

    def add(self, candidate: Candidate) -> None:
        self.found.candidates.append(candidate)


def _unusable(path: Path) -> tuple[str, str] | None:
    """Why a code file cannot even be read (checked without reading it whole), or None."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return ("unreadable", f"{path.name}: not a regular file; hand in the file itself.")
        if info.st_size > MAX_SOURCE_BYTES:
            return (
                "too_large",
                f"{path.name}: expected at most {MAX_SOURCE_BYTES // 2**20} MB, found "
                f"{info.st_size / 2**20:.1f} MB; clear the notebook's outputs and hand it in again.",
            )
        with open(path, "rb"):
            pass
    except OSError as error:
        return ("unreadable", f"{path.name}: the file could not be read ({error.strerror or error}); hand it in again.")
    return None


def data_files(code: Path) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The files beside a student's notebook (never another student's: only folders have them), within caps;
    and notes for the student on what was left out."""
    chosen, notes, total = [], [], 0
    for entry in sorted(code.parent.iterdir(), key=lambda p: p.name):
        if (
            entry == code
            or is_junk(entry.name)
            or not entry.is_file()
            or entry.suffix.lower() in (*CODE_SUFFIXES, ".zip")
        ):
            continue
        size = entry.stat().st_size
        if not entry.name.isprintable() or len(entry.name.encode("utf-8", "replace")) > 255:
            notes.append(f"{entry.name!r} was not placed beside your notebook: rename it to a plain file name")
        elif len(chosen) >= MAX_DATA_FILES or size > MAX_DATA_FILE_BYTES or total + size > MAX_DATA_TOTAL_BYTES:
            notes.append(
                f"{entry.name} ({size / 2**20:.1f} MB) was not placed beside your notebook: at most {MAX_DATA_FILES} "
                f"files, {MAX_DATA_FILE_BYTES >> 20} MB each and {MAX_DATA_TOTAL_BYTES >> 20} MB in all are"
            )
        else:
            chosen.append(entry)
            total += size
    return tuple(chosen), tuple(notes)


def read_data_files(paths: tuple[Path, ...]) -> dict[str, bytes]:
    """The contents of `data_files`' files by plain name, as the notebook's work directory gets them."""
    return {path.name: path.read_bytes() for path in paths}


def _unwrap(folder: Path) -> Path:
    """A zipped folder of submissions: descend while the only entry is a folder."""
    for _ in range(MAX_DEPTH):
        entries = [name for name in sorted(os.listdir(folder)) if not is_junk(name)]
        if len(entries) != 1 or not (folder / entries[0]).is_dir():
            break
        folder = folder / entries[0]
    return folder


def _unique(candidates: list[Candidate], notes: list[str]) -> list[Candidate]:
    """Sorted by id; an id claimed twice becomes each file's full name, then gets ~2, ~3 …, with a note."""
    claims: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        claims.setdefault(candidate.student, []).append(candidate)
    taken = {sid for sid, group in claims.items() if len(group) == 1}
    result = []
    for sid, group in sorted(claims.items()):
        if len(group) == 1:
            result.append(group[0])
            continue
        renamed = []
        for candidate in group:
            new = student_id(candidate.name)
            base, number = new, 2
            while new in taken:
                new, number = f"{base}~{number}", number + 1
            taken.add(new)
            renamed.append(replace(candidate, student=new))
        listing = "; ".join(f"{c.origin} → {c.student}" for c in renamed)
        notes.append(
            f"duplicate: student id {sid!r} is claimed by {len(group)} submissions, each graded under its own id: {listing}"
        )
        result += renamed
    return sorted(result, key=lambda c: c.student)
