"""A worker's first step: confine one throw-away child exactly as every job's child is confined.

Standalone on purpose: process.BOOT runs it inside the sandbox, with the jail module (jail.py) it is
given, before the worker imports torch. Where a container lets bubblewrap start but refuses a step of a
job's own confinement (a user namespace, a mount), the worker then answers {"ready": false, "refused":
"<the exact error>"} instead of "ready", and the grader falls back before any job has run, saying why.
"""

import json
import os
import types

PROBE_LIMITS = {"file_mb": 16, "memory_mb": 1024, "cpu_seconds": 10, "processes": 32}
REFUSED = 4  # the worker's exit code when its probe failed (after sending the reason)


def probe(jail: types.ModuleType, cfg: dict, workdir: str = "/job") -> str | None:
    """Confine a throw-away child exactly as a job's child is confined (its own PID namespace, then
    `confine`); None when every step works, else the failure as a job would report it, e.g.
    "PermissionError: [Errno 1] unshare(user): Operation not permitted". Only in namespace mode (bwrap)."""
    read, write = os.pipe()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY)
    pid = None
    try:
        jail.new_pid_namespace_for_children(own)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read)
                jail.confine(cfg, PROBE_LIMITS, workdir, probe=True)
            except BaseException as exc:  # noqa: BLE001 - every failure is the answer
                os.write(write, f"{type(exc).__name__}: {exc}".encode())
                os._exit(jail.SETUP_FAILED)
            os._exit(0)
    except OSError as exc:  # the PID namespace step itself, or fork
        os.close(read)
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
    if said or status != 0:
        return said or f"the probe's child ended with wait status {status}"
    return None


def probe_or_exit(jail: types.ModuleType, cfg: dict, out: int) -> None:
    """The worker's first step (process.BOOT): when the probe fails, send {"ready": false, "refused": why}
    as the worker's one frame on `out` and exit with REFUSED, before torch is ever imported."""
    refused = probe(jail, cfg) if cfg["ns"] else None
    if refused:
        reply = json.dumps({"ready": False, "refused": refused}).encode()
        os.write(out, len(reply).to_bytes(8, "big") + reply)
        os._exit(REFUSED)
