"""Compare this checkout's grading cost with an earlier commit's, on the same machine in the same run.

    .venv/bin/python -m benchmarks.commits BASE [--n 150] [--rounds 3] [--jobs 2] [--suites contract,notebooks]
                                                [--output PATH]

A budget such as "throughput within 15 % of today" is a ratio to an earlier commit, and machines here differ
by 2x in speed (and a shared VM by ±20 % within an hour), so both sides are measured here, alternately, in
rounds. BASE is checked out into a temporary git worktree; each side grades the same inputs (BASE's own
samples, so that both grade exactly the same files) with its own grader and its own bundled rubric:

- contract: n copies of BASE's `submissions/bs6207-a1/*.py`;
- notebooks: n copies of BASE's `submissions/bs6207-a1-notebooks/*.ipynb`, and on this checkout a second
  time with BACKPROP_GRADER_PROVENANCE=off (what the provenance run costs, apart from everything else).

The figure compared is the CPU of the whole process tree (the grader, bwrap, the warm workers and every child,
from a cgroup of its own: benchmarks.meters.CpuAccount) per submission, with the start-up costs of a
2-submission run subtracted: (CPU of the n run - CPU of the 2 run) / (n - 2). Its median over the rounds is
reported for each side, with the ratio to BASE (of the medians, and the median of each round's ratio to
BASE's run just before it), and apart for the grader process and for the sandbox. The
wall time per submission is reported the same way ((wall of the n run - wall of the 2 run) / (n - 2), at
--jobs): the throughput a budget states, which also counts the time a job waits (on the grader's answers,
on the kernel) with a core idle. Without a writable cgroup the command says so and stops.
Nothing here asserts a time.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import CONTRACT_RUBRIC, NOTEBOOK_RUBRIC, REPO, log
from benchmarks.machine import git_info
from benchmarks.measure import grade_run
from benchmarks.meters import CpuAccount

SUITES = {  # label: (rubric, samples folder inside a checkout, glob)
    "contract": (CONTRACT_RUBRIC, "submissions/bs6207-a1", "*.py"),
    "notebooks": (NOTEBOOK_RUBRIC, "submissions/bs6207-a1-notebooks", "*.ipynb"),
}
PROVENANCE_OFF = {"BACKPROP_GRADER_PROVENANCE": "off"}


def per_submission(label: str, samples: list[Path], n: int, rubric: str, work: Path, jobs: int, **kw) -> dict:
    """CPU per submission, start-up subtracted (see the module docstring): of the whole tree, and of the
    grader process and of the sandbox (everything else in the tree) apart, to show which side a change moved."""
    big, small = (grade_run(f"{label}-{count}", samples, count, rubric, work, jobs, **kw) for count in (n, 2))
    per = {part: (big[f"{part}_cpu_s"] - small[f"{part}_cpu_s"]) / (n - 2) * 1000 for part in ("grader", "sandbox")}
    wall = (big["wall_s"] - small["wall_s"]) / (n - 2) * 1000
    return {
        "tree": round(per["grader"] + per["sandbox"], 1),
        **{part: round(ms, 1) for part, ms in per.items()},
        "wall": round(wall, 1),
    }


def compare(base: str, n: int, rounds: int, jobs: int, work: Path, suites: list[str]) -> dict:
    """Every side of every suite, `rounds` times alternately; medians and ratios to BASE."""
    tree = work / "base"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--quiet", "--detach", str(tree), base], check=True)
    try:
        figures: dict[str, dict[str, list[dict]]] = {}
        for suite in suites:
            rubric, folder, pattern = SUITES[suite]
            samples = sorted((tree / folder).glob(pattern))
            sides = {"base": {"code": tree}, "head": {"code": REPO}}
            if suite == "notebooks":
                sides["head, provenance run off"] = {"code": REPO, "env": PROVENANCE_OFF}
            figures[suite] = {side: [] for side in sides}
            for round_ in range(rounds):
                for side, kw in sides.items():
                    label = f"{suite}-{side.replace(', ', '-').replace(' ', '-')}-{round_}"
                    value = per_submission(label, samples, n, rubric, work, jobs, **kw)
                    figures[suite][side].append(value)
                    log(
                        f"{suite}, {side}, round {round_ + 1}/{rounds}: {value['tree']} ms CPU per submission"
                        f" (grader {value['grader']}, sandbox {value['sandbox']}; wall {value['wall']} ms)"
                    )
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    result = {}
    for suite, sides in figures.items():
        result[suite] = {side: _figures(values, sides["base"]) for side, values in sides.items()}
    return result


def _figures(values: list[dict], base: list[dict]) -> dict:
    """One side's rounds against BASE's: medians, the ratio of the medians, and the median of the ratios
    of each round to BASE's run just before it (the machine's drift between rounds falls out of those)."""

    def median(key: str, runs: list[dict]) -> float:
        return statistics.median(run[key] for run in runs)

    return {
        "cpu_ms_per_submission": [value["tree"] for value in values],
        "median": median("tree", values),
        "ratio_to_base": round(median("tree", values) / median("tree", base), 3),
        "paired_ratio": round(statistics.median(v["tree"] / b["tree"] for v, b in zip(values, base)), 3),
        "grader_median": median("grader", values),
        "sandbox_median": median("sandbox", values),
        "wall_ms_per_submission": [value["wall"] for value in values],
        "wall_median": median("wall", values),
        "wall_ratio_to_base": round(median("wall", values) / median("wall", base), 3),
        "wall_paired_ratio": round(statistics.median(v["wall"] / b["wall"] for v, b in zip(values, base)), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare with (any git revision)")
    parser.add_argument("--n", type=int, default=150, help="submissions in each measured run (default 150)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="grade --jobs (default 2)")
    parser.add_argument("--suites", default=",".join(SUITES), help="comma-separated, of: " + ", ".join(SUITES))
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    suites = [suite for suite in args.suites.split(",") if suite]
    if not suites or any(suite not in SUITES for suite in suites):
        parser.error(f"--suites: expected names among {', '.join(SUITES)}, found {args.suites!r}")
    if args.n <= 2:
        parser.error(f"--n must be above 2 (the start-up run grades 2), found {args.n}")
    with CpuAccount("probe") as probe:
        if probe.path is None:
            print("no writable cgroup here: the CPU of the sandbox cannot be counted; run as root", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="bpg-commits-"))
    try:
        result = compare(args.base, args.n, args.rounds, args.jobs, work, suites)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"base": args.base, "head": git_info(), "n": args.n, "rounds": args.rounds, "suites": result}
    for suite, sides in result.items():
        for side, figure in sides.items():
            print(
                f"{suite:9} {side:26} {figure['median']:7.1f} ms CPU/submission  × {figure['ratio_to_base']:.2f}"
                f" (round by round × {figure['paired_ratio']:.2f})"
                f"  (grader {figure['grader_median']:.1f}, sandbox {figure['sandbox_median']:.1f});"
                f"  wall {figure['wall_median']:.1f} ms/submission × {figure['wall_ratio_to_base']:.2f}"
                f" (round by round × {figure['wall_paired_ratio']:.2f})"
            )
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
