"""Fallback mode (no bubblewrap, e.g. a Docker container): fewer walls, same limits, same cleanup, honest report."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from grader.limits import Limits
from grader.sandbox import Call, CallStatus, Job, RunStatus

LIMITS = Limits(wall_seconds=10)
ROOT = os.geteuid() == 0


def run(sandbox, source: str, calls=(), limits: Limits = LIMITS):
    return sandbox.run(Job(filename="f.py", cells=[source], calls=list(calls)), limits)


def uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                pids.append(int(entry))
        except OSError:
            pass
    return pids


def test_fallback_mode_says_which_protections_are_off(fallback_sandbox):
    protections = fallback_sandbox.protections
    assert fallback_sandbox.mode == "fallback"
    for off in ("bubblewrap", "no_network", "read_only_system", "private_tmp", "pid_namespace", "hidden_paths"):
        assert protections[off] is False
    assert protections["rlimits"] and protections["no_new_privs"]
    assert protections["unprivileged_user"] is ROOT and protections["process_cleanup"] is True
    assert run(fallback_sandbox, "").protections == protections


def test_a_contract_submission_runs_and_returns_exact_values(fallback_sandbox):
    source = "import numpy as np\ndef f(n):\n    return {'v': np.arange(n) / 3, 'cwd': [__import__('os').getcwd()]}\n"
    result = run(fallback_sandbox, source, [Call(id="f", function="f", args=[4])])
    assert result.status == RunStatus.ok, result.detail
    np.testing.assert_array_equal(result.calls["f"].values["v"], np.arange(4) / 3)
    workdir = result.calls["f"].texts["cwd"][0]
    assert Path(workdir).name.startswith("bpg-job-") and not Path(workdir).exists()  # removed after the run


@pytest.mark.skipif(not ROOT, reason="dropping to another uid needs root")
def test_as_root_the_child_runs_as_an_unprivileged_slot_user_and_cannot_inspect_the_worker(fallback_sandbox):
    source = ("import os\ndef f():\n    out = []\n    for pid in (os.getppid(), 1):\n        try:\n"
              "            open(f'/proc/{pid}/environ', 'rb').read()\n            out.append('read')\n"
              "        except OSError as e:\n            out.append(type(e).__name__)\n"
              "    try:\n        open('/etc/bpg-fallback', 'w')\n        out.append('wrote')\n    except OSError as e:\n"
              "        out.append(type(e).__name__)\n    return {'uid': os.getuid(), 'out': out}\n")
    call = run(fallback_sandbox, source, [Call(id="f", function="f")]).calls["f"]
    assert call.values["uid"] >= 100000
    assert call.texts["out"] == ["PermissionError", "PermissionError", "PermissionError"]
    assert not Path("/etc/bpg-fallback").exists()


@pytest.mark.skipif(not ROOT, reason="the reaper needs root")
def test_daemons_and_fork_bombs_are_reaped_and_never_write_later(fallback_sandbox, tmp_path):
    late = tmp_path / "late"
    tmp_path.chmod(0o777)
    source = ("import os, subprocess\n"
              f"subprocess.Popen(['/bin/sh', '-c', 'sleep 1; echo late > {late}'], start_new_session=True)\n"
              "if os.fork() == 0:\n    os.setsid()\n    while True:\n        try:\n            os.fork()\n"
              "        except OSError:\n            pass\n"
              "def f():\n    return 1\n")
    result = run(fallback_sandbox, source, [Call(id="f", function="f")], Limits(wall_seconds=10, processes=16))
    assert result.status == RunStatus.ok, result.detail
    uid = fallback_sandbox.plan.config(0)["uid"]
    assert uid_processes(uid) == []
    time.sleep(1.5)
    assert not late.exists()


def test_limits_hold_in_fallback_mode(fallback_sandbox):
    timeout = run(fallback_sandbox, "while True:\n    pass\n", limits=Limits(wall_seconds=1, cpu_seconds=30))
    assert timeout.status == RunStatus.timeout and "1 s time limit" in timeout.message
    memory = run(fallback_sandbox, "import numpy as np\nx = np.ones((100000, 100000))\n",
                 limits=Limits(wall_seconds=10, memory_mb=1500))
    assert memory.status == RunStatus.memory_limit and "(limit 1500 MiB)" in memory.message
    exited = run(fallback_sandbox, "import os\nos._exit(9)\n")
    assert exited.status == RunStatus.exited and exited.exit_code == 9
    missing = run(fallback_sandbox, "def forwards():\n    pass\n", [Call(id="f", function="forward")])
    assert missing.calls["f"].status == CallStatus.missing_function
    assert "Did you mean forwards?" in missing.calls["f"].message
