"""One job on one warm worker, grader side: hand the child its pipes, feed it, read it, ask it, collect.

The grader makes four pipes per job and sends the worker their child ends (process.Worker.send_job): the
job pipe, which the child reads after the fork (serve.py), and the child's stdout, stderr and result
pipes, which this loop reads. So the job and everything the child writes pass between the grader and the
child only (DESIGN §5, property 6; worker.py). Meanwhile this loop

- writes the job (header and files) and, once the child's "cells" frame arrived (so that nothing the
  cells wrote can carry a request's nonce), every request (channel.Exchange, Asked);
- in a job with hidden calls (Job.hidden_calls; DESIGN §5 property 8), asks first for the public calls
  only, and for the hidden ones (and "done") only once every public answer arrived and was accepted
  (channel.accept_public) and stdout and stderr were read as far as the child had written them (the
  runner flushes both before it answers a call). That moment is the Split: the public phase's answers
  and output as they stood then. Nothing read before it can carry a hidden input, since the grader alone
  held them; everything read after it (output, answers, the child's end) is the hidden phase's, whoever
  wrote it. The worker is told (Worker.begin_hidden), so the hidden phase gets a wall and CPU time of
  its own, as a job of its own did;
- keeps the first Limits.output_kb of stdout and stderr and counts the rest, so a flood never blocks the
  child; and keeps the result stream up to Limits.result_mb + 1 MiB, asking the worker to kill the job
  past it;
- once everything is asked (the child reads "done" last and never waits on the grader), stops waking on
  every write of the child: it looks at the pipes on a timer (LOOKS) and reads them out when the worker
  reports, since each wake-up of a grading thread waits for the GIL. A contract job's answers (~30 KB)
  fit in a pipe (64 KiB), so the child does not block meanwhile; a look that finds a pipe full (a flood,
  large answers) goes back to reading on every write;
- ends when the worker's report arrived (after the child and everything it started are gone) and the
  pipes are drained (at most DRAIN_SECONDS more).

Frames are only told apart here, up to the "cells" frame (their "kind", as serve.py writes it), never
trusted: a stream that does not begin as the protocol says gets no request (the job pipe is closed, so the
child stops) and is then rejected by channel.parse_answers with everything else that is wrong with it.
"""

import json
import os
import re
import selectors
import time
from dataclasses import dataclass

from grader.limits import Limits
from grader.sandbox.channel import Asked, ChildAnswers, Exchange, accept_public
from grader.sandbox.process import HEADER, Worker, WorkerDied

DRAIN_SECONDS = 2.0
LOOKS = (0.02, 0.5)  # once everything is asked: the first look at the child's pipes, and the longest gap
DRAIN_READS = 64  # per stream at the split: what a flood writes meanwhile is the hidden phase's
CHUNK = 1 << 16
_KIND = re.compile(rb'\{"kind": "([a-z]{1,20})"')
_PAIRED = {"cell", "files", "counterfactual"}  # notebook frames before "cells", each followed by one raw frame
MAX_CELLS_FRAME = 1 << 20


@dataclass(frozen=True)
class Split:
    """A job's public phase as it stood when its hidden calls were asked for: the accepted answers (done
    set), the requests they answer, stdout and stderr as kept then and their sizes, and the seconds since
    the job was sent."""

    answers: ChildAnswers
    asked: list[Asked]
    stdout: bytes
    stderr: bytes
    stdout_bytes: int
    stderr_bytes: int
    seconds: float


def run(
    worker: Worker, exchange: Exchange, limits: Limits, timeout: float
) -> tuple[dict, bytes, bytes, bytes, Split | None]:
    """Run the job of `exchange` on `worker`: the worker's report (with the output sizes, a result over
    its cap and the requests made added), stdout and stderr as kept, the result stream, and the Split when
    the hidden calls were asked for (then the output and sizes are the hidden phase's only). WorkerDied
    when the worker ends or does not answer within `timeout` (of each phase)."""
    exchange.start()
    ends = [os.pipe() for _ in range(4)]  # job, out, err, res: (read, write)
    try:
        worker.send_job(exchange.supervise, [ends[0][0], ends[1][1], ends[2][1], ends[3][1]])
    except WorkerDied:
        for read, write in ends:
            os.close(read)
            os.close(write)
        raise
    for fd in (ends[0][0], ends[1][1], ends[2][1], ends[3][1]):
        os.close(fd)
    loop = _Loop(worker, exchange, limits, ends[0][1], {"out": ends[1][0], "err": ends[2][0], "res": ends[3][0]})
    try:
        report = loop.run(timeout)
    finally:
        loop.close()
    report.update(
        stdout_bytes=loop.total["out"], stderr_bytes=loop.total["err"], asked=exchange.asked, result_over_size=loop.over
    )
    return report, bytes(loop.kept["out"]), bytes(loop.kept["err"]), bytes(loop.results), loop.split


class _Loop:
    def __init__(self, worker: Worker, exchange: Exchange, limits: Limits, job: int, reads: dict[str, int]):
        self.worker, self.exchange, self.limits, self.reads = worker, exchange, limits, reads
        self.started, self.deadline, self.split = time.monotonic(), 0.0, None
        self.cells, self.answers = b"", []  # a job with hidden calls: the public phase's frames
        self.sel = selectors.DefaultSelector()
        self.streams = set(reads)  # the child's streams still open: the job ends when none is
        for name, fd in reads.items():
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, name)
        os.set_blocking(job, False)
        self.job, self.pending = job, bytearray()
        self.sel.register(worker.socket.fileno(), selectors.EVENT_READ, "worker")
        self.budget = limits.output_kb * 1024
        self.kept = {"out": bytearray(), "err": bytearray()}
        self.total = {"out": 0, "err": 0}
        self.results, self.cap, self.over = bytearray(), (limits.result_mb + 1) << 20, False
        self.offset, self.paired, self.phase = 0, False, "cells"  # frame reading: see _frames
        self.look: float | None = None  # seconds to the next look at the pipes; None: read on every write
        self._send(exchange.opening)

    def run(self, timeout: float) -> dict:
        report, end_by = None, None
        self.timeout, self.deadline = timeout, self.started + timeout
        while self.streams:
            now = time.monotonic()
            if report is None and now >= self.deadline:
                raise WorkerDied(f"no report from the worker in time; {self.worker.log_tail()}", timed_out=True)
            if end_by is not None and now >= end_by:
                break
            wait = max(0.0, (end_by or self.deadline) - now)
            events = self.sel.select(wait if self.look is None else min(wait, self.look))
            for key, _ in events:
                if key.data == "worker":
                    report = json.loads(self.worker.receive(self.deadline))
                    self.sel.unregister(key.fd)
                    self._finish()
                    end_by = time.monotonic() + DRAIN_SECONDS
                    if self.look is not None:  # the child is gone: read its pipes out, then the rest on events
                        self._look(out=True)
                        if self.look is not None:
                            self._eager()
                elif key.data == "job":
                    self._write()
                else:
                    self._read(key.data, key.fd)
            if not events and self.look is not None:
                self._look()
        if report is None:  # every pipe closed before the report: it comes once the child is reaped
            report = json.loads(self.worker.receive(self.deadline))
        return report

    def _write(self) -> None:
        try:
            written = os.write(self.job, self.pending[:CHUNK])
        except BlockingIOError:
            return
        except OSError:  # the child is gone or closed its end: nothing more to say
            self._finish()
            return
        del self.pending[:written]
        if self.pending:
            return
        if self.job in self.sel.get_map():
            self.sel.unregister(self.job)
        if self.phase == "asked":  # everything is said: the child reads "done" last, never waits on us
            self._finish()
            self._lazy()

    def _read(self, name: str, fd: int) -> int:
        """Read what `fd` has now, up to CHUNK bytes; how many (0 when it had nothing or was closed)."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return 0
        if not data:
            if fd in self.sel.get_map():  # not while the pipes are only looked at (_lazy)
                self.sel.unregister(fd)
            os.close(fd)
            self.streams.discard(name)
            return 0
        if name != "res":
            self.total[name] += len(data)
            room = self.budget - len(self.kept["out"]) - len(self.kept["err"])
            self.kept[name] += data[: max(room, 0)]
        elif self.over:
            return len(data)
        elif len(self.results) + len(data) > self.cap:
            self.over = True
            self.worker.ask_kill("result_over_size")
            self._finish()
        else:
            self.results += data
            self._frames()
        return len(data)

    def _frames(self) -> None:
        """Walk the complete frames that arrived until the "cells" frame: then ask for every call (when the
        cells ended normally), or for nothing (they did not, or a frame out of protocol came first). In a
        job with hidden calls, ask for the public ones only, and walk their answers on (`_public`)."""
        results = self.results
        while self.phase in ("cells", "public") and self.offset + HEADER.size <= len(results):
            start = self.offset + HEADER.size
            end = start + HEADER.unpack_from(results, self.offset)[0]
            if end > len(results):
                break
            self.offset = end
            if self.phase == "public":
                self.answers.append(bytes(results[start:end]))
                self._public()
                continue
            if self.paired:  # the raw frame after a notebook's cell, files or counterfactual frame
                self.paired = False
                continue
            match = _KIND.match(bytes(results[start : start + 40]))
            kind = match.group(1).decode() if match else ""
            if kind in _PAIRED:
                self.paired = True
            elif kind == "cells" and _cells_ok(results, start, end) and self.exchange.job.hidden_calls:
                self.phase, self.cells = "public", bytes(results[start:end])
                self._send(self.exchange.requests("public"))
                self._public()
            elif kind == "cells" and _cells_ok(results, start, end):
                self.phase = "asked"
                self._send(self.exchange.requests())
            else:
                self._finish()

    def _public(self) -> None:
        """Once two frames per public request arrived: when they are exactly the accepted answers and the
        job pipe is still open, split (read the output so far, keep it and the answers as the public
        phase's, start the hidden phase afresh, ask for the hidden calls); otherwise ask for nothing more."""
        asked = list(self.exchange.asked)
        if len(self.answers) < 2 * len(asked):
            return
        answers = None
        if self.job is not None and self.offset == len(self.results):  # nothing written past the answers
            answers = accept_public([self.cells, *self.answers], self.exchange.job, self.limits, asked)
        self.answers = []
        if answers is None:
            self.phase = "over"
            self._finish()
            return
        for name in ("out", "err"):
            self._drain(name)
        now = time.monotonic()
        self.split = Split(
            answers,
            asked,
            bytes(self.kept["out"]),
            bytes(self.kept["err"]),
            self.total["out"],
            self.total["err"],
            now - self.started,
        )
        self.kept, self.total = {"out": bytearray(), "err": bytearray()}, {"out": 0, "err": 0}
        self.phase, self.deadline = "asked", max(self.deadline, now + self.timeout)
        self.worker.begin_hidden()
        self._send(self.exchange.requests("hidden"))

    def _lazy(self) -> None:
        """Everything is asked: from now on the pipes are looked at every `look` seconds (and read out when
        the worker reports), not on every write of the child (see the module docstring)."""
        for name in self.streams:
            self.sel.unregister(self.reads[name])
        self.look = LOOKS[0]

    def _eager(self) -> None:
        """Back to reading each pipe whenever the child writes to it."""
        for name in self.streams:
            self.sel.register(self.reads[name], selectors.EVENT_READ, name)
        self.look = None

    def _look(self, out: bool = False) -> None:
        """Read each pipe as far as the child has written it (`out`: until it is empty or closed). A pipe
        that held a whole CHUNK is written fast (a flood, large answers): back to reading on every write.
        A look that found nothing is followed by one twice as late (up to LOOKS[1])."""
        drained = [self._drain(name, out) for name in list(self.streams)]
        if any(full for _, full in drained):
            self._eager()
        elif not any(count for count, _ in drained):
            self.look = min(2 * self.look, LOOKS[1])

    def _drain(self, name: str, out: bool = False) -> tuple[int, bool]:
        """Read stream `name` (if still open) as far as the child has written it, at most DRAIN_READS
        chunks: a read short of CHUNK emptied the pipe, so no second system call looks (`out`: until a read
        finds it empty or closed). The bytes read, and whether a read filled a whole CHUNK."""
        total, full = 0, False
        for _ in range(DRAIN_READS):
            count = self._read(name, self.reads[name]) if name in self.streams else 0
            total, full = total + count, full or count == CHUNK
            if count == 0 or (count < CHUNK and not out):
                break
        return total, full

    def _send(self, data: bytes) -> None:
        """Write `data` on the job pipe now; what the pipe does not take waits for it to be writable."""
        if self.job is None:
            return
        waiting = bool(self.pending)
        self.pending += data
        if not waiting:
            self._write()
            if self.pending and self.job is not None:
                self.sel.register(self.job, selectors.EVENT_WRITE, "job")

    def _finish(self) -> None:
        """Nothing more to send: close the job pipe, so a child waiting for a request reads its end and stops."""
        if self.phase in ("cells", "public"):
            self.phase = "over"
        if self.job is not None:
            if self.job in self.sel.get_map():
                self.sel.unregister(self.job)
            os.close(self.job)
            self.job, self.pending = None, bytearray()

    def close(self) -> None:
        self._finish()
        for key in list(self.sel.get_map().values()):
            self.sel.unregister(key.fd)
        for name in self.streams:  # still open (registered or, while lazy, only looked at)
            os.close(self.reads[name])
        self.streams.clear()
        self.sel.close()


def _cells_ok(results: bytearray, start: int, end: int) -> bool:
    if end - start > MAX_CELLS_FRAME:
        return False
    try:
        data = json.loads(bytes(results[start:end]))
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("status") == "ok"
