"""The channel of one job, grader side: what is sent to the child, and which of its answers are accepted.

DESIGN §5 property 8: the parent asks for each call and accepts exactly one answer per call it asked for.
The job reaches the child as a header (cells, seed, limits, input files' layout; no call, no array) and
the files' bytes. Then, once the child's "cells" frame arrived (never before: drive.py), the grader asks
for every call: a request per call with only that call's arrays and a nonce drawn now (secrets); a
scratch call is asked twice, as it is and with autograd's gradients scaled by a factor drawn for that
request only (bpg_provenance.scaled in the child; judged by grader/scratch_effect.py), the rerun first or
second as drawn for that call, so code that answers its second call with its first call's result (by
input) returns the scaled values as the graded ones about half the time; last, "done". The child
reads one request at a time (serve.py), so only the running call's inputs are ever in its objects; the
rest wait in the pipe (they are not paced one by one: a round trip per call cost a third of the
throughput on a busy machine, where each wakes a thread of the grader that must wait for its GIL).

`parse_answers` accepts the child's stream only as the answers to what was asked: the "cells" frame
first, then for each request in order its "call" frame with its id and nonce (the contract's quantity
names only, wire._check_returns) and its raw values, or a "done" frame with the last nonce, and nothing
else. A stream the child wrote before the requests existed (a forged run written while the cells ran)
cannot carry their nonces, so it is rejected at its first answer. The child side is serve.py; the threat
model is in runner.py.
"""

import json
import secrets
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel

from grader.limits import Limits
from grader.memo import remember_for
from grader.sandbox.models import Call, Job
from grader.sandbox.process import frame
from grader.sandbox.wire import (
    _STRICT,
    CallFrame,
    CellsFrame,
    ChildResults,
    ResultInvalid,
    Text,
    _check_returns,
    _json,
    _peek_kind,
    load_values,
    split_frames,
)

NONCE_BYTES, FACTOR_BYTES = 16, 4
RERUN_FACTORS = (1.3, 1.9)  # as grader.notebook.provenance.FACTORS: neither 1 nor a small integer ratio such as 2
Nonce = Text(64)


@dataclass(frozen=True)
class Asked:
    """One request the grader sent: the call's position in Job.calls (None: "done"), the nonce its answer
    must carry, and for a scratch call's rerun the factor autograd's gradients were scaled by."""

    index: int | None
    nonce: str
    factor: float | None = None


class Exchange:
    """Everything the grader sends for one job, encoded once; `asked` records the requests of the current
    attempt (`start` begins one: a job is retried on a fresh worker when its worker died)."""

    def __init__(self, job: Job, limits: Limits):
        self.job, self.limits = job, limits
        self.supervise = json.dumps(
            {
                "limits": limits.model_dump(),
                "optim": any("optim" in c for c in job.cells),
                "hidden": job.hidden_calls > 0,
            }
        ).encode()
        files, chunks, offset = [], [], 0
        for name, data in job.files.items():
            files.append([name, offset, len(data)])
            chunks.append(data)
            offset += len(data)
        header = {
            "filename": job.filename,
            "cells": job.cells,
            "seed": job.seed,
            "limits": limits.model_dump(),
            "observe": job.observe,
            "files": files,
            "counterfactual": job.counterfactual,
        }
        self.opening = frame(json.dumps(header).encode()) + frame(b"".join(chunks))
        self.calls = [_call_parts(job, index) for index in range(len(job.calls))]
        self.asked: list[Asked] = []

    def start(self) -> None:
        """Begin an attempt: draw the nonce and factor of every request now (one read of the OS's random
        source) and encode each phase's requests, before the job is sent. So nothing but a write stands
        between a child's "cells" frame (or its last public answer) and the grader's requests: every system
        call on that path lets another grading thread take the GIL, which this one then waits for (up to a
        switch interval) while the child sits idle."""
        self.asked = []
        draws = _Draws(sum(1 + call.scratch for call in self.job.calls) + 1)
        self._prepared = {
            "public": self._segment(0, self.public, draws),
            "hidden": self._segment(self.public, len(self.calls), draws),
        }
        nonce = draws.nonce()
        self._prepared["done"] = ([Asked(None, nonce)], frame(json.dumps({"kind": "done", "nonce": nonce}).encode()))

    @property
    def public(self) -> int:
        """How many calls come before the hidden ones (Job.hidden_calls): all of them in most jobs."""
        return len(self.calls) - self.job.hidden_calls

    def requests(self, phase: Literal["all", "public", "hidden"] = "all") -> bytes:
        """The frames of the requests of one phase of this attempt (drawn by `start`), now recorded in
        `asked`: each call in job order, a scratch call with its rerun (before or after it, as drawn), then
        "done". "all": every call; "public": the calls before the hidden ones, and no "done" (the hidden
        phase follows); "hidden": the hidden calls (sent once every public answer was accepted: drive.py)."""
        parts = {"all": ("public", "hidden", "done"), "public": ("public",), "hidden": ("hidden", "done")}[phase]
        frames = []
        for part in parts:
            asked, data = self._prepared[part]
            self.asked.extend(asked)
            frames.append(data)
        return b"".join(frames)

    def _segment(self, first: int, last: int, draws: "_Draws") -> tuple[list[Asked], bytes]:
        """The requests for calls first..last-1, with what each answer must carry."""
        asked, frames = [], []
        for index in range(first, last):
            factors: list[float | None] = [None]
            if self.job.calls[index].scratch:  # asked twice, the rerun first or second, as drawn for this call
                factors = [draws.factor(), None] if draws.coin() else [None, draws.factor()]
            for factor in factors:
                nonce = draws.nonce()
                asked.append(Asked(index, nonce, factor))
                opening, raw = self.calls[index]  # the call's request as JSON, open before its nonce and factor
                frames.append(frame(f'{opening}"nonce": "{nonce}", "factor": {json.dumps(factor)}}}'.encode()))
                frames.append(frame(raw))
        return asked, b"".join(frames)


class _Draws:
    """The nonces and rerun factors of one attempt's requests, from one read of the OS's secure random
    source (secrets), not one per value: each read is a system call that lets another grading thread in."""

    def __init__(self, requests: int):
        self.pool, self.offset = secrets.token_bytes(requests * (NONCE_BYTES + FACTOR_BYTES + 1)), 0

    def _take(self, size: int) -> bytes:
        taken = self.pool[self.offset : self.offset + size]
        self.offset += size
        return taken

    def nonce(self) -> str:
        return self._take(NONCE_BYTES).hex()

    def coin(self) -> bool:
        """Whether a scratch call's rerun is asked for before the call as it is (an even draw)."""
        return self._take(1)[0] & 1 == 1

    def factor(self) -> float:
        """Uniform in RERUN_FACTORS, on a grid of 2**30 steps."""
        low, high = RERUN_FACTORS
        return low + (high - low) * (int.from_bytes(self._take(FACTOR_BYTES), "big") >> 2) / (1 << 30)


def _call_parts(job: Job, index: int) -> tuple[str, bytes]:
    """A call's request as JSON without its closing brace (Exchange._request adds a nonce and a factor to
    every attempt's copy: encoded once, sent up to twice per attempt), and the raw float64 bytes of the
    arrays it uses. Every submission of a class is called on the same Call and array objects (grader.run's
    plans are shared, their arrays read-only), so the encoding is remembered for them."""
    call = job.calls[index]
    names = list(
        dict.fromkeys(
            name
            for arg in call.args
            for name in ([arg] if isinstance(arg, str) else list(arg.values()) if isinstance(arg, dict) else [])
        )
    )
    arrays = [job.arrays[name] for name in names]
    if any(array.flags.writeable for array in arrays):  # not a shared trial's (those are read-only)
        return _encoded(call, names, arrays)
    return remember_for(_PARTS, (call, *arrays), tuple(names), lambda: _encoded(call, names, arrays))


def _encoded(call: Call, names: list[str], arrays: list[np.ndarray]) -> tuple[str, bytes]:
    layout, chunks, offset = [], [], 0
    for name, array in zip(names, arrays):
        data = np.ascontiguousarray(array, dtype="<f8").tobytes()
        layout.append([name, list(array.shape), offset])
        chunks.append(data)
        offset += len(data)
    request = json.dumps({"kind": "call", "call": call.model_dump(), "arrays": layout})
    return f"{request[:-1]}, ", b"".join(chunks)


_PARTS: dict[tuple, tuple] = {}


class CallAnswer(CallFrame):
    """A call's result as the answer to one request: wire.CallFrame with that request's nonce."""

    nonce: Nonce


class DoneAnswer(BaseModel):
    model_config = _STRICT
    kind: Literal["done"]
    nonce: Nonce


@dataclass
class ChildAnswers(ChildResults):
    """ChildResults, plus each scratch call's rerun: call id → (factor, its call frame, its values); and
    where the parse stopped: the frames read and the bytes left for arrays (so a later parse of the same
    stream can go on from there: `parse_results`'s `accepted`)."""

    reruns: dict[str, tuple[float, CallFrame, dict[str, np.ndarray]]] = field(default_factory=dict)
    frames: int = 0
    budget: int = 0


def parse_results(
    blob: bytes, job: Job, limits: Limits, asked: list[Asked], accepted: ChildAnswers | None = None
) -> tuple[ChildAnswers, bool]:
    """Validate a contract job's result stream as the answers to `asked`; whether it was cut short.

    `accepted`: the answers to the first requests of `asked`, already accepted from the first frames of
    this same stream (accept_public, the hidden phase's split): they are not parsed a second time."""
    frames, truncated = split_frames(blob)
    return parse_answers(frames, truncated, job, limits.result_mb << 20, asked, accepted), truncated


def accept_public(frames: list[bytes], job: Job, limits: Limits, asked: list[Asked]) -> ChildAnswers | None:
    """The answers to every public request (`asked`: no "done", the hidden phase follows), when `frames`
    (the "cells" frame, then two frames per request) are exactly those, each valid with its request's nonce;
    None otherwise (the hidden calls are then never asked for). Accepted, they are the public phase's
    result as a job of its own would have given it: `done` is set."""
    if len(frames) != 1 + 2 * len(asked):
        return None
    try:
        answers = parse_answers(frames, False, job, limits.result_mb << 20, asked)
    except ResultInvalid:
        return None
    if answers.cells is None or answers.cells.status != "ok" or len(answers.calls) + len(answers.reruns) != len(asked):
        return None
    answers.done = True
    return answers


def parse_answers(
    frames: list[bytes],
    truncated: bool,
    job: Job,
    budget: int,
    asked: list[Asked],
    accepted: ChildAnswers | None = None,
) -> ChildAnswers:
    """The "cells" frame (frames[0]) and then one answer per request of `asked`, in order (see the module
    docstring); budget is the bytes left for arrays. ResultInvalid on anything else. `accepted`: what an
    earlier parse of the first `accepted.frames` of these frames found (see parse_results); parsing goes on
    after them."""
    if accepted is not None and accepted.frames <= len(frames):
        results = ChildAnswers(cells=accepted.cells, calls=dict(accepted.calls), reruns=dict(accepted.reruns))
        index, position, budget = accepted.frames, (accepted.frames - 1) // 2, accepted.budget
    else:
        results = ChildAnswers()
        if frames:
            results.cells = _json(frames[0], CellsFrame)
        index, position = 1, 0
    while index < len(frames):
        if results.cells.status != "ok" or position >= len(asked):
            raise ResultInvalid(f"frame {index} ({_peek_kind(frames[index])!r}) answers no request of the grader")
        request = asked[position]
        if request.index is None:
            done = _json(frames[index], DoneAnswer)
            if done.nonce != request.nonce or index != len(frames) - 1:
                raise ResultInvalid("a 'done' frame that does not answer the grader's last request, or not last")
            results.done = True
            break
        call_id = job.calls[request.index].id
        call = _json(frames[index], CallAnswer)
        if call.id != call_id or call.nonce != request.nonce:
            raise ResultInvalid(f"an answer for {call.id!r} without the nonce of the request for {call_id!r}")
        _check_returns(call, job.calls[request.index].returns)
        if index + 1 >= len(frames):
            if truncated:
                break
            raise ResultInvalid(f"call {call_id!r}: values are missing")
        values, budget = load_values(frames[index + 1], call.values, budget)
        if request.factor is None:
            results.calls[call_id] = (call, values)
        else:
            results.reruns[call_id] = (request.factor, call, values)
        index, position = index + 2, position + 1
    if not results.done and position < len(asked) and asked[position].index is not None:
        results.started = job.calls[asked[position].index].id  # asked for and not answered: it was running
    results.frames, results.budget = index, budget
    return results
