"""grader/files.py: an output file is whole or absent, readable as the umask allows, with nothing left beside it."""

import os
import stat

from grader.files import write_atomic


def test_a_written_file_holds_exactly_the_text_with_the_umask_mode_and_no_temporary_file_is_left(tmp_path):
    target = tmp_path / "deep" / "report.json"
    text = "é" * 70_000 + "\n"  # over one write's worth on some systems, and not ASCII
    write_atomic(target, text)
    write_atomic(target, text)  # over an existing file
    assert target.read_text(encoding="utf-8") == text
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_bytes_are_written_as_they_are(tmp_path):
    target = tmp_path / "data.bin"
    write_atomic(target, bytes(range(256)) * 10)
    assert target.read_bytes() == bytes(range(256)) * 10
