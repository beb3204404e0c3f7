"""The benchmark runs end to end at a tiny size and writes its JSON with every field (DESIGN §10).

No time is asserted here, ever: budgets are checked by reading the benchmark's output, not by tests.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

GRADE_RUN_FIELDS = {
    "n",
    "rubric",
    "samples",
    "reports",
    "statuses",
    "wall_s",
    "grader_cpu_s",
    "sandbox_cpu_s",
    "grader_peak_rss_mb",
    "grader_rss_mb_while_grading",
    "first_report_after_s",
    "last_report_after_s",
    "machine_busy_s",
    "other_processes_cpu_s",
    "rate_whole_per_s",
    "rate_excl_sandbox_start_per_s",
    "rate_steady_per_s",
    "grader_cpu_ms_per_submission",
    "sandbox_cpu_ms_per_submission",
    "grader_cpu_ms_per_submission_steady",
    "sandbox_cpu_ms_per_submission_steady",
    "protections",
    "slowest",
}
MACHINE_FIELDS = {
    "cpu_model",
    "cores",
    "usable_cores",
    "cpu_quota",
    "memory_gb",
    "os",
    "kernel",
    "python",
    "numpy",
    "torch",
    "pydantic",
    "sandbox_mode",
    "sandbox_protections",
    "protections_off",
    "as_root",
}
PER_SUBMISSION_FIELDS = {"wall_ms", "grader_cpu_ms", "sandbox_cpu_ms", "total_cpu_ms"}
BUDGET_IDS = {
    "contract_whole",
    "contract_excl_start",
    "notebooks_whole",
    "notebooks_excl_start",
    "overhead_cpu_total",
    "overhead_cpu_grader",
    "memory_peak",
    "memory_flat",
    "cold_check",
    "provenance_cost",
}


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    """One tiny run of `python -m benchmarks.run`: its JSON, its printed table, its stderr."""
    output = tmp_path_factory.mktemp("bench") / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--n",
            "5",
            "--memory-small-n",
            "3",
            "--memory-n",
            "6",
            "--baseline-n",
            "2",
            "--check-runs",
            "1",
            "--output",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"benchmark failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads(output.read_text(encoding="utf-8")), done.stdout, done.stderr


def test_every_top_level_field_is_written(benchmark):
    result, _, _ = benchmark
    assert set(result) >= {
        "date",
        "timestamp",
        "command",
        "git",
        "parameters",
        "machine",
        "sandbox_start",
        "contract",
        "notebooks",
        "overhead",
        "memory",
        "cold_check",
        "cold_check_optimizer",
        "baseline",
        "other_load",
        "budgets",
        "duration_s",
        "calibration",
        "notebooks_without_provenance",
        "provenance",
        "notebooks_softmax_dropout",
    }
    assert result["parameters"] == {
        "n": 5,
        "memory_small_n": 3,
        "memory_n": 6,
        "baseline_n": 2,
        "check_runs": 1,
        "jobs": 2,
    }
    assert set(result["git"]) == {"commit", "dirty"}
    speed = result["calibration"]
    assert set(speed["ms_before"]) == {
        "sandbox start",
        "start-up",
        "contract",
        "notebooks",
        "notebooks, no provenance run",
        "dropout notebooks",
        "overhead",
        "memory",
        "cold check",
        "baseline",
        "end",
    }
    assert 0 < speed["min_ms"] <= speed["median_ms"] <= speed["max_ms"] == max(speed["ms_before"].values())


def test_machine_names_cpu_memory_versions_and_sandbox(benchmark):
    machine = benchmark[0]["machine"]
    assert set(machine) >= MACHINE_FIELDS
    assert machine["cores"] >= 1 and machine["python"].startswith("3.")
    assert machine["sandbox_mode"] in ("bwrap", "fallback")
    assert machine["sandbox_protections"] and all(isinstance(v, bool) for v in machine["sandbox_protections"].values())
    assert machine["protections_off"] == sorted(k for k, v in machine["sandbox_protections"].items() if not v)


def test_grade_runs_graded_every_submission_and_report_rates(benchmark):
    result = benchmark[0]
    for kind, rubric in (
        ("contract", "bs6207-a1"),
        ("notebooks", "bs6207-a1-notebook"),
        ("notebooks_softmax_dropout", "softmax-dropout-notebook"),
    ):
        run = result[kind]
        assert set(run) >= GRADE_RUN_FIELDS, kind
        assert run["rubric"] == rubric and run["n"] == 5 and run["reports"] == 5
        assert sum(run["statuses"].values()) == 5
        assert run["rate_whole_per_s"] > 0 and run["rate_excl_sandbox_start_per_s"] >= run["rate_whole_per_s"]
        assert run["grader_peak_rss_mb"] > 0
    assert len(result["contract"]["samples"]) > 5  # mixed: correct and every catalogued mistake
    assert len(set(result["notebooks"]["samples"])) > 5
    start = result["sandbox_start"]
    assert start["workers"] == 2 and start["start_s"]["median"] > 0 and start["mode"] in ("bwrap", "fallback")


def test_the_provenance_run_is_measured_against_the_same_notebooks_without_it(benchmark):
    result = benchmark[0]
    plain = result["notebooks_without_provenance"]
    assert plain["n"] == 5 and plain["reports"] == 5 and plain["samples"] == result["notebooks"]["samples"]
    provenance = result["provenance"]
    assert provenance["rate_steady_with_per_s"] == result["notebooks"]["rate_steady_per_s"]
    assert provenance["rate_steady_without_per_s"] == plain["rate_steady_per_s"]
    cost = provenance["throughput_cost_fraction"]
    assert cost is None or cost < 1


def test_overhead_memory_check_and_baseline_figures(benchmark):
    result = benchmark[0]
    overhead = result["overhead"]
    assert overhead["n"] == 5 and overhead["fixed_n"] == 2 and sum(overhead["statuses"].values()) == 5
    assert set(overhead["all_in"]) == PER_SUBMISSION_FIELDS and set(overhead["marginal"]) == PER_SUBMISSION_FIELDS
    memory = result["memory"]
    assert memory["small"]["n"] == 3 and memory["large"]["n"] == 6
    for size in ("small", "large"):
        assert memory[size]["grader_peak_rss_mb"] > 0 and memory[size]["grader_rss_mb_while_grading"] > 0
    for growth in ("growth_peak_rss", "growth_rss_while_grading"):
        assert set(memory[growth]) == {"mb", "percent", "kb_per_submission"}
    for key, notebook in (("cold_check", "correct.ipynb"), ("cold_check_optimizer", "after_10_sgd_steps.ipynb")):
        check = result[key]
        assert check["notebook"].endswith(notebook)
        assert len(check["exit_codes"]) == 1 and check["exit_codes"][0] in (0, 1)  # 2 (usage) would have failed the run
        assert len(check["wall_s"]["runs"]) == 1 and check["wall_s"]["median"] > 0
    baseline = result["baseline"]
    assert baseline["notebooks"] == 2 and sum(baseline["outcomes"].values()) == 2
    assert baseline["rate_per_s"] > 0 and baseline["ratio_ours_to_baseline"] > 0
    assert "extrapolated" in baseline and "how" in baseline
    assert set(result["other_load"]) == {"grade runs", "cold check", "baseline"}


def test_every_budget_is_judged_and_printed(benchmark):
    result, table, _ = benchmark
    assert {row["id"] for row in result["budgets"]} == BUDGET_IDS
    for row in result["budgets"]:
        assert set(row) == {"id", "figure", "measured", "unit", "budget", "ok"}
        assert row["ok"] in (True, False, None)
        assert row["figure"] in table
    assert table.count("✓") + table.count("✗") + table.count("? (not measurable here)") == len(BUDGET_IDS)
    assert "baseline" in table and "written:" in table


def test_a_commit_comparison_pairs_each_round_with_the_base_run_before_it():
    """benchmarks.commits: each round is compared with the base run just before it (the machine's drift
    between rounds, here ×2, falls out of those ratios), as well as median with median."""
    from benchmarks.commits import _figures

    def run(tree: float, wall: float) -> dict:
        return {"tree": tree, "grader": tree / 2, "sandbox": tree / 2, "wall": wall}

    base = [run(10.0, 5.0), run(20.0, 10.0), run(10.0, 5.0)]
    head = [run(11.0, 6.0), run(30.0, 12.0), run(12.0, 6.0)]
    figures = _figures(head, base)
    assert figures["paired_ratio"] == pytest.approx(1.2)  # the rounds' ratios: 1.1, 1.5, 1.2
    assert figures["ratio_to_base"] == pytest.approx(1.2)  # medians: 12 / 10
    assert figures["wall_paired_ratio"] == pytest.approx(1.2) and figures["grader_median"] == pytest.approx(6.0)
    drifted = [run(10.0, 5.0), run(30.0, 15.0), run(30.0, 15.0)]
    assert _figures([run(11.0, 5.5), run(33.0, 16.5), run(33.0, 16.5)], drifted)["paired_ratio"] == pytest.approx(1.1)
