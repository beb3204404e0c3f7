"""Live readings of a running grader: its RSS and CPU polled from /proc, its process tree's CPU from a cgroup
of its own, and the whole machine's busy CPU.

Contract: `poll` samples a running process every 0.1 s until it exits; `CpuAccount` (a cgroup v2 that the
measured tree joins; `path` and every reading are None where no writable cgroup v2 exists) and
`MachineMeter` (from /proc/stat) are context managers whose figures are set on exit. Nothing here judges a
figure.
"""

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import log


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    rss_mb: float
    grader_cpu_s: float
    tree_cpu_s: float | None  # the grader and everything it started (cgroup), when counted


def poll(process: subprocess.Popen, account: "CpuAccount") -> list[Sample]:
    """The grader's RSS and CPU, and its whole tree's CPU, every 0.1 s while it runs."""
    samples, tick = [], os.sysconf("SC_CLK_TCK")
    while process.poll() is None:
        try:
            rss = next(
                int(line.split()[1]) / 1024
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            samples.append(Sample(time.time(), rss, (int(fields[11]) + int(fields[12])) / tick, account.read()))
        except (OSError, ValueError, IndexError, StopIteration):
            pass
        time.sleep(0.1)
    return samples


class CpuAccount:
    """CPU seconds of a process tree, from a cgroup (v2) of its own that the tree's root moves into.

    Needs a writable cgroup v2 hierarchy (root, usually); `path` is None otherwise and nothing is counted.
    The cgroup is removed on exit.
    """

    def __init__(self, label: str):
        self.path: Path | None = None
        self.usage_s: float | None = None
        base = _cgroup2_dir()
        if base is not None and os.access(base, os.W_OK):
            try:
                path = base / f"bpg-bench-{os.getpid()}-{label}"
                path.mkdir()
                self.path = path
            except OSError:
                self.path = None

    def __enter__(self) -> "CpuAccount":
        return self

    def read(self) -> float | None:
        """CPU seconds used so far by the processes of this cgroup (None without one)."""
        if self.path is None:
            return None
        try:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        except (OSError, ValueError):
            pass
        return None

    def joiner(self):
        """A preexec_fn that moves the new process into this cgroup (or does nothing without one)."""
        procs = None if self.path is None else str(self.path / "cgroup.procs")

        def join() -> None:
            if procs is not None:
                try:
                    with open(procs, "w") as handle:
                        handle.write("0")
                except OSError:
                    pass

        return join

    def __exit__(self, *exc_info) -> None:
        if self.path is None:
            return
        self.usage_s = self.read()
        for _ in range(50):  # the last processes of the tree may take a moment to leave
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        log(f"note: could not remove the cgroup {self.path}")


class MachineMeter:
    """Busy CPU seconds of the whole machine over a block (from /proc/stat), to show what else was running."""

    def __init__(self):
        self.busy_s: float | None = None
        self._start = None

    @staticmethod
    def _busy() -> float | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is inside user)
        return busy / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> "MachineMeter":
        self._start = self._busy()
        return self

    def __exit__(self, *exc_info) -> None:
        end = self._busy()
        if self._start is not None and end is not None:
            self.busy_s = round(end - self._start, 2)


def _cgroup2_dir() -> Path | None:
    """This process's own cgroup v2 directory, or None (no cgroup v2 mounted, or not in one)."""
    try:
        mount = next(
            (
                line.split()[1]
                for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[2] == "cgroup2"
            ),
            None,
        )
        own = next(
            (
                line.split(":", 2)[2]
                for line in Path("/proc/self/cgroup").read_text().splitlines()
                if line.startswith("0::")
            ),
            None,
        )
    except (OSError, IndexError):
        return None
    if mount is None or own is None:
        return None
    path = Path(mount) / own.strip().lstrip("/")
    return path if (path / "cpu.stat").is_file() else None
