"""Hostile submissions (DESIGN §11) against the real bubblewrap sandbox.

Each test runs one hostile job, checks the status and the student-facing message, and then checks that a
correct job in the same Sandbox still gives exactly the values numpy computes here.
"""

import os
import resource
from pathlib import Path

import numpy as np
import pytest

from grader.limits import Limits
from grader.sandbox import Call, CallStatus, Job, RunStatus, cgroup

CORRECT = """
import numpy as np

def forward(x, params):
    h = np.tanh(x @ params["W1"].T + params["b1"])
    return {"h": h, "loss": float((h ** 2).sum())}
"""
RNG = np.random.default_rng(7)
ARRAYS = {"x": RNG.normal(size=(2, 3)), "W1": RNG.normal(size=(4, 3)), "b1": RNG.normal(size=4)}
FORWARD = Call(id="forward", function="forward", args=["x", {"W1": "W1", "b1": "b1"}])
FAST = Limits(wall_seconds=10, cpu_seconds=10)


def job(source: str, calls=(FORWARD,), filename: str = "hostile.py") -> Job:
    return Job(filename=filename, cells=[source], arrays=ARRAYS, calls=list(calls))


def assert_correct_job_still_exact(sandbox) -> None:
    """The canary: after any hostile job, a correct job returns exactly what numpy computes here."""
    for _ in range(2):  # both slots
        result = sandbox.run(job(CORRECT, filename="correct.py"), FAST)
        assert result.status == RunStatus.ok, result.detail
        h = np.tanh(ARRAYS["x"] @ ARRAYS["W1"].T + ARRAYS["b1"])
        np.testing.assert_array_equal(result.calls["forward"].values["h"], h)
        assert result.calls["forward"].values["loss"] == float((h**2).sum())


def host_processes(uid: int) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                pids.add(int(entry))
        except OSError:
            pass
    return pids


def host_processes_matching(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


def test_an_infinite_loop_at_import_times_out_with_a_message_naming_the_limit(bwrap_sandbox):
    result = bwrap_sandbox.run(job("while True:\n    pass\n"), Limits(wall_seconds=1, cpu_seconds=30))
    assert result.status == RunStatus.timeout
    assert "1 s time limit" in result.message and "infinite loop" in result.message
    assert result.calls["forward"].status == CallStatus.not_run
    assert_correct_job_still_exact(bwrap_sandbox)


def test_an_infinite_loop_inside_a_call_keeps_the_calls_that_finished_before_it(bwrap_sandbox):
    source = CORRECT + "\ndef spin():\n    while True:\n        pass\n"
    calls = [
        FORWARD,
        Call(id="spin", function="spin"),
        Call(id="after", function="forward", args=["x", {"W1": "W1", "b1": "b1"}]),
    ]
    result = bwrap_sandbox.run(job(source, calls), Limits(wall_seconds=1.5, cpu_seconds=30))
    assert result.status == RunStatus.timeout
    assert result.calls["forward"].status == CallStatus.ok
    assert result.calls["spin"].status == CallStatus.timeout
    assert "while running spin()" in result.calls["spin"].message
    assert result.calls["after"].status == CallStatus.not_run


def test_a_cpu_hog_stops_at_the_cpu_limit(bwrap_sandbox):
    result = bwrap_sandbox.run(job("while True:\n    pass\n"), Limits(wall_seconds=20, cpu_seconds=1))
    assert result.status == RunStatus.cpu_limit
    assert "1 s of CPU time" in result.message


def test_a_memory_bomb_hits_the_memory_limit(bwrap_sandbox):
    source = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))  # touched: real memory\n"
    result = bwrap_sandbox.run(job(source), Limits(memory_mb=1024, wall_seconds=20))
    assert result.status == RunStatus.memory_limit
    assert "ran out of memory (limit 1024 MiB)" in result.message and "line 3" in result.message
    assert_correct_job_still_exact(bwrap_sandbox)


def test_a_huge_allocation_inside_a_call_is_a_memory_limit_with_the_call_named(bwrap_sandbox):
    source = "import numpy as np\ndef forward(x, params):\n    return np.ones((100000, 100000))\n"
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.status == RunStatus.memory_limit
    assert result.calls["forward"].status == CallStatus.raised
    assert "ran out of memory" in result.calls["forward"].message


def test_a_fork_bomb_is_bounded_and_leaves_no_process_behind(bwrap_sandbox):
    before = host_processes(65534)
    source = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = bwrap_sandbox.run(job(source), Limits(wall_seconds=2, cpu_seconds=30, processes=16))
    assert result.status in (RunStatus.timeout, RunStatus.cpu_limit, RunStatus.killed)
    assert result.message
    assert host_processes(65534) - before == set()
    assert_correct_job_still_exact(bwrap_sandbox)


def test_a_hundred_megabytes_of_output_are_truncated_and_noted_and_the_run_still_grades(bwrap_sandbox):
    source = CORRECT + "\nimport sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)\n"
    result = bwrap_sandbox.run(job(source), Limits(output_kb=64, wall_seconds=30))
    assert result.status == RunStatus.ok, result.detail
    assert len(result.stdout) < 70 * 1024
    assert "stdout truncated: kept the first 65536 of 104857600 bytes" in result.stdout
    assert result.calls["forward"].status == CallStatus.ok
    assert_correct_job_still_exact(bwrap_sandbox)


def test_output_from_c_code_and_subprocesses_is_captured(bwrap_sandbox):
    source = (
        "import os, subprocess\nprint('from print')\nos.write(1, b'from fd 1\\n')\n"
        "subprocess.run(['/bin/sh', '-c', 'echo from a shell; echo to stderr >&2'])\n"
    )
    result = bwrap_sandbox.run(job(source, calls=[]), FAST)
    assert result.status == RunStatus.ok, result.detail
    assert result.stdout.splitlines() == ["from print", "from fd 1", "from a shell"]
    assert result.stderr == "to stderr\n"


@pytest.mark.parametrize(
    "statement, code",
    [
        ("import sys\nsys.exit(0)", 0),
        ("import sys\nsys.exit(4)", 4),
        ("import os\nos._exit(3)", 3),
        ("exit()", 0),
        # the sandbox's own codes, said by a student: still the student's exit
        ("import os\nos._exit(70)", 70),
        ("import os\nos._exit(71)", 71),
    ],
)
def test_exiting_at_import_is_reported_as_exited_with_the_code(bwrap_sandbox, statement, code):
    result = bwrap_sandbox.run(job(CORRECT + statement + "\n"), FAST)
    assert result.status == RunStatus.exited
    assert result.exit_code == code
    assert "exit" in result.message and "hostile.py" in result.message
    assert result.calls["forward"].status == CallStatus.not_run


def test_exit_code_72_from_a_student_is_their_broken_result_never_a_sandbox_error(bwrap_sandbox):
    """72 is what the runner exits with when student code broke sending the results: theirs either way."""
    result = bwrap_sandbox.run(job(CORRECT + "import os\nos._exit(72)\n"), FAST)
    assert result.status == RunStatus.result_invalid and "exit code 72" in result.detail
    assert result.calls["forward"].status == CallStatus.not_run


def test_os_exit_inside_a_call_marks_that_call_and_the_run_as_exited(bwrap_sandbox):
    source = "import os\ndef forward(x, params):\n    os._exit(5)\n"
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.status == RunStatus.exited and result.exit_code == 5
    assert result.calls["forward"].status == CallStatus.raised
    assert "exit code 5 during forward(x, {W1, b1})" in result.calls["forward"].message


def test_an_exception_at_import_names_the_cell_and_line_and_keeps_only_student_frames(bwrap_sandbox):
    cells = ["import numpy as np\n", "def helper():\n    return 1 / 0\n", "x = 1\ny = helper()\n"]
    result = bwrap_sandbox.run(Job(filename="nb.ipynb", cells=cells, calls=[FORWARD], arrays=ARRAYS), FAST)
    assert result.status == RunStatus.import_error
    assert (result.cell, result.line) == (3, 2)
    assert result.message.startswith("nb.ipynb, cell 3, line 2: ZeroDivisionError: division by zero")
    assert '"<cell 2>", line 2, in helper' in result.detail and "<sandbox" not in result.detail
    assert result.calls["forward"].status == CallStatus.not_run


def test_a_syntax_error_names_the_line(bwrap_sandbox):
    result = bwrap_sandbox.run(job("import numpy as np\n\ndef forward(x, params)\n    return x\n"), FAST)
    assert result.status == RunStatus.syntax_error
    assert result.line == 3 and result.cell == 1
    assert result.message.startswith("hostile.py, line 3: syntax error")


def test_an_empty_file_runs_and_every_call_is_a_missing_function(bwrap_sandbox):
    result = bwrap_sandbox.run(job(""), FAST)
    assert result.status == RunStatus.ok
    assert result.calls["forward"].status == CallStatus.missing_function
    assert "no function named forward" in result.calls["forward"].message


def test_a_misspelled_function_gets_a_did_you_mean(bwrap_sandbox):
    source = "def scratch_gradient(x, params):\n    return x\n"
    call = Call(id="g", function="scratch_gradients", args=["x", {"W1": "W1"}])
    result = bwrap_sandbox.run(job(source, [call]), FAST)
    assert result.calls["g"].status == CallStatus.missing_function
    assert "Did you mean scratch_gradient?" in result.calls["g"].message


def test_a_name_that_is_not_a_function_is_not_callable(bwrap_sandbox):
    result = bwrap_sandbox.run(job("forward = 3\n"), FAST)
    assert result.calls["forward"].status == CallStatus.not_callable
    assert "forward is an int, not a function" in result.calls["forward"].message


@pytest.mark.parametrize(
    "returned, found", [("'a string'", "a string ('a string')"), ("None", "None"), ("object()", "an object")]
)
def test_a_return_that_is_not_numbers_is_a_bad_return_saying_what_was_found(bwrap_sandbox, returned, found):
    result = bwrap_sandbox.run(job(f"def forward(x, params):\n    return {returned}\n"), FAST)
    call = result.calls["forward"]
    assert call.status == CallStatus.bad_return
    assert f"returned {found}. Expected a dict of numpy arrays" in call.message


def test_strings_where_arrays_are_expected_come_back_as_texts_or_problems_not_values(bwrap_sandbox):
    source = "def forward(x, params):\n    return {'names': ['AddmmBackward0', 'AccumulateGrad'], 'dW1': 'zero'}\n"
    call = bwrap_sandbox.run(job(source), FAST).calls["forward"]
    assert call.status == CallStatus.ok
    assert call.values == {}
    assert call.texts == {"names": ["AddmmBackward0", "AccumulateGrad"]}
    assert "found a string ('zero')" in call.problems["dW1"]


def test_nan_and_inf_are_kept_and_complex_and_object_arrays_are_rejected(bwrap_sandbox):
    source = (
        "import numpy as np, torch\ndef forward(x, params):\n"
        "    return {'nan': np.array([np.nan, np.inf, -np.inf]), 't': torch.tensor([float('nan')]),"
        " 'c': np.ones(2) * 1j, 'o': np.array([1, 'a'], dtype=object)}\n"
    )
    call = bwrap_sandbox.run(job(source), FAST).calls["forward"]
    assert call.status == CallStatus.ok
    np.testing.assert_array_equal(call.values["nan"], [np.nan, np.inf, -np.inf])
    assert np.isnan(call.values["t"]).all()
    assert "complex" in call.problems["c"] and "dtype object" in call.problems["o"]


def test_a_billion_element_return_is_rejected_by_size_without_growing_the_grader(bwrap_sandbox):
    source = (
        "import numpy as np, torch\ndef forward(x, params):\n"
        "    return {'np': np.broadcast_to(np.float64(1), (10 ** 9,)), 'torch': torch.zeros(1).expand(10 ** 9),"
        " 'ok': np.ones(3)}\n"
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    call = bwrap_sandbox.run(job(source), FAST).calls["forward"]
    assert "too large: 1000000000 elements" in call.problems["np"]
    assert "too large: 1000000000 elements" in call.problems["torch"]
    np.testing.assert_array_equal(call.values["ok"], np.ones(3))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 200_000  # KiB


def test_writes_outside_the_work_directory_fail_and_leave_nothing_on_the_host(bwrap_sandbox, tmp_path):
    targets = [
        "../escaped.txt",
        "/etc/bpg-escaped",
        "/work/main/bpg-escaped",
        f"{tmp_path}/escaped",
        "/usr/bpg-escaped",
        "/root/bpg-escaped",
    ]
    source = (
        "def forward(x, params):\n    results = []\n"
        f"    for path in {targets!r}:\n"
        "        try:\n            open(path, 'w').write('x')\n            results.append('written ' + path)\n"
        "        except OSError as e:\n            results.append('refused ' + path)\n"
        "    open('inside.txt', 'w').write('fine')\n    return results\n"
    )
    call = bwrap_sandbox.run(job(source), FAST).calls["forward"]
    assert call.texts[""] == ["refused " + t for t in targets]
    for target in targets[1:]:
        assert not Path(target).exists()
    assert not Path("/escaped.txt").exists() and not Path("/work/escaped.txt").exists()


def test_the_reference_the_rubrics_the_grader_and_hidden_paths_are_not_readable(bwrap_sandbox, sandbox_secret_dir):
    repo = Path(__file__).resolve().parents[1]
    paths = [
        repo / "reference" / "__init__.py",
        repo / "rubrics" / "__init__.py",
        repo / "grader" / "limits.py",
        sandbox_secret_dir / "expected.json",
        repo / "pyproject.toml",
    ]
    source = (
        "import importlib\ndef forward(x, params):\n    seen = []\n"
        f"    for path in {[str(p) for p in paths]!r}:\n"
        "        try:\n            seen.append(open(path).read()[:20])\n        except OSError:\n            pass\n"
        "    for name in ('grader', 'reference', 'rubrics'):\n"
        "        try:\n            importlib.import_module(name)\n            seen.append('imported ' + name)\n"
        "        except ImportError:\n            pass\n"
        "    return {'seen': len(seen), 'what': seen or ['nothing']}\n"
    )
    call = bwrap_sandbox.run(job(source), FAST).calls["forward"]
    assert call.texts["what"] == ["nothing"]
    assert call.values["seen"] == 0


def test_monkeypatching_numpy_affects_neither_the_grader_nor_the_next_job(bwrap_sandbox):
    original = np.allclose
    source = "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.tanh = lambda x: x * 0\n" + CORRECT.replace(
        "import numpy as np", ""
    )
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.calls["forward"].values["loss"] == 0.0  # the patch worked inside its own child
    assert np.allclose is original and not np.allclose(1.0, 2.0)
    probe = "import numpy as np\ndef forward(x, params):\n    return {'close': float(np.allclose(1.0, 2.0))}\n"
    for _ in range(2):
        assert bwrap_sandbox.run(job(probe), FAST).calls["forward"].values["close"] == 0.0
    assert_correct_job_still_exact(bwrap_sandbox)


def test_breaking_builtins_the_harness_needs_only_spoils_the_submissions_own_result(bwrap_sandbox):
    source = "import builtins, json\nbuiltins.len = lambda x: 0\njson.dumps = lambda *a, **k: 'forged'\n" + CORRECT
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.status == RunStatus.result_invalid
    assert result.calls["forward"].status == CallStatus.not_run
    assert_correct_job_still_exact(bwrap_sandbox)


def test_a_results_file_forged_in_the_work_directory_is_ignored(bwrap_sandbox):
    source = CORRECT + (
        "import json, numpy as np\njson.dump({'forward': {'loss': 0}}, open('observations.json', 'w'))\n"
        "np.savez('results.npz', h=np.zeros((2, 4)), loss=np.zeros(()))\n"
    )
    result = bwrap_sandbox.run(job(source), FAST)
    h = np.tanh(ARRAYS["x"] @ ARRAYS["W1"].T + ARRAYS["b1"])
    np.testing.assert_array_equal(result.calls["forward"].values["h"], h)


def test_junk_written_to_the_result_channel_is_result_invalid_and_harms_no_other_job(bwrap_sandbox):
    source = CORRECT + (
        'import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b\'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x10{"kind": "done"}\')\n'
        "    except OSError:\n        pass\n"
    )
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.status == RunStatus.result_invalid
    assert "could not be read back" in result.message and "file descriptors it did not open" in result.message
    assert "result_invalid" in result.detail
    assert_correct_job_still_exact(bwrap_sandbox)


def test_background_processes_and_daemons_are_gone_after_the_run(bwrap_sandbox):
    marker = f"77{os.getpid()}"
    source = (
        f"import os, subprocess\nsubprocess.Popen(['/bin/sleep', '{marker}'])\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execv('/bin/sh', ['/bin/sh', '-c', 'sleep {marker}1; echo late > /job/late'])\n"
        "    os._exit(0)\n" + CORRECT
    )
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.status == RunStatus.ok, result.detail
    assert host_processes_matching(marker) == []
    assert_correct_job_still_exact(bwrap_sandbox)


def test_a_submission_cannot_kill_or_see_the_worker(bwrap_sandbox):
    source = (
        "import os, signal\ndef forward(x, params):\n    pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "    for pid in range(2, 400):\n        try:\n            os.kill(pid, signal.SIGKILL)\n        except OSError:\n            pass\n"
        "    return {'pids': pids, 'me': os.getpid()}\n"
    )
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.calls["forward"].values["me"] == 1
    np.testing.assert_array_equal(result.calls["forward"].values["pids"], [1])
    assert_correct_job_still_exact(bwrap_sandbox)


# --- memory of every kind, bounded per job (issue 16, item 1) ------------------------------------------
MEMORY_LIMITS = Limits(memory_mb=1024, wall_seconds=60, cpu_seconds=60)
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x20000


def memory_hoard(kind: str, count: int, chunk_mb: int, chunks: int) -> str:
    """A submission that holds `count` objects of `kind` of chunk_mb x chunks MiB each, outside its address
    space, and says how many MiB it held when it was stopped (or that nothing stopped it)."""
    make = {
        "memfd": "fd = os.memfd_create('hoard')\n        fds.append(fd)\n"
        "        for _ in range(CHUNKS):\n            os.write(fd, chunk)\n",
        "sysv": "seg = libc.shmget(0, CHUNKS * len(chunk), 0o1600)\n        if seg < 0:\n"
        "            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))\n"
        "        addr = libc.shmat(seg, None, 0)\n        ctypes.memset(addr, 1, CHUNKS * len(chunk))\n"
        "        libc.shmdt(ctypes.c_void_p(addr))\n",
    }[kind]
    return (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmat.restype = ctypes.c_void_p\n"
        f"CHUNKS = {chunks}\n"
        "def forward(x, params):\n"
        f"    chunk, fds, held = b'x' * ({chunk_mb} << 20), [], 0\n"
        "    try:\n"
        f"      for _ in range({count}):\n"
        f"        {make}"
        f"        held += CHUNKS * {chunk_mb}\n"
        "    except OSError as e:\n"
        "        return {'held_mb': held, 'stopped': [e.strerror]}\n"
        "    return {'held_mb': held, 'stopped': ['nothing']}\n"
    )


def held_within_the_job(result, limit_mb: int) -> None:
    """Either the kernel ended the job for memory, or what it held stayed under its memory limit."""
    if result.status == RunStatus.memory_limit:
        assert "ran out of memory (limit 1024 MiB)" in result.message
        return
    assert result.status == RunStatus.ok, (result.status, result.message, result.detail)
    call = result.calls["forward"]
    assert call.texts["stopped"] != ["nothing"] and call.values["held_mb"] < limit_mb, (call.values, call.texts)


def test_memory_files_cannot_hold_more_than_the_job_memory_limit(bwrap_sandbox):
    """Issue 16: 320 memfd files of 16 MiB held 5 GiB outside RLIMIT_AS. Here 1.5 GiB is tried."""
    result = bwrap_sandbox.run(job(memory_hoard("memfd", 96, 16, 1)), MEMORY_LIMITS)
    held_within_the_job(result, MEMORY_LIMITS.memory_mb)
    assert result.protections["fd_limit"] is True
    assert_correct_job_still_exact(bwrap_sandbox)


@pytest.mark.skipif(cgroup.find() is None or os.geteuid() != 0, reason="no memory cgroup can be made here")
def test_the_memory_cgroup_ends_a_job_whose_files_together_pass_its_limit(bwrap_sandbox):
    """32 memfd files of 64 MiB (each within the file size limit, all within the descriptor limit): only a
    memory cgroup counts them together. The job is ended for memory and the next job runs as before."""
    result = bwrap_sandbox.run(job(memory_hoard("memfd", 32, 16, 4)), MEMORY_LIMITS)
    assert result.status == RunStatus.memory_limit, (result.status, result.detail, result.calls["forward"])
    assert "ran out of memory (limit 1024 MiB)" in result.message
    assert result.protections["memory_cgroup"] is True
    assert_correct_job_still_exact(bwrap_sandbox)


@pytest.mark.skipif(cgroup.find() is None or os.geteuid() != 0, reason="no memory cgroup can be made here")
def test_a_job_sees_no_cgroup_file_of_its_worker_to_lift_its_own_cap(bwrap_sandbox):
    """The worker caps its own cgroup around each job through files the job must never reach: no cgroup
    filesystem is mounted in the job's view, and no memory.max or pids.max under the worker's view path."""
    source = (
        "import os\n"
        "def forward(x, params):\n"
        "    mounts = [line for line in open('/proc/self/mountinfo') if 'cgroup' in line]\n"
        "    found = [os.path.join(root, name) for root, _, names in os.walk('/.cgroup') for name in names]\n"
        "    return {'mounts': len(mounts), 'files': len(found)}\n"
    )
    result = bwrap_sandbox.run(job(source), MEMORY_LIMITS)
    assert result.status == RunStatus.ok, (result.status, result.detail)
    assert result.protections["memory_cgroup"] is True
    values = result.calls["forward"].values
    assert values["mounts"] == 0 and values["files"] == 0, values
    assert_correct_job_still_exact(bwrap_sandbox)


def test_sysv_shared_memory_is_capped_by_the_jobs_own_ipc_namespace(bwrap_sandbox):
    """Issue 16: a job held 4 GiB in SysV shared memory. Here 1.5 GiB of segments is tried."""
    result = bwrap_sandbox.run(job(memory_hoard("sysv", 96, 16, 1)), MEMORY_LIMITS)
    held_within_the_job(result, MEMORY_LIMITS.memory_mb)
    if result.status == RunStatus.ok:  # stopped by the namespace's limit: at most file_mb in all
        assert result.calls["forward"].values["held_mb"] <= MEMORY_LIMITS.file_mb
    assert result.protections["ipc_namespace"] is True
    assert_correct_job_still_exact(bwrap_sandbox)


def test_a_job_cannot_make_a_user_namespace_to_mount_an_unsized_tmpfs(bwrap_sandbox):
    source = (
        "import ctypes, os\ndef forward(x, params):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        f"    if libc.unshare({CLONE_NEWUSER | CLONE_NEWNS}) != 0:\n"
        "        return ['refused: ' + os.strerror(ctypes.get_errno())]\n"
        "    mounted = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0\n"
        "    return ['made a user namespace' + (' and mounted an unsized tmpfs' if mounted else '')]\n"
    )
    result = bwrap_sandbox.run(job(source), FAST)
    assert result.calls["forward"].texts[""][0].startswith("refused"), result.calls["forward"].texts
    assert result.protections["no_nested_userns"] is True
