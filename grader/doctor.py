"""`backprop-grader doctor`: which sandbox this machine gives student code, and why, before anyone is graded.

Prints the Python and torch in use, the memory the container allows, the sandbox mode the grader will use
and, when that is not bubblewrap, the exact reason (bubblewrap's own error, or the error of the first step
of a job's confinement that failed), then runs one tiny job exactly as a submission runs, through the
same fallback: what `doctor` reports is what `grade`, `check` and `gradescope run` will do here. Meant for
LMS containers (e.g. Gradescope's debug SSH session: /opt/backprop-grader/venv/bin/backprop-grader doctor).

Exit codes: 0 the test job ran (in either mode), 1 it did not (the output says why).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import TextIO

MEMORY_MIN_MB = 512  # see grader.sandbox.process.MEMORY_NEED for the measurements behind it
CGROUP = Path("/sys/fs/cgroup")
_TEST_SOURCE = "import os\n\n\ndef whoami():\n    return {'uid': os.getuid(), 'pid': os.getpid()}\n"


def add_doctor_command(commands: argparse._SubParsersAction) -> None:
    """Register `doctor` on the CLI's subcommands."""
    doctor = commands.add_parser("doctor", help="which sandbox student code gets here, and why; runs one test job")
    doctor.set_defaults(run=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    return run_doctor()


def run_doctor(out: TextIO | None = None) -> int:
    """Print the report described above to `out` (default stdout); 0 when the test job ran."""
    from grader.errors import SandboxError
    from grader.limits import Limits
    from grader.sandbox import Call, Job, RunStatus, Sandbox

    out = out or sys.stdout
    lines = [
        f"python:     {platform.python_version()} ({sys.executable})",
        f"torch:      {_version('torch')}",
        f"numpy:      {_version('numpy')}",
        f"bubblewrap: {shutil.which('bwrap') or 'not installed'}",
        f"user:       uid {os.geteuid()}",
        f"memory:     {memory_report()}",
    ]
    said: list[str] = []
    job = Job(filename="doctor.py", cells=[_TEST_SOURCE], calls=[Call(id="whoami", function="whoami")])
    try:
        with Sandbox(jobs=1, notify=said.append) as sandbox:
            result = sandbox.run(job, Limits(wall_seconds=60, cpu_seconds=60))
            mode, reason, off = sandbox.mode, sandbox.fallback_reason, sandbox.plan.off()
    except SandboxError as error:
        lines += [f"sandbox:    cannot start: {error}"]
        print("\n".join(lines), file=out, flush=True)
        return 1
    lines.append(f"sandbox:    {mode}" + (": every protection on" if mode == "bwrap" else ""))
    if reason:
        lines += [f"  reason:   {reason}", f"  off:      {', '.join(off)}"]
    if result.status == RunStatus.ok:
        values = result.calls["whoami"].values
        lines.append(
            f"test job:   ran in {mode} mode in {result.wall_seconds:.2f} s as uid {int(values['uid'])}, "
            f"pid {int(values['pid'])}"
        )
    else:
        lines.append(f"test job:   {result.status.value}: {result.detail or result.message}")
    print("\n".join(lines), file=out, flush=True)
    return 0 if result.status == RunStatus.ok else 1


def memory_report() -> str:
    """The memory limit of this process's container, and whether torch fits in it (see MEMORY_MIN_MB)."""
    from grader.sandbox.process import MEMORY_NEED

    limit = memory_limit_mb()
    if limit is None:
        total = _mem_total_mb()
        return "no container limit" + (f"; the machine has {total:.0f} MB" if total else "")
    if limit < MEMORY_MIN_MB:
        return f"the container may use {limit:.0f} MB, below the {MEMORY_MIN_MB} MB advised for torch: {MEMORY_NEED}"
    return f"the container may use {limit:.0f} MB (enough: at least {MEMORY_MIN_MB} MB is advised)"


def memory_limit_mb(cgroups: str = "/proc/self/cgroup", root: Path = CGROUP) -> float | None:
    """The smallest memory limit (MB) of this process's cgroup and its parents, v2 or v1; None if none.
    `cgroups` is the process's cgroup list, `root` where the hierarchies are mounted."""
    limits = []
    for line in _read(cgroups).splitlines():
        hierarchy, _, path = line.partition(":")[2].partition(":")
        if hierarchy == "":  # cgroup v2
            base, name = root, "memory.max"
        elif "memory" in hierarchy.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        folder = base / path.lstrip("/")
        limits += [_read(group / name) for group in [folder, *folder.parents] if base in (group, *group.parents)]
    values = [int(text) for text in (t.strip() for t in limits) if text.isdigit() and int(text) < 1 << 60]
    return min(values) / 2**20 if values else None


def _mem_total_mb() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return None


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
