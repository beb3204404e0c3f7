"""A normal (non-editable) install works on its own: bundled rubrics are found by id."""

import os
import subprocess
import sys

from conftest import BUNDLED_RUBRICS, REPO


def test_a_normal_install_finds_the_bundled_rubrics_by_id(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    assert sorted(p.name for p in (target / "rubrics").glob("*.toml")) == sorted(f"{r}.toml" for r in BUNDLED_RUBRICS)
    # Run from an unrelated folder with only the installed copy on the path (no checkout in sight).
    env = {**os.environ, "PYTHONPATH": str(target)}
    listing = subprocess.run(
        [sys.executable, "-m", "grader", "rubric", "list", "--ids"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == BUNDLED_RUBRICS
    where = subprocess.run(
        [sys.executable, "-c", "import grader, rubrics; print(grader.__file__, rubrics.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    ).stdout
    assert str(REPO) not in where and str(target) in where
