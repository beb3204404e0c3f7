"""`gradescope build`: the zip Gradescope needs, with scripts that parse, a wheel that installs and works,
and a run_autograder that writes results.json even when the grader cannot start."""

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

from grader.errors import UsageError
from grader.gradescope.build import CPU_INDEX_URL, build_autograder, installed_torch_version
from grader.rubric.files import load_rubric

SCRIPTS = ("setup.sh", "run_autograder")


def instructor_copy(folder: Path, rubric_id: str = "bs6207-a1", seed: object = None) -> Path:
    """The instructor's copy of a bundled rubric, as the README says to make it: a hidden seed of its own
    (a fresh one of the kind the bundled rubric holds), or `seed`."""
    text = (REPO / "rubrics" / f"{rubric_id}.toml").read_text(encoding="utf-8")
    bundled = load_rubric(rubric_id).trials.hidden_seed
    if seed is None:
        seed = secrets.token_hex(16) if isinstance(bundled, str) else secrets.randbits(62)
    copy = folder / f"my-{rubric_id}.toml"
    value = json.dumps(seed)  # a TOML integer or basic string
    copy.write_text(
        re.sub(r"(?m)^hidden_seed = .*$", lambda _: f"hidden_seed = {value}", text, count=1), encoding="utf-8"
    )
    assert load_rubric(str(copy)).trials.hidden_seed == seed
    return copy


def fake_wheel(folder: Path) -> Path:
    wheel = folder / "backprop_grader-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + bytes(18))
    return wheel


def extract(archive: Path, folder: Path) -> None:
    """Unzip keeping each entry's Unix permissions (zipfile drops them; Gradescope's unzip keeps them)."""
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            path = Path(opened.extract(info, folder))
            path.chmod(stat.S_IMODE(info.external_attr >> 16))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The zip built once by the real command, its files unzipped, and its wheel installed with --target."""
    work = tmp_path_factory.mktemp("gradescope-build")
    archive = work / "autograder.zip"
    rubric = instructor_copy(work)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "gradescope",
            "build",
            "--rubric",
            str(rubric),
            "-o",
            str(archive),
            "--torch-version",
            "2.13.0",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    source = work / "source"
    extract(archive, source)
    [wheel] = source.glob("backprop_grader-*.whl")
    site = work / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    return {
        "work": work,
        "archive": archive,
        "source": source,
        "site": site,
        "wheel": wheel,
        "stdout": done.stdout,
        "rubric": rubric,
    }


def test_the_zip_holds_the_scripts_the_rubric_and_the_wheel_at_its_root(built):
    with zipfile.ZipFile(built["archive"]) as archive:
        names = archive.namelist()
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in archive.infolist()}
    assert sorted(names) == sorted([*SCRIPTS, "rubric.toml", built["wheel"].name])
    assert all("/" not in name for name in names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert (built["source"] / "rubric.toml").read_bytes() == built["rubric"].read_bytes()


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_scripts_are_executable_bash_that_parses(built, script):
    path = built["source"] / script
    assert os.access(path, os.X_OK) and path.read_text().startswith("#!/usr/bin/env bash\n")
    check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert not re.search(r"@[A-Z_]+@", path.read_text())  # every placeholder was filled in


def test_setup_installs_the_chosen_torch_and_the_bundled_wheel(built):
    setup = (built["source"] / "setup.sh").read_text()
    assert "TORCH_VERSION='2.13.0'" in setup and f"TORCH_INDEX_URL='{CPU_INDEX_URL}'" in setup
    assert f"WHEEL='{built['wheel'].name}'" in setup and "RUBRIC='rubric.toml'" in setup
    assert "bubblewrap" in setup and "apt-get" in setup
    run = (built["source"] / "run_autograder").read_text()
    assert 'gradescope run --rubric "$ROOT/source/rubric.toml" --root "$ROOT"' in run


def test_the_bundled_wheel_installs_and_runs_on_its_own(built):
    env = {**os.environ, "PYTHONPATH": str(built["site"])}
    listing = subprocess.run(
        [sys.executable, "-m", "grader", "rubric", "list", "--ids"],
        capture_output=True,
        text=True,
        cwd=built["work"],
        env=env,
    )
    assert listing.returncode == 0, listing.stderr
    assert sorted(listing.stdout.split()) == sorted(p.stem for p in (REPO / "rubrics").glob("*.toml"))
    where = subprocess.run(
        [sys.executable, "-c", "import grader; print(grader.__file__)"],
        capture_output=True,
        text=True,
        cwd=built["work"],
        env=env,
    ).stdout
    assert str(built["site"]) in where and str(REPO) not in where
    templates = built["site"] / "grader" / "gradescope" / "templates"
    assert sorted(p.name for p in templates.iterdir()) == sorted(SCRIPTS)


def container(built, tmp_path: Path, submission: Path | None) -> Path:
    root = tmp_path / "autograder"
    extract(built["archive"], root / "source")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    if submission is not None:
        (root / "submission" / submission.name).write_bytes(submission.read_bytes())
    return root


def test_run_autograder_grades_with_the_installed_wheel(built, tmp_path, gradescope_schema):
    root = container(built, tmp_path, REPO / "submissions" / "bs6207-a1" / "correct.py")
    grader = tmp_path / "backprop-grader"
    grader.write_text(f'#!/bin/sh\nPYTHONPATH="{built["site"]}" exec "{sys.executable}" -m grader "$@"\n')
    grader.chmod(0o755)
    env = {**os.environ, "BACKPROP_GRADER_ROOT": str(root), "BACKPROP_GRADER_BIN": str(grader)}
    done = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results = gradescope_schema(json.loads((root / "results" / "results.json").read_text()))
    assert results["score"] == 15 and "score 15" in done.stdout


def test_run_autograder_writes_a_placeholder_when_the_grader_cannot_start(built, tmp_path, gradescope_schema):
    root = container(built, tmp_path, None)
    (root / "results" / "results.json").write_text('{"score": 99}')  # stale: must not survive
    env = {**os.environ, "BACKPROP_GRADER_ROOT": str(root), "BACKPROP_GRADER_BIN": "/bin/false"}
    done = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0
    results = gradescope_schema(json.loads((root / "results" / "results.json").read_text()))
    assert results["score"] == 0 and "not in your code" in results["output"]
    assert [t["visibility"] for t in results["tests"]] == ["hidden"]
    assert "without writing" in done.stderr


def test_an_index_url_and_a_prebuilt_wheel_can_be_given(tmp_path):
    wheel = fake_wheel(tmp_path)
    archive = build_autograder(
        str(instructor_copy(tmp_path, "deep-relu")),
        tmp_path / "out" / "ag.zip",
        "2.13.0+cpu",
        "https://example.org/whl/cpu",
        wheel,
    )
    with zipfile.ZipFile(archive) as opened:
        setup = opened.read("setup.sh").decode()
        assert opened.read(wheel.name) == wheel.read_bytes()
    assert "TORCH_VERSION='2.13.0+cpu'" in setup and "TORCH_INDEX_URL='https://example.org/whl/cpu'" in setup


@pytest.mark.parametrize(
    "version, url",
    [
        ("2.13.0; rm -rf /", None),
        ("latest", None),
        ("2.13.0", "https://x.org/a b"),
        ("2.13.0", "https://x.org/'$(id)'"),
    ],
)
def test_values_that_could_break_the_shell_scripts_are_refused(tmp_path, version, url):
    wheel = tmp_path / "backprop_grader-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    with pytest.raises(UsageError, match="--torch-version" if url is None else "--torch-index-url"):
        build_autograder(str(instructor_copy(tmp_path)), tmp_path / "ag.zip", version, url, wheel)
    assert not (tmp_path / "ag.zip").exists()


def test_the_default_torch_version_is_the_installed_one_without_its_local_label():
    version = installed_torch_version()
    assert version[0].isdigit() and "+" not in version


# --- which torch setup.sh installs ---------------------------------------------------------------

PYTHON_STUB = """#!/bin/bash
# Stands in for python3.13 and, once `-m venv` made it, for the venv's python and backprop-grader: records
# each call and answers what setup.sh asks of a Python 3.13.
echo "$(basename "$0") $*" >> "$CALLS"
case "$*" in
  *"sys.version_info[:2]"*) echo 3.13 ;;
  "-m venv "*) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && cp "$0" "$3/bin/backprop-grader" ;;
esac
exit 0
"""


def run_setup(archive: Path, tmp_path: Path) -> list[str]:
    """Run the zip's setup.sh as Gradescope does, with a stand-in Python (so nothing is downloaded) and a
    private /opt (bubblewrap), and return the calls it made to Python, pip and backprop-grader."""
    if subprocess.run(["bwrap", "--dev-bind", "/", "/", "true"], capture_output=True).returncode != 0:
        pytest.skip("bubblewrap cannot give setup.sh a private /opt here")
    source = tmp_path / "source"
    extract(archive, source)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "python3.13").write_text(PYTHON_STUB)
    (stubs / "python3.13").chmod(0o755)
    calls = tmp_path / "calls.log"
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "CALLS": str(calls)}
    done = subprocess.run(
        ["bwrap", "--dev-bind", "/", "/", "--tmpfs", "/opt", "bash", str(source / "setup.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return calls.read_text().splitlines()


@pytest.mark.parametrize(
    "options, index",
    [
        ({}, CPU_INDEX_URL),
        ({"torch_build": "cuda"}, None),
        ({"torch_index_url": "https://example.org/whl/rocm"}, "https://example.org/whl/rocm"),
    ],
)
def test_setup_sh_installs_the_cpu_build_of_the_pinned_torch_unless_told_otherwise(tmp_path, options, index):
    url = options.pop("torch_index_url", None)
    archive = build_autograder(
        str(instructor_copy(tmp_path)), tmp_path / "ag.zip", "2.13.0", url, fake_wheel(tmp_path), **options
    )
    calls = run_setup(archive, tmp_path)
    [torch] = [call for call in calls if "pip install" in call and "torch==" in call]
    expected = "python -m pip install --quiet torch==2.13.0" + (f" --index-url {index}" if index else "")
    assert torch == expected
    assert any(call.endswith(fake_wheel(tmp_path).name) for call in calls)  # then backprop-grader's own wheel


def test_the_build_says_which_torch_will_be_downloaded_and_how_large(tmp_path, cli):
    rubric = instructor_copy(tmp_path)
    default = cli(
        "gradescope", "build", "--rubric", rubric, "-o", tmp_path / "cpu.zip", "--wheel", fake_wheel(tmp_path)
    )
    assert default.returncode == 0, default.stderr
    assert re.search(
        r"torch \d+\.\d+\.\d+, CPU build, from the PyTorch CPU wheel index: about \d+ MB to download", default.stdout
    ), default.stdout
    assert "--torch-build cuda" in default.stdout and "512 MB" in default.stdout
    cuda = cli(
        "gradescope",
        "build",
        "--rubric",
        rubric,
        "-o",
        tmp_path / "cuda.zip",
        "--wheel",
        fake_wheel(tmp_path),
        "--torch-build",
        "cuda",
    )
    assert cuda.returncode == 0, cuda.stderr
    assert re.search(r"CUDA build, from pip's default index: about [\d.]+ GB to download", cuda.stdout), cuda.stdout


# --- the hidden seed -----------------------------------------------------------------------------


@pytest.mark.parametrize("rubric", ["bs6207-a1", "a copy with deep-relu's hidden seed"])
def test_a_rubric_whose_hidden_seed_students_know_is_refused_unless_allowed(tmp_path, cli, rubric):
    if rubric != "bs6207-a1":
        rubric = instructor_copy(tmp_path, seed=load_rubric("deep-relu").trials.hidden_seed)
    archive = tmp_path / "ag.zip"
    refused = cli("gradescope", "build", "--rubric", rubric, "-o", archive, "--wheel", fake_wheel(tmp_path))
    assert refused.returncode == 2 and not archive.exists()
    assert "hidden seed" in refused.stderr and "students could compute the hidden trials" in refused.stderr
    assert "[trials] hidden_seed" in refused.stderr
    assert (
        "cp " in refused.stderr and "gradescope build --rubric my-" in refused.stderr
    )  # how to make the instructor's copy
    assert "--allow-public-hidden-seed" in refused.stderr
    allowed = cli(
        "gradescope",
        "build",
        "--rubric",
        rubric,
        "-o",
        archive,
        "--wheel",
        fake_wheel(tmp_path),
        "--allow-public-hidden-seed",
    )
    assert allowed.returncode == 0, allowed.stderr
    assert archive.is_file()


def test_the_instructors_own_copy_and_a_rubric_without_hidden_trials_build_without_the_flag(tmp_path):
    assert build_autograder(
        str(instructor_copy(tmp_path)), tmp_path / "a.zip", "2.13.0", None, fake_wheel(tmp_path)
    ).is_file()
    assert build_autograder("bs6207-a1-notebook", tmp_path / "b.zip", "2.13.0", None, fake_wheel(tmp_path)).is_file()
