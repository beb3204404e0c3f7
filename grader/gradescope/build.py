"""`gradescope build`: the autograder zip instructors upload to Gradescope.

The zip holds, at its root: `setup.sh` and `run_autograder` (executable, rendered from templates/), the
rubric as `rubric.toml` (with its hidden seed: Gradescope keeps /autograder/source from students, and
`gradescope run` makes it unreadable to their code), and backprop-grader itself as a wheel built from
this source tree (or one passed with --wheel). setup.sh installs torch at the version chosen here, by
default its CPU build from the PyTorch project's CPU wheel index (the CUDA build that pip's default index
gives on Linux is 2.74 GB of wheels and a 4.8 GB venv, for a grader that never uses a GPU).

A rubric whose hidden seed is public (a bundled rubric's, which every student has) is refused unless
allow_public_hidden_seed: Gradescope would grade the hidden trials with inputs students
can compute.
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
from grader.rubric.files import bundled_rubrics, find_rubric, load_rubric
from grader.rubric.model import Rubric, TrialsSpec
from grader.sandbox.process import MEMORY_NEED

PREFIX = "/opt/backprop-grader"
RUBRIC_NAME = "rubric.toml"
PROJECT_PARTS = ("pyproject.toml", "README.md", "LICENSE", "grader", "reference", "rubrics")
_VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc|\.post|\.dev)\d+)?(\+[A-Za-z0-9.]+)?$")
_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+$")
_EPOCH = (1980, 1, 1, 0, 0, 0)
TORCH_BUILDS = ("cpu", "cuda")
_BUILD_NAMES = {"cpu": "CPU build", "cuda": "CUDA build"}
CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"  # the PyTorch project's own index of CPU-only wheels
# What setup.sh downloads and installs (torch 2.13.0, Linux x86_64). cpu: compressed the way a wheel is, the
# installed files of torch 2.13.0+cpu come to 192 MB; with backprop-grader's dependencies they take 948 MB
# (measured in this project's venv; no download was possible there); cuda: measured by installing
# torch==2.13.0 from pip's default index into a fresh Debian 12 root (debootstrap, minbase).
TORCH_SIZES = {
    "cpu": "about 190 MB to download, about 0.95 GB installed",
    "cuda": "about 2.74 GB to download in 29 wheels, a 4.8 GB venv",
}

MEMORY_ADVICE = f"memory (Gradescope's autograder settings): {MEMORY_NEED}"


def build_autograder(
    rubric_name: str,
    output: Path,
    torch_version: str | None = None,
    torch_index_url: str | None = None,
    wheel: Path | None = None,
    *,
    torch_build: str = "cpu",
    allow_public_hidden_seed: bool = False,
) -> Path:
    """Write the autograder zip to `output` (atomically) and return its path.

    torch comes from `torch_index_url` when given, else from the CPU wheel index (`torch_build` "cpu") or
    pip's default index ("cuda"). A public hidden seed is refused unless `allow_public_hidden_seed`."""
    rubric = load_rubric(rubric_name)  # an invalid rubric fails here, not in Gradescope's image build
    public = public_hidden_seed(rubric)
    if public and not allow_public_hidden_seed:
        raise UsageError(
            f"--rubric {rubric_name}: {public}, so students could compute the hidden trials.\n"
            f"{instructor_copy_advice(rubric_name)}\n  (or pass --allow-public-hidden-seed to build "
            "it anyway, e.g. for a trial upload)"
        )
    rubric_bytes = find_rubric(rubric_name).read_bytes()
    torch_version = torch_version or installed_torch_version()
    if not _VERSION.match(torch_version):
        raise UsageError(f"--torch-version {torch_version!r}: expected a release number such as 2.13.0")
    if torch_build not in TORCH_BUILDS:
        raise UsageError(f"--torch-build {torch_build!r}: expected one of {', '.join(TORCH_BUILDS)}")
    if torch_index_url and not _URL.match(torch_index_url):
        raise UsageError(f"--torch-index-url {torch_index_url!r}: expected an http(s) URL without spaces or quotes")
    if wheel is not None and not (wheel.is_file() and wheel.name.endswith(".whl")):
        raise UsageError(f"--wheel {wheel}: expected the path of a built backprop-grader .whl file")
    index_url = torch_index_url or (CPU_INDEX_URL if torch_build == "cpu" else "")
    with tempfile.TemporaryDirectory(prefix="bpg-gradescope-") as work:
        wheel = wheel or build_wheel(Path(work))
        build_name = "the build that index serves" if torch_index_url else _BUILD_NAMES[torch_build]
        values = {
            "TORCH_VERSION": torch_version,
            "TORCH_INDEX_URL": index_url,
            "TORCH_BUILD": build_name,
            "WHEEL": wheel.name,
            "RUBRIC": RUBRIC_NAME,
            "PREFIX": PREFIX,
        }
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


def torch_download(torch_version: str | None, torch_index_url: str | None, torch_build: str = "cpu") -> str:
    """What the build's output says setup.sh will download: which torch, from where, and how large."""
    version = torch_version or installed_torch_version()
    if torch_index_url:
        return (
            f"setup.sh will install torch {version} from {torch_index_url}, whichever build that index serves "
            f"(the CPU build: {TORCH_SIZES['cpu']}; the CUDA build: {TORCH_SIZES['cuda']})."
        )
    if torch_build == "cpu":
        return (
            f"setup.sh will install torch {version}, CPU build, from the PyTorch CPU wheel index: "
            f"{TORCH_SIZES['cpu']}. The CUDA build (--torch-build cuda) would be {TORCH_SIZES['cuda']}."
        )
    return (
        f"setup.sh will install torch {version}, CUDA build, from pip's default index: {TORCH_SIZES['cuda']}. "
        f"The CPU build (the default, --torch-build cpu) is {TORCH_SIZES['cpu']}; the grader never uses a GPU."
    )


def public_hidden_seed(rubric: Rubric) -> str | None:
    """Why the rubric's hidden seed is known to students (it is a bundled rubric's: every student has those
    files), or None when it is the instructor's own (or there are no hidden trials to protect)."""
    seed = rubric.trials.hidden_seed
    if rubric.trials.hidden == 0 or seed is None:
        return None
    for rubric_id, path in bundled_rubrics().items():
        if load_rubric(str(path)).trials.hidden_seed == seed:
            return f"its hidden seed is the one bundled with rubric {rubric_id}, which every student has"
    return None


def instructor_copy_advice(rubric_name: str) -> str:
    """How to make the instructor's copy of a rubric, with a hidden seed of its own (the field's own
    description, from the rubric schema, says what a hidden seed must be and how to make one)."""
    path = find_rubric(rubric_name)
    field = TrialsSpec.model_fields["hidden_seed"].description or ""
    return (
        f"  what to do: copy the rubric (cp {path} my-{path.stem}.toml), give [trials] hidden_seed in the copy a "
        f"new secret value of your own\n  ({field}),\n  keep the copy from students, and build from it: "
        f"backprop-grader gradescope build --rubric my-{path.stem}.toml"
    )


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
        raise UsageError(
            f"no source tree beside this installation ({project}); build a wheel "
            "(pip wheel --no-deps <checkout>) and pass it with --wheel"
        )
    source, dist = work / "src", work / "dist"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in PROJECT_PARTS:
        path = project / part
        if path.is_dir():
            shutil.copytree(path, source / part, ignore=ignore)
        elif path.is_file():
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / part)
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        str(dist),
        str(source),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheels = sorted(dist.glob("backprop_grader-*.whl"))
    if done.returncode != 0 or not wheels:
        raise GraderError(
            f"building the backprop-grader wheel failed (exit {done.returncode}):\n"
            f"{(done.stderr or done.stdout)[-2000:]}\n  what to do: build one yourself and pass --wheel"
        )
    return wheels[0]
