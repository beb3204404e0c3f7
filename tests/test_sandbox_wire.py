"""The grader's side of the result channel: only well-formed, announced, float64 data is accepted."""

import json

import numpy as np
import pytest

from grader.limits import Limits
from grader.sandbox import Call, Job
from grader.sandbox.process import frame
from grader.sandbox.wire import ResultInvalid, encode_job, parse_results, split_frames

JOB = Job(filename="a.py", cells=["pass"], arrays={"x": np.arange(6.0).reshape(2, 3)},
          calls=[Call(id="one", function="f", args=["x"]), Call(id="two", function="g")])
LIMITS = Limits(result_mb=1)
CELLS_OK = {"kind": "cells", "status": "ok", "cell": None, "line": None, "error_type": "", "error": "",
            "traceback": "", "exit_code": None}


def call_frame(call_id: str, **values_spec) -> dict:
    return {"kind": "call", "id": call_id, "status": "ok", "error_type": "", "error": "", "traceback": "",
            "suggestions": [], "found": "a dict", "memory": False, "seconds": 0.01, "texts": {}, "problems": {},
            "values": {key: {"name": f"v{i}", "shape": list(shape)} for i, (key, shape) in enumerate(values_spec.items())}}


def raw(*arrays) -> bytes:
    """Values as the runner sends them: float64 bytes laid end to end."""
    return b"".join(np.asarray(a).tobytes() for a in arrays)


def stream(*parts) -> bytes:
    return b"".join(frame(part if isinstance(part, bytes) else json.dumps(part).encode()) for part in parts)


def valid_stream(dW1=None) -> list:
    dW1 = np.ones((2, 3)) if dW1 is None else dW1
    return [CELLS_OK, {"kind": "start", "id": "one"}, call_frame("one", dW1=(2, 3)), raw(dW1),
            {"kind": "start", "id": "two"}, call_frame("two"), raw(), {"kind": "done"}]


def test_a_well_formed_stream_is_read_with_its_values():
    results, truncated = parse_results(stream(*valid_stream()), JOB, LIMITS)
    assert not truncated and results.done and results.started is None
    frame_one, values = results.calls["one"]
    np.testing.assert_array_equal(values["dW1"], np.ones((2, 3)))
    assert results.calls["two"][1] == {}


def test_a_stream_cut_by_a_kill_keeps_what_arrived_and_names_the_running_call():
    parts = valid_stream()[:5]
    blob = stream(*parts) + frame(b"{}")[:5]
    results, truncated = parse_results(blob, JOB, LIMITS)
    assert truncated and not results.done
    assert list(results.calls) == ["one"] and results.started == "two"


@pytest.mark.parametrize("mutate, reason", [
    (lambda p: p.__setitem__(2, dict(p[2], status="great")), "CallFrame"),
    (lambda p: p.__setitem__(2, dict(p[2], extra=1)), "CallFrame"),
    (lambda p: p.__setitem__(1, {"kind": "start", "id": "two"}), "out of order"),
    (lambda p: p.__setitem__(3, raw(np.ones(7))), "56 bytes where the announced shapes make 48"),
    (lambda p: p.__setitem__(3, raw(np.ones((2, 3), dtype=np.float32))), "24 bytes where the announced shapes make 48"),
    (lambda p: p.__setitem__(3, raw(np.ones((2, 3)), np.ones(1))), "where the announced shapes make"),
    (lambda p: p.__setitem__(3, b"not numbers"), "where the announced shapes make"),
    (lambda p: p.__setitem__(2, dict(p[2], values={"a": {"name": "v0", "shape": [3]}, "b": {"name": "v0", "shape": [3]}})),
     "share one array name"),
    (lambda p: p.insert(0, {"kind": "done"}), "CellsFrame"),
    (lambda p: p.append({"kind": "done"}), "not the last frame"),
    (lambda p: p.__setitem__(0, b"\xff\xfe"), "CellsFrame"),
    (lambda p: p.__setitem__(2, dict(p[2], values={"k": {"name": "v0", "shape": [10 ** 6]}})), "exceed"),
])
def test_a_forged_or_broken_stream_is_rejected(mutate, reason):
    parts = valid_stream()
    mutate(parts)
    with pytest.raises(ResultInvalid, match=reason):
        parse_results(stream(*parts), JOB, LIMITS)


def test_pickle_bytes_in_place_of_values_are_rejected_unread():
    """A pickle is only bytes here: nothing reads it as anything but float64, and its size gives it away."""
    import pickle

    parts = valid_stream()
    parts[3] = pickle.dumps(np.array([[{"evil": 1}] * 3] * 2, dtype=object))
    with pytest.raises(ResultInvalid, match="where the announced shapes make 48"):
        parse_results(stream(*parts), JOB, LIMITS)


def test_values_are_read_in_the_order_and_shapes_announced():
    parts = valid_stream()
    parts[5] = call_frame("two", a=(2,), b=(1, 3))
    parts[6] = raw(np.array([1.0, 2.0]), np.array([[3.0, 4.0, 5.0]]))
    results, _ = parse_results(stream(*parts), JOB, LIMITS)
    values = results.calls["two"][1]
    np.testing.assert_array_equal(values["a"], [1.0, 2.0])
    np.testing.assert_array_equal(values["b"], [[3.0, 4.0, 5.0]])


def test_lone_surrogates_from_the_child_are_replaced_so_reports_always_encode():
    parts = valid_stream()
    parts[2] = dict(parts[2], problems={"dW1": "bad \udc80 value"})
    results, _ = parse_results(stream(*parts), JOB, LIMITS)
    results.calls["one"][0].problems["dW1"].encode("utf-8")


def test_jobs_are_encoded_as_json_and_raw_float64_bytes():
    header, blob = encode_job(JOB, LIMITS)
    decoded = json.loads(header)
    assert decoded["arrays"] == [["x", [2, 3], 0]] and decoded["limits"]["result_mb"] == 1
    np.testing.assert_array_equal(np.frombuffer(blob, dtype="<f8").reshape(2, 3), JOB.arrays["x"])
    assert split_frames(frame(b"a") + frame(b"bc")) == ([b"a", b"bc"], False)
