"""Confinement of one job's child: namespaces, mounts, user, capabilities, rlimits, descriptors, cgroup.

Standalone on purpose: shipped as source into the sandbox with worker.py and imports only the standard
library. `child` is the body of the worker's per-job child. The worker unshares a PID namespace for its
children just before forking, so the child is PID 1 of a fresh PID namespace; the child then makes itself
the out-of-memory victim of the worker's capped cgroup (where there is one, jobsetup.py), unshares mount and IPC
namespaces (SysV objects die with the job, and their total is capped by the namespace's own limits),
mounts its own /proc and size-limited /tmp, /dev/shm and work directory, drops to an unprivileged user
(as root) inside a user namespace of its own (so RLIMIT_NPROC counts this job only) in which no further
user namespace may be created (so no unsized tmpfs from a nested one), clears every capability, sets
no_new_privs and rlimits (RLIMIT_NOFILE in the tens: with RLIMIT_FSIZE it bounds memfd memory where no
cgroup counts it), keeps only fds 0-5, and only then runs student code. When it exits or is killed, the
kernel kills every process in its namespace. What it verified about itself goes to the worker on a
control pipe (fd 4), on which the runner then says "prepared" and which it closes before student code
runs, so nothing on it can be forged. Without namespaces (fallback.py) it takes what the machine allows:
an IPC namespace and a user namespace where they can be made, the job cgroup, the same rlimits.

probe.py runs `confine` once in a throw-away child when a worker starts, so a container that lets
bubblewrap start but refuses a step of a job's confinement is found before any job runs; a refused
optional step (cgroup, IPC limits, the nested user namespace limit) only turns its protection off.
`cfg["fault"]` is a test hook set only from the grader's environment (isolation.ENV_FAULT): it makes
unshare(user) fail as such a container does, before any student code exists; it is None otherwise.
"""

import ctypes
import errno
import json
import os
import resource
import signal
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x20000, 0x8000000, 0x10000000, 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096
STAGE = "/.pystage"  # the worker's bwrap binds Python paths that lie under /tmp here too (see isolation.py)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
SETUP_FAILED = 70
MNT_DETACH = 2
OPEN_FILES = 64  # RLIMIT_NOFILE: a notebook with torch, matplotlib and a subprocess uses under 30
POLICY = (errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENOSYS)  # unshare(user) refused for everyone


def _fallback():
    return sys.modules["bpg_fallback"]


def _check(result: int, what: str) -> None:
    """Raise OSError naming the failed system call when a libc call returned non-zero."""
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype, flags: int, options) -> None:
    _check(
        LIBC.mount(source.encode(), target.encode(), fstype and fstype.encode(), flags, options and options.encode()),
        f"mount {target}",
    )


def _write_proc(name: str, text: str) -> None:
    _write_file(f"/proc/self/{name}", text)


def _write_file(path: str, text: str) -> None:
    """One write to a kernel file (no Python file object: the child does several before every job)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):  # defined once, in the worker: a ctypes class costs more than the capset
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _clear_capabilities() -> None:
    """Drop the bounding set (where allowed), ambient, effective, permitted and inheritable capabilities."""
    for cap in range(64):
        if LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability the kernel knows
    LIBC.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    _check(LIBC.capset(ctypes.byref(_CapHeader(0x20080522, 0)), (_CapData * 2)()), "capset")


def _status_fields() -> dict:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _arrange_fds(wanted: dict) -> None:
    """Put each fd at its target number (0..4) and close every other descriptor."""
    import fcntl

    high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD, 200) for target, fd in wanted.items()}
    for target, fd in high.items():
        os.dup2(fd, target)
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(max(wanted) + 1, min(limit if limit > 0 else 1 << 20, 1 << 20))  # close_range(2): fast


def _restore_staged_python() -> None:
    """A venv under /tmp (a checkout in /tmp) is hidden by the job's private /tmp: bind it back, read-only."""
    for root, dirs, _ in os.walk(STAGE):
        target = root[len(STAGE) :]
        if not os.path.ismount(root) or not target:
            continue
        dirs.clear()
        os.makedirs(target, exist_ok=True)
        _mount(root, target, None, MS_BIND | MS_REC, None)
        _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def _unshare_user(cfg: dict, probe: bool) -> None:
    """unshare(CLONE_NEWUSER), or the EPERM a refusing container gives when the test hook asks for it."""
    fault = cfg.get("fault")
    if fault == "userns" or (fault == "userns-jobs" and not probe):
        raise OSError(errno.EPERM, f"unshare(user): {os.strerror(errno.EPERM)}")
    _check(LIBC.unshare(CLONE_NEWUSER), "unshare(user)")


def confine(cfg: dict, limits: dict, workdir: str, probe: bool = False) -> dict:
    """Everything a job's child does to itself before the runner starts: its cgroup's first victim, its mount
    and IPC namespaces, then enter_jail. Returns what was verified; raises (OSError naming the step) when a
    required step fails (an optional one only shows as false in what is returned)."""
    joined = _oom_first(cfg)
    if cfg["ns"]:
        _check(LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare(mount, ipc)")
    ipc = cfg["ns"] or LIBC.unshare(CLONE_NEWIPC) == 0  # fallback: where the machine allows one
    return dict(enter_jail(cfg, limits, workdir, probe, ipc), memory_cgroup=joined)


def enter_jail(cfg: dict, limits: dict, workdir: str, probe: bool = False, ipc: bool = False) -> dict:
    """Confine the current process (the runner) before student code runs; returns what was verified.

    Order matters: mounts and the IPC limits need the worker's capabilities, the uid drop and the user
    namespace come after them, rlimits last (RLIMIT_NPROC must be set inside the job's own user namespace
    to count only it). `ipc`: the process is in an IPC namespace of its own (its limits are ours to set).
    """
    size = max(16, int(limits["file_mb"]))
    if cfg["ns"]:
        _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
        for path in (cfg.get("cgroup") or {}).get("mounts", ()):
            LIBC.umount2(path.encode(), MNT_DETACH)  # the worker's files, left only where it could not unmount
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        owner = "" if cfg["uid"] is None else f",uid={cfg['uid']},gid={cfg['uid']}"
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,nr_inodes=20000,mode=1777")
        _restore_staged_python()
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,nr_inodes=1000,mode=1777")
        _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"size={2 * size}m,nr_inodes=20000,mode=0700{owner}")
    else:
        os.setsid()
        _fallback().enter(cfg, workdir)
    ipc = ipc and _limit_ipc(size)
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
    LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the student's own /proc/self stays readable to it
    nested_refused = _own_user_namespace(cfg, probe)
    _clear_capabilities()
    _check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    os.chdir(workdir)
    cpu = max(1, int(-(-float(limits["cpu_seconds"]) // 1)))
    nproc = int(limits["processes"]) + (0 if cfg["ns"] or cfg["uid"] is not None else _own_process_count())
    for which, value in (
        (resource.RLIMIT_AS, int(limits["memory_mb"]) << 20),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_NPROC, nproc),
        (resource.RLIMIT_FSIZE, int(limits["file_mb"]) << 20),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, OPEN_FILES),
    ):
        resource.setrlimit(which, (value, value + 1 if which == resource.RLIMIT_CPU else value))
    status = _status_fields()
    setup = {
        "pid1": os.getpid() == 1,
        "uid": os.getuid(),
        "no_new_privs": status.get("NoNewPrivs") == "1",
        "caps_cleared": int(status.get("CapEff", "1"), 16) == 0 and int(status.get("CapPrm", "1"), 16) == 0,
        "root": os.geteuid() == 0,
        "ipc_namespace": ipc,
        "no_nested_userns": nested_refused,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= OPEN_FILES,
        "temp_cleanup": cfg["ns"] or cfg["uid"] is not None,
    }  # a private tmpfs, or the reaper (fallback.py)
    if not cfg["ns"]:
        setup["no_network"] = bool(cfg.get("netns"))
    return setup


def _limit_ipc(size_mb: int) -> bool:
    """In the job's own IPC namespace: SysV shared memory at most size_mb in all, a few small message
    queues and semaphore sets (the kernel's defaults allow terabytes). True when every limit was set."""
    pages = (size_mb << 20) // os.sysconf("SC_PAGE_SIZE")
    values = {
        "shmmax": size_mb << 20,
        "shmall": pages,
        "shmmni": 64,
        "msgmni": 16,
        "msgmnb": 65536,
        "sem": "250 4000 32 32",
    }
    try:
        for name, value in values.items():
            _write_file(f"/proc/sys/kernel/{name}", str(value))
    except OSError:
        return False
    return True


def _own_user_namespace(cfg: dict, probe: bool) -> bool:
    """Move into a user namespace of the job's own (required with namespaces; where the machine allows
    one in the fallback) and forbid any nested one in it. True when the job cannot create a user
    namespace: the limit was set, or the machine refuses them to this uid anyway."""
    uid, gid = os.getuid(), os.getgid()
    try:
        _unshare_user(cfg, probe)
    except OSError as exc:
        if cfg["ns"]:
            raise
        return exc.errno in POLICY  # the job, with the same uid and no capabilities, is refused too
    _write_proc("setgroups", "deny")
    _write_proc("uid_map", f"{uid} {uid} 1")
    _write_proc("gid_map", f"{gid} {gid} 1")
    try:  # the limit of this namespace, settable only with CAP_SYS_RESOURCE in it: cleared just after
        _write_file("/proc/sys/user/max_user_namespaces", "0")
    except OSError:
        return False
    return True


def _oom_first(cfg: dict) -> bool:
    """Child, first step: in the worker's capped cgroup (jobsetup.py), make this job the kernel's first
    choice when memory runs out (raising oom_score_adj needs no privilege). False without a cgroup."""
    if not cfg.get("job_cgroup"):
        return False
    try:
        _write_proc("oom_score_adj", "1000")
    except OSError:
        return False
    return True


def _own_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        try:
            count += entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid
        except OSError:
            pass
    return count


def new_pid_namespace_for_children(own: int) -> None:
    """Make the next fork of this process PID 1 of a new PID namespace (resetting the last one first)."""
    _check(LIBC.setns(own, CLONE_NEWPID), "setns(own pid namespace)")
    _check(LIBC.unshare(CLONE_NEWPID), "unshare(pid)")


def own_pid_namespace_for_children(own: int) -> None:
    """Forks of this process land in its own PID namespace again."""
    _check(LIBC.setns(own, CLONE_NEWPID), "setns(own pid namespace)")


def child(cfg: dict, limits: dict, runner, pipes: dict, workdir: str) -> None:
    """Body of the per-job child: confine this process, report what was verified, run the job, exit.

    The job itself is not here: `runner` (bpg_serve) reads it on fd 5 (pipes["job"], the grader's pipe),
    after this confinement; the worker knows only the limits. Any failure before student code runs is reported on the control pipe as setup_error (a sandbox error,
    never the student's fault) and the child exits with SETUP_FAILED.
    """
    ctl = pipes["ctl"]
    try:
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the worker dies -> the job dies
        null = os.open("/dev/null", os.O_RDWR)
        extra = {} if cfg["ns"] else _fallback().path_fds(cfg)
        _arrange_fds({0: null, 1: pipes["out"], 2: pipes["err"], 3: pipes["res"], 4: ctl, 5: pipes["job"], **extra})
        ctl = 4
        setup = confine(cfg, limits, workdir)
        os.write(4, (json.dumps({"setup": setup}) + "\n").encode())  # the runner closes fd 4 when prepared
    except BaseException as exc:
        try:
            os.write(ctl, (json.dumps({"setup_error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
        finally:
            os._exit(SETUP_FAILED)
    runner.main(3, workdir, control_fd=4, job_fd=5)
    os._exit(SETUP_FAILED)


def reap(cfg: dict, runner_pid, reap_children: bool = True) -> None:
    """Kill (and in the fallback, clean up) whatever the job left: fallback.reap."""
    _fallback().reap(cfg, runner_pid, reap_children)


def kill_descendants(seconds: float = 5.0) -> None:
    _fallback().kill_descendants(seconds)
