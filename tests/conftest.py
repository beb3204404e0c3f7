"""Shared fixtures for the whole suite."""

# --- rubrics and the command line (lead) ---------------------------------------------------------
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACT_RUBRICS = ["bs6207-a1", "deep-relu", "softmax-dropout"]
BUNDLED_RUBRICS = sorted([*CONTRACT_RUBRICS, "bs6207-a1-notebook", "deep-relu-notebook", "softmax-dropout-notebook"])


@pytest.fixture
def rubric_source():
    """The text of a bundled rubric file, to edit into invalid variants."""

    def read(rubric_id: str) -> str:
        return (REPO / "rubrics" / f"{rubric_id}.toml").read_text(encoding="utf-8")

    return read


@pytest.fixture
def cli():
    """Run `python -m grader ARGS` in a real subprocess; returns the CompletedProcess (text mode)."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "grader", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd or REPO,
            timeout=timeout,
        )

    return run


# --- reference test helpers ----------------------------------------------------------------------
def init_params(rng, layers, bias=True):
    """torch's nn.Linear default range U(−1/√fan_in, 1/√fan_in), drawn with numpy, torch layout."""
    params = {}
    for l, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        k = 1 / n_in**0.5
        params[f"W{l}"] = rng.uniform(-k, k, size=(n_out, n_in))
        if bias:
            params[f"b{l}"] = rng.uniform(-k, k, size=n_out)
    return params


# --- sandbox fixtures (grader/sandbox) -------------------------------------------------------------
import shutil as _shutil
from pathlib import Path as _Path

import pytest as _pytest

REPO_ROOT = _Path(__file__).resolve().parents[1]


@_pytest.fixture(scope="session")
def sandbox_secret_dir(tmp_path_factory):
    """A directory the sandbox is told to hide, holding a file no submission may read."""
    secret = tmp_path_factory.mktemp("hidden-from-sandbox")
    (secret / "expected.json").write_text('{"dW1": "the answer key"}')
    return secret


@_pytest.fixture(scope="session")
def bwrap_sandbox(sandbox_secret_dir):
    """One bubblewrap Sandbox with two slots, shared by the sandbox tests (workers start once)."""
    if _shutil.which("bwrap") is None:
        _pytest.skip("bubblewrap (bwrap) is not installed")
    from grader.sandbox import Sandbox

    with Sandbox(jobs=2, hide=[sandbox_secret_dir, REPO_ROOT], mode="bwrap") as sandbox:
        yield sandbox


@_pytest.fixture(scope="session")
def fallback_sandbox():
    """One Sandbox in fallback mode (no namespaces), shared by the fallback tests."""
    from grader.sandbox import Sandbox

    with Sandbox(jobs=1, mode="fallback") as sandbox:
        yield sandbox


# --- grading -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def grading_sandbox():
    """One real sandbox (bubblewrap where available) shared by the grading tests, as a batch shares it."""
    from grader.sandbox import Sandbox

    with Sandbox(jobs=1) as sandbox:
        yield sandbox


# --- Gradescope (grader/gradescope) ----------------------------------------------------------------
import json as _json
import os as _os
import tempfile as _tempfile

_GRADESCOPE_VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
_GRADESCOPE_FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
# Written from the field list of Gradescope's autograder specification (results.json); every field the
# specification allows, nothing else; `required` is what backprop-grader promises to write.
GRADESCOPE_RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "tests"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": _GRADESCOPE_FORMAT,
        "test_output_format": _GRADESCOPE_FORMAT,
        "test_name_format": _GRADESCOPE_FORMAT,
        "visibility": _GRADESCOPE_VISIBILITY,
        "stdout_visibility": _GRADESCOPE_VISIBILITY,
        "extra_data": {"type": "object"},
        "leaderboard": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": ["number", "string"]},
                    "order": {"enum": ["asc", "desc"]},
                },
            },
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "number", "score", "max_score", "status", "output", "visibility"],
                "properties": {
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string", "minLength": 1},
                    "name_format": _GRADESCOPE_FORMAT,
                    "number": {"type": "string", "minLength": 1},
                    "output": {"type": "string"},
                    "output_format": _GRADESCOPE_FORMAT,
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": _GRADESCOPE_VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}


@pytest.fixture(scope="session")
def gradescope_schema():
    """A validator of results.json against GRADESCOPE_RESULTS_SCHEMA (raises on the first problem)."""
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(GRADESCOPE_RESULTS_SCHEMA)
    validator = jsonschema.Draft202012Validator(GRADESCOPE_RESULTS_SCHEMA)

    def validate(results: dict) -> dict:
        validator.validate(results)
        return results

    return validate


@pytest.fixture
def gradescope_container():
    """Lay out a directory as Gradescope's /autograder: source/rubric.toml (a copy of a bundled rubric)
    and submission/ with the given files (name → text, bytes, or a Path to copy). The directory and its
    parent are world-traversable, as in the container, so only the grader's own chmod protects it."""
    roots = []

    def make(files: dict, rubric: str = "bs6207-a1") -> Path:
        root = Path(_tempfile.mkdtemp(prefix="bpg-autograder-")) / "autograder"
        roots.append(root.parent)
        for folder in (root.parent, root):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o755)
        (root / "source").mkdir()
        (root / "source" / "rubric.toml").write_bytes((REPO / "rubrics" / f"{rubric}.toml").read_bytes())
        (root / "submission").mkdir()
        for name, content in files.items():
            path = root / "submission" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                _shutil.copyfile(content, path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    yield make
    for folder in roots:
        _shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def gradescope_run():
    """`python -m grader gradescope run --rubric <root>/source/rubric.toml --root <root> ARGS` as a real
    subprocess from <root> (as run_autograder runs it); returns (CompletedProcess, parsed results.json)."""

    def run(root: Path, *args: str, env: dict | None = None, timeout: float = 180):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "grader",
                "gradescope",
                "run",
                "--rubric",
                str(root / "source" / "rubric.toml"),
                "--root",
                str(root),
                *map(str, args),
            ],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=timeout,
            env={**_os.environ, **(env or {})},
        )
        path = root / "results" / "results.json"
        return done, (_json.loads(path.read_text(encoding="utf-8")) if path.exists() else None)

    return run


# --- grading a class (grader/batch.py, grader/discover.py, grader/export/html.py) -----------------------
import types as _types
import zipfile as _zipfile

CLASS_RUBRIC = "bs6207-a1"
CLASS_STUDENTS = [
    "Ann_Lee_1001_assignsubmission_file_",
    "ben_1002",
    "correct.ipynb",
    "correct.py",
    "correct_but_slow",
    "missing_factor_2",
    "printer",
    "transposed_gradient",
    "zoe",
]
SCRIPT_LINE = "<script>alert('student')</script>"


def make_class(folder: Path) -> Path:
    """A class folder as instructors get one: files, a folder per student, junk, a duplicate, a slow one."""
    samples = REPO / "submissions" / CLASS_RUBRIC
    folder.mkdir(parents=True, exist_ok=True)
    for name in ["correct.py", "correct.ipynb", "missing_factor_2.py", "transposed_gradient.py"]:
        _shutil.copy(samples / name, folder / name)
    correct = (samples / "correct.py").read_text(encoding="utf-8")
    (folder / "correct_but_slow.py").write_text("import time\ntime.sleep(1.0)\n" + correct, encoding="utf-8")
    (folder / "printer.py").write_text(f"print({SCRIPT_LINE!r})\n" + correct, encoding="utf-8")
    (folder / "zoe").mkdir()
    _shutil.copy(samples / "correct.ipynb", folder / "zoe" / "a1.ipynb")
    (folder / "zoe" / "my_autograd.dat").write_text("dW1: [[0.1, 0.2]]\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._correct.py").write_bytes(b"\0\5\26\7")
    (folder / ".ipynb_checkpoints").mkdir()
    _shutil.copy(samples / "correct.ipynb", folder / ".ipynb_checkpoints" / "correct-checkpoint.ipynb")
    (folder / ".hidden.py").write_text(correct, encoding="utf-8")
    return folder


def make_lms_zip(archive: Path) -> Path:
    """A class as an LMS exports it: one .zip, a wrapper folder, a folder or a file per student, junk, and a
    member that tries to leave the extraction folder."""
    correct = (REPO / "submissions" / CLASS_RUBRIC / "correct.py").read_text(encoding="utf-8")
    archive.parent.mkdir(parents=True, exist_ok=True)
    with _zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("A1/Ann Lee_1001_assignsubmission_file_/a1.py", correct)
        zipped.writestr("A1/Ann Lee_1001_assignsubmission_file_/torch_autograd.dat", "dW1 = [[1.0]]")
        zipped.writestr("A1/ben_1002.py", "def scratch_gradients(:\n")
        zipped.writestr("../../escaped.py", "print('outside')\n")
        zipped.writestr("__MACOSX/A1/._ben_1002.py", "junk")
    return archive


def grade_cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m grader grade ARGS` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "grader", "grade", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def class_inputs(tmp_path_factory):
    """The PATHs of one class: a folder of submissions and an LMS .zip export."""
    root = tmp_path_factory.mktemp("class")
    return [make_class(root / "a1-submissions"), make_lms_zip(root / "exports" / "A1 submissions.zip")]


@pytest.fixture(scope="session")
def graded_class(class_inputs, tmp_path_factory):
    """The class graded once by the real CLI (two jobs, real sandbox): inputs, out and the CompletedProcess."""
    out = tmp_path_factory.mktemp("graded") / "out"
    done = grade_cli(*class_inputs, "--rubric", CLASS_RUBRIC, "--out", out, "--jobs", 2)
    return _types.SimpleNamespace(inputs=class_inputs, out=out, done=done)


# --- what a notebook class leaves to review (grader/review.py, grader/notebook/outcome.py) -------------
import json as _json_nb

NOTEBOOK_RUBRIC = "bs6207-a1-notebook"
NOTEBOOK_SAMPLES = REPO / "submissions" / "bs6207-a1-notebooks"


def derived_notebook(stem: str, edit) -> str:
    """A sample notebook with `edit(cells) -> cells` applied and its outputs cleared (as a student's "Clear
    all outputs" leaves it), as nbformat JSON text."""
    notebook = _json_nb.loads((NOTEBOOK_SAMPLES / f"{stem}.ipynb").read_text(encoding="utf-8"))
    notebook["cells"] = edit(notebook["cells"])
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
    return _json_nb.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def net_never_closed(cells: list[dict]) -> list[dict]:
    """The hand-in that does not run as written (seed 004): the net's definition misses a ')', so every
    cell after it fails on a name that was never defined."""
    for cell in cells:
        cell["source"] = (
            _source(cell).replace("super(Net, self).__init__()", "super(Net, self).__init__(").splitlines(keepends=True)
        )
    return cells


def no_own_backprop(cells: list[dict]) -> list[dict]:
    """The hand-in whose own backprop was never written: part 3 is a TODO that leaves my_autograd.dat empty."""
    mine = ("net.fc1.weight.detach()", "delta3", "my_grads")
    kept = [c for c in cells if c["cell_type"] != "code" or not any(word in _source(c) for word in mine)]
    todo = '# TODO my own backprop\nopen("my_autograd.dat", "w").close()'
    return [
        *kept,
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "todo-backprop",
            "metadata": {},
            "outputs": [],
            "source": todo.splitlines(keepends=True),
        },
    ]


def make_notebook_class(folder: Path) -> Path:
    """A notebook class with something to review: flags, a notebook whose cells mostly fail, a student
    whose my_autograd.dat is empty, and a file that is no submission."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in ("correct", "after_10_sgd_steps", "unseeded"):
        _shutil.copy(NOTEBOOK_SAMPLES / f"{stem}.ipynb", folder / f"{stem}.ipynb")
    (folder / "never_closed.ipynb").write_text(derived_notebook("correct", net_never_closed), encoding="utf-8")
    (folder / "dan").mkdir()
    (folder / "dan" / "a1.ipynb").write_text(derived_notebook("correct", no_own_backprop), encoding="utf-8")
    (folder / "notes.txt").write_text("grade these by Friday\n")
    return folder


@pytest.fixture(scope="session")
def graded_notebook_class(tmp_path_factory):
    """The notebook class graded once by the real CLI: inputs, out and the CompletedProcess."""
    folder = make_notebook_class(tmp_path_factory.mktemp("notebook-class") / "a1")
    out = tmp_path_factory.mktemp("notebook-graded") / "out"
    done = grade_cli(folder, "--rubric", NOTEBOOK_RUBRIC, "--out", out, "--jobs", 2)
    return _types.SimpleNamespace(inputs=[folder], out=out, done=done)


def hidden_traces(rubric) -> list[str]:
    """What would give a hidden input away: its array names and the repr of each of its x values."""
    from grader.trials import make_trial as _make_trial

    names = [f"{task.id}.hidden-{i}." for task in rubric.tasks for i in range(rubric.trials.hidden)]
    values = [
        repr(v)
        for task in rubric.tasks
        for i in range(rubric.trials.hidden)
        for v in _make_trial(rubric, task, "hidden", i).x.ravel().tolist()
    ]
    return names + values
