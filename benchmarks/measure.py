"""The measurements: each starts real processes and returns what it saw as a JSON-ready dict.

Contract: `measure_sandbox_start`, `grade_run`, `cold_check` and `run_baseline` write only under `work`,
raise RuntimeError when a measured command fails (or `grade` writes fewer reports than submissions), and
leave every rate and budget to `benchmarks.figures` and `benchmarks.table`.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import BASELINE_SCRIPT, CHECK_NOTEBOOK, NOTEBOOK_RUBRIC, REPO
from benchmarks.figures import rss_until, steady_cpu, summary
from benchmarks.meters import CpuAccount, MachineMeter, poll

# `backprop-grader` exactly as its console script runs it (grader.cli.main:run), plus two things: first it
# moves itself into the cgroup named by $BENCH_CGROUP (when there is one), so that the CPU of everything it
# starts (bwrap, the warm workers, every child they fork) is counted; on the way out it writes its own
# resource usage (CPU, peak RSS) to $BENCH_RUSAGE.
MEASURED_GRADER = """\
import json, os, resource, sys
moved = False
if os.environ.get("BENCH_CGROUP"):
    try:
        with open(os.path.join(os.environ["BENCH_CGROUP"], "cgroup.procs"), "w") as handle:
            handle.write("0")
        moved = True
    except OSError:
        pass
before = resource.getrusage(resource.RUSAGE_SELF)
try:
    from grader.cli.main import exit_now, main
except ModuleNotFoundError:  # a checkout from before grader/cli/ was a package (benchmarks.commits)
    from grader.cli import exit_now, main
try:
    code = main(sys.argv[1:])
finally:
    own = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["BENCH_RUSAGE"], "w") as handle:
        json.dump({"user": own.ru_utime, "system": own.ru_stime, "maxrss_kb": own.ru_maxrss, "moved": moved,
                   "cpu_before_move": before.ru_utime + before.ru_stime}, handle)
exit_now(code)
"""


def measure_sandbox_start(jobs: int, runs: int, work: Path) -> dict:
    """How long `grade` waits for its sandbox: Sandbox(jobs) started as `grade` starts it, timed here."""
    from grader.sandbox import Sandbox

    hidden = work / "hidden"
    hidden.mkdir(exist_ok=True)
    times, mode, protections = [], None, None
    for _ in range(runs):
        box = Sandbox(jobs=jobs, hide=[hidden])
        started = time.perf_counter()
        with box:
            times.append(time.perf_counter() - started)
            mode, protections = box.mode, box.protections
    return {"workers": jobs, "start_s": summary(times), "mode": mode, "protections": protections}


def grade_run(
    label: str,
    samples: list[Path],
    n: int,
    rubric: str,
    work: Path,
    jobs: int,
    env: dict | None = None,
    code: Path = REPO,
) -> dict:
    """`backprop-grader grade CLASS --rubric R --out OUT --jobs J` on n copies of `samples` (cycled),
    each under a distinct student name; the wall time of the whole command and its resource usage.
    `code` is the checkout whose grader runs (another commit's worktree for benchmarks.commits)."""
    folder, out = work / label / "class", work / label / "out"
    folder.mkdir(parents=True)
    for i in range(n):
        source = samples[i % len(samples)]
        shutil.copyfile(source, folder / f"s{i:04d}_{source.stem}{source.suffix}")
    usage, log = work / label / "rusage.json", work / label / "stderr.txt"
    command = [
        sys.executable,
        "-c",
        MEASURED_GRADER,
        "grade",
        str(folder),
        "--rubric",
        rubric,
        "--out",
        str(out),
        "--jobs",
        str(jobs),
    ]
    with CpuAccount(label) as account, MachineMeter() as machine:
        env = {**os.environ, **(env or {}), "BENCH_RUSAGE": str(usage), "BENCH_CGROUP": str(account.path or "")}
        epoch = time.time()
        started = time.perf_counter()
        with open(log, "wb") as err:
            process = subprocess.Popen(command, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=err)
            polled = poll(process, account)  # every 0.1 s until the grader exits
        wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{label}: grade exited {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
    rusage = json.loads(usage.read_text())
    reports = sorted(out.glob("*/report.json"))
    statuses = Counter(
        json.loads(line)["status"] for line in (out / "results.jsonl").read_text().splitlines() if line.strip()
    )
    mtimes = sorted(report.stat().st_mtime for report in reports)
    own_cpu = rusage["user"] + rusage["system"]
    tree_cpu = account.usage_s if rusage["moved"] else None  # the grader and everything it started
    sandbox_cpu = None if tree_cpu is None else max(0.0, tree_cpu - (own_cpu - rusage["cpu_before_move"]))
    result = {
        "n": n,
        "rubric": rubric,
        "samples": [s.name for s in samples],
        "reports": len(reports),
        "statuses": dict(statuses),
        "wall_s": round(wall, 3),
        "grader_cpu_s": round(own_cpu, 3),
        "sandbox_cpu_s": None if sandbox_cpu is None else round(sandbox_cpu, 3),
        "grader_peak_rss_mb": round(max([rusage["maxrss_kb"] / 1024] + [sample.rss_mb for sample in polled]), 1),
        "grader_rss_mb_while_grading": rss_until(polled, mtimes[-1] if mtimes else None),
        "first_report_after_s": round(mtimes[0] - epoch, 3) if mtimes else None,
        "last_report_after_s": round(mtimes[-1] - epoch, 3) if mtimes else None,
        "machine_busy_s": machine.busy_s,
        "other_processes_cpu_s": None
        if None in (machine.busy_s, tree_cpu)
        else round(max(0.0, machine.busy_s - tree_cpu), 2),
    }
    if label in ("contract", "notebooks", "notebooks-dropout"):
        result["protections"] = _protections(reports)
        result.update(steady_cpu(polled, mtimes))
        result["slowest"] = _slowest(reports)
    if len(reports) != n:
        raise RuntimeError(f"{label}: {len(reports)} report.json files for {n} submissions")
    return result


def cold_check(runs: int, work: Path, notebook: Path = CHECK_NOTEBOOK) -> dict:
    """`backprop-grader check NOTEBOOK --rubric bs6207-a1-notebook` in a fresh process, wall time."""
    script = Path(sys.executable).with_name("backprop-grader")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "grader"]
    times, codes, busy, ours = [], [], 0.0, 0.0
    for i in range(runs):
        folder = work / f"check-{notebook.stem}-{i}"
        folder.mkdir()
        command = [*program, "check", str(notebook), "--rubric", NOTEBOOK_RUBRIC, "--out", str(folder / "report")]
        with CpuAccount(f"check-{i}") as account, MachineMeter() as machine:
            join = account.joiner()  # the check process moves itself into the cgroup before exec
            started = time.perf_counter()
            done = subprocess.run(
                command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=join
            )
            times.append(time.perf_counter() - started)
        codes.append(done.returncode)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"check exited {done.returncode}:\n{done.stderr.decode(errors='replace')[-3000:]}")
        busy = None if busy is None or machine.busy_s is None else busy + machine.busy_s
        ours = None if ours is None or account.usage_s is None else ours + account.usage_s
    return {
        "notebook": str(notebook.relative_to(REPO)),
        "rubric": NOTEBOOK_RUBRIC,
        "wall_s": summary(times),
        "exit_codes": codes,
        "cpu_s": None if ours is None else round(ours, 2),
        "machine_busy_s": busy,
        "other_processes_cpu_s": None if None in (busy, ours) else round(max(0.0, busy - ours), 2),
    }


def run_baseline(samples: list[Path], count: int, jobs: int, work: Path) -> dict:
    """Each notebook run by `python benchmarks/baseline.py NB` in a fresh process, `jobs` at a time."""
    notebooks = [samples[i % len(samples)] for i in range(count)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    lock, pending, walls, codes = threading.Lock(), list(enumerate(notebooks)), [], Counter()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                i, notebook = pending.pop(0)
            folder = work / "baseline" / f"{i:04d}"
            folder.mkdir(parents=True)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(BASELINE_SCRIPT), str(notebook)],
                cwd=folder,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            with lock:
                walls.append(time.perf_counter() - started)
                codes[
                    "ok"
                    if done.returncode == 0
                    else "a cell raised"
                    if done.returncode == 1
                    else f"exit {done.returncode}"
                ] += 1

    threads = [threading.Thread(target=worker) for _ in range(min(jobs, count))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with MachineMeter() as machine:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "notebooks": count,
        "parallel": min(jobs, count),
        "how": "python benchmarks/baseline.py NB per notebook: a fresh interpreter imports torch and runs the code "
        "cells (magics and shell lines stripped), no sandbox, no grading; OMP_NUM_THREADS=1",
        "extrapolated": "the rate of these notebooks is taken as the rate for all of them",
        "wall_s": round(wall, 3),
        "per_notebook_wall_s": summary(walls),
        "outcomes": dict(codes),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_notebook": round(cpu / count, 3),
        "machine_busy_s": machine.busy_s,
        "other_processes_cpu_s": None if machine.busy_s is None else round(max(0.0, machine.busy_s - cpu), 2),
        "rate_per_s": round(count / wall, 3),
    }


def _protections(reports: list[Path]) -> dict[str, bool]:
    """The protections a graded run reported as verified (all of them, AND-ed over the first reports)."""
    merged: dict[str, bool] = {}
    for report in reports[:20]:
        run = json.loads(report.read_text()).get("run") or {}
        for name, on in (run.get("protections") or {}).items():
            merged[name] = merged.get(name, True) and bool(on)
    return merged


def _slowest(reports: list[Path], count: int = 3) -> list[dict]:
    """The submissions whose sandbox run took longest (report timing.run): where one-time costs land."""
    timings = []
    for report in reports:
        data = json.loads(report.read_text())
        timings.append(
            {"student": data.get("student"), **{k: round(v, 3) for k, v in (data.get("timing") or {}).items()}}
        )
    return sorted(timings, key=lambda t: -t.get("run", 0.0))[:count]
