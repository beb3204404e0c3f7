"""Fallback mode (no bubblewrap, e.g. a Docker container): fewer walls, same limits, same cleanup, honest report;
and the fallback from bubblewrap wherever bubblewrap fails the sandbox rather than the student."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from grader.limits import Limits
from grader.rubric.files import load_rubric
from grader.sandbox import Call, CallStatus, Job, RunStatus, Sandbox, isolation

LIMITS = Limits(wall_seconds=10)
ROOT = os.geteuid() == 0
REFUSED = "PermissionError: [Errno 1] unshare(user): Operation not permitted"  # as a refusing container says it
NEEDS_BWRAP = pytest.mark.skipif(
    shutil.which("bwrap") is None or isolation.bwrap_problem(os.geteuid() != 0) is not None,
    reason="bubblewrap cannot run here, so there is nothing to fall back from",
)


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
    for off in ("bubblewrap", "read_only_system", "private_tmp", "pid_namespace", "tmpfs_size"):
        assert protections[off] is False
    assert protections["rlimits"] and protections["no_new_privs"] and protections["fd_limit"]
    assert protections["unprivileged_user"] is ROOT and protections["process_cleanup"] is True
    assert protections["temp_cleanup"] is ROOT
    # a network and an IPC namespace where the machine allows them to root, even without bubblewrap
    assert protections["no_network"] is (ROOT and isolation.fallback_namespaces()["net"])
    assert protections["ipc_namespace"] is (ROOT and isolation.fallback_namespaces()["ipc"])
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
    source = (
        "import os\ndef f():\n    out = []\n    for pid in (os.getppid(), 1):\n        try:\n"
        "            open(f'/proc/{pid}/environ', 'rb').read()\n            out.append('read')\n"
        "        except OSError as e:\n            out.append(type(e).__name__)\n"
        "    try:\n        open('/etc/bpg-fallback', 'w')\n        out.append('wrote')\n    except OSError as e:\n"
        "        out.append(type(e).__name__)\n    return {'uid': os.getuid(), 'out': out}\n"
    )
    call = run(fallback_sandbox, source, [Call(id="f", function="f")]).calls["f"]
    assert call.values["uid"] >= 100000
    assert call.texts["out"] == ["PermissionError", "PermissionError", "PermissionError"]
    assert not Path("/etc/bpg-fallback").exists()


@pytest.mark.skipif(not ROOT, reason="the reaper needs root")
def test_daemons_and_fork_bombs_are_reaped_and_never_write_later(fallback_sandbox, tmp_path):
    late = tmp_path / "late"
    tmp_path.chmod(0o777)
    source = (
        "import os, subprocess\n"
        f"subprocess.Popen(['/bin/sh', '-c', 'sleep 1; echo late > {late}'], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\n"
        "def f():\n    return 1\n"
    )
    result = run(fallback_sandbox, source, [Call(id="f", function="f")], Limits(wall_seconds=10, processes=16))
    assert result.status == RunStatus.ok, result.detail
    uid = fallback_sandbox.plan.config(0)["uid"]
    assert uid_processes(uid) == []
    time.sleep(1.5)
    assert not late.exists()


def test_limits_hold_in_fallback_mode(fallback_sandbox):
    timeout = run(fallback_sandbox, "while True:\n    pass\n", limits=Limits(wall_seconds=1, cpu_seconds=30))
    assert timeout.status == RunStatus.timeout and "1 s time limit" in timeout.message
    memory = run(
        fallback_sandbox,
        "import numpy as np\nx = np.ones((100000, 100000))\n",
        limits=Limits(wall_seconds=10, memory_mb=1500),
    )
    assert memory.status == RunStatus.memory_limit and "(limit 1500 MiB)" in memory.message
    exited = run(fallback_sandbox, "import os\nos._exit(9)\n")
    assert exited.status == RunStatus.exited and exited.exit_code == 9
    missing = run(fallback_sandbox, "def forwards():\n    pass\n", [Call(id="f", function="forward")])
    assert missing.calls["f"].status == CallStatus.missing_function
    assert "Did you mean forwards?" in missing.calls["f"].message


# --- falling back from bubblewrap ------------------------------------------------------------------

WHOAMI = Job(
    filename="w.py",
    cells=["import os\ndef f():\n    return {'pid': os.getpid()}\n"],
    calls=[Call(id="f", function="f")],
)


@NEEDS_BWRAP
@pytest.mark.parametrize(
    "fault, step",
    [
        ("userns", "the start-up probe of a job's confinement failed"),
        ("userns-jobs", "a job's confinement failed in bubblewrap"),
    ],
)
def test_where_user_namespaces_are_refused_every_job_runs_in_the_fallback_and_the_reason_is_told(
    monkeypatch, fault, step
):
    """`userns`: the workers' start-up probe sees the refusal; `userns-jobs`: the probe passes and the
    first job's confinement fails, as in the container of issue 15; that job is retried in the fallback."""
    monkeypatch.setenv(isolation.ENV_FAULT, fault)
    told: list[str] = []
    with Sandbox(jobs=2, notify=told.append) as sandbox:
        results = [sandbox.run(WHOAMI, LIMITS) for _ in range(3)]
        assert sandbox.mode == "fallback" and step in sandbox.fallback_reason and REFUSED in sandbox.fallback_reason
    for result in results:
        assert result.status == RunStatus.ok, result.detail
        assert result.calls["f"].values["pid"] != 1  # no PID namespace of its own: the fallback ran it
        assert result.protections["bubblewrap"] is False
    assert len(told) == 1 and REFUSED in told[0] and "fallback" in told[0]


@NEEDS_BWRAP
def test_where_bubblewrap_was_asked_for_a_refused_job_is_a_sandbox_error_not_a_fallback(monkeypatch):
    monkeypatch.setenv(isolation.ENV_FAULT, "userns-jobs")
    told: list[str] = []
    with Sandbox(jobs=1, mode="bwrap", notify=told.append) as sandbox:
        result = sandbox.run(WHOAMI, LIMITS)
        assert sandbox.mode == "bwrap"
    assert result.status == RunStatus.sandbox_error and REFUSED in result.detail and told == []


def grade_with(env: dict, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, **env},
    )


@NEEDS_BWRAP
def test_grade_and_check_grade_every_student_in_the_fallback_when_each_jobs_user_namespace_is_refused(tmp_path):
    """Issue 15's container: bubblewrap starts, every job's unshare(user) is refused. Every student gets the
    score the bubblewrap sandbox gives them, and the exact reason is on stderr, once."""
    samples = REPO / "submissions" / "bs6207-a1"
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("correct.py", "correct.ipynb", "missing_factor_2.py", "transposed_gradient.py"):
        shutil.copy(samples / name, folder / name)
    scores = {}
    for label, env in (("bwrap", {}), ("refused", {isolation.ENV_FAULT: "userns-jobs"})):
        out = tmp_path / label
        done = grade_with(env, "grade", folder, "--rubric", "bs6207-a1", "--out", out, "--jobs", 2)
        assert done.returncode == 0, done.stderr
        reports = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/report.json")}
        assert len(reports) == 4 and all(
            r["status"] == "graded" and r["run"]["status"] == "ok" for r in reports.values()
        )
        assert {r["run"]["protections"]["bubblewrap"] for r in reports.values()} == {label == "bwrap"}
        scores[label] = {student: r["score"] for student, r in reports.items()}
        if label == "refused":
            assert done.stderr.count(REFUSED) == 1 and "falling back" in done.stderr
    assert scores["refused"] == scores["bwrap"]
    full = load_rubric("bs6207-a1").max_points()
    assert scores["refused"]["correct.py"] == scores["refused"]["correct.ipynb"] == full
    assert 0 < scores["refused"]["missing_factor_2"] < full
    check = grade_with(
        {isolation.ENV_FAULT: "userns-jobs"},
        "check",
        samples / "correct.py",
        "--rubric",
        "bs6207-a1",
        "--out",
        tmp_path / "check",
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert REFUSED in check.stderr and json.loads((tmp_path / "check" / "report.json").read_text())["score"] > 0


# --- the fallback as strong as it can be without namespaces (issue 16, item 7) ---------------------------


def slot_uid(sandbox) -> int:
    return sandbox.plan.config(0)["uid"]


@pytest.mark.skipif(not ROOT, reason="removing what the job's uid left needs a uid of the job's own (root)")
def test_files_a_job_leaves_in_shared_temp_directories_are_removed_after_it(fallback_sandbox):
    marker = f"bpg-left-{os.getpid()}"
    paths = [f"/tmp/{marker}", f"/var/tmp/{marker}", f"/dev/shm/{marker}", f"/tmp/{marker}-dir/inner"]
    source = (
        "import os, tempfile\ndef f():\n"
        f"    os.makedirs('/tmp/{marker}-dir')\n"
        f"    for path in {paths!r}:\n        open(path, 'w').write('left')\n"
        "    private = tempfile.mkdtemp()\n    open(os.path.join(private, 'x'), 'w').write('x')\n"
        "    return {'private': [tempfile.gettempdir(), private]}\n"
    )
    try:
        result = run(fallback_sandbox, source, [Call(id="f", function="f")])
        assert result.status == RunStatus.ok, result.detail
        gettempdir, private = result.calls["f"].texts["private"]
        assert gettempdir not in ("/tmp", "/var/tmp") and Path(private).parent == Path(gettempdir)
        assert [p for p in [*paths, f"/tmp/{marker}-dir", gettempdir] if os.path.lexists(p)] == []
        assert result.protections["temp_cleanup"] is True
    finally:
        for path in paths:
            Path(path).unlink(missing_ok=True)
        shutil.rmtree(f"/tmp/{marker}-dir", ignore_errors=True)


def sysv_segments(uid: int) -> list[int]:
    rows = [line.split() for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    return [int(row[1]) for row in rows if row[7] == str(uid)]


@pytest.mark.skipif(not ROOT, reason="needs a uid of the job's own (root)")
def test_sysv_shared_memory_a_job_leaves_is_gone_after_it(fallback_sandbox):
    """With an IPC namespace of the job's own the segment dies with it; without, the reaper removes it."""
    uid = slot_uid(fallback_sandbox)
    source = (
        "import ctypes\ndef f():\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    return {'id': libc.shmget(0x5bd6, 1 << 20, 0o1600)}\n"
    )
    try:
        result = run(fallback_sandbox, source, [Call(id="f", function="f")])
        assert result.status == RunStatus.ok and result.calls["f"].values["id"] >= 0, result.detail
        assert sysv_segments(uid) == []
    finally:
        for segment in sysv_segments(uid):  # if it failed: leave nothing behind
            subprocess.run(["ipcrm", "-m", str(segment)], capture_output=True)


@pytest.mark.skipif(not ROOT, reason="a Python installation out of the job's reach needs a uid of the job's own")
def test_standard_library_modules_the_worker_never_imported_import_in_the_job(fallback_sandbox):
    """Issue 16: under a Python installed in /root (mode 0700), `No module named 'encodings.idna'`."""
    source = (
        "import encodings.idna, colorsys, wave, xml.dom.minidom\n"
        "def f():\n    return {'ok': colorsys.rgb_to_hsv(1.0, 0.0, 0.0)[2]}\n"
    )
    result = run(fallback_sandbox, source, [Call(id="f", function="f")])
    assert result.status == RunStatus.ok, (result.message, result.detail)
    assert result.calls["f"].values["ok"] == 1.0


@pytest.mark.skipif(
    not ROOT or not isolation.fallback_namespaces()["net"],
    reason="a network namespace of the worker's own needs root and a machine that allows one",
)
def test_a_job_cannot_reach_a_service_on_the_hosts_loopback(fallback_sandbox):
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        source = (
            "import socket\ndef f():\n    s = socket.socket()\n    s.settimeout(2)\n    try:\n"
            f"        s.connect(('127.0.0.1', {port}))\n        return ['connected']\n"
            "    except OSError as e:\n        return [type(e).__name__]\n"
        )
        result = run(fallback_sandbox, source, [Call(id="f", function="f")])
    assert result.calls["f"].texts[""] != ["connected"]
    assert result.protections["no_network"] is True


def test_hidden_paths_is_on_only_where_the_graders_files_are_out_of_the_jobs_reach(tmp_path, monkeypatch):
    """Outside Gradescope nothing is chmodded: a readable checkout is reported as hidden_paths false."""
    if not ROOT:
        assert isolation.fallback_plan("test").protections["hidden_paths"] is False
        return
    readable = any(isolation.reachable_by_others(p) for p in isolation.package_dirs())
    assert isolation.fallback_plan("test").protections["hidden_paths"] is not readable
    private = tmp_path / "grader"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(isolation, "package_dirs", lambda: [private])
    assert isolation.fallback_plan("test").protections["hidden_paths"] is True
    with tempfile.NamedTemporaryFile(dir="/tmp", suffix=".toml") as rubric:  # a rubric anyone may read
        os.chmod(rubric.name, 0o644)
        assert isolation.fallback_plan("test", hide=[Path(rubric.name)]).protections["hidden_paths"] is False


def test_without_bubblewrap_check_grades_a_notebook_in_the_fallback(tmp_path):
    """Issue 16: bubblewrap absent (not on PATH), as on a Gradescope image without it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {**os.environ, "PATH": str(bin_dir)}
    env.pop(isolation.ENV_MODE, None)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "check",
            str(REPO / "submissions" / "bs6207-a1-notebooks" / "correct.ipynb"),
            "--rubric",
            "bs6207-a1-notebook",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bwrap is not installed" in done.stderr
    report = json.loads((out / "report.json").read_text())
    protections = report["run"]["protections"]
    assert protections["bubblewrap"] is False and protections["fd_limit"] is True
    assert protections["temp_cleanup"] is ROOT and protections["unprivileged_user"] is ROOT
    assert report["score"] == load_rubric("bs6207-a1-notebook").max_points(), report["score"]
