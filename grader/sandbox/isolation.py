"""How a worker is started: bubblewrap when it works, a documented fallback otherwise.

bwrap mode (the default wherever bubblewrap runs): the worker lives in a bubblewrap sandbox with no
network, its own PID/IPC/UTS namespaces, a read-only root holding only an allow-list (system directories,
a few /etc files, the Python installation, the venv, site-packages), tmpfs over the `grader`, `reference`
and `rubrics` packages wherever they are found and over every path in `hide`. The worker keeps only the
capabilities it needs to build each child's namespaces (SYS_ADMIN, SETUID, SETGID, KILL; SETFCAP in a user
namespace); every child drops all of them before student code runs (worker.py). As root, bubblewrap runs
without a user namespace so children can drop to a real unprivileged uid (nobody); as another user it
runs in a user namespace of that user.

fallback mode (no usable bubblewrap, e.g. a Docker container without the privileges namespaces need):
as root each child drops to a uid of its own slot, with a private temp directory, the Python installation
reachable through descriptors where that uid could not reach it, and a reaper that, as that uid, kills
every process of it and removes what it left in /tmp, /var/tmp, /dev/shm and SysV IPC (per slot, so a
reaper never touches another slot's job); a network namespace per worker and an IPC namespace per job
where the machine still allows them to root (fallback.py); otherwise it only gets rlimits and its own
session. In both modes the worker is a child subreaper and kills every process reparented to it after a
job, each job gets a memory cgroup of its own where this process can make one (cgroup.py, jobsetup.py),
and RLIMIT_NOFILE is in the tens. RunResult.protections says which protections were on for each run:
the mode's (PROTECTIONS; `hidden_paths` in the fallback is on only where the grader's packages and the
hidden paths are out of reach of an unrelated uid: nothing is chmodded here) confirmed by what the child
checked about itself (VERIFIED).

Automatic mode falls back (Plan.reason says why, word for word) when bubblewrap cannot start here, when a
worker's start-up probe of a job's confinement fails (probe.py), and when a job's confinement fails after
all (sandbox.py retries that job, and runs every later one, in the fallback).

BACKPROP_GRADER_SANDBOX=bwrap|fallback forces a mode; BACKPROP_GRADER_SANDBOX_USERNS=1 forces the
user-namespace variant of bwrap mode even as root (how tests cover the non-root path).
BACKPROP_GRADER_SANDBOX_FAULT is for tests only: `userns` makes every unshare(user) of the job's
confinement fail with EPERM as a container refusing user namespaces does (the workers' probe included),
`userns-jobs` only the jobs' (the probe passes, as when a container refuses a job but not the probe).
"""

import functools
import importlib.util
import os
import shutil
import site
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import SandboxError
from grader.sandbox import cgroup

ENV_MODE = "BACKPROP_GRADER_SANDBOX"
ENV_USERNS = "BACKPROP_GRADER_SANDBOX_USERNS"
ENV_FAULT = "BACKPROP_GRADER_SANDBOX_FAULT"
FAULTS = ("userns", "userns-jobs")
HIDDEN_PACKAGES = ("grader", "reference", "rubrics")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = (
    "passwd",
    "group",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "alternatives",
    "hosts",
)
NOBODY = 65534
WORKER_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}
PROTECTIONS = (
    "bubblewrap",
    "no_network",
    "read_only_system",
    "private_tmp",
    "pid_namespace",
    "hidden_paths",
    "unprivileged_user",
    "no_new_privs",
    "rlimits",
    "worker_not_dumpable",
    "process_cleanup",
    "memory_cgroup",
    "fd_limit",
    "ipc_namespace",
    "no_nested_userns",
    "tmpfs_size",
    "temp_cleanup",
)
# What each job's child checks about itself (jail.enter_jail's setup): the run's protection is the mode's
# and the child's; a key the child does not report keeps the mode's value.
VERIFIED = {
    "no_new_privs": "no_new_privs",
    "pid_namespace": "pid1",
    "unprivileged_user": "caps_cleared",
    "memory_cgroup": "memory_cgroup",
    "fd_limit": "fd_limit",
    "ipc_namespace": "ipc_namespace",
    "no_nested_userns": "no_nested_userns",
    "no_network": "no_network",
    "temp_cleanup": "temp_cleanup",
}
CGROUP_VIEW = "/.cgroup"  # where a bwrap worker sees its plan's base cgroup (bound from the host)


@dataclass(frozen=True)
class Plan:
    """Everything needed to start the worker of any slot."""

    mode: str  # "bwrap" or "fallback"
    userns: bool
    prefix: tuple[str, ...]  # the bwrap command line before the python command, or ()
    protections: dict[str, bool] = field(default_factory=dict)
    reason: str = ""  # fallback: why (the exact error of bubblewrap or of the job's confinement, or the request)
    forced: bool = False  # the mode was asked for (argument or ENV_MODE): never changed automatically
    fault: str | None = None  # ENV_FAULT, tests only
    cgroup: dict | None = None  # the base cgroup of this plan's jobs, host paths (cgroup.py), or None
    unreachable: tuple[str, ...] = ()  # fallback as root: Python directories the job's uid cannot reach

    def config(self, slot: int) -> dict:
        """The worker's configuration for one slot (see worker.py, jail.py, jobsetup.py, fallback.py)."""
        root = os.geteuid() == 0
        if self.mode == "bwrap":
            return {
                "ns": True,
                "uid": None if self.userns else NOBODY,
                "workdir_base": None,
                "fault": self.fault,
                "slot": slot,
                "cgroup": cgroup_view(self.cgroup),
            }
        uid = 100000 + (os.getpid() % 10000) * 64 + slot % 64 if root else None
        return {
            "ns": False,
            "uid": uid,
            "workdir_base": None,
            "fault": None,
            "slot": slot,
            "cgroup": dict(self.cgroup) if self.cgroup else None,
            "python_unreachable": list(self.unreachable),
        }

    def off(self) -> list[str]:
        """The protections this mode does not give, sorted."""
        return sorted(name for name, on in self.protections.items() if not on)

    def verified(self, setup: dict | None) -> dict[str, bool]:
        """The protections of one run: the mode's, confirmed by what the child checked about itself."""
        result = dict(self.protections)
        for name, said in VERIFIED.items() if setup else ():
            if said in setup or name != "no_network" or self.mode == "fallback":  # bwrap's: the worker's namespace
                result[name] = result[name] and setup.get(said) is True
        return result


def cgroup_view(base: dict | None) -> dict | None:
    """A bwrap worker's view of the base cgroup: each hierarchy's directory bound under CGROUP_VIEW, and
    those mounts, which the worker takes away from its own namespace once it has joined its cgroup and
    opened its files (jobsetup._worker_cgroup; where it could not, each job's child does, jail.enter_jail)."""
    if not base:
        return None
    view = {key: f"{CGROUP_VIEW}/{key}" for key in ("memory", "pids", "unified") if base.get(key)}
    return {"version": base["version"], **view, "mounts": sorted(view.values())}


def python_paths() -> list[Path]:
    """The Python installation, the venv and every site-packages directory, resolved."""
    candidates = {
        sys.base_prefix,
        sys.prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
    }
    candidates |= set(site.getsitepackages()) | {p for p in sys.path if "-packages" in p}
    paths = sorted(
        {Path(p) for p in candidates if p and os.path.isdir(p)}
        | {Path(os.path.realpath(p)) for p in candidates if p and os.path.isdir(p)}
    )
    return [p for p in paths if not any(q != p and q in p.parents for q in paths)]


def package_dirs() -> list[Path]:
    """Directories of the grader's own packages, wherever Python would import them from."""
    found = []
    for name in HIDDEN_PACKAGES:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            found += [Path(location), Path(os.path.realpath(location))]
    return sorted(set(found))


def bwrap_command(hide: Sequence[Path], userns: bool, cgroup: dict | None = None) -> list[str]:
    """The bubblewrap command line that starts a worker.

    No --die-with-parent: its death signal follows the *thread* that started bwrap, and workers are
    (re)started from short-lived threads. A worker ends when its stdin closes, which also happens when
    the grader dies; bwrap's PID namespace then takes every remaining process with it. A worker stopped
    in the middle of a job is ended through its namespace's init (Worker.start adds --info-fd to learn it).
    """
    # A cgroup namespace would keep a v2 job from joining its cgroup (outside the namespace's root): kept for v1.
    cgroupns = ["--unshare-cgroup-try"] if not cgroup or cgroup["version"] == 1 else []
    command = [
        "bwrap",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        *cgroupns,
        "--hostname",
        "sandbox",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    caps = ["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"] + (["CAP_SETFCAP"] if userns else [])
    for cap in caps:
        command += ["--cap-add", cap]
    if userns:
        command += ["--unshare-user", "--uid", "0", "--gid", "0"]
    # (depth, order, args), applied shallow first; at one depth: binds, then covers, then parent directories
    mounts: list[tuple[int, int, list[str]]] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            mounts.append((path.count("/"), 0, ["--ro-bind", path, path]))
    for name in ETC_FILES:
        mounts.append((2, 0, ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]))
    mounts.append((1, 1, ["--tmpfs", "/tmp"]))  # before anything bound below /tmp (a checkout in /tmp)
    staged = []
    for path in python_paths():
        mounts.append((len(path.parts), 0, ["--ro-bind", str(path), str(path)]))
        if Path("/tmp") in path.parents:  # a job's private /tmp would hide it: jail.py binds it back from here
            mounts.append((len(path.parts) + 1, 0, ["--ro-bind", str(path), f"/.pystage{path}"]))
            staged.append(path)
    for path in [*package_dirs(), *(Path(os.path.abspath(p)) for p in hide)]:
        # Covered where it is and, inside a staged Python path, in the staged copy too: jail.py binds that
        # copy back (with what is mounted in it) over the job's /tmp, which would otherwise show it again.
        for target in [path, *(Path(f"/.pystage{path}") for root in staged if root == path or root in path.parents)]:
            if path.is_dir():
                mounts.append((len(target.parts), 1, ["--tmpfs", str(target)]))
            elif path.exists():
                mounts.append((len(target.parts), 1, ["--ro-bind", "/dev/null", str(target)]))
    parents = {parent for *_, args in mounts for parent in Path(args[-1]).parents if len(parent.parts) > 1}
    for parent in parents - {Path(p) for p in SYSTEM_DIRS}:
        mounts.append((len(parent.parts), 2, ["--perms", "0755", "--dir", str(parent)]))  # bwrap's are 0700
    for _, _, args in sorted(mounts, key=lambda m: (m[0], m[1])):
        command += args
    command += ["--dev", "/dev", "--proc", "/proc", "--dir", "/job"]
    for key, path in ((key, (cgroup or {}).get(key)) for key in ("memory", "pids", "unified")):
        if path:
            command += ["--bind", path, f"{CGROUP_VIEW}/{key}"]
    command += ["--remount-ro", "/", "--chdir", "/"]
    return command


@functools.lru_cache(maxsize=4)
def bwrap_problem(userns: bool) -> str | None:
    """None when bubblewrap can build our kind of sandbox here, else why not (cached per process)."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian/Ubuntu package 'bubblewrap')"
    command = bwrap_command([], userns) + ["/bin/sh", "-c", "exit 0"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=20, env=WORKER_ENV)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if done.returncode != 0:
        return f"bwrap exited with {done.returncode}: {done.stderr.decode(errors='replace').strip()[:500]}"
    return None


def plan(hide: Sequence[Path] = (), mode: str | None = None) -> Plan:
    """Choose the mode (argument, then $BACKPROP_GRADER_SANDBOX, then auto) and describe its protections."""
    requested = mode or os.environ.get(ENV_MODE, "").strip() or None
    if requested not in (None, "bwrap", "fallback"):
        raise SandboxError(f"{ENV_MODE}={requested!r}: expected 'bwrap' or 'fallback' (or unset for automatic)")
    fault = os.environ.get(ENV_FAULT, "").strip() or None
    if fault not in (None, *FAULTS):
        raise SandboxError(f"{ENV_FAULT}={fault!r}: expected one of {', '.join(FAULTS)} (tests only), or unset")
    root = os.geteuid() == 0
    userns = not root or os.environ.get(ENV_USERNS, "") == "1"
    if requested == "fallback":
        how = f"mode={mode!r}" if mode else f"{ENV_MODE}=fallback"
        return fallback_plan(f"the fallback sandbox was asked for ({how})", forced=True, hide=hide)
    problem = bwrap_problem(userns)
    if problem is None:
        base = cgroup.create_base()
        on = dict.fromkeys(PROTECTIONS, True)
        on["unprivileged_user"] = not (userns and root)  # a user namespace of root maps to host root
        on["memory_cgroup"] = base is not None
        return Plan(
            "bwrap",
            userns,
            tuple(bwrap_command(hide, userns, base)),
            on,
            forced=requested == "bwrap",
            fault=fault,
            cgroup=base,
        )
    if requested == "bwrap":
        raise SandboxError(
            f"{ENV_MODE}=bwrap but bubblewrap cannot be used here: {problem}. Install "
            f"bubblewrap, allow user namespaces, or set {ENV_MODE}=fallback."
        )
    return fallback_plan(f"bubblewrap cannot start here: {problem}", hide=hide)


def fallback_plan(reason: str, forced: bool = False, hide: Sequence[Path] = (), base: dict | None = None) -> Plan:
    """The fallback mode's plan, with why it is used (shown to staff: logs, stderr, `doctor`). `base`: the
    base cgroup of the plan it replaces, if any (else one is made where the machine allows it)."""
    root = os.geteuid() == 0
    base = base or cgroup.create_base()
    unreachable = tuple(str(p) for p in python_paths() if not reachable_by_others(p)) if root else ()
    protections = dict.fromkeys(PROTECTIONS, False)
    namespaces = fallback_namespaces() if root else {}
    protections.update(
        rlimits=True,
        no_new_privs=True,
        worker_not_dumpable=True,
        unprivileged_user=root,
        process_cleanup=True,
        memory_cgroup=base is not None,
        fd_limit=True,
        temp_cleanup=root,
        no_nested_userns=True,
        no_network=namespaces.get("net", False),
        ipc_namespace=namespaces.get("ipc", False),
        hidden_paths=root
        and not any(reachable_by_others(Path(p), [Path(u) for u in unreachable]) for p in [*package_dirs(), *hide]),
    )
    return Plan("fallback", False, (), protections, reason=reason, forced=forced, cgroup=base, unreachable=unreachable)


def reachable_by_others(path: Path, via: Sequence[Path] = ()) -> bool:
    """Whether a uid that owns nothing here and is in no group of it can read `path` (list a directory,
    read a file): search permission for others on every directory down to it, from / or from the deepest
    of `via` above it (directories the job reaches through a descriptor, fallback.py). False if absent."""
    path = Path(os.path.abspath(path))
    start = max((v for v in via if v == path or v in path.parents), key=lambda v: len(v.parts), default=Path("/"))
    try:
        for depth in range(len(start.parts), len(path.parts)):
            if not os.stat(Path(*path.parts[:depth])).st_mode & 0o001:
                return False
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & 0o004) and (not stat.S_ISDIR(mode) or bool(mode & 0o001))


@functools.lru_cache(maxsize=1)
def fallback_namespaces() -> dict[str, bool]:
    """As root without bubblewrap: whether this machine lets a process make a network namespace and an
    IPC namespace (most containers refuse both without CAP_SYS_ADMIN). Tried once, in a throw-away process."""
    script = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.unshare(0x40000000) == 0, libc.unshare(0x8000000) == 0)"
    )
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=20)
        net, ipc = done.stdout.split()
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {"net": False, "ipc": False}
    return {"net": net == "True", "ipc": ipc == "True"}
