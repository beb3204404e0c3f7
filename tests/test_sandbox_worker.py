"""The warm worker and the runner end to end: values, calls, tracebacks, scratch mode, restarts."""

import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
import torch

from grader.limits import Limits
from grader.sandbox import Call, CallStatus, Job, RunStatus, Sandbox

NEEDS_BWRAP = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
LIMITS = Limits(wall_seconds=10)
PARAMS = {"W1": "W1", "b1": "b1"}
RNG = np.random.default_rng(3)
ARRAYS = {"x": RNG.normal(size=(1, 2)), "y": np.array([[0.5]]), "W1": RNG.normal(size=(3, 2)), "b1": RNG.normal(size=3)}

TORCH_SUBMISSION = """
import numpy as np
import torch

def torch_gradients(x, y, params):
    W1 = torch.tensor(params["W1"], requires_grad=True)
    b1 = torch.tensor(params["b1"], requires_grad=True)
    prediction = torch.sigmoid(torch.tensor(x) @ W1.T + b1).sum()
    loss = (prediction - torch.tensor(y).sum()) ** 2
    loss.backward()
    return {"loss": loss, "dW1": W1.grad, "db1": b1.grad.numpy(), "nodes": [type(loss.grad_fn).__name__]}

def scratch_gradients(x, y, params):
    return torch_gradients(x, y, params)

def mutate(x, params):
    params["W1"] *= 0
    x[...] = 7
    return {"x": x}

def read_back(x, params):
    return {"x": x, "W1": params["W1"]}
"""


def expected_torch_gradients():
    W1 = torch.tensor(ARRAYS["W1"], requires_grad=True)
    b1 = torch.tensor(ARRAYS["b1"], requires_grad=True)
    prediction = torch.sigmoid(torch.tensor(ARRAYS["x"]) @ W1.T + b1).sum()
    loss = (prediction - torch.tensor(ARRAYS["y"]).sum()) ** 2
    loss.backward()
    return loss.item(), W1.grad.numpy(), b1.grad.numpy()


def run(sandbox, source, calls, **kwargs):
    return sandbox.run(Job(filename="a1.py", cells=[source], arrays=ARRAYS, calls=calls, **kwargs), LIMITS)


def test_a_contract_submission_returns_its_tensors_as_exact_float64_values(bwrap_sandbox):
    result = run(bwrap_sandbox, TORCH_SUBMISSION, [Call(id="t", function="torch_gradients", args=["x", "y", PARAMS])])
    assert result.status == RunStatus.ok, result.detail
    call = result.calls["t"]
    loss, dW1, db1 = expected_torch_gradients()
    assert call.values["loss"].dtype == np.float64 and call.values["loss"].shape == ()
    assert call.values["loss"] == loss
    np.testing.assert_array_equal(call.values["dW1"], dW1)
    np.testing.assert_array_equal(call.values["db1"], db1)
    assert call.texts["nodes"] == ["PowBackward0"]
    assert call.seconds > 0


def test_scratch_calls_cannot_use_autograd_and_autograd_is_back_for_the_next_call(bwrap_sandbox):
    calls = [
        Call(id="s", function="scratch_gradients", args=["x", "y", PARAMS], scratch=True),
        Call(id="t", function="torch_gradients", args=["x", "y", PARAMS]),
    ]
    result = run(bwrap_sandbox, TORCH_SUBMISSION, calls)
    scratch = result.calls["s"]
    assert scratch.status == CallStatus.raised
    assert "from scratch: Tensor.backward() is not allowed in scratch_gradients" in scratch.message
    assert "in torch_gradients" in scratch.traceback and "<sandbox" not in scratch.traceback
    assert result.calls["t"].status == CallStatus.ok


def test_every_call_gets_fresh_inputs_even_when_an_earlier_call_changed_them_in_place(bwrap_sandbox):
    calls = [
        Call(id="m", function="mutate", args=["x", PARAMS]),
        Call(id="r", function="read_back", args=["x", PARAMS]),
    ]
    result = run(bwrap_sandbox, TORCH_SUBMISSION, calls)
    np.testing.assert_array_equal(result.calls["m"].values["x"], np.full((1, 2), 7.0))
    np.testing.assert_array_equal(result.calls["r"].values["x"], ARRAYS["x"])
    np.testing.assert_array_equal(result.calls["r"].values["W1"], ARRAYS["W1"])


def test_numbers_lists_and_nested_dicts_are_converted_under_their_keys(bwrap_sandbox):
    source = (
        "import numpy as np, torch\ndef f(scale, n):\n"
        "    return {'n': n, 'scale': scale, 'list': [[1, 2], [3, 4]], 'tensors': [torch.ones(2), torch.zeros(2)],"
        " 'grads': {'dW1': np.ones((2, 2), dtype=np.float32)}, 'flag': True}\n"
        "def bare():\n    return np.arange(3)\n"
    )
    calls = [Call(id="f", function="f", args=[0.5, 3]), Call(id="bare", function="bare")]
    result = run(bwrap_sandbox, source, calls)
    values = result.calls["f"].values
    assert values["n"] == 3.0 and values["scale"] == 0.5 and values["flag"] == 1.0
    np.testing.assert_array_equal(values["list"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(values["tensors"], [[1, 1], [0, 0]])
    assert values["grads.dW1"].dtype == np.float64
    np.testing.assert_array_equal(result.calls["bare"].values[""], [0, 1, 2])


def test_an_exception_in_a_call_is_raised_with_the_students_frames_only(bwrap_sandbox):
    source = "def inner(v):\n    return v['missing']\n\ndef f(x, params):\n    return inner(params)\n"
    result = run(bwrap_sandbox, source, [Call(id="f", function="f", args=["x", PARAMS])])
    call = result.calls["f"]
    assert result.status == RunStatus.ok
    assert call.status == CallStatus.raised
    assert call.message.startswith("f(x, {W1, b1}) raised KeyError: 'missing'.")
    assert call.traceback.startswith('Traceback (most recent call last):\n  File "a1.py", line 5, in f')
    assert 'File "a1.py", line 2, in inner' in call.traceback and "sandbox" not in call.traceback


def test_the_namespace_is_named_submission_so_main_blocks_do_not_run(bwrap_sandbox):
    source = "ran = 0\nif __name__ == '__main__':\n    ran = 1\ndef f():\n    return {'ran': ran, 'name': [__name__]}\n"
    call = run(bwrap_sandbox, source, [Call(id="f", function="f")]).calls["f"]
    assert call.values["ran"] == 0 and call.texts["name"] == ["submission"]


def test_the_same_job_gives_the_same_random_numbers_in_every_slot_and_every_time(bwrap_sandbox):
    source = (
        "import random, numpy as np, torch\n"
        "def f():\n    return {'np': np.random.rand(3), 'torch': torch.rand(3), 'py': random.random(),"
        " 'set': [str(s) for s in {'a', 'b', 'c', 'd'}]}\n"
    )
    results = [run(bwrap_sandbox, source, [Call(id="f", function="f")]).calls["f"] for _ in range(4)]
    for other in results[1:]:
        for key in ("np", "torch", "py"):
            np.testing.assert_array_equal(other.values[key], results[0].values[key])
        assert other.texts == results[0].texts
    seeded = run(bwrap_sandbox, source, [Call(id="f", function="f")], seed=1).calls["f"]
    assert not np.array_equal(seeded.values["np"], results[0].values["np"])


def test_jobs_run_in_parallel_from_several_threads(bwrap_sandbox):
    source = "def f(n):\n    return {'n': n}\n"
    found = {}

    def one(n):
        found[n] = run(bwrap_sandbox, source, [Call(id="f", function="f", args=[n])]).calls["f"].values["n"]

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == {n: n for n in range(8)}


def test_a_worker_that_died_is_restarted_and_the_job_still_runs(bwrap_sandbox):
    victim = bwrap_sandbox._workers[0]
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    for _ in bwrap_sandbox._workers:  # the dead worker's slot is among them
        result = run(bwrap_sandbox, "def f():\n    return 1.5\n", [Call(id="f", function="f")])
        assert result.status == RunStatus.ok, result.detail
        assert result.calls["f"].values[""] == 1.5
    assert all(worker.alive() for worker in bwrap_sandbox._workers)


@NEEDS_BWRAP
def test_a_sandbox_can_be_used_without_a_with_block_and_closed_explicitly():
    sandbox = Sandbox(jobs=1, mode="bwrap")
    try:
        assert run(sandbox, "def f():\n    return 2\n", [Call(id="f", function="f")]).calls["f"].values[""] == 2
    finally:
        sandbox.close()
    assert not sandbox._workers[0].alive()


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (read from /proc), to check later that none is left."""
    found, pending = set(), [pid]
    while pending:
        parent = pending.pop()
        for task in os.listdir(f"/proc/{parent}/task") if os.path.isdir(f"/proc/{parent}/task") else []:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as listing:
                    children = {int(child) for child in listing.read().split()}
            except OSError:
                continue
            pending += list(children - found)
            found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@NEEDS_BWRAP
def test_closing_a_sandbox_in_the_middle_of_a_job_ends_the_job_and_every_process_it_started():
    sandbox = Sandbox(jobs=1, mode="bwrap")
    slow = "import subprocess, time\nsubprocess.Popen(['sleep', '300'])\ntime.sleep(300)\n"
    limits = Limits(wall_seconds=120, cpu_seconds=120)
    done = []
    thread = threading.Thread(target=lambda: done.append(sandbox.run(Job(filename="slow.py", cells=[slow]), limits)))
    try:
        assert run(sandbox, "def f():\n    return 1\n", [Call(id="f", function="f")]).status == RunStatus.ok
        worker = sandbox._workers[0]
        assert worker.namespace_pid is not None
        thread.start()
        deadline = time.monotonic() + 30
        while len(_descendants(worker.process.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # bwrap's init, the worker, the job's child, and its `sleep`
        inside = _descendants(worker.process.pid)
        assert len(inside) >= 4, inside
    finally:
        sandbox.close()
    thread.join(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in inside) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in inside)
    assert done and done[0].status != RunStatus.ok


@NEEDS_BWRAP
def test_a_sandbox_launched_early_waits_for_its_worker_on_entry_and_is_killed_at_once_if_never_used():
    """`check` launches its worker before importing the grader's stages; an early error must not wait for it."""
    sandbox = Sandbox(jobs=1, mode="bwrap").launch()
    worker = sandbox._workers[0]
    assert worker.alive() and not worker.ready
    with sandbox:
        assert worker.ready
        assert run(sandbox, "def f():\n    return 3\n", [Call(id="f", function="f")]).calls["f"].values[""] == 3
    unused = Sandbox(jobs=1, mode="bwrap").launch()
    process = unused._workers[0].process
    unused.close()
    assert process.returncode == -signal.SIGKILL  # killed, not left to finish importing torch and then exit


def test_autograd_imported_by_name_before_the_call_is_refused_in_a_scratch_call_too(bwrap_sandbox):
    """`from torch.autograd import grad` at the top of the file binds the function before any call: the
    sandbox guards autograd's entry points themselves, not only the names a call looks up."""
    source = (
        "import torch\nfrom torch.autograd import grad\n"
        "def scratch_gradients(x, y, params):\n"
        "    w = torch.tensor(params['W1'], requires_grad=True)\n"
        "    with torch.enable_grad():\n"
        "        return {'dW1': grad((w * 2).sum(), w)[0]}\n"
    )
    result = run(
        bwrap_sandbox, source, [Call(id="s", function="scratch_gradients", args=["x", "y", PARAMS], scratch=True)]
    )
    assert result.calls["s"].status == CallStatus.raised
    assert "from scratch: torch.autograd.grad() is not allowed in scratch_gradients" in result.calls["s"].message


def test_from_the_second_job_on_printing_and_randomness_are_as_in_a_fresh_interpreter(bwrap_sandbox):
    """From its second job a worker warms common torch and numpy operations (its own code, once); no job
    may see a trace of it: default print options, and the same seeded random numbers in every job."""
    source = (
        "import numpy as np, torch\nprint(np.array([1 / 3]), torch.tensor([1 / 3]), np.random.rand(2), torch.rand(2))\n"
    )
    outputs = [run(bwrap_sandbox, source, []).stdout for _ in range(3)]
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].startswith(f"{np.array([1 / 3])} {torch.tensor([1 / 3])} ")


# --- the channel answers only what was asked (issue 16, item 2) -----------------------------------

FORGER = """
import json, os, struct, numpy as np

def frame(payload):
    return struct.pack(">Q", len(payload)) + payload

values = np.array(42.0).tobytes()
parts = [{"kind": "cells", "status": "ok", "cell": None, "line": None, "error_type": "", "error": "", "traceback": "",
          "exit_code": None},
         {"kind": "start", "id": "f"},
         {"kind": "call", "id": "f", "status": "ok", "error_type": "", "error": "", "traceback": "", "suggestions": [],
          "found": "a dict", "memory": False, "seconds": 0.001, "values": {"loss": {"name": "v0", "shape": []}},
          "texts": {}, "problems": {}},
         values, {"kind": "done"}]
os.write(3, b"".join(frame(p if isinstance(p, bytes) else json.dumps(p).encode()) for p in parts))
"""


@pytest.mark.parametrize("ending", ["os._exit(0)\n", ""])
def test_a_result_stream_written_while_the_cells_run_answers_nothing(bwrap_sandbox, ending):
    """Issue 16 item 2: a whole well-formed stream written on fd 3 at import, for a function never defined,
    was accepted as the run's results when the code then exited. No request existed yet, so none of its
    answers carries a request's nonce: the run is result_invalid and the call has no value."""
    result = run(bwrap_sandbox, FORGER + ending, [Call(id="f", function="f")])
    assert result.status == RunStatus.result_invalid, (result.status, result.calls["f"])
    assert result.calls["f"].status == CallStatus.not_run and result.calls["f"].values == {}
    assert "expected a CallAnswer" in result.detail or "nonce" in result.detail  # rejected as no answer to a request


def test_a_call_cannot_reach_the_inputs_of_the_calls_after_it(bwrap_sandbox):
    """Only the running call's arrays are in the child: the next request is not sent yet."""
    source = (
        "import gc, sys\nimport numpy as np\n\ndef peek(v):\n"
        "    spaces = [o for o in gc.get_objects() if isinstance(o, dict)]\n"
        "    frame = sys._getframe()\n"
        "    while frame is not None:\n"
        "        spaces.append(frame.f_locals)\n"
        "        spaces += [v for v in frame.f_locals.values() if isinstance(v, dict)]\n"
        "        frame = frame.f_back\n"
        "    seen = {id(a) for s in spaces for a in list(s.values()) if isinstance(a, np.ndarray)\n"
        "            and a.shape == (7,) and np.all(a == 31.4159)}\n"
        "    return {'seen': len(seen)}\n"
    )
    arrays = {"x": np.ones(3), "later": np.full(7, 31.4159)}
    result = bwrap_sandbox.run(
        Job(
            filename="a1.py",
            cells=[source],
            arrays=arrays,
            calls=[Call(id="first", function="peek", args=["x"]), Call(id="second", function="peek", args=["later"])],
        ),
        LIMITS,
    )
    assert result.status == RunStatus.ok, result.detail
    assert result.calls["first"].values["seen"] == 0
    assert result.calls["second"].values["seen"] >= 1  # its own argument: the search does find what is there


def test_a_flood_on_the_result_channel_is_cut_at_its_cap_and_the_job_killed_at_once(bwrap_sandbox):
    """The grader reads the result pipe itself now: past Limits.result_mb it stops reading and asks the
    worker to kill the job, and the run is result_invalid, saying so to the instructor."""
    flood = "import os\nwhile True:\n    os.write(3, bytes(1 << 16))\n"
    result = bwrap_sandbox.run(Job(filename="a1.py", cells=[flood]), Limits(wall_seconds=30, result_mb=1))
    assert result.status == RunStatus.result_invalid and "exceeded 1 MiB" in result.detail
    assert result.stdout == "" and "could not be read back" in result.message


GUARD_OFF = """
import sys
import numpy as np
import torch

_grad = torch.autograd.grad.__wrapped__

def by_hand(x, params):
    return {"dW1": 2 * params["W1"], "loss": float((params["W1"] ** 2).sum())}

def flag_cleared(x, params):
    sys.modules["bpg_runner"]._SCRATCH[0] = None
    w = torch.tensor(params["W1"], requires_grad=True)
    with torch.enable_grad():
        loss = (w ** 2).sum()
        getattr(loss, "back" + "ward")()
    return {"dW1": w.grad, "loss": loss.item()}

def wrapped_original(x, params):
    w = torch.tensor(params["W1"], requires_grad=True)
    with torch.enable_grad():
        loss = (w ** 2).sum()
        return {"dW1": _grad(loss, w)[0], "loss": loss.item()}
"""


def test_a_scratch_call_is_made_again_under_scaled_autograd_which_shows_through_any_way_around_the_guard(bwrap_sandbox):
    """Issue 16 item 2: DESIGN §5 "from scratch ... proven by effect". Each scratch call runs a second time
    with autograd's gradients scaled by a factor drawn for it: values by hand do not move, values from
    autograd move by that factor, whether the guard's flag was cleared or its wrapper's original used."""
    calls = [
        Call(id=name, function=name, args=["x", PARAMS], scratch=True)
        for name in ("by_hand", "flag_cleared", "wrapped_original")
    ]
    calls.append(Call(id="torch", function="wrapped_original", args=["x", PARAMS]))
    result = run(bwrap_sandbox, GUARD_OFF, calls)
    assert result.status == RunStatus.ok, result.detail
    expected = 2 * ARRAYS["W1"]
    for name in ("by_hand", "flag_cleared", "wrapped_original"):
        call = result.calls[name]
        assert call.status == CallStatus.ok and np.allclose(call.values["dW1"], expected, rtol=1e-12), name
        assert call.rerun is not None and call.rerun.status == CallStatus.ok and 1.3 <= call.rerun.factor <= 1.9
        moved = call.rerun.factor if name != "by_hand" else 1.0
        np.testing.assert_allclose(call.rerun.values["dW1"], moved * call.values["dW1"], rtol=1e-12)
        assert call.rerun.values["loss"] == call.values["loss"]  # the forward pass is autograd's in no run
    assert len({result.calls[name].rerun.factor for name in ("by_hand", "flag_cleared", "wrapped_original")}) == 3
    assert result.calls["torch"].status == CallStatus.ok and result.calls["torch"].rerun is None


@pytest.mark.parametrize("mode", ["bwrap_sandbox", "fallback_sandbox"])
def test_a_garbage_collection_in_a_job_closes_none_of_the_descriptors_it_was_given(request, mode):
    """The worker's objects are the child's too: one the worker left for its garbage collector that owned
    a descriptor number closes, when the child collects it, what the child holds under that number now
    (its job pipe: the calls then never came)."""
    sandbox = request.getfixturevalue(mode)
    for _ in range(4):
        assert sandbox.run(Job(filename="a.py", cells=["x = 1\n"]), LIMITS).status == RunStatus.ok
    source = "import gc, os\ngc.collect()\ndef f():\n    return {'job_pipe_open': os.path.exists('/proc/self/fd/5')}\n"
    for _ in range(2):  # both workers of a two-slot sandbox
        result = sandbox.run(Job(filename="a.py", cells=[source], calls=[Call(id="f", function="f")]), LIMITS)
        assert result.status == RunStatus.ok, result.detail
        assert result.calls["f"].values["job_pipe_open"] == 1.0


# --- the warm worker never holds a job's data (issue 16, item 4) ----------------------------------

SCANNER = '''
def count(first, second):
    """Places in this process's writable memory where `first` is directly followed by `second` (the two
    are never joined here, so the search cannot find itself)."""
    first, second = first.encode(), second.encode()
    hits, overlap = 0, len(first) + len(second)
    with open("/proc/self/maps") as maps:
        spans = [line.split() for line in maps]
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        for fields in spans:
            if not fields[1].startswith("rw"):
                continue
            position, end = (int(v, 16) for v in fields[0].split("-"))
            while position < end:
                size = min(8 << 20, end - position)
                try:
                    mem.seek(position)
                    chunk = mem.read(size)
                except OSError:
                    break
                at = chunk.find(first)
                while at >= 0:
                    hits += chunk[at + len(first):at + overlap] == second
                    at = chunk.find(first, at + 1)
                position += max(size - overlap, 1) if position + size < end else size
    return hits

def scan():
    return {"earlier": count(EARLIER_1, EARLIER_2), "own": count(OWN_1, OWN_2)}

OWN = "".join([OWN_1, OWN_2])
'''


def test_a_job_finds_no_trace_of_an_earlier_jobs_source_output_or_traceback_in_its_own_memory(grading_sandbox):
    """Issue 16 item 4: a job that scanned its own memory found fragments of an earlier student's source and
    of a failing student's traceback, left in the warm worker's heap that every child is forked from. The
    child now reads its job after the fork and its output goes to the grader: the worker never holds them."""
    halves = [os.urandom(8).hex() for _ in range(4)]
    secret = halves[0] + halves[1]
    earlier = [
        f"SECRET = {secret!r}\nprint(SECRET)\ndef f():\n    return {{'n': len(SECRET)}}\n",
        f"import sys\nSECRET = {secret!r}\nprint(SECRET, file=sys.stderr)\nraise ValueError(SECRET + ' in a traceback')\n",
    ]
    runs = [
        grading_sandbox.run(Job(filename="a.py", cells=[source], calls=[Call(id="f", function="f")]), LIMITS)
        for source in earlier
    ]
    assert runs[0].status == RunStatus.ok and secret in runs[0].stdout and runs[0].calls["f"].values["n"] == 32
    assert runs[1].status == RunStatus.import_error and secret in runs[1].stderr and secret in runs[1].detail
    names = f"EARLIER_1, EARLIER_2, OWN_1, OWN_2 = {halves[0]!r}, {halves[1]!r}, {halves[2]!r}, {halves[3]!r}\n"
    scanned = grading_sandbox.run(
        Job(filename="b.py", cells=[names + SCANNER], calls=[Call(id="scan", function="scan")]),
        Limits(wall_seconds=60, cpu_seconds=60),
    )
    assert scanned.status == RunStatus.ok, scanned.detail
    values = scanned.calls["scan"].values
    assert values["own"] >= 1  # the scan finds a string this job holds
    assert values["earlier"] == 0
