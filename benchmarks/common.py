"""What every benchmark module shares: the repository's paths, the rubrics and samples measured, the log.

Contract: constants and one function (`log`, progress lines on stderr); importing it has no side effects.
"""

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BASELINE_SCRIPT = REPO / "benchmarks" / "baseline.py"
CONTRACT_RUBRIC, CONTRACT_SAMPLES = "bs6207-a1", REPO / "submissions" / "bs6207-a1"
NOTEBOOK_RUBRIC, NOTEBOOK_SAMPLES = "bs6207-a1-notebook", REPO / "submissions" / "bs6207-a1-notebooks"
DROPOUT_RUBRIC, DROPOUT_SAMPLES = "softmax-dropout-notebook", REPO / "submissions" / "softmax-dropout-notebooks"
CHECK_NOTEBOOK = NOTEBOOK_SAMPLES / "correct.ipynb"
OPTIMIZER_NOTEBOOK = NOTEBOOK_SAMPLES / "after_10_sgd_steps.ipynb"  # trains with torch.optim.SGD, as many notebooks do


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
