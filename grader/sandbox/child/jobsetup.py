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


def _worker_cgroup(cfg: dict) -> dict | None:
    """The worker's own cgroup below the base, made and joined once (the first job, or the probe: the
    same process). None where there is no base or it cannot be made or joined."""
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
                with open(f"{made[key]}/cgroup.procs", "w") as handle:
                    handle.write("0")
    except OSError:
        for path in made.values():
            try:
                os.rmdir(path)
            except OSError:
                pass
        return None
    cfg["worker_cgroup"] = made
    return made


def _write(path: str, value) -> None:
    """One write to a cgroup file (os-level: the worker writes several around every job)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _number(path: str, key: str | None = None) -> int:
    """A counter of a cgroup file: the whole file, or the value after `key` on its line."""
    fd = os.open(path, os.O_RDONLY)
    try:
        text = os.read(fd, 1 << 16).decode()
    finally:
        os.close(fd)
    for line in text.splitlines():
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
    dirs = _worker_cgroup(cfg)
    if not dirs:
        return
    memory, processes, v1 = int(limits["memory_mb"]) << 20, int(limits["processes"]), cfg["cgroup"]["version"] == 1
    mem, pids = (dirs.get("memory"), dirs.get("pids")) if v1 else (dirs["unified"], dirs["unified"])
    try:
        used = _number(f"{mem}/memory.usage_in_bytes" if v1 else f"{mem}/memory.current")
        kills = _number(f"{mem}/memory.oom_control" if v1 else f"{mem}/memory.events", "oom_kill")
        _write(f"{mem}/memory.limit_in_bytes" if v1 else f"{mem}/memory.max", used + memory)
        if pids:
            _write(f"{pids}/pids.max", _number(f"{pids}/pids.current") + processes)
    except (OSError, ValueError):
        return
    cfg["job_cgroup"] = {"memory": mem, "pids": pids, "kills": kills, "v1": v1}


def close_job_cgroup(cfg: dict) -> dict:
    """Worker, after the job and its reaping: whether the kernel killed the job for memory; the worker's
    limits are lifted until the next job (memory a job's IPC namespace frees late never blocks it)."""
    job = cfg.pop("job_cgroup", None)
    if not job:
        return {}
    mem, v1 = job["memory"], job["v1"]
    try:
        killed = _number(f"{mem}/memory.oom_control" if v1 else f"{mem}/memory.events", "oom_kill") > job["kills"]
        _write(f"{mem}/memory.limit_in_bytes" if v1 else f"{mem}/memory.max", -1 if v1 else "max")
        if job["pids"]:
            _write(f"{job['pids']}/pids.max", "max")
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
