"""The fallback sandbox's own walls (no bubblewrap), and the cleanup after every job in both modes.

Standalone on purpose: shipped into the sandbox with worker.py and jail.py (as bpg_fallback) and imports
only the standard library. Without bubblewrap the job runs on the host's file system, so what bubblewrap's
private mounts would give is rebuilt from what a process may do without namespaces:

- the worker (as root, where the machine allows it) moves into a network namespace of its own once, with
  only a loopback interface: a job cannot reach the host's 127.0.0.1 or anything else (`netns`);
- each job gets a work directory and a private temp directory (TMPDIR, TMP, TEMP and HOME point there),
  both removed after the job (`job_dirs`, `remove_job_dirs`);
- a Python installation that the job's uid cannot reach (under /root, mode 0700) is reached through a
  directory descriptor opened by the worker, so the standard library still imports (`python_fds`,
  `redirect_python_paths`) without making anything of the grader's readable;
- after the job, a reaper running as the job's uid kills every process of that uid, removes every file and
  directory the uid owns in /tmp, /var/tmp and /dev/shm, and every SysV object it owns (`reap`). As the
  job's own uid, it can remove only what that uid could remove itself.
"""

import ctypes
import os
import shutil
import signal
import stat
import sys
import tempfile
import time

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
SHARED_TEMP = ("/tmp", "/var/tmp", "/dev/shm")
IPC_RMID = 0
FIRST_PATH_FD = 6  # fds 0-5 are the job's stdin, stdout, stderr, results, control and job pipes (jail.child)


def prepare_worker(cfg: dict) -> None:
    """Once per fallback worker, before its first job: a network namespace of its own (as root, where the
    machine allows one; cfg["netns"] says whether it worked) and descriptors of the Python directories the
    job's uid cannot reach (cfg["python_fds"]: path -> fd)."""
    if cfg.get("prepared_worker"):
        return
    cfg["prepared_worker"] = True
    cfg["netns"] = os.geteuid() == 0 and LIBC.unshare(CLONE_NEWNET) == 0
    if cfg["netns"]:
        _loopback_up()
    fds = {}
    for path in cfg.get("python_unreachable") or ():
        try:
            fds[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            pass
    cfg["python_fds"] = fds


def _loopback_up() -> None:
    """Bring up `lo` in a new network namespace (as bubblewrap does), so a job can still talk to itself."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
    except OSError:
        pass  # the namespace is there either way: nothing outside it is reachable


def job_dirs(cfg: dict) -> str:
    """Worker, before the fork: the job's work directory, and its private temp directory beside it
    (`<workdir>.tmp`), both owned by the job's uid. Returns the work directory."""
    workdir = tempfile.mkdtemp(prefix="bpg-job-", dir=cfg["workdir_base"])
    os.mkdir(workdir + ".tmp", 0o700)
    if cfg["uid"] is not None:
        for path in (workdir, workdir + ".tmp"):
            os.chown(path, cfg["uid"], cfg["uid"])
    return workdir


def remove_job_dirs(workdir: str) -> None:
    for path in (workdir, workdir + ".tmp"):
        shutil.rmtree(path, ignore_errors=True)


def path_fds(cfg: dict) -> dict:
    """The child's extra descriptors: target fd number -> the worker's descriptor of a Python directory."""
    return {FIRST_PATH_FD + i: fd for i, fd in enumerate((cfg.get("python_fds") or {}).values())}


def enter(cfg: dict, workdir: str) -> None:
    """Child, fallback mode, before student code: temp files go to the private directory; Python
    directories the uid cannot reach are imported from through the descriptors jail.child kept."""
    private = workdir + ".tmp"
    os.environ.update(TMPDIR=private, TMP=private, TEMP=private, HOME=private)
    tempfile.tempdir = private  # the worker computed and cached /tmp before the fork
    roots = {path: f"/proc/self/fd/{FIRST_PATH_FD + i}" for i, path in enumerate(cfg.get("python_fds") or {})}
    if roots:
        redirect_python_paths(roots)


def redirect_python_paths(roots: dict) -> None:
    """Rewrite sys.path and every package's __path__ from each unreachable root to its /proc/self/fd/N
    view: opening /proc/self/fd/N/x follows the descriptor and checks no directory above it."""

    def moved(path):
        for root, view in roots.items():
            if isinstance(path, str) and (path == root or path.startswith(root + "/")):
                return view + path[len(root) :]
        return path

    sys.path[:] = [moved(p) for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__dict__", {}).get("__path__")  # not getattr: torch.classes makes any name up
        if isinstance(search, list):
            search[:] = [moved(p) for p in search]
        elif search is not None and isinstance(getattr(search, "_path", None), list):  # a namespace package
            search._path[:] = [moved(p) for p in search._path]
    sys.path_importer_cache.clear()


def reap(cfg: dict, runner_pid, reap_children: bool = True) -> None:
    """Kill whatever the job left running: every process of its uid (fallback as root), its process
    group, and everything reparented to us (the worker is a child subreaper, so double-forked daemons
    end up as our children however they detach). The last call of a job (reap_children) also removes,
    as the job's uid, what it left in the shared temp directories and its SysV objects."""
    if cfg["uid"] is not None and not cfg["ns"]:
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(cfg["uid"])
                os.setuid(cfg["uid"])
                _kill_own()
                if reap_children:
                    _remove_own_files(cfg["uid"])
                    _remove_own_ipc(cfg["uid"])
            except BaseException:
                os._exit(1)
            os._exit(0)
        os.waitpid(pid, 0)
    if runner_pid and not cfg["ns"]:
        try:
            os.killpg(runner_pid, signal.SIGKILL)
        except OSError:
            pass
    if reap_children:
        kill_descendants()


def _kill_own() -> None:
    for _ in range(100):
        try:
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal, never ourselves
        except ProcessLookupError:
            return


def _remove_own_files(uid: int, depth: int = 2) -> None:
    """Remove what `uid` owns in the shared temp directories, and inside their world-writable
    subdirectories (where it could also have written), `depth` levels down."""

    def sweep(folder: str, left: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid == uid:
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass
            elif stat.S_ISDIR(info.st_mode) and info.st_mode & 0o002 and left > 0:
                sweep(entry.path, left - 1)

    for folder in SHARED_TEMP:
        sweep(folder, depth)


def _remove_own_ipc(uid: int) -> None:
    """IPC_RMID every SysV shared memory segment, message queue and semaphore set `uid` owns (fallback
    without an IPC namespace of the job's own: these would outlive it)."""
    for kind, remove in (
        ("shm", lambda i: LIBC.shmctl(i, IPC_RMID, None)),
        ("msg", lambda i: LIBC.msgctl(i, IPC_RMID, None)),
        ("sem", lambda i: LIBC.semctl(i, 0, IPC_RMID)),
    ):
        try:
            with open(f"/proc/sysvipc/{kind}") as listing:
                rows = [line.split() for line in listing.readlines()[1:]]
        except OSError:
            continue
        header = {"shm": 7, "msg": 7, "sem": 4}[kind]  # the column of the owner's uid
        for row in rows:
            if len(row) > header and row[header] == str(uid):
                remove(int(row[1]))


def _children() -> list:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as listing:
            return [int(pid) for pid in listing.read().split()]
    except OSError:
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as stat_file:
                    if entry.isdigit() and int(stat_file.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
        return found


def kill_descendants(seconds: float = 5.0) -> None:
    """SIGKILL and reap every child until none is left (their own children are reparented to us)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return
        for pid in _children():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.002)
