"""DESIGN §10's budgets, each figure judged against its budget, and the table the benchmark prints.

Contract: pure functions of the result dict `benchmarks.run.measure` builds; `budgets` returns one row per
budget (ok is None where the figure could not be measured), `render_table` returns the text to print.
"""

from pathlib import Path

BUDGETS = {  # DESIGN §10
    "contract_per_s": 40.0,
    "notebooks_per_s": 20.0,
    "overhead_cpu_ms": 50.0,
    "grader_memory_mb": 500.0,
    "flat_growth": 0.10,  # peak RSS may grow by at most 10 % from the small to the large class
    "cold_check_s": 3.0,
    "provenance_cost": 0.15,  # new protections and the provenance run together, of notebook throughput
}


def budgets(result: dict) -> list[dict]:
    """Every figure DESIGN §10 sets a budget for, with the budget and whether it is met (None: not measurable)."""
    c, nb, ov, mem, chk = (
        result["contract"],
        result["notebooks"],
        result["overhead"],
        result["memory"],
        result["cold_check"],
    )
    marginal = ov["marginal"] or ov["all_in"]
    n_small, n_large = mem["small"]["n"], mem["large"]["n"]
    rows = [
        (
            "contract_whole",
            "contract .py, grade --jobs 2, whole command",
            c["rate_whole_per_s"],
            "/s",
            "≥",
            BUDGETS["contract_per_s"],
        ),
        (
            "contract_excl_start",
            "contract .py, excluding sandbox start",
            c["rate_excl_sandbox_start_per_s"],
            "/s",
            "≥",
            BUDGETS["contract_per_s"],
        ),
        (
            "notebooks_whole",
            "notebooks, grade --jobs 2, whole command",
            nb["rate_whole_per_s"],
            "/s",
            "≥",
            BUDGETS["notebooks_per_s"],
        ),
        (
            "notebooks_excl_start",
            "notebooks, excluding sandbox start",
            nb["rate_excl_sandbox_start_per_s"],
            "/s",
            "≥",
            BUDGETS["notebooks_per_s"],
        ),
        (
            "overhead_cpu_total",
            "CPU per no-op submission, grader + sandbox",
            marginal["total_cpu_ms"],
            "ms",
            "≤",
            BUDGETS["overhead_cpu_ms"],
        ),
        (
            "overhead_cpu_grader",
            "CPU per no-op submission, grader process only",
            marginal["grader_cpu_ms"],
            "ms",
            "≤",
            BUDGETS["overhead_cpu_ms"],
        ),
        (
            "memory_peak",
            f"grader peak RSS, {n_large} submissions",
            mem["large"]["grader_peak_rss_mb"],
            "MB",
            "≤",
            BUDGETS["grader_memory_mb"],
        ),
        (
            "memory_flat",
            f"grader RSS growth while grading, {n_small} → {n_large}",
            mem["growth_rss_while_grading"]["percent"],
            "%",
            "≤",
            BUDGETS["flat_growth"] * 100,
        ),
        (
            "cold_check",
            "cold check of one notebook, wall (median)",
            chk["wall_s"]["median"],
            "s",
            "≤",
            BUDGETS["cold_check_s"],
        ),
        (
            "provenance_cost",
            "notebook throughput lost to the provenance run (steady, same run)",
            None
            if result["provenance"]["throughput_cost_fraction"] is None
            else result["provenance"]["throughput_cost_fraction"] * 100,
            "%",
            "≤",
            BUDGETS["provenance_cost"] * 100,
        ),
    ]
    return [
        {
            "id": key,
            "figure": name,
            "measured": value,
            "unit": unit,
            "budget": f"{op} {limit:g}",
            "ok": None if value is None else bool(value >= limit if op == "≥" else value <= limit),
        }
        for key, name, value, unit, op, limit in rows
    ]


def render_table(result: dict) -> str:
    """The printed table: each budgeted figure with its budget and ✓ / ✗, then the figures without a budget."""
    m, c, nb, ov, mem, base = (
        result[k] for k in ("machine", "contract", "notebooks", "overhead", "memory", "baseline")
    )
    marginal = ov["marginal"] or ov["all_in"]
    lines = [
        f"backprop-grader benchmarks, {result['timestamp']} ({result['command']})",
        f"machine: {m['cpu_model']}, {m['usable_cores']} cores, {m['memory_gb']} GB; Python {m['python']}, numpy {m['numpy']}, "
        f"torch {m['torch']}; sandbox {m['sandbox_mode']}, protections off: {', '.join(m['protections_off']) or 'none'}",
        f"sandbox start ({result['sandbox_start']['workers']} workers, median): {result['sandbox_start']['start_s']['median']:.2f} s",
        f"machine speed: a fixed CPU workload took {result['calibration']['min_ms']:.0f}–"
        f"{result['calibration']['max_ms']:.0f} ms (median {result['calibration']['median_ms']:.0f}) before the "
        f"phases (lower is faster; compare runs only at similar values)",
        "",
    ]
    growth = mem["growth_peak_rss"]
    info = [
        ("contract .py, steady state (first to last report)", f"{_fmt(c['rate_steady_per_s'])} /s"),
        (
            "contract .py, CPU per submission (steady): grader + sandbox",
            f"{_fmt(c['grader_cpu_ms_per_submission_steady'])} + {_fmt(c['sandbox_cpu_ms_per_submission_steady'])} ms",
        ),
        ("notebooks, steady state (first to last report)", f"{_fmt(nb['rate_steady_per_s'])} /s"),
        (
            "notebooks, CPU per submission (steady): grader + sandbox",
            f"{_fmt(nb['grader_cpu_ms_per_submission_steady'])} + {_fmt(nb['sandbox_cpu_ms_per_submission_steady'])} ms",
        ),
        (
            "notebooks without the provenance run, steady state / sandbox CPU per notebook",
            f"{_fmt(result['provenance']['rate_steady_without_per_s'])} /s, "
            f"{_fmt(result['provenance']['sandbox_cpu_ms_without'])} ms (with it: {_fmt(result['provenance']['sandbox_cpu_ms_with'])} ms)",
        ),
        (
            "softmax-dropout notebooks (masks replayed), steady state / CPU per notebook: grader + sandbox",
            f"{_fmt(result['notebooks_softmax_dropout']['rate_steady_per_s'])} /s, "
            f"{_fmt(result['notebooks_softmax_dropout']['grader_cpu_ms_per_submission_steady'])} + "
            f"{_fmt(result['notebooks_softmax_dropout']['sandbox_cpu_ms_per_submission_steady'])} ms",
        ),
        ("no-op: sandbox CPU per submission", f"{_fmt(marginal['sandbox_cpu_ms'])} ms"),
        ("no-op: wall per submission at --jobs 2", f"{_fmt(marginal['wall_ms'])} ms"),
        (f"grader peak RSS, {mem['small']['n']} submissions", f"{_fmt(mem['small']['grader_peak_rss_mb'])} MB"),
        (
            f"grader peak RSS growth {mem['small']['n']} → {mem['large']['n']} (incl. class files)",
            f"{_fmt(growth['mb'])} MB, {_fmt(growth['kb_per_submission'])} KB/sub",
        ),
        (
            f"cold check of {Path(result['cold_check_optimizer']['notebook']).name} (torch.optim), median",
            f"{_fmt(result['cold_check_optimizer']['wall_s']['median'])} s",
        ),
        (
            f"baseline: fresh python + torch per notebook ({base['notebooks']} run, extrapolated)",
            f"{_fmt(base['rate_per_s'])} /s",
        ),
        ("ours / baseline, notebooks (whole command)", f"{_fmt(base['ratio_ours_to_baseline'])} ×"),
    ]
    width = max(len(row["figure"]) for row in result["budgets"]) + 2
    width = max(width, max(len(name) for name, _ in info) + 2)
    value_width = max(14, max(len(value) for _, value in info))
    lines.append(f"{'figure':<{width}}{'measured':>{value_width}}   budget")
    for row in result["budgets"]:
        mark = {True: "✓", False: "✗", None: "? (not measurable here)"}[row["ok"]]
        lines.append(
            f"{row['figure']:<{width}}{_fmt(row['measured']) + ' ' + row['unit']:>{value_width}}   "
            f"{row['budget'] + ' ' + row['unit']:<10} {mark}"
        )
    lines.append("")
    lines += [f"{name:<{width}}{value:>{value_width}}" for name, value in info]
    statuses = {k: result[k]["statuses"] for k in ("contract", "notebooks")}
    lines.append(
        f"\noutcomes: contract {statuses['contract']}, notebooks {statuses['notebooks']}, no-op {ov['statuses']}"
    )
    loads = [
        f"{phase} {load['cores']:.2f}" for phase, load in result["other_load"].items() if load["cores"] is not None
    ]
    if loads:
        busy = max(load["cores"] or 0 for load in result["other_load"].values())
        lines.append(
            f"other processes on this machine (cores in use on average): {', '.join(loads)} of {m['usable_cores']}"
            + (" — figures are pessimistic" if busy > 0.2 else "")
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
