"""The wall time and CPU time of each phase of a job, worker side (DESIGN §5 properties 4 and 8).

Standalone on purpose: shipped as source into the sandbox (as bpg_phase, process.SHIPPED) and imported
by worker.py only; imports only the standard library. A job with hidden calls (Job.hidden_calls) runs in
one child in two phases: the public calls, then, once the grader has accepted every public answer, the
hidden ones (drive.py tells the worker: {"phase": "hidden"}). Each phase gets the job's limits as a job
of its own would: the wall deadline starts again at the split, and so does the CPU count. The CPU is
counted here, not by the kernel's RLIMIT_CPU alone: the child's hard limit cannot be raised at the
split by the worker (that needs CAP_SYS_RESOURCE, which no worker has) nor lowered for the public phase
only (the child could raise a soft limit back, or catch SIGXCPU). So the child is confined with
RLIMIT_CPU for both phases (2 cpu, 2 cpu + 1 hard: the total stays bounded by the kernel), and each
phase is held to cpu seconds by `Clock.over_cpu`, looked at every CPU_POLL seconds at least and
CPU_LOOK seconds at most (a job of a few milliseconds is not worth a read of /proc after each of its
events); over it, the worker kills the child (SIGKILL with cpu_seconds used, which verdict.py reads as
cpu_limit).
"""

import math
import os
import time

CPU_POLL, CPU_LOOK = 0.5, 0.1
TICK = os.sysconf("SC_CLK_TCK")


def whole_seconds(limits: dict) -> int:
    """The job's CPU time in whole seconds, rounded up as jail.confine rounds it."""
    return max(1, math.ceil(float(limits["cpu_seconds"])))


def confined(limits: dict, hidden: bool) -> dict:
    """The limits the child is confined with: with hidden calls, RLIMIT_CPU for both phases."""
    return dict(limits, cpu_seconds=2 * whole_seconds(limits)) if hidden else limits


def cpu_so_far(pid: int) -> tuple:
    """A running child's CPU seconds: its own (which RLIMIT_CPU counts), and with its waited-for children
    (as wait4 reports at the end); None for what cannot be read. Its own is read from its CPU clock, to the
    nanosecond: /proc's clock ticks, rounded down in two parts, made a public phase of 12 ms read 0 s. The
    worker looks at it at most every CPU_LOOK seconds in a job with hidden calls."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            fields = os.read(fd, 4096).rsplit(b")", 1)[1].split()
        finally:
            os.close(fd)
        own = _own_cpu(pid)
        if own is None:
            own = (int(fields[11]) + int(fields[12])) / TICK
        return own, own + (int(fields[13]) + int(fields[14])) / TICK
    except (OSError, ValueError, IndexError):
        return None, None


def _own_cpu(pid: int) -> float | None:
    """The CPU time of process `pid` from its CPU clock (Linux's CPUCLOCK_SCHED clock id of a process, as
    clock_getcpuclockid gives it); None where the kernel refuses it."""
    try:
        return time.clock_gettime((~pid << 3) | 2)
    except (OSError, OverflowError, ValueError):
        return None


def peak_so_far(pid: int) -> float | None:
    """A running child's peak resident KiB (VmHWM), from /proc; None when it cannot be read."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        try:
            status = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        return float(status.split(b"\nVmHWM:", 1)[1].split(None, 1)[0])
    except (OSError, ValueError, IndexError):
        return None


class Clock:
    """The running phase's wall deadline and CPU start, for the child `pid` forked at `start`."""

    def __init__(self, limits: dict, hidden: bool, pid: int, start: float):
        self.limits, self.hidden, self.pid, self.start = limits, hidden, pid, start
        self.cpu, self.cpu_from = whole_seconds(limits), 0.0
        self.deadline = start + float(limits["wall_seconds"])
        self.looked = start  # the last look at the CPU time (or the phase's start)

    def wait(self, seconds: float) -> float:
        """How long the worker may wait for an event before it looks at the CPU time again."""
        return min(seconds, CPU_POLL) if self.hidden else seconds

    def over_cpu(self) -> bool:
        """A job with hidden calls whose running phase used its CPU time."""
        if not self.hidden or time.monotonic() - self.looked < CPU_LOOK:
            return False
        self.looked = time.monotonic()
        own = cpu_so_far(self.pid)[0]
        return own is not None and own - self.cpu_from >= self.cpu

    def split(self) -> dict:
        """The hidden phase begins: the public phase's wall time, CPU and peak memory so far, with
        "over_cpu" when it used its CPU time since the last look (the worker then kills the child);
        otherwise the hidden phase's wall time and CPU time start now."""
        own, total = cpu_so_far(self.pid)
        record = {"wall": time.monotonic() - self.start, "cpu": total, "maxrss_kb": peak_so_far(self.pid)}
        if own is not None and own >= self.cpu:
            record["over_cpu"] = True
        else:
            self.looked = time.monotonic()
            self.deadline, self.cpu_from = self.looked + float(self.limits["wall_seconds"]), own or 0.0
        return record
