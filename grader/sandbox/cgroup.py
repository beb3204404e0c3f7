"""The grader's side of per-job memory and process caps: a cgroup of its own under which each job gets one.

Where the machine lets this process create cgroups (root, or a delegated subtree), `create_base` makes one
base directory per Sandbox plan, `bpg-<pid>-<n>`, in each hierarchy that holds the memory controller (and
the pids controller, when it is in a hierarchy of its own): cgroup v1 (`/sys/fs/cgroup/memory`, `.../pids`)
below this process's own cgroup there, so a job's memory still counts toward whatever limits the grader
itself runs under; cgroup v2 beside this process's own cgroup (a v2 cgroup that holds processes may not
give its controllers to children), where its parent hands out the memory controller. Each worker moves
into a cgroup of its own below the base and caps it for each job (jobsetup.py), so the kernel counts every
kind of memory the job touches (anonymous, memfd, tmpfs, SysV and POSIX shared memory, pipe buffers)
against the job's limit and, when it is over, kills the job (which made itself the first choice).

`create_base` returns None where no hierarchy is usable (cgroup file system read-only, as in most
containers, or the memory controller elsewhere): the report's `memory_cgroup` is then false and the
per-mechanism caps of jail.py are what bounds a job. Bases are removed by `remove_base` (Sandbox.close), at
exit, and, when a grader was killed, by the next grader that finds them (empty cgroups of dead processes).
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import time

CONTROLLERS = ("memory", "pids")
_COUNTER = itertools.count()
_LIVE: list[dict] = []


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per hierarchy: controller name (v1) or "" (v2) -> path."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(",") if names else [""]:
                own[name] = path
    return own


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root of the mount, fs type, super options) of every cgroup file system mounted."""
    found = []
    with open("/proc/self/mountinfo") as lines:
        for line in lines:
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], fields[3], tail[0], set(tail[2].split(","))))
    return found


def _inside(mount: str, root: str, path: str) -> str | None:
    """The directory of cgroup `path` under a mount whose root is `root` (None if the mount does not show it)."""
    if root != "/" and path != root and not path.startswith(root.rstrip("/") + "/"):
        return None
    relative = path[len(root) :] if root != "/" else path
    return os.path.join(mount, relative.lstrip("/"))


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def find() -> dict | None:
    """Where job cgroups can be made: {"version": 1, "memory": dir, "pids": dir or None} or {"version": 2,
    "unified": dir}, or None. Only existence and the controllers are checked here; create_base writes."""
    own, mounts = _own_cgroups(), _mounts()
    v1 = {}
    for mount, root, fstype, options in mounts:
        for name in CONTROLLERS:
            if fstype == "cgroup" and name in options and name in own and name not in v1:
                where = _inside(mount, root, own[name])
                if where and os.path.isdir(where):
                    v1[name] = where
    if "memory" in v1:
        return {"version": 1, "memory": v1["memory"], "pids": v1.get("pids")}
    for mount, root, fstype, _ in mounts:
        if fstype != "cgroup2" or "" not in own:
            continue
        where = _inside(mount, root, own[""])
        if not where or "memory" not in _read(os.path.join(where, "cgroup.controllers")).split():
            continue
        parent = where if os.path.normpath(where) == os.path.normpath(mount) else os.path.dirname(where.rstrip("/"))
        return {"version": 2, "unified": parent}
    return None


def _dirs(base: dict) -> list[str]:
    return [base[key] for key in ("memory", "pids", "unified") if base.get(key)]


def create_base() -> dict | None:
    """A new base cgroup for one Sandbox plan's jobs, or None where this process cannot make one here."""
    found = find()
    if found is None:
        return None
    name = f"bpg-{os.getpid()}-{next(_COUNTER)}"
    base = {"version": found["version"]}
    try:
        for key in ("memory", "pids", "unified"):
            if found.get(key):
                _remove_stale(found[key])
                base[key] = os.path.join(found[key], name)
                os.mkdir(base[key], 0o755)
        if found["version"] == 2:
            controllers = _read(os.path.join(base["unified"], "cgroup.controllers")).split()
            with open(os.path.join(base["unified"], "cgroup.subtree_control"), "w") as handle:
                handle.write(" ".join(f"+{c}" for c in CONTROLLERS if c in controllers))
    except OSError:
        remove_base(base)
        return None
    _LIVE.append(base)
    return base


def ensure_base(base: dict | None) -> None:
    """Create the base again after remove_base (a Sandbox entered again after close)."""
    if base is None:
        return
    for path in _dirs(base):
        os.makedirs(path, 0o755, exist_ok=True)
    if base["version"] == 2:
        controllers = _read(os.path.join(base["unified"], "cgroup.controllers")).split()
        with open(os.path.join(base["unified"], "cgroup.subtree_control"), "w") as handle:
            handle.write(" ".join(f"+{c}" for c in CONTROLLERS if c in controllers))
    if not any(base is live for live in _LIVE):
        _LIVE.append(base)


def remove_base(base: dict | None, seconds: float = 1.0) -> bool:
    """Remove the base and any job cgroup left in it (a worker killed mid-job); True when all are gone.
    A cgroup whose last process is still exiting cannot be removed yet: retried for `seconds`."""
    if base is None:
        return True
    end = time.monotonic() + seconds
    while True:
        left = [path for path in _dirs(base) if not _rmtree(path)]
        if not left or time.monotonic() >= end:
            break
        time.sleep(0.01)
    if not left:
        _LIVE[:] = [live for live in _LIVE if live is not base]
    return not left


def _rmtree(path: str) -> bool:
    """rmdir a cgroup and its child cgroups (cgroup files cannot be unlinked; only directories go)."""
    try:
        children = [entry.path for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return True
    except OSError:
        return False
    ok = all([_rmtree(child) for child in children])  # noqa: C419 (remove every child, not stop at the first failure)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return ok


def _remove_stale(parent: str) -> None:
    """Remove the bases of graders that are gone (killed before they could remove their own)."""
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        match = re.fullmatch(r"bpg-(\d+)-\d+", entry)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            _rmtree(os.path.join(parent, entry))


@atexit.register
def _remove_live() -> None:
    for base in list(_LIVE):
        remove_base(base, seconds=0.2)
