"""Warm sandbox worker: numpy and torch are imported once, then every job runs in a fresh forked child.

Standalone on purpose: shipped as source into the sandbox (the grader's package directories are not
visible there) with the modules in process.SHIPPED (jail, runner, serve, convert, notebook, observe, shims,
warm, dynamo, phase), and imports only the standard library, numpy and torch, never `grader` or
`reference`. It talks to the grader over its stdin, a Unix socket, in length-prefixed frames (8-byte
big-endian length, then the payload):

    grader -> worker   boot {"worker", "modules", "config"}   (read by the bootstrap, see sandbox.py)
    worker -> grader   {"ready": true, ...}
    grader -> worker   {"limits", "optim", "hidden"} with four descriptors (SCM_RIGHTS)   one per job
    grader -> worker   {"kill": why}   (the results grew over their cap; ignored between jobs)
    grader -> worker   {"phase": "hidden"}   (the job's hidden calls were asked for; ignored between jobs)
    worker -> grader   report JSON: exit status, CPU, memory, timeout, the child's setup   one per job

The worker never holds a job's data (DESIGN §5, property 6): the descriptors are the grader's pipes, the
job's (read by the child after the fork, serve.py) and the child's stdout, stderr and results (read by
the grader, process.py and drive.py), and the worker only passes them on to the child and closes its
copies. So no source, array, output or traceback of one student ever enters the memory every later
child is forked from; what the worker itself reads is the limits, the child's setup report on the
control pipe (written before any student code runs) and the child's exit status.

Per job it forks a keeper (jail.py), kills the runner at the wall deadline or when the grader asks, and
afterwards kills whatever is left: with namespaces the kernel has already done it; without ("fallback"),
a reaper kills every process of the job's uid (as root) or its process group, and, as a child subreaper,
the worker kills every process reparented to it.
"""

import ctypes
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import types

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
HEADER = struct.Struct(">Q")


def read_exact(fd: int, size: int) -> bytes:
    """Read exactly size bytes from a blocking fd; EOFError when the other side closed first."""
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes:
    return read_exact(fd, read_exact_header(fd))


def read_exact_header(fd: int) -> int:
    return HEADER.unpack(read_exact(fd, HEADER.size))[0]


def write_frame(fd: int, payload: bytes) -> None:
    """Write one frame; os.write may be partial on pipes, so loop."""
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _jail():
    return sys.modules["bpg_jail"]


class Collector:
    """Reads the child's control pipe, enforces wall time, kills when the grader asks (on `grader`, the
    worker's socket), and collects the child's exit status (through a pidfd, or by polling where pidfds do
    not exist). The child's output never comes here: the grader reads it (see the module docstring)."""

    def __init__(self, fds: dict, limits: dict, cfg: dict, pid: int, grader: int, hidden: bool = False):
        self.sel = selectors.DefaultSelector()
        for name, fd in fds.items():
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, name)
        self.grader = grader
        self.sel.register(grader, selectors.EVENT_READ, "grader")
        self.pid, self.cfg, self.limits = pid, cfg, limits
        self.hidden = hidden  # a job with hidden calls: two phases (bpg_phase)
        self.pidfd = None
        try:
            self.pidfd = os.pidfd_open(pid)
            self.sel.register(self.pidfd, selectors.EVENT_READ, "exit")
        except (AttributeError, OSError):
            pass
        self.ctl = b""
        self.report = {"timed_out": False, "killed_for": None, "status": None}
        self.reaped = False

    def asked(self) -> None:
        """The grader wrote on the socket during the job: a kill (its results' cap), the start of the hidden
        phase, or it went away."""
        try:
            message = json.loads(read_frame(self.grader))
        except (EOFError, OSError, ValueError):
            self.sel.unregister(self.grader)  # it stays readable at EOF: stop watching it
            message = {"kill": "the grader closed the connection"}
        if isinstance(message, dict) and message.get("phase") == "hidden" and "split" not in self.report:
            self.split()
        if isinstance(message, dict) and message.get("kill") and self.report["killed_for"] is None:
            self.report["killed_for"] = str(message["kill"])[:200]
            self.kill()

    def split(self) -> None:
        """The hidden phase begins (drive.py): bpg_phase.Clock.split; a public phase over its CPU is killed."""
        if self.report["status"] is None and not self.report["timed_out"]:
            self.report["split"] = self.clock.split()
            if self.report["split"].get("over_cpu"):
                self.kill()

    def feed(self, name: str, data: bytes) -> None:
        if name == "ctl":
            self.ctl += data
            while b"\n" in self.ctl:
                line, self.ctl = self.ctl.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    message = {"setup_error": f"unreadable control message {line[:200]!r}"}
                self.report.update({k: message[k] for k in ("setup", "setup_error", "prepared") if k in message})

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)  # with namespaces this ends every process of the job
        except OSError:
            pass
        if not self.cfg["ns"]:
            _jail().reap(self.cfg, self.pid, reap_children=False)

    def poll_exit(self, block: bool = False) -> None:
        """Record the child's wait status and resource usage once it has ended."""
        if self.report["status"] is not None:
            return
        try:
            pid, status, usage = os.wait4(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status, usage = self.pid, None, None
        if pid:
            self.report.update(
                status=status, cpu=usage and usage.ru_utime + usage.ru_stime, maxrss_kb=usage and usage.ru_maxrss
            )
            if self.pidfd is not None:
                self.sel.unregister(self.pidfd)
                os.close(self.pidfd)
                self.pidfd = None

    def run(self, start: float) -> None:
        """Read the control pipe until it is closed and the child has ended; kill at the wall deadline or
        when the grader asks; stop waiting shortly after the end."""
        self.clock = sys.modules["bpg_phase"].Clock(self.limits, self.hidden, self.pid, start)
        end_by, reaped = None, False
        while self.report["status"] is None or any(key.data == "ctl" for key in self.sel.get_map().values()):
            now = time.monotonic()
            if self.report["status"] is None and not self.report["timed_out"] and now >= self.clock.deadline:
                self.report["timed_out"] = True
                self.kill()
                end_by = now + 10
            if self.report["status"] is not None and not reaped:
                reaped = self.reaped = True
                _jail().reap(self.cfg, self.pid)  # stragglers (fallback mode) may still hold the pipes open
                end_by = now + 2 if end_by is None else min(end_by, now + 2)
            if end_by is not None and now >= end_by:
                break
            wait = self.clock.wait(max(0.0, (end_by or self.clock.deadline) - now))
            for key, _ in self.sel.select(wait if self.pidfd is not None else min(wait, 0.01)):
                if key.data == "exit":
                    self.poll_exit()
                    continue
                if key.data == "grader":
                    self.asked()
                    continue
                data = os.read(key.fd, 1 << 16)
                if data:
                    self.feed(key.data, data)
                else:
                    self.sel.unregister(key.fd)
                    os.close(key.fd)
            if self.pidfd is None:
                self.poll_exit()
            if self.report["status"] is None and self.report["killed_for"] is None and self.clock.over_cpu():
                self.report["killed_for"] = "cpu_seconds"
                self.kill()
        for key in list(self.sel.get_map().values()):
            self.sel.unregister(key.fd)
            if key.data != "grader":
                os.close(key.fd)
        self.pidfd = None
        # Closed now, not by the garbage collector: a selector is cyclic garbage, so its epoll descriptor
        # would stay open in the worker and be inherited by the next child, whose own collector would
        # then close that number, by then its job pipe or a Python directory (jail.child's fds).
        self.sel.close()


def run_job(cfg: dict, job: dict, fds: list, runner, pidns, grader: int) -> bytes:
    """Run one job in a fresh child and return the report frame. `fds` are the grader's pipes (job, out,
    err, res): the child gets them, the worker only closes its copies.

    With namespaces, the worker resets its PID namespace for children (setns to its own) and unshares a
    new one right before the fork, so the child is PID 1 of a fresh namespace without a second fork.
    """
    limits, hidden = job["limits"], bool(job.get("hidden"))
    pipes, reads = dict(zip(("job", "out", "err", "res"), fds)), {}
    reads["ctl"], pipes["ctl"] = os.pipe()
    jobsetup = sys.modules["bpg_jobsetup"]
    workdir = jobsetup.before_job(cfg, limits)  # the job's cgroup; in the fallback its own directories
    jail = _jail()
    if pidns is not None:
        jail.new_pid_namespace_for_children(pidns)
    start, pid = time.monotonic(), None
    try:
        pid = os.fork()
    finally:
        if pidns is not None and pid != 0:  # in the worker (also when fork failed), never in the child
            jail.own_pid_namespace_for_children(pidns)
    if pid == 0:
        for fd in reads.values():
            os.close(fd)
        os.close(grader)
        jail.child(cfg, sys.modules["bpg_phase"].confined(limits, hidden), runner, pipes, workdir)
    for fd in pipes.values():
        os.close(fd)
    collector = Collector(reads, limits, cfg, pid, grader, hidden)
    collector.run(start)
    if collector.report["status"] is None:
        collector.kill()
        collector.poll_exit(block=True)
    if not collector.reaped:
        jail.reap(cfg, pid)
    report = dict(collector.report, **jobsetup.after_job(cfg, workdir), wall=time.monotonic() - start)
    return json.dumps(report).encode()


def receive_job(grader: socket.socket) -> tuple[dict, list]:
    """The next job frame and the descriptors sent with it; stale kill frames (sent as a job ended) and
    frames without descriptors are skipped. EOFError when the grader closed the socket."""
    while True:
        head, fds = b"", []
        while len(head) < HEADER.size:
            data, received, _, _ = socket.recv_fds(grader, HEADER.size - len(head), 8)
            if not data:
                for fd in fds + received:
                    os.close(fd)
                raise EOFError("the grader closed the socket")
            head, fds = head + data, fds + list(received)
        payload = read_exact(grader.fileno(), HEADER.unpack(head)[0])
        if len(fds) == 4:
            return json.loads(payload), fds
        for fd in fds:
            os.close(fd)


def load_modules(sources: dict) -> dict:
    """Create the shipped modules (in the given order) and register them, so they can import each other."""
    modules = {}
    for name, source in sources.items():
        module = types.ModuleType(name)
        sys.modules[name] = modules[name] = module
        exec(compile(source, f"<sandbox {name.removeprefix('bpg_')}>", "exec"), module.__dict__)
    return modules


def main(boot: dict) -> None:
    """Serve jobs until the grader closes our stdin (the socket of process.Worker)."""
    grader = socket.socket(fileno=os.dup(0))
    proto = grader.fileno()
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # a stray print can never corrupt the protocol
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace, no /proc/<pid>/mem or fd for anyone else
    LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of a job become ours to kill and reap
    import numpy  # noqa: F401 - warm import, inherited by every child
    import torch

    torch.set_num_threads(1)
    x = torch.ones(2, 2, requires_grad=True)
    (x @ x).sum().backward()  # warm the autograd engine once, here rather than in every job
    modules = load_modules(boot["modules"])
    runner, warm_module, cfg = modules["bpg_serve"], modules["bpg_warm"], boot["config"]
    modules["bpg_dynamo"].install()  # before any child: torch._dynamo only for jobs that need it
    warm_module.warm_up()
    pidns = os.open("/proc/self/ns/pid", os.O_RDONLY) if cfg["ns"] else None
    write_frame(proto, json.dumps({"ready": True, "pid": os.getpid(), "uid": os.getuid()}).encode())
    warm, jobs = False, 0
    while True:
        try:
            job, fds = receive_job(grader)
        except EOFError:
            os._exit(0)  # nothing to clean up; interpreter teardown of torch._dynamo alone takes seconds
        jobs += 1
        if jobs == 2:  # once a second job comes: a one-job `check` never pays for these
            warm_module.warm_common_ops()
            warm_module.huge_pages()
        warm = warm or warm_module.warm_optimizers(bool(job.get("optim")))
        write_frame(proto, run_job(cfg, job, fds, runner, pidns, proto))


if __name__ == "bpg_worker":
    main(BOOT)  # noqa: F821 - BOOT is injected by the bootstrap in sandbox.py
