"""grader/sandbox/drive.py: once every request is sent, the grader looks at the child's pipes on a timer and
reads them out when the worker reports, instead of waking on each write; nothing the child writes then is
lost, unbounded or left blocking it."""

import numpy as np
import pytest

from grader.limits import Limits
from grader.sandbox import Call, CallStatus, Job, RunStatus

SOURCE = """
import os, sys
import numpy as np

def loud(x):
    chunk = "x" * (1 << 20)
    for _ in range(64):
        sys.stdout.write(chunk)
    sys.stdout.flush()
    os.write(2, b"e" * (3 << 20))
    return {"x": x * 2}

def big(x):
    return {"v": np.arange(60_000, dtype=np.float64) + x.sum()}

def forge(x):
    while True:
        os.write(3, bytes(1 << 16))
"""
ARRAYS = {f"x{i}": np.full(2, float(i)) for i in range(8)}


def job(calls: list[Call], hidden: int = 0) -> Job:
    return Job(filename="a.py", cells=[SOURCE], arrays=ARRAYS, calls=calls, hidden_calls=hidden)


@pytest.mark.parametrize("mode", ["bwrap_sandbox", "fallback_sandbox"])
def test_output_flooded_after_the_last_request_is_counted_whole_and_the_call_still_answers(request, mode):
    """64 MiB on stdout and 3 MiB on stderr, written inside the only call: far more than a pipe holds, so
    the child blocks until the grader reads, which it must do although it no longer wakes on each write."""
    result = request.getfixturevalue(mode).run(
        job([Call(id="loud", function="loud", args=["x3"])]), Limits(output_kb=64, wall_seconds=60)
    )
    assert result.status == RunStatus.ok, result.detail
    np.testing.assert_array_equal(result.calls["loud"].values["x"], np.full(2, 6.0))
    assert f"of {64 << 20} bytes" in result.stdout and f"of {3 << 20} bytes" in result.stderr


def test_answers_larger_than_a_pipe_are_read_whole_in_both_phases(bwrap_sandbox):
    """Eight answers of 480 KB each, far more than a pipe holds: the public ones are read on every write,
    the hidden ones after the last request was sent, when the grader only looks at the pipes now and then."""
    calls = [Call(id=f"big{i}", function="big", args=[f"x{i}"]) for i in range(8)]
    public, hidden = bwrap_sandbox.run_phases(job(calls, hidden=4), Limits(wall_seconds=60, result_mb=16))
    assert public.status == RunStatus.ok and hidden is not None and hidden.status == RunStatus.ok, hidden
    for i, call in [(i, public.calls.get(f"big{i}")) for i in range(4)] + [
        (i, hidden.calls.get(f"big{i}")) for i in range(4, 8)
    ]:
        assert call is not None and call.status == CallStatus.ok, (i, call)
        np.testing.assert_array_equal(call.values["v"], np.arange(60_000, dtype=np.float64) + 2 * i)


def test_a_flood_on_the_result_channel_after_the_last_request_is_cut_at_its_cap(bwrap_sandbox):
    """A call that writes to the result channel without end: the timer's look finds the pipe full, reads on
    up to Limits.result_mb + 1 MiB and has the job killed, as a flood while the cells run is."""
    result = bwrap_sandbox.run(
        job([Call(id="forge", function="forge", args=["x0"])]), Limits(wall_seconds=30, result_mb=1)
    )
    assert result.status == RunStatus.result_invalid and "exceeded 1 MiB" in result.detail
    assert result.calls["forge"].status != CallStatus.ok
