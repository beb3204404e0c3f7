"""`backprop-grader doctor`: the sandbox mode this machine gives, the exact reason when it is not bubblewrap,
the container's memory, and one test job run as submissions run."""

import os
from pathlib import Path

import pytest

from grader.doctor import MEMORY_MIN_MB, memory_limit_mb, memory_report
from grader.sandbox import isolation

REFUSED = "PermissionError: [Errno 1] unshare(user): Operation not permitted"
NEEDS_BWRAP = pytest.mark.skipif(
    isolation.bwrap_problem(os.geteuid() != 0) is not None,
    reason="bubblewrap cannot run here, so there is nothing to fall back from",
)


def doctor(cli, monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cli("doctor")


@NEEDS_BWRAP
def test_where_bubblewrap_works_doctor_says_so_and_runs_the_test_job_in_it(cli):
    done = cli("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sandbox:    bwrap: every protection on" in done.stdout and "reason:" not in done.stdout
    assert "test job:   ran in bwrap mode" in done.stdout and "pid 1\n" in done.stdout  # PID 1 of its namespace
    assert "memory:" in done.stdout and "torch:" in done.stdout


@NEEDS_BWRAP
@pytest.mark.parametrize(
    "fault, step",
    [
        ("userns", "the start-up probe of a job's confinement failed"),
        ("userns-jobs", "a job's confinement failed in bubblewrap"),
    ],
)
def test_where_user_namespaces_are_refused_doctor_prints_the_fallback_and_its_exact_reason(
    cli, monkeypatch, fault, step
):
    done = doctor(cli, monkeypatch, **{isolation.ENV_FAULT: fault})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sandbox:    fallback" in done.stdout
    [reason] = [line for line in done.stdout.splitlines() if line.lstrip().startswith("reason:")]
    assert step in reason and REFUSED in reason
    assert "off:" in done.stdout and "bubblewrap" in done.stdout.split("off:", 1)[1]
    assert "test job:   ran in fallback mode" in done.stdout


def test_a_requested_fallback_is_named_as_the_reason(cli, monkeypatch):
    done = doctor(cli, monkeypatch, **{isolation.ENV_MODE: "fallback"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reason:   the fallback sandbox was asked for (BACKPROP_GRADER_SANDBOX=fallback)" in done.stdout


@NEEDS_BWRAP
def test_when_no_sandbox_can_run_the_test_job_doctor_says_why_and_exits_1(cli, monkeypatch):
    done = doctor(cli, monkeypatch, **{isolation.ENV_MODE: "bwrap", isolation.ENV_FAULT: "userns"})
    assert done.returncode == 1
    assert "sandbox:    cannot start:" in done.stdout and REFUSED in done.stdout


def write_cgroups(root: Path, groups: dict[str, str]) -> None:
    for group, limit in groups.items():
        (root / group).mkdir(parents=True, exist_ok=True)
        (root / group / ("memory.max" if not group.startswith("memory") else "memory.limit_in_bytes")).write_text(limit)


def test_the_container_memory_limit_is_the_smallest_of_its_cgroup_and_the_groups_above(tmp_path):
    listing = tmp_path / "cgroup"
    listing.write_text("0::/container/job\n")
    write_cgroups(tmp_path / "fs", {"container": str(256 << 20), "container/job": "max"})
    assert memory_limit_mb(str(listing), tmp_path / "fs") == pytest.approx(256)
    listing.write_text("4:memory:/docker/abc\n3:cpu:/docker/abc\n")  # cgroup v1
    write_cgroups(tmp_path / "fs", {"memory/docker/abc": str(768 << 20), "memory": "9223372036854771712"})
    assert memory_limit_mb(str(listing), tmp_path / "fs") == pytest.approx(768)
    listing.write_text("0::/\n")
    assert memory_limit_mb(str(listing), tmp_path / "empty") is None


def test_a_container_below_the_memory_torch_needs_is_told_what_to_choose(monkeypatch):
    import grader.doctor as module

    monkeypatch.setattr(module, "memory_limit_mb", lambda: 256.0)
    report = memory_report()
    assert f"256 MB, below the {MEMORY_MIN_MB} MB advised" in report and "at 256 MB the worker never answered" in report
    monkeypatch.setattr(module, "memory_limit_mb", lambda: 768.0)
    assert "768 MB (enough" in memory_report()
