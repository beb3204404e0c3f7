"""Measure DESIGN §10's budgets in one run, print a table, write benchmarks/results/<YYYY-MM-DD>.json.

    .venv/bin/python -m benchmarks.run [--n 200] [--memory-small-n 100] [--memory-n 1000] [--baseline-n 20]
                                       [--check-runs 3] [--jobs 2] [--output PATH] [--keep]

Every figure comes from real `backprop-grader` subprocesses on copies of the bundled samples (see
benchmarks/README.md for what each one means). Nothing here asserts a time; the table marks each figure
against its budget with ✓ or ✗.

This module is the command: its options, the order of the runs (`measure`) and the JSON file. The runs
themselves are in benchmarks.measure (live readings: benchmarks.meters; arithmetic: benchmarks.figures),
the machine and git in benchmarks.machine, the budgets and the printed table in benchmarks.table.
"""

import argparse
import datetime
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    CHECK_NOTEBOOK,
    CONTRACT_RUBRIC,
    CONTRACT_SAMPLES,
    DROPOUT_RUBRIC,
    DROPOUT_SAMPLES,
    NOTEBOOK_RUBRIC,
    NOTEBOOK_SAMPLES,
    OPTIMIZER_NOTEBOOK,
    RESULTS,
    log,
)
from benchmarks.figures import add_rates, memory_figures, overhead_figures, provenance_cost
from benchmarks.machine import calibration_ms, git_info, machine_info
from benchmarks.measure import cold_check, grade_run, measure_sandbox_start, run_baseline
from benchmarks.table import budgets, render_table
from grader.notebook.provenance import PROVENANCE_SWITCH

# A submission that does nothing: both contract functions return constants of the right shapes.
NOOP_SUBMISSION = '''\
"""No-op submission for the overhead benchmark: returns zeros, computes nothing."""
import numpy as np


def _zeros(y, params):
    result = {"prediction": np.zeros_like(y), "loss": 0.0}
    result.update({"d" + name: np.zeros_like(value) for name, value in params.items()})
    return result


def scratch_gradients(x, y, params):
    return _zeros(y, params)


def torch_gradients(x, y, params):
    return _zeros(y, params)
'''


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.n < 2 or args.memory_small_n < 1 or args.memory_n < 1 or args.jobs < 1 or args.check_runs < 1:
        raise SystemExit("error: --n must be ≥ 2 and every other count ≥ 1")
    baseline_n = min(args.n, args.baseline_n)
    work = Path(tempfile.mkdtemp(prefix="bpg-bench-"))
    started = time.time()
    try:
        result = measure(args, baseline_n, work, " ".join(["python -m benchmarks.run", *argv]))
    finally:
        if args.keep:
            log(f"kept the benchmark's files in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["duration_s"] = round(time.time() - started, 1)
    output = args.output or RESULTS / f"{datetime.date.today().isoformat()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")  # whole files only, even when interrupted
    partial.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(output)
    print(render_table(result))
    print(f"\nwritten: {output}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=200, help="submissions per throughput and overhead run (default %(default)s)"
    )
    parser.add_argument(
        "--memory-small-n", type=int, default=100, help="no-op class size of the first memory run (default %(default)s)"
    )
    parser.add_argument(
        "--memory-n", type=int, default=1000, help="no-op class size of the second memory run (default %(default)s)"
    )
    parser.add_argument(
        "--baseline-n", type=int, default=20, help="notebooks run by the baseline, at most --n (default %(default)s)"
    )
    parser.add_argument(
        "--check-runs", type=int, default=3, help="cold `check` runs; the median is reported (default %(default)s)"
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="--jobs of `grade`, and baseline processes at once (default %(default)s)"
    )
    parser.add_argument("--output", type=Path, help="JSON file to write (default benchmarks/results/<today>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the generated classes and reports (printed path)")
    return parser


def measure(args: argparse.Namespace, baseline_n: int, work: Path, command: str) -> dict:
    """Every run, in order, under `work`; the result dict that becomes the JSON file (all but duration_s)."""
    n, jobs = args.n, args.jobs
    contract_samples = sorted(CONTRACT_SAMPLES.glob("*.py"))
    notebook_samples = sorted(NOTEBOOK_SAMPLES.glob("*.ipynb"))
    noop = work / "noop.py"
    noop.write_text(NOOP_SUBMISSION, encoding="utf-8")

    speed: dict[str, float] = {}  # the fixed workload's ms just before each phase: the machine's speed then

    def phase(name: str, message: str) -> None:
        speed[name] = calibration_ms()
        log(message)

    phase("sandbox start", f"sandbox start ({jobs} workers), {args.check_runs} times")
    sandbox = measure_sandbox_start(jobs, args.check_runs, work)
    start_s = sandbox["start_s"]["median"]

    phase("start-up", f"start-up costs: grade --jobs {jobs} on {jobs} no-op submissions")
    fixed = grade_run("noop-fixed", [noop], jobs, CONTRACT_RUBRIC, work, jobs)

    phase("contract", f"contract: grade --jobs {jobs} on {n} .py submissions")
    contract = grade_run("contract", contract_samples, n, CONTRACT_RUBRIC, work, jobs)
    add_rates(contract, start_s, fixed)

    phase("notebooks", f"notebooks: grade --jobs {jobs} on {n} notebooks")
    notebooks = grade_run("notebooks", notebook_samples, n, NOTEBOOK_RUBRIC, work, jobs)
    add_rates(notebooks, start_s, fixed)

    phase("notebooks, no provenance run", f"notebooks without the provenance run: grade --jobs {jobs} on {n} notebooks")
    plain = grade_run(
        "notebooks-plain", notebook_samples, n, NOTEBOOK_RUBRIC, work, jobs, env={PROVENANCE_SWITCH: "off"}
    )
    add_rates(plain, start_s, fixed)
    provenance = provenance_cost(notebooks, plain)

    phase(
        "dropout notebooks",
        f"softmax-dropout notebooks: grade --jobs {jobs} on {n} notebooks (each training replayed with its masks)",
    )
    dropout = grade_run("notebooks-dropout", sorted(DROPOUT_SAMPLES.glob("*.ipynb")), n, DROPOUT_RUBRIC, work, jobs)
    add_rates(dropout, start_s, fixed)

    phase("overhead", f"overhead: grade --jobs {jobs} on {n} no-op submissions")
    noops = grade_run("noop", [noop], n, CONTRACT_RUBRIC, work, jobs)
    overhead = overhead_figures(fixed, noops)

    phase("memory", f"memory: grade --jobs {jobs} on {args.memory_small_n} and on {args.memory_n} no-op submissions")
    small = grade_run("memory-small", [noop], args.memory_small_n, CONTRACT_RUBRIC, work, jobs)
    large = grade_run("memory-large", [noop], args.memory_n, CONTRACT_RUBRIC, work, jobs)
    memory = memory_figures(small, large)

    phase(
        "cold check",
        f"cold check of {CHECK_NOTEBOOK.name} and of {OPTIMIZER_NOTEBOOK.name}, {args.check_runs} times each",
    )
    check = cold_check(args.check_runs, work)
    check_optimizer = cold_check(args.check_runs, work, OPTIMIZER_NOTEBOOK)

    phase("baseline", f"baseline: a fresh python per notebook, {baseline_n} notebooks, {jobs} at a time")
    baseline = run_baseline(notebook_samples, baseline_n, jobs, work)
    baseline["ratio_ours_to_baseline"] = round(notebooks["rate_whole_per_s"] / baseline["rate_per_s"], 2)
    speed["end"] = calibration_ms()
    calibration = {
        "ms_before": speed,
        "min_ms": min(speed.values()),
        "median_ms": statistics.median(speed.values()),
        "max_ms": max(speed.values()),
    }

    result = {
        "date": datetime.date.today().isoformat(),
        "timestamp": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "git": git_info(),
        "parameters": {
            "n": n,
            "memory_small_n": args.memory_small_n,
            "memory_n": args.memory_n,
            "baseline_n": baseline_n,
            "check_runs": args.check_runs,
            "jobs": jobs,
        },
        "machine": machine_info(contract),
        "calibration": calibration,
        "sandbox_start": sandbox,
        "contract": contract,
        "notebooks": notebooks,
        "notebooks_without_provenance": plain,
        "notebooks_softmax_dropout": dropout,
        "provenance": provenance,
        "overhead": overhead,
        "memory": memory,
        "cold_check": check,
        "cold_check_optimizer": check_optimizer,
        "baseline": baseline,
    }
    phases = {
        "grade runs": [contract, notebooks, plain, dropout, fixed, noops, small, large],
        "cold check": [check, check_optimizer],
        "baseline": [baseline],
    }
    walls = {
        "grade runs": sum(run["wall_s"] for run in phases["grade runs"]),
        "cold check": sum(sum(run["wall_s"]["runs"]) for run in phases["cold check"]),
        "baseline": baseline["wall_s"],
    }
    result["other_load"] = {}
    for phase, runs in phases.items():
        other = [run["other_processes_cpu_s"] for run in runs]
        cpu = None if None in other else round(sum(other), 1)
        result["other_load"][phase] = {
            "cpu_s": cpu,
            "wall_s": round(walls[phase], 1),
            "cores": None if cpu is None else round(cpu / walls[phase], 3),
        }
    result["budgets"] = budgets(result)
    return result


if __name__ == "__main__":
    sys.exit(main())
