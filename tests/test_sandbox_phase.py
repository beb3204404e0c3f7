"""grader/sandbox/child/phase.py: a job with hidden calls runs in one child, and each of its two phases gets the
job's wall time and CPU time as a job of its own would (DESIGN §5 properties 4 and 8). Statuses only:
no time is asserted."""

import os
import signal
import time

import numpy as np
import pytest

from grader.limits import Limits
from grader.sandbox import Call, Job, RunStatus
from grader.sandbox.child.phase import cpu_so_far

# f(seconds) waits or burns CPU for that many seconds, as the argument says.
SOURCE = """\
import time


def wait(x):
    time.sleep(float(x[0]))
    return {"v": x}


def burn(x):
    started = time.process_time()
    while time.process_time() - started < float(x[0]):
        pass
    return {"v": x}
"""


def phased(function: str, public: float, hidden: float) -> Job:
    """One public and one hidden call of `function`, each told how many seconds to take."""
    return Job(
        filename="a.py",
        cells=[SOURCE],
        arrays={"p": np.array([public]), "h": np.array([hidden])},
        calls=[Call(id="public", function=function, args=["p"]), Call(id="hidden", function=function, args=["h"])],
        hidden_calls=1,
    )


@pytest.mark.parametrize(
    "function, limits",
    [("wait", Limits(wall_seconds=4, cpu_seconds=30)), ("burn", Limits(wall_seconds=30, cpu_seconds=3))],
)
def test_each_phase_may_take_most_of_the_limit_though_both_together_exceed_it(bwrap_sandbox, function, limits):
    share = 0.65 * (limits.wall_seconds if function == "wait" else limits.cpu_seconds)
    public, hidden = bwrap_sandbox.run_phases(phased(function, share, share), limits)
    assert public.status == RunStatus.ok and list(public.calls) == ["public"], public.detail
    assert hidden.status == RunStatus.ok and list(hidden.calls) == ["hidden"], hidden.detail


@pytest.mark.parametrize(
    "function, limits, status",
    [
        ("wait", Limits(wall_seconds=2, cpu_seconds=30), RunStatus.timeout),
        ("burn", Limits(wall_seconds=30, cpu_seconds=2), RunStatus.cpu_limit),
    ],
)
def test_a_public_phase_over_the_limit_stops_as_a_job_of_its_own_would_and_no_hidden_call_is_asked_for(
    bwrap_sandbox, function, limits, status
):
    over = 1.5 * (limits.wall_seconds if function == "wait" else limits.cpu_seconds)
    public, hidden = bwrap_sandbox.run_phases(phased(function, over, 0.0), limits)
    assert public.status == status and public.calls["public"].status != "ok" and hidden is None


@pytest.mark.parametrize(
    "function, limits, status",
    [
        ("wait", Limits(wall_seconds=2, cpu_seconds=30), RunStatus.timeout),
        ("burn", Limits(wall_seconds=30, cpu_seconds=2), RunStatus.cpu_limit),
    ],
)
def test_a_hidden_phase_over_the_limit_is_its_own_and_leaves_the_public_phase_ok(
    bwrap_sandbox, function, limits, status
):
    over = 1.5 * (limits.wall_seconds if function == "wait" else limits.cpu_seconds)
    public, hidden = bwrap_sandbox.run_phases(phased(function, 0.0, over), limits)
    assert public.status == RunStatus.ok and public.message == "" and public.calls["public"].status == "ok"
    assert hidden.status == status and hidden.calls["hidden"].status != "ok"


def test_a_running_childs_cpu_time_is_read_to_well_under_a_clock_tick():
    """What the worker reads at the split (the public phase's CPU in its report): a child that used 30 ms
    of CPU, by its own clock, reads as at least that; /proc's 10 ms ticks, rounded down in two parts, read
    less (0 s for a phase of 12 ms). The bound is the child's own CPU clock, not a time of this machine."""
    ready, told = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child
        started = time.process_time()
        while time.process_time() - started < 0.03:
            pass
        os.write(told, b"x")
        time.sleep(30)
        os._exit(0)
    try:
        os.read(ready, 1)
        own, total = cpu_so_far(pid)
        assert own >= 0.03 and total >= own
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready)
        os.close(told)
