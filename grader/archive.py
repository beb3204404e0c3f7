"""Extracting .zip archives of submissions safely.

LMSs export a class as a .zip (one file or one folder per student) and students hand in .zip files of their
folder. Archives are untrusted: a member may try to leave the target folder (`../x`, `/etc/x`, `C:\\x`),
be a symlink, be encrypted, or be a zip bomb (a few KB that inflate to gigabytes, or many members sharing
one compressed stream). Every member is checked before anything is written, inflated sizes are counted as
bytes arrive (a header that lies about its size does not help), and one `Budget` caps the whole batch.
A rejected member is skipped and reported; the rest of the archive is still extracted.
"""

import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.errors import SubmissionError

JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", ".ipynb_checkpoints", "__pycache__", "Thumbs.db", "desktop.ini"})
CHUNK = 1 << 16


def is_junk(name: str) -> bool:
    """Names no student hands in on purpose: OS and editor litter, hidden files and folders."""
    return name in JUNK_NAMES or name.startswith((".", "~$"))


class ArchiveError(SubmissionError):
    """An archive that cannot be read at all (not a zip, truncated, over the batch's budget)."""


@dataclass
class Budget:
    """Caps on everything extracted in one batch, shared by every archive (nested ones included)."""

    max_member_bytes: int = 64 * 2**20
    max_total_bytes: int = 2 * 2**30
    max_members: int = 100_000
    max_ratio: float = 200.0  # inflated / compressed; text compresses ~10x, a bomb ~1000x
    ratio_floor_bytes: int = 2**20  # the ratio is judged only for members inflating past this
    used_bytes: int = 0
    used_members: int = 0
    notes: list[str] = field(default_factory=list)


def extract_zip(archive: Path, destination: Path, budget: Budget, label: str) -> None:
    """Extract the safe members of `archive` into `destination` (created); notes go to `budget.notes`.

    `label` names the archive in notes (instructor-facing). Raises ArchiveError when the file is not a
    readable zip; a bad member never raises.
    """
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    try:
        with zipfile.ZipFile(archive) as zipped:
            written: set[PurePosixPath] = set()
            for info in zipped.infolist():
                parts = _safe_parts(info, budget, label)
                if parts is None or info.is_dir():
                    continue
                relative = PurePosixPath(*parts)
                if relative in written or any(parent in written for parent in relative.parents):
                    budget.notes.append(f"{label}: member {info.filename!r} rejected: the archive holds it twice")
                    continue
                if _extract_member(zipped, info, root, parts, budget, label):
                    written.add(relative)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as error:
        raise ArchiveError(f"{label}: not a readable .zip archive ({error}); export the submissions again") from None
    except OSError as error:
        raise ArchiveError(f"{label}: cannot be read ({error.strerror or error})") from None


def _safe_parts(info: zipfile.ZipInfo, budget: Budget, label: str) -> list[str] | None:
    """The member's path components when it may be extracted; None (with a note unless junk) otherwise."""
    name = info.filename.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    leaves = name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts
    if not leaves and any(is_junk(part) for part in parts):
        return None
    reason = "its path leaves the archive's folder" if leaves else _refusal(name, parts, info, budget)
    if reason:
        budget.notes.append(f"{label}: member {info.filename!r} rejected: {reason}")
        return None
    return parts


def _refusal(name: str, parts: list[str], info: zipfile.ZipInfo, budget: Budget) -> str:
    """Why this member must not be extracted, or ''."""
    if "\0" in name or not parts:
        return "its name is not a usable path"
    if info.is_dir():
        return ""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "it is a symbolic link"
    if info.flag_bits & 0x1:
        return "it is encrypted"
    if info.file_size > budget.max_member_bytes:
        return (
            f"it inflates to {info.file_size / 2**20:.0f} MB (at most {budget.max_member_bytes // 2**20} MB per file)"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > budget.ratio_floor_bytes and ratio > budget.max_ratio:
        return f"it inflates {ratio:.0f}-fold (a zip bomb)"
    if budget.used_members >= budget.max_members or budget.used_bytes + info.file_size > budget.max_total_bytes:
        return "the batch's extraction budget is used up"
    return ""


def _extract_member(
    zipped: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path, parts: list[str], budget: Budget, label: str
) -> bool:
    """Stream one member to disk, stopping as soon as it inflates past what its header or the budget allow."""
    target = root.joinpath(*parts)
    if root not in target.parents:  # belt and braces: _safe_parts already refused anything that could leave
        budget.notes.append(f"{label}: member {info.filename!r} rejected: its path leaves the archive's folder")
        return False
    allowed = min(info.file_size, budget.max_member_bytes, budget.max_total_bytes - budget.used_bytes)
    size = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipped.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > allowed:
                    raise _Oversized
                sink.write(chunk)
    except _Oversized:
        target.unlink(missing_ok=True)
        budget.notes.append(
            f"{label}: member {info.filename!r} rejected: it inflates past its declared size (a zip bomb)"
        )
        return False
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError, ValueError) as error:
        target.unlink(missing_ok=True)
        budget.notes.append(f"{label}: member {info.filename!r} rejected: it cannot be extracted ({error})")
        return False
    budget.used_bytes += size
    budget.used_members += 1
    return True


class _Oversized(Exception):
    pass
