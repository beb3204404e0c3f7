"""Arithmetic on the readings of `benchmarks.measure` and `benchmarks.meters`: rates, CPU per submission
(steady state, and with start-up costs subtracted), the no-op overhead, memory figures, summaries.

Contract: pure functions of the numbers they are given (`add_rates` fills its `run` in place); None in,
None out where a figure cannot be computed. Nothing here starts a process or reads a file.
"""

import statistics

from benchmarks.meters import Sample


def rss_until(samples: list[Sample], until: float | None) -> float | None:
    """The grader's largest RSS up to the moment its last report was written (before the class files)."""
    seen = [sample.rss_mb for sample in samples if until is None or sample.at <= until]
    return round(max(seen), 1) if seen else None


def steady_cpu(samples: list[Sample], mtimes: list[float]) -> dict:
    """CPU per submission between the first and the last report written: no start-up, no class files."""
    none = {"grader_cpu_ms_per_submission_steady": None, "sandbox_cpu_ms_per_submission_steady": None}
    if len(mtimes) < 3:
        return none
    inside = [sample for sample in samples if mtimes[0] <= sample.at <= mtimes[-1]]
    if len(inside) < 2:
        return none
    first, last = inside[0], inside[-1]
    graded = sum(1 for at in mtimes if first.at < at <= last.at)
    if graded < 1:
        return none
    grader = last.grader_cpu_s - first.grader_cpu_s
    tree = None if first.tree_cpu_s is None or last.tree_cpu_s is None else last.tree_cpu_s - first.tree_cpu_s
    return {
        "grader_cpu_ms_per_submission_steady": ms(grader, graded),
        "sandbox_cpu_ms_per_submission_steady": None if tree is None else ms(max(0.0, tree - grader), graded),
    }


def add_rates(run: dict, sandbox_start_s: float, fixed: dict) -> None:
    """Rates, and CPU per submission with the start-up costs of a minimal run (`fixed`) subtracted."""
    n, wall = run["n"], run["wall_s"]
    run["rate_whole_per_s"] = round(n / wall, 2)
    run["rate_excl_sandbox_start_per_s"] = round(n / max(wall - sandbox_start_s, 1e-9), 2)
    span = run["last_report_after_s"] - run["first_report_after_s"]
    run["rate_steady_per_s"] = round((n - 1) / span, 2) if n > 1 and span > 0 else None
    extra = n - fixed["n"]
    for key in ("grader_cpu", "sandbox_cpu"):
        total, start = run[f"{key}_s"], fixed[f"{key}_s"]
        run[f"{key}_ms_per_submission"] = (
            None if None in (total, start) or extra <= 0 else ms(max(0.0, total - start), extra)
        )


def overhead_figures(fixed: dict, noops: dict) -> dict:
    """Per no-op submission: all-in (the N run divided by N) and marginal (fixed costs subtracted)."""
    n, dn = noops["n"], noops["n"] - fixed["n"]

    def per(run: dict, count: int) -> dict:
        sandbox = run["sandbox_cpu_s"]
        return {
            "wall_ms": ms(run["wall_s"], count),
            "grader_cpu_ms": ms(run["grader_cpu_s"], count),
            "sandbox_cpu_ms": ms(sandbox, count),
            "total_cpu_ms": None if sandbox is None else ms(run["grader_cpu_s"] + sandbox, count),
        }

    delta = {
        key: None if noops[key] is None or fixed[key] is None else noops[key] - fixed[key]
        for key in ("wall_s", "grader_cpu_s", "sandbox_cpu_s")
    }
    return {
        "n": n,
        "fixed_n": fixed["n"],
        "statuses": noops["statuses"],
        "all_in": per(noops, n),
        "marginal": per(delta, dn) if dn > 0 else None,
        "fixed_run": {key: fixed[key] for key in ("wall_s", "grader_cpu_s", "sandbox_cpu_s", "grader_peak_rss_mb")},
        "noop_run": {key: noops[key] for key in ("wall_s", "grader_cpu_s", "sandbox_cpu_s", "grader_peak_rss_mb")},
    }


def memory_figures(small: dict, large: dict) -> dict:
    """The two memory runs side by side, and how much the grader's RSS grew from the small to the large one."""
    memory = {"small": _memory(small), "large": _memory(large)}
    for key in ("grader_peak_rss_mb", "grader_rss_mb_while_grading"):
        before, after = small[key], large[key]
        memory[key.replace("grader_", "growth_").replace("_mb", "")] = {
            "mb": None if None in (before, after) else round(after - before, 1),
            "percent": None if None in (before, after) or not before else round((after - before) / before * 100, 1),
            "kb_per_submission": None
            if None in (before, after) or large["n"] == small["n"]
            else round((after - before) * 1024 / (large["n"] - small["n"]), 2),
        }
    return memory


def _memory(run: dict) -> dict:
    return {key: run[key] for key in ("n", "grader_peak_rss_mb", "grader_rss_mb_while_grading", "wall_s", "statuses")}


def ms(seconds: float | None, count: int) -> float | None:
    """Milliseconds per item, to 0.1 ms (None stays None)."""
    return None if seconds is None else round(seconds / count * 1000, 1)


def summary(values: list[float]) -> dict:
    """Median, min, max and every value, to the millisecond."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "runs": [round(v, 3) for v in values],
    }


def provenance_cost(notebooks: dict, plain: dict) -> dict:
    """What the counterfactual provenance run costs notebook throughput, measured in the same run: the
    steady-state rates with it (`notebooks`) and without it (`plain`, BACKPROP_GRADER_PROVENANCE=off), and the
    sandbox CPU per notebook of each. DESIGN §10 allows new protections and the provenance run 15 % together."""
    with_rate, without_rate = notebooks["rate_steady_per_s"], plain["rate_steady_per_s"]
    cost = None if not with_rate or not without_rate else round(1 - with_rate / without_rate, 3)
    return {
        "rate_steady_with_per_s": with_rate,
        "rate_steady_without_per_s": without_rate,
        "throughput_cost_fraction": cost,
        "sandbox_cpu_ms_with": notebooks.get("sandbox_cpu_ms_per_submission_steady"),
        "sandbox_cpu_ms_without": plain.get("sandbox_cpu_ms_per_submission_steady"),
    }
