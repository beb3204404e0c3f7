"""Discovery: which files are whose submission, what is junk, and archives that try to do harm."""

import os
import zipfile

import pytest

from grader.archive import Budget, extract_zip
from grader.discover import discover, student_id


def found(tmp_path, *paths, **budget):
    return discover(list(paths), tmp_path / "work", budget=Budget(**budget) if budget else None)


def by_id(discovery):
    return {c.student: c for c in discovery.candidates}


def test_student_ids_are_safe_directory_names():
    assert student_id("Jane Doe (2)") == "Jane_Doe_2_"
    assert student_id("../../etc/passwd") == "_.._etc_passwd" and student_id("..") == "student"
    assert student_id(".bashrc") == "bashrc"
    assert student_id("=cmd|' /C calc'!A0") == "_cmd_C_calc_A0"
    assert student_id("José Núñez") == "Jose_Nunez" and student_id("日本") == "_" and student_id("") == "student"
    assert student_id("summary.html") == "summary.html_"  # never a class file's name


def test_files_and_student_folders_become_one_candidate_each(tmp_path):
    root = tmp_path / "class"
    (root / "ann").mkdir(parents=True)
    (root / "ann" / "work").mkdir()
    (root / "ann" / "work" / "A1.ipynb").write_text("{}")
    (root / "ann" / "torch_autograd.dat").write_text("dW1 ...")
    (root / "bob.py").write_text("x = 1\n")
    (root / "Cy Young.ipynb").write_text("{}")
    result = by_id(found(tmp_path, root))
    assert sorted(result) == ["Cy_Young", "ann", "bob"]
    assert result["ann"].source == root / "ann" / "work" / "A1.ipynb" and result["ann"].name == "ann"
    assert result["bob"].source == root / "bob.py" and result["bob"].problem is None
    assert result["Cy_Young"].name == "Cy Young.ipynb"


def test_junk_is_skipped_silently(tmp_path):
    root = tmp_path / "class"
    for folder in ("__MACOSX", ".ipynb_checkpoints", ".git", "__pycache__"):
        (root / folder).mkdir(parents=True)
        (root / folder / "x.py").write_text("x = 1\n")
    for name in (".DS_Store", ".hidden.py", "Thumbs.db", "~$notes.py"):
        (root / name).write_text("junk")
    (root / "ann.py").write_text("x = 1\n")
    result = found(tmp_path, root)
    assert [c.student for c in result.candidates] == ["ann"]
    assert result.notes == [] and result.junk == 8


def test_a_folder_with_several_code_files_or_none_is_reported_not_guessed(tmp_path):
    root = tmp_path / "class"
    (root / "amy").mkdir(parents=True)
    (root / "amy" / "a1.ipynb").write_text("{}")
    (root / "amy" / "a1.py").write_text("x = 1\n")
    (root / "bo").mkdir()
    (root / "bo" / "report.pdf").write_bytes(b"%PDF")
    (root / "cy").mkdir()
    result = by_id(found(tmp_path, root))
    assert result["amy"].source is None and result["amy"].problem[0] == "ambiguous"
    assert "a1.ipynb, a1.py" in result["amy"].problem[1]
    assert result["bo"].problem == (
        "no_code",
        "bo: no .py or .ipynb file in the folder (found report.pdf); hand in your notebook or .py file.",
    )
    assert result["cy"].problem[0] == "no_code"


def test_duplicate_students_are_each_graded_under_their_own_id_and_reported(tmp_path):
    first, second = tmp_path / "section-a", tmp_path / "section-b"
    for folder in (first, second):
        folder.mkdir()
        (folder / "ann.py").write_text(f"# {folder.name}\n")
    (first / "ann.ipynb").write_text("{}")
    result = found(tmp_path, first, second)
    ids = {c.student: c.source for c in result.candidates}
    assert ids == {"ann.ipynb": first / "ann.ipynb", "ann.py": first / "ann.py", "ann.py~2": second / "ann.py"}
    assert len(result.notes) == 1 and result.notes[0].startswith(
        "duplicate: student id 'ann' is claimed by 3 submissions"
    )


def test_unreadable_and_oversized_files_get_a_problem_not_an_exception(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    os.symlink(tmp_path / "nowhere.py", root / "gone.py")
    os.mkfifo(root / "pipe.py")  # opening it for reading would block forever
    with open(root / "huge.ipynb", "wb") as handle:
        handle.truncate(21 * 2**20)
    (root / "notes.txt").write_text("hello")
    result = found(tmp_path, root)
    problems = {c.student: c.problem[0] for c in result.candidates}
    assert problems == {"gone": "unreadable", "pipe": "unreadable", "huge": "too_large"}
    assert result.notes == [f"skipped {root}/notes.txt: not a .py or .ipynb file, a folder or a .zip"]


def test_the_output_folder_inside_an_input_is_not_a_student(tmp_path):
    root = tmp_path / "class"
    (root / "out" / "ann").mkdir(parents=True)
    (root / "out" / "ann" / "report.json").write_text("{}")
    (root / "ann.py").write_text("x = 1\n")
    result = discover([root], tmp_path / "work", exclude=(root / "out",))
    assert [c.student for c in result.candidates] == ["ann"]


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


def test_a_class_zip_is_unwrapped_and_student_zips_inside_it_are_opened(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"dan/a1.py": "x = 1\n", "dan/data.dat": "1 2"})
    archive = make_zip(
        tmp_path / "class.zip",
        {
            "Assignment 1/ann.py": "x = 1\n",
            "Assignment 1/bob_42/a1.ipynb": "{}",
            "Assignment 1/dan.zip": inner.read_bytes(),
            "__MACOSX/Assignment 1/._ann.py": "junk",
        },
    )
    result = by_id(found(tmp_path, archive))
    assert sorted(result) == ["ann", "bob_42", "dan"]
    assert result["dan"].source.name == "a1.py" and result["dan"].source.read_text() == "x = 1\n"
    assert result["bob_42"].origin == f"{archive}/bob_42/a1.ipynb"


def test_zip_members_that_leave_the_folder_or_link_elsewhere_are_rejected(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("ann.py", "x = 1\n")
        zipped.writestr("../escape.py", "x = 1\n")
        zipped.writestr("a/../../../escape2.py", "x = 1\n")
        zipped.writestr("/etc/escape3.py", "x = 1\n")
        zipped.writestr("C:\\escape4.py", "x = 1\n")
        link = zipfile.ZipInfo("link.py")
        link.external_attr = 0o120777 << 16
        zipped.writestr(link, "/etc/passwd")
    budget = Budget()
    extract_zip(archive, tmp_path / "x" / "y", budget, "evil.zip")
    assert sorted(p.name for p in (tmp_path / "x").rglob("*") if p.is_file()) == ["ann.py"]
    assert not list(tmp_path.rglob("escape*.py"))
    reasons = [note.split("rejected: ")[1] for note in budget.notes]
    assert reasons == ["its path leaves the archive's folder"] * 4 + ["it is a symbolic link"]


def test_zip_bombs_are_rejected_by_ratio_size_and_while_inflating(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"ann.py": "x = 1\n", "bomb.py": b"\0" * (3 * 2**20)})
    budget = Budget()
    extract_zip(archive, tmp_path / "a", budget, "bomb.zip")
    assert (tmp_path / "a" / "ann.py").exists() and not (tmp_path / "a" / "bomb.py").exists()
    assert "(a zip bomb)" in budget.notes[0]
    small = Budget(max_member_bytes=1000)
    extract_zip(make_zip(tmp_path / "big.zip", {"big.py": "#" * 5000}), tmp_path / "b", small, "big.zip")
    assert "at most 0 MB per file" in small.notes[0] and not (tmp_path / "b" / "big.py").exists()
    # A header that lies: it declares 100 bytes, the data inflates to 200 kB.
    liar = make_zip(tmp_path / "liar.zip", {"liar.py": "x" * 200_000})
    data = bytearray(liar.read_bytes())
    for offset in (data.find(b"PK\x03\x04") + 22, data.find(b"PK\x01\x02") + 24):
        data[offset : offset + 4] = (100).to_bytes(4, "little")
    liar.write_bytes(bytes(data))
    lied = Budget()
    extract_zip(liar, tmp_path / "c", lied, "liar.zip")
    assert not (tmp_path / "c" / "liar.py").exists() and "rejected" in lied.notes[0]


def test_the_batch_budget_caps_the_total_extracted(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"s{i}.py": "x" * 600 for i in range(10)})
    budget = Budget(max_total_bytes=2000)
    extract_zip(archive, tmp_path / "a", budget, "many.zip")
    assert len(list((tmp_path / "a").iterdir())) == 3 and budget.used_bytes == 1800
    assert budget.notes[-1].endswith("the batch's extraction budget is used up")


def test_a_corrupt_zip_is_reported_and_the_rest_of_the_class_is_still_found(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    (root / "ann.zip").write_bytes(b"PK\x03\x04 truncated")
    (root / "bob.py").write_text("x = 1\n")
    (tmp_path / "export.zip").write_bytes(b"not a zip")
    result = found(tmp_path, root, tmp_path / "export.zip")
    assert by_id(result)["ann"].problem[0] == "unreadable" and by_id(result)["bob"].problem is None
    assert any(note.startswith(f"unreadable: {tmp_path / 'export.zip'}: not a readable .zip") for note in result.notes)


@pytest.mark.parametrize("name", ["ann.PY", "ann.IPYNB"])
def test_suffixes_are_matched_case_insensitively(tmp_path, name):
    root = tmp_path / "class"
    root.mkdir()
    (root / name).write_text("x = 1\n")
    assert [c.student for c in found(tmp_path, root).candidates] == ["ann"]


def test_a_folders_data_files_go_with_its_notebook_and_never_a_classmates(tmp_path):
    root = tmp_path / "class"
    (root / "ann").mkdir(parents=True)
    (root / "ann" / "a1.ipynb").write_text("{}")
    (root / "ann" / "my_autograd.dat").write_text("dW1 ...")
    (root / "ann" / "torch_autograd.dat").write_text("dW1 ...")
    (root / "ann" / ".DS_Store").write_text("junk")
    with open(root / "ann" / "weights.npy", "wb") as handle:
        handle.truncate(17 * 2**20)
    (root / "bob.ipynb").write_text("{}")
    (root / "bob_autograd.dat").write_text("dW1 ...")
    result = by_id(found(tmp_path, root))
    assert [p.name for p in result["ann"].data_files] == ["my_autograd.dat", "torch_autograd.dat"]
    assert result["ann"].notes == (
        "weights.npy (17.0 MB) was not placed beside your notebook: at most 100 files, 16 MB each and 32 MB in all are",
    )
    assert result["bob"].data_files == ()  # files beside a file student belong to the whole class folder
