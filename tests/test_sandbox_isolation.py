"""What a submission can see and touch inside the bubblewrap sandbox, and how the mode is chosen."""

import os
import shutil
from pathlib import Path

import pytest

from grader.errors import SandboxError
from grader.limits import Limits
from grader.sandbox import Call, Job, RunStatus, Sandbox, cgroup, isolation

NEEDS_BWRAP = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
LIMITS = Limits(wall_seconds=10, cpu_seconds=7, memory_mb=3000, processes=40, file_mb=5)


def probe(sandbox, body: str, limits: Limits = LIMITS):
    """Run `def probe(): <body>` in the sandbox and return the call's result."""
    source = "import os, sys, socket, resource\n\ndef probe():\n" + "".join(
        f"    {line}\n" for line in body.splitlines()
    )
    result = sandbox.run(Job(filename="probe.py", cells=[source], calls=[Call(id="p", function="probe")]), limits)
    assert result.status == RunStatus.ok, (result.message, result.detail, result.stderr)
    return result.calls["p"]


def test_bwrap_mode_reports_every_protection_active_and_verified(bwrap_sandbox):
    assert bwrap_sandbox.mode == "bwrap"
    cgroups = cgroup.find() is not None and os.geteuid() == 0  # a memory cgroup only where one can be made
    assert bwrap_sandbox.protections.pop("memory_cgroup") is cgroups
    assert all(bwrap_sandbox.protections.values()), bwrap_sandbox.protections
    result = bwrap_sandbox.run(Job(filename="a.py", cells=[""]), LIMITS)
    assert result.protections == bwrap_sandbox.protections
    assert set(result.protections) >= {
        "bubblewrap",
        "no_network",
        "read_only_system",
        "private_tmp",
        "pid_namespace",
        "unprivileged_user",
        "rlimits",
        "memory_cgroup",
        "fd_limit",
        "ipc_namespace",
        "no_nested_userns",
        "tmpfs_size",
        "temp_cleanup",
    }


def test_the_child_has_no_network_but_loopback(bwrap_sandbox):
    call = probe(
        bwrap_sandbox,
        "s = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('1.1.1.1', 53))\n"
        "    r = 'connected'\nexcept OSError as e:\n    r = type(e).__name__\n"
        "return {'r': [r], 'ifs': [n for _, n in socket.if_nameindex()]}",
    )
    assert call.texts["r"] != ["connected"]
    assert call.texts["ifs"] == ["lo"]


def test_the_child_runs_unprivileged_with_no_capabilities_no_new_privileges_and_the_rlimits(bwrap_sandbox):
    call = probe(
        bwrap_sandbox,
        "st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "return {'uid': os.getuid(), 'caps': int(st['CapEff'], 16) + int(st['CapPrm'], 16)"
        " + int(st['CapBnd'], 16), 'nnp': int(st['NoNewPrivs']),"
        " 'as': resource.getrlimit(resource.RLIMIT_AS)[0], 'cpu': resource.getrlimit(resource.RLIMIT_CPU)[0],"
        " 'nproc': resource.getrlimit(resource.RLIMIT_NPROC)[0],"
        " 'fsize': resource.getrlimit(resource.RLIMIT_FSIZE)[0], 'core': resource.getrlimit(resource.RLIMIT_CORE)[1],"
        " 'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[1]}",
    )
    values = {key: int(value) for key, value in call.values.items()}
    assert values == {
        "uid": 65534,
        "caps": 0,
        "nnp": 1,
        "as": 3000 << 20,
        "cpu": 7,
        "nproc": 40,
        "fsize": 5 << 20,
        "core": 0,
        "nofile": 64,
    }  # open files in the tens: with fsize, what memfd files can hold


def test_the_file_size_limit_stops_big_files(bwrap_sandbox):
    call = probe(
        bwrap_sandbox,
        "try:\n    open('big', 'wb').write(b'x' * (6 << 20))\n    r = 'written'\n"
        "except OSError as e:\n    r = e.strerror\nreturn [r]",
        LIMITS,
    )
    assert call.texts[""] == ["File too large"]


def test_the_child_starts_in_an_empty_private_work_directory_and_sees_only_its_own_processes(bwrap_sandbox):
    call = probe(
        bwrap_sandbox,
        "return {'cwd': [os.getcwd()], 'files': os.listdir('.') or ['none'],"
        " 'tmp': os.listdir('/tmp') or ['none'], 'pid': os.getpid(),"
        " 'procs': [p for p in os.listdir('/proc') if p.isdigit()]}",
    )
    # /tmp is empty but for the read-only way to a venv that lives under /tmp (a checkout in /tmp)
    venv_under_tmp = sorted({p.parts[2] for p in isolation.python_paths() if Path("/tmp") in p.parents}) or ["none"]
    assert call.texts["cwd"] == ["/job"] and call.texts["files"] == ["none"] and call.texts["tmp"] == venv_under_tmp
    assert call.values["pid"] == 1 and call.texts["procs"] == ["1"]


def test_nothing_a_job_leaves_behind_is_visible_to_the_next_job(bwrap_sandbox):
    leave = (
        "import numpy as np, torch\nnp.leaked = 1\nnp.set_printoptions(precision=2)\nnp.random.seed(99)\n"
        "torch.set_default_dtype(torch.float64)\nos.environ['LEAK'] = '1'\n"
        "for path in ('/tmp/leak', '/job/leak', '/dev/shm/leak'):\n    open(path, 'w').write('x')\n"
        "sys.modules['json'] = None\nreturn 1"
    )
    look = (
        "import numpy as np, torch\nfound = [p for p in ('/tmp/leak', '/job/leak', '/dev/shm/leak') if os.path.exists(p)]\n"
        "found += ['np.leaked'] if hasattr(np, 'leaked') else []\n"
        "found += ['printoptions'] if np.get_printoptions()['precision'] != 8 else []\n"
        "found += ['dtype'] if torch.get_default_dtype() != torch.float32 else []\n"
        "found += ['env'] if 'LEAK' in os.environ else []\n"
        "found += ['json'] if sys.modules.get('json') is None else []\n"
        "return {'found': found or ['nothing'], 'rand': np.random.rand()}"
    )
    first = probe(bwrap_sandbox, look)
    for _ in range(2):  # both slots
        probe(bwrap_sandbox, leave)
    for _ in range(2):
        after = probe(bwrap_sandbox, look)
        assert after.texts["found"] == ["nothing"]
        assert after.values["rand"] == first.values["rand"]


def test_the_child_never_had_the_grader_or_the_reference_imported(bwrap_sandbox):
    call = probe(
        bwrap_sandbox,
        "return sorted(m for m in sys.modules if m.split('.')[0] in ('grader', 'reference', 'rubrics')) or ['none']",
    )
    assert call.texts[""] == ["none"]


@NEEDS_BWRAP
def test_the_user_namespace_variant_used_by_non_root_graders_runs_jobs(monkeypatch):
    monkeypatch.setenv(isolation.ENV_USERNS, "1")
    with Sandbox(jobs=1, mode="bwrap") as sandbox:
        call = probe(
            sandbox,
            "st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())\n"
            "return {'pid': os.getpid(), 'caps': int(st['CapEff'], 16), 'nproc': resource.getrlimit(resource.RLIMIT_NPROC)[0]}",
        )
        assert call.values["pid"] == 1 and call.values["caps"] == 0 and call.values["nproc"] == 40
        # as root, a user namespace still maps to host root: reported, not hidden
        assert sandbox.protections["unprivileged_user"] is False and sandbox.protections["pid_namespace"]


def test_the_bwrap_command_covers_hidden_paths_after_binding_their_parents(tmp_path):
    hidden = tmp_path / "submissions"
    hidden.mkdir()
    (tmp_path / "out.json").write_text("{}")
    command = isolation.bwrap_command([hidden, tmp_path / "out.json", tmp_path / "missing"], userns=False)
    assert command[command.index(str(hidden)) - 1] == "--tmpfs"
    assert command[command.index(str(tmp_path / "out.json")) - 2 :][:2] == ["--ro-bind", "/dev/null"]
    assert str(tmp_path / "missing") not in command
    for package in isolation.package_dirs():
        assert command[command.index(str(package)) - 1] == "--tmpfs"
    venv = command.index(os.path.realpath(os.sys.prefix))
    assert command[venv - 1] == "--ro-bind"
    assert "--unshare-net" in command and "--unshare-pid" in command and command[-2:] == ["--chdir", "/"]


def test_an_unknown_mode_or_an_unusable_bwrap_is_a_clear_sandbox_error(monkeypatch):
    monkeypatch.setenv(isolation.ENV_MODE, "docker")
    with pytest.raises(SandboxError, match="expected 'bwrap' or 'fallback'"):
        Sandbox()
    monkeypatch.setenv(isolation.ENV_MODE, "bwrap")
    monkeypatch.setattr(isolation, "bwrap_problem", lambda userns: "bwrap is not installed")
    with pytest.raises(SandboxError, match="bubblewrap cannot be used here: bwrap is not installed"):
        Sandbox()
    monkeypatch.delenv(isolation.ENV_MODE)
    assert Sandbox().mode == "fallback"  # automatic: falls back and says so in protections
    assert Sandbox().protections["bubblewrap"] is False


def test_python_paths_are_the_installation_and_the_venv_without_nesting():
    paths = isolation.python_paths()
    assert Path(os.path.realpath(os.sys.base_prefix)) in paths
    assert not any(p != q and q in p.parents for p in paths for q in paths)


def test_a_hidden_path_inside_a_python_installation_under_tmp_is_covered_in_its_staged_copy_too(tmp_path, monkeypatch):
    """A venv under /tmp is bound a second time under /.pystage, and each job binds that copy back over its
    private /tmp: a cover only at the original path would be gone in the job (a class folder inside such a
    venv, or the grader's own packages in a non-editable install there). Command construction only: the
    real-sandbox version, tests/test_batch.py::test_inside_a_grade_run_the_class_folder_and_the_reports_are_hidden,
    exercises it wherever the checkout's venv lies under /tmp."""
    venv = tmp_path / "venv"
    (venv / "secret").mkdir(parents=True)
    (venv / "answers.py").write_text("W = 1\n")
    monkeypatch.setattr(isolation, "python_paths", lambda: [venv])
    command = isolation.bwrap_command([venv / "secret", venv / "answers.py"], userns=False)
    staged = f"/.pystage{venv}"
    assert command[command.index(staged) - 2 : command.index(staged) + 1] == ["--ro-bind", str(venv), staged]
    for path in (venv / "secret", Path(f"{staged}/secret")):
        assert command[command.index(str(path)) - 1] == "--tmpfs"
    for path in (venv / "answers.py", Path(f"{staged}/answers.py")):
        assert command[command.index(str(path)) - 2 : command.index(str(path))] == ["--ro-bind", "/dev/null"]
    assert command.index(staged) < command.index(f"{staged}/secret")  # the copy is bound before it is covered
