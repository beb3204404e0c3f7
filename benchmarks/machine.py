"""The machine a benchmark ran on and the code it measured: CPU, cores, memory, OS, versions, sandbox, git.

Contract: `machine_info` and `git_info` only read (/proc, /sys, /etc/os-release, installed metadata, `git`);
whatever cannot be read is None or a placeholder, never an error.
"""

import hashlib
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from benchmarks.common import REPO


def machine_info(contract: dict) -> dict:
    """CPU, cores, memory, OS, versions, and the sandbox's mode and protections (those the contract run verified)."""
    from grader.sandbox import isolation

    plan = isolation.plan(())
    verified = contract.get("protections") or {}
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_quota": _cpu_quota(),
        "memory_gb": _memory_gb(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "pydantic": _version("pydantic"),
        "sandbox_mode": plan.mode,
        "sandbox_protections": verified or dict(plan.protections),
        "protections_off": sorted(name for name, on in (verified or plan.protections).items() if not on),
        "as_root": os.geteuid() == 0,
    }


def calibration_ms() -> float:
    """CPU milliseconds of a fixed single-threaded workload (hashing and small-array numpy, as grading
    does), best of 3: the speed of this machine at this moment. Shared VMs drift by ±20 % within an hour;
    comparing runs is fair only at similar calibrations."""
    import numpy as np

    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        digest, values = b"", np.linspace(0.0, 1.0, 100)
        for i in range(20000):
            digest = hashlib.blake2b(digest + i.to_bytes(4, "little"), digest_size=16).digest()
            values = np.abs(values - 0.5) * 1.0001
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_quota() -> str | None:
    """The cgroup v2 CPU limit ("max 100000" = none), when readable."""
    try:
        return Path("/sys/fs/cgroup/cpu.max").read_text().strip()
    except OSError:
        return None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def git_info() -> dict:
    """The commit measured and whether the tree had changes."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
