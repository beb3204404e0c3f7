"""`gradescope build`: the autograder zip instructors upload to Gradescope.

The zip holds, at its root: `setup.sh` and `run_autograder` (executable, rendered from templates/), the
rubric as `rubric.toml` (with its hidden seed: Gradescope keeps /autograder/source from students, and
`gradescope run` makes it unreadable to their code), and backprop-grader itself as a wheel built from
this source tree (or one passed with --wheel). setup.sh installs torch at the version chosen here.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata, resources
from pathlib import Path

from grader.errors import GraderError, UsageError
from grader.rubric_files import find_rubric, load_rubric

PREFIX = "/opt/backprop-grader"
RUBRIC_NAME = "rubric.toml"
PROJECT_PARTS = ("pyproject.toml", "README.md", "LICENSE", "grader", "reference", "rubrics")
_VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc|\.post|\.dev)\d+)?(\+[A-Za-z0-9.]+)?$")
_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+$")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_autograder(rubric_name: str, output: Path, torch_version: str | None = None,
                     torch_index_url: str | None = None, wheel: Path | None = None) -> Path:
    """Write the autograder zip to `output` (atomically) and return its path."""
    load_rubric(rubric_name)  # an invalid rubric fails here, not in Gradescope's image build
    rubric_bytes = find_rubric(rubric_name).read_bytes()
    torch_version = torch_version or installed_torch_version()
    if not _VERSION.match(torch_version):
        raise UsageError(f"--torch-version {torch_version!r}: expected a release number such as 2.13.0")
    if torch_index_url and not _URL.match(torch_index_url):
        raise UsageError(f"--torch-index-url {torch_index_url!r}: expected an http(s) URL without spaces or quotes")
    if wheel is not None and not (wheel.is_file() and wheel.name.endswith(".whl")):
        raise UsageError(f"--wheel {wheel}: expected the path of a built backprop-grader .whl file")
    with tempfile.TemporaryDirectory(prefix="bpg-gradescope-") as work:
        wheel = wheel or build_wheel(Path(work))
        values = {"TORCH_VERSION": torch_version, "TORCH_INDEX_URL": torch_index_url or "", "WHEEL": wheel.name,
                  "RUBRIC": RUBRIC_NAME, "PREFIX": PREFIX}
        entries = [
            ("setup.sh", render("setup.sh", values).encode(), 0o755),
            ("run_autograder", render("run_autograder", values).encode(), 0o755),
            (RUBRIC_NAME, rubric_bytes, 0o644),
            (wheel.name, wheel.read_bytes(), 0o644),
        ]
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
        os.close(fd)
        try:
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, data, mode in entries:
                    info = zipfile.ZipInfo(name, date_time=_EPOCH)
                    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, output)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return output


def render(template: str, values: dict[str, str]) -> str:
    """A template of templates/ with every @NAME@ replaced; an unknown placeholder is a bug of ours."""
    text = resources.files("grader.gradescope").joinpath("templates", template).read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise GraderError(f"template {template}: no value for {', '.join(sorted(set(left)))}")
    return text


def installed_torch_version() -> str:
    """The installed torch's release number, without a local label such as +cpu."""
    try:
        return metadata.version("torch").split("+", 1)[0]
    except metadata.PackageNotFoundError:
        raise UsageError("torch is not installed here; pass --torch-version, e.g. --torch-version 2.13.0") from None


def build_wheel(work: Path) -> Path:
    """Build backprop-grader's wheel from a copy of its source tree (the checkout is left untouched)."""
    project = Path(__file__).resolve().parents[2]
    if not (project / "pyproject.toml").is_file():
        raise UsageError(f"no source tree beside this installation ({project}); build a wheel "
                         "(pip wheel --no-deps <checkout>) and pass it with --wheel")
    source, dist = work / "src", work / "dist"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in PROJECT_PARTS:
        path = project / part
        if path.is_dir():
            shutil.copytree(path, source / part, ignore=ignore)
        elif path.is_file():
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / part)
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
               "--wheel-dir", str(dist), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheels = sorted(dist.glob("backprop_grader-*.whl"))
    if done.returncode != 0 or not wheels:
        raise GraderError(f"building the backprop-grader wheel failed (exit {done.returncode}):\n"
                          f"{(done.stderr or done.stdout)[-2000:]}\n  what to do: build one yourself and pass --wheel")
    return wheels[0]
