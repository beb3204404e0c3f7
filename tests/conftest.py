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
