"""What the worker does around each job's child: the memory cgroup, and (fallback) the job's directories.

Standalone on purpose: shipped into the sandbox (as bpg_jobsetup) and imports only the standard library;
the worker's start-up probe (probe.py) uses it too, so the cgroup step is part of the probe. Each worker
moves itself once into a cgroup of its own below the base that the grader made (cgroup.py); before each
job that cgroup is capped at what the worker uses plus the job's memory limit (and its processes plus
the job's process limit), so the kernel counts every kind of memory the job touches (anonymous, memfd,
tmpfs, SysV and POSIX shared memory, pipe buffers) against the job's limit, and the job's child makes
itself the out-of-memory killer's first choice (jail.py). After the job the caps are lifted.
"""

import os
import sys

# The files the worker reads and writes around every job, opened once: role -> (cgroup v1, cgroup v2) name
# under the memory hierarchy (v1) or the unified one (v2); the pids ones under the pids hierarchy in v1.
_MEMORY_FILES = {
    "used": ("memory.usage_in_bytes", "memory.current", os.O_RDONLY),
    "events": ("memory.oom_control", "memory.events", os.O_RDONLY),
    "cap": ("memory.limit_in_bytes", "memory.max", os.O_WRONLY),
}
_PIDS_FILES = {"pids_used": ("pids.current", os.O_RDONLY), "pids_cap": ("pids.max", os.O_WRONLY)}
MNT_DETACH = 2


def _worker_cgroup(cfg: dict) -> dict | None:
    """The worker's own cgroup below the base, made and joined once (the first job, or the probe: the
    same process), as the descriptors of the files it caps and reads around each job (role -> fd, and
    "v1"). None where there is no base or it cannot be made, joined or opened.

    With namespaces the base is seen through bind mounts (isolation.cgroup_view); once the files are
    open, the worker takes those mounts away from its own mount namespace, so no job's child (forked from
    it) ever sees them, and none has to unmount them, which costs each job a grace period."""
    if "worker_cgroup" in cfg:
        return cfg["worker_cgroup"]
    base, made = cfg.get("cgroup"), {}
    cfg["worker_cgroup"] = None
    if not base:
        return None
    name = f"s{cfg.get('slot', 0)}-{os.urandom(4).hex()}"
    try:
        for key in ("memory", "pids", "unified"):
            if base.get(key):
                made[key] = f"{base[key]}/{name}"
                os.mkdir(made[key])
                _write_file(f"{made[key]}/cgroup.procs", "0")
    except OSError:
        for path in made.values():
            try:
                os.rmdir(path)
            except OSError:
                pass
        return None
    files = _open_files(made, base["version"] == 1)
    if files is not None:
        cfg["worker_cgroup"] = files
        _hide_views(cfg)
    return files


def _open_files(made: dict, v1: bool) -> dict | None:
    """The descriptors of the worker cgroup's files (see _MEMORY_FILES), or None when one cannot be opened."""
    memory, pids = (made.get("memory"), made.get("pids")) if v1 else (made["unified"], made["unified"])
    wanted = {role: (f"{memory}/{names[0 if v1 else 1]}", flags) for role, (*names, flags) in _MEMORY_FILES.items()}
    if pids:
        wanted.update({role: (f"{pids}/{file}", flags) for role, (file, flags) in _PIDS_FILES.items()})
    files: dict = {"v1": v1}
    try:
        for role, (path, flags) in wanted.items():
            files[role] = os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        for role, fd in files.items():
            if role != "v1":
                os.close(fd)
        return None
    return files


def _hide_views(cfg: dict) -> None:
    """Unmount the cgroup views from the worker's mount namespace (namespace mode); where that fails,
    every job's child still unmounts them from its own (jail.enter_jail reads cfg["cgroup"]["mounts"])."""
    mounts = (cfg.get("cgroup") or {}).get("mounts") or []
    if not cfg["ns"] or not mounts:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    left = [path for path in mounts if libc.umount2(path.encode(), MNT_DETACH) != 0]
    cfg["cgroup"] = dict(cfg["cgroup"], mounts=left)


def _write_file(path: str, value) -> None:
    """One write to a cgroup file (os-level: no Python file object)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _put(fd: int, value) -> None:
    os.pwrite(fd, str(value).encode(), 0)


def _number(fd: int, key: str | None = None) -> int:
    """A counter of an open cgroup file, read afresh: the whole file, or the value after `key` on its line."""
    for line in os.pread(fd, 1 << 16, 0).decode().splitlines():
        words = line.split()
        if key is None and words and words[0] != "max":
            return int(words[0])
        if key is not None and words[:1] == [key]:
            return int(words[1])
    return 0


def open_job_cgroup(cfg: dict, limits: dict) -> None:
    """Worker, before the fork: the worker's cgroup (where there is one) is capped at what it uses now
    plus the job's memory limit and process limit, and remembers its out-of-memory kill count; the job's
    child raises its own oom_score_adj, so the kernel's choice in an out-of-memory cgroup is the job.
    Moving each child into a cgroup of its own would cost a grace period per job."""
    cfg["job_cgroup"] = None
    files = _worker_cgroup(cfg)
    if not files:
        return
    memory, processes = int(limits["memory_mb"]) << 20, int(limits["processes"])
    try:
        used = _number(files["used"])
        kills = _number(files["events"], "oom_kill")
        _put(files["cap"], used + memory)
        if "pids_cap" in files:
            _put(files["pids_cap"], _number(files["pids_used"]) + processes)
    except (OSError, ValueError):
        return
    cfg["job_cgroup"] = {"kills": kills}


def close_job_cgroup(cfg: dict) -> dict:
    """Worker, after the job and its reaping: whether the kernel killed the job for memory; the worker's
    limits are lifted until the next job (memory a job's IPC namespace frees late never blocks it)."""
    job = cfg.pop("job_cgroup", None)
    files = cfg.get("worker_cgroup")
    if not job or not files:
        return {}
    try:
        killed = _number(files["events"], "oom_kill") > job["kills"]
        _put(files["cap"], -1 if files["v1"] else "max")
        if "pids_cap" in files:
            _put(files["pids_cap"], "max")
    except (OSError, ValueError):
        killed = False
    return {"oom_killed": killed}


def before_job(cfg: dict, limits: dict) -> str:
    """Worker, before the fork: the job's cgroup and (fallback) its directories; returns the work directory."""
    if not cfg["ns"]:
        sys.modules["bpg_fallback"].prepare_worker(cfg)
    open_job_cgroup(cfg, limits)
    return "/job" if cfg["ns"] else sys.modules["bpg_fallback"].job_dirs(cfg)


def after_job(cfg: dict, workdir: str) -> dict:
    """Worker, after the job was reaped: remove its cgroup and (fallback) directories; facts for the report."""
    facts = close_job_cgroup(cfg)
    if not cfg["ns"]:
        sys.modules["bpg_fallback"].remove_job_dirs(workdir)
    return facts
