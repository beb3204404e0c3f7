"""Shared fixtures for the whole suite."""

# --- rubrics and the command line (lead) ---------------------------------------------------------
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED_RUBRICS = ["bs6207-a1", "deep-relu", "softmax-dropout"]


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
            capture_output=True, text=True, cwd=cwd or REPO, timeout=timeout,
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
