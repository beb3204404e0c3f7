"""A worker's first step: confine one throw-away child exactly as every job's child is confined.

Standalone on purpose: process.BOOT runs it inside the sandbox, with the jail module (jail.py) it is
given, before the worker imports torch. Where a container lets bubblewrap start but refuses a required
step of a job's own confinement (a user namespace, a mount), the worker then answers {"ready": false,
"refused": "<the exact error>"} instead of "ready", and the grader falls back before any job has run,
saying why. The job's cgroup is part of the probe too (made, joined and removed as for a job,
jobsetup.py): where it cannot be joined, the worker never tries it for a job, and every job's report
says memory_cgroup false. The other optional steps (IPC limits, the nested user namespace limit) are
tried by every job and reported by each.
"""

import json
import os
import types

SETUP = "setup "  # what the probe's child writes before its JSON when every required step worked

PROBE_LIMITS = {"file_mb": 16, "memory_mb": 1024, "cpu_seconds": 10, "processes": 32}
REFUSED = 4  # the worker's exit code when its probe failed (after sending the reason)


def probe(
    jail: types.ModuleType, cfg: dict, workdir: str = "/job", jobsetup: types.ModuleType | None = None
) -> str | None:
    """Confine a throw-away child exactly as a job's child is confined (its cgroup, its own PID
    namespace, then `confine`); None when every required step works, else the failure as a job would
    report it, e.g. "PermissionError: [Errno 1] unshare(user): Operation not permitted". Only in
    namespace mode (bwrap). A cgroup the child could not join is dropped from cfg for every job."""
    if jobsetup is not None:
        jobsetup.open_job_cgroup(cfg, PROBE_LIMITS)
    read, write = os.pipe()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY)
    pid = None
    try:
        jail.new_pid_namespace_for_children(own)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read)
                setup = jail.confine(cfg, PROBE_LIMITS, workdir, probe=True)
            except BaseException as exc:
                os.write(write, f"{type(exc).__name__}: {exc}".encode())
                os._exit(jail.SETUP_FAILED)
            os.write(write, (SETUP + json.dumps(setup)).encode())
            os._exit(0)
    except OSError as exc:  # the PID namespace step itself, or fork
        os.close(read)
        if jobsetup is not None:
            jobsetup.close_job_cgroup(cfg)
        return f"{type(exc).__name__}: {exc}"
    finally:
        if pid != 0:
            os.close(write)
            try:
                jail.own_pid_namespace_for_children(own)
            except OSError:
                pass
            os.close(own)
    with os.fdopen(read, "rb") as answer:
        said = answer.read(4096).decode(errors="replace")
    status = os.waitpid(pid, 0)[1]
    if jobsetup is not None:
        jobsetup.close_job_cgroup(cfg)
    if said.startswith(SETUP) and status == 0:
        if not json.loads(said[len(SETUP) :]).get("memory_cgroup"):
            cfg["cgroup"] = cfg["worker_cgroup"] = None  # no job is capped (jobsetup reads worker_cgroup)
        return None
    return said or f"the probe's child ended with wait status {status}"


def probe_or_exit(jail: types.ModuleType, cfg: dict, out: int, modules: dict | None = None) -> None:
    """The worker's first step (process.BOOT): when the probe fails, send {"ready": false, "refused": why}
    as the worker's one frame on `out` and exit with REFUSED, before torch is ever imported. `modules`:
    the shipped sources, for the job setup module (jobsetup.py) the probe makes its cgroup with."""
    jobsetup = None
    if modules and "bpg_jobsetup" in modules:
        jobsetup = types.ModuleType("bpg_jobsetup")
        exec(compile(modules["bpg_jobsetup"], "<sandbox jobsetup>", "exec"), jobsetup.__dict__)
    refused = probe(jail, cfg, jobsetup=jobsetup) if cfg["ns"] else None
    if refused:
        reply = json.dumps({"ready": False, "refused": refused}).encode()
        os.write(out, len(reply).to_bytes(8, "big") + reply)
        os._exit(REFUSED)
