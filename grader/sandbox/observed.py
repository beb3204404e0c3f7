"""The grader's side of notebook mode: validate the per-cell and files frames, then build the records.

Same rules as wire.py (the child ran student code, so all of this is hostile until proven otherwise):
JSON frames with strict schemas and no extra keys, cells in order, arrays only as raw float64 bytes,
float64 with the announced shape, at most MAX_ELEMENTS elements each and MAX_SENT in all, sizes within
Limits.result_mb, every array key a record uses defined by then, file names relative without '..',
file bytes exactly as announced. Any violation raises ResultInvalid. A stream cut by a kill keeps every
complete cell.
"""

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictInt, model_validator

from grader.limits import Limits
from grader.sandbox import messages
from grader.sandbox.channel import Asked, parse_answers
from grader.sandbox.counterfactual import parse_counterfactual
from grader.sandbox.models import Job
from grader.sandbox.records import BackwardRecord, CellRecord, Counterfactual, ForwardCall, GradSnapshot, NamespaceEntry
from grader.sandbox.wire import (
    _STRICT,
    ChildResults,
    GpuRequestFrame,
    MissingModuleFrame,
    ResultInvalid,
    Text,
    ValueSpec,
    _json,
    _peek_kind,
    load_values,
    split_frames,
)

MAX_ELEMENTS = 100_000
MAX_SENT = 1024  # arrays in all (the child keeps ~256 alive; superseded "last calls" are dropped here)
MAX_FILE = 1 << 20
MAX_FILES_TOTAL = 8 << 20
MAX_NOTES = 500
FIRST_CALLS = 3
GRAPH_NODES = 3000  # graph.py's MAX_NODES, MAX_EDGES, MAX_SAVED, MAX_LEAVES
GRAPH_EDGES = 20_000


def _relative(name: str) -> str:
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts) or "\0" in name or "\\" in name:
        raise ValueError(f"{name[:100]!r} is not a relative file name")
    return name


ArrayKey = Annotated[str, Field(pattern=r"^a[0-9]{1,6}$")]
FileName = Annotated[Text(1000), AfterValidator(_relative)]
Cell = Annotated[StrictInt, Field(ge=1)]
Count = Annotated[StrictInt, Field(ge=0, le=10**12)]


class ForwardFrame(BaseModel):
    model_config = _STRICT
    cell: Cell
    module: Text(200)
    variable: Text(500) | None
    instance: Count
    index: Count
    input: ArrayKey | None
    output: ArrayKey | None
    params: dict[Text(500), ArrayKey] = Field(..., max_length=1000)


class GradFrame(BaseModel):
    model_config = _STRICT
    cell: Cell
    variable: Text(500)
    module: Text(200)
    instance: Count
    params: dict[Text(500), ArrayKey] = Field(..., max_length=1000)
    grads: dict[Text(500), ArrayKey] = Field(..., max_length=1000)


class EntryFrame(BaseModel):
    model_config = _STRICT
    cell: Cell
    name: Text(500)
    array: ArrayKey
    kind: Literal["ndarray", "tensor"]
    requires_grad: StrictBool
    dtype: Text(50)


class NodeFrame(BaseModel):
    model_config = _STRICT
    name: Text(200)
    inputs: list[Annotated[StrictInt, Field(ge=-1)]] = Field(..., max_length=GRAPH_EDGES)


class LeafFrame(BaseModel):
    model_config = _STRICT
    node: Annotated[StrictInt, Field(ge=-1)]
    name: Text(500) | None
    shape: list[Annotated[StrictInt, Field(ge=0)]] = Field(..., max_length=32)
    dtype: Text(50)
    value: ArrayKey | None
    grad: ArrayKey | None


class SavedFrame(BaseModel):
    model_config = _STRICT
    node: Count
    slot: Text(50)
    array: ArrayKey


class BackwardFrame(BaseModel):
    """The first autograd call's graph: nodes in topological order, so every input comes after its node."""

    model_config = _STRICT
    cell: Cell
    call: Literal["Tensor.backward()", "torch.autograd.backward()", "torch.autograd.grad()"]
    loss: ArrayKey | None
    nodes: list[NodeFrame] = Field(..., max_length=GRAPH_NODES)
    saved: list[SavedFrame] = Field(..., max_length=16)
    leaves: list[LeafFrame] = Field(..., max_length=64)
    truncated: StrictBool

    @model_validator(mode="after")
    def _references(self) -> "BackwardFrame":
        count = len(self.nodes)
        if sum(len(node.inputs) for node in self.nodes) > GRAPH_EDGES:
            raise ValueError(f"more than {GRAPH_EDGES} edges")
        for i, node in enumerate(self.nodes):
            if any(j != -1 and not i < j < count for j in node.inputs):
                raise ValueError(f"node {i}: an input that is not a later node")
        for leaf in self.leaves:
            if not (
                leaf.node == -1
                if count == 0
                else 0 <= leaf.node < count and self.nodes[leaf.node].name == "AccumulateGrad"
            ):
                raise ValueError(f"a leaf at node {leaf.node}, not an AccumulateGrad node of the {count} sent")
        if any(saved.node >= count for saved in self.saved):
            raise ValueError("a saved tensor of a node that was not sent")
        return self

    def keys(self) -> list[str]:
        return BackwardRecord.keys(self)  # type: ignore[arg-type] - same field names


class DrawFrame(BaseModel):
    """Draws of one function stacked (sandbox/child/draws.py): their array is (count, *shape)."""

    model_config = _STRICT
    cell: Cell
    function: Literal[
        "torch.nn.functional.dropout",
        "torch.dropout",
        "numpy.random.binomial",
        "numpy.random.rand",
        "numpy.random.random",
        "numpy.random.random_sample",
        "numpy.random.uniform",
    ]
    p: float | None = Field(..., allow_inf_nan=False)
    training: StrictBool | None
    shape: list[Annotated[StrictInt, Field(ge=1)]] = Field(..., max_length=8)
    count: Annotated[StrictInt, Field(ge=1, le=MAX_ELEMENTS)]
    array: ArrayKey


class CellFrame(BaseModel):
    model_config = _STRICT
    kind: Literal["cell"]
    cell: Cell
    status: Literal["ok", "raised", "syntax_error", "exited"]
    line: StrictInt | None = Field(None, ge=0)
    error_type: Text(200)
    error: Text(5000)
    traceback: Text(50000)
    exit_code: StrictInt | None
    missing_module: Text(200) | None
    name_errors: list[Text(200)] = Field(..., max_length=10)
    memory: StrictBool
    stdout: Text(16_100)  # bpg_notebook.STDOUT_KEEP and its "[… more characters]" tail
    seconds: float = Field(..., ge=0, allow_inf_nan=False)
    forward_calls: list[ForwardFrame] = Field(..., max_length=5000)
    grads: list[GradFrame] = Field(..., max_length=5000)
    namespace: list[EntryFrame] = Field(..., max_length=5000)
    notes: list[Text(2000)] = Field(..., max_length=250)
    arrays: dict[ArrayKey, ValueSpec] = Field(..., max_length=MAX_SENT)
    backward: list[BackwardFrame] = Field(default_factory=list, max_length=1)
    missing_modules: list[MissingModuleFrame] = Field(default_factory=list, max_length=100)
    gpu_request: GpuRequestFrame | None = None
    draws: list[DrawFrame] = Field(default_factory=list, max_length=64)


class FilesFrame(BaseModel):
    model_config = _STRICT
    kind: Literal["files"]
    files: dict[FileName, Annotated[StrictInt, Field(ge=0, le=MAX_FILE)]] = Field(..., max_length=200)
    skipped: dict[FileName, Annotated[StrictInt, Field(ge=0)]] = Field(..., max_length=200)
    notes: list[Text(2000)] = Field(..., max_length=500)


@dataclass
class Observations:
    """The validated notebook frames of one run."""

    cells: list[CellFrame] = field(default_factory=list)
    arrays: dict = field(default_factory=dict)
    files: dict[str, bytes] | None = None  # None until the files frame arrived
    file_sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    counterfactual: Counterfactual | None = None

    def stopped_at(self, job: Job) -> int | None:
        """The cell the run ended in when it ended early (a hard exit, a kill), else None."""
        last = self.cells[-1] if self.cells else None
        if last is not None and last.status == "exited" and last.error_type == "os._exit":
            return last.cell
        if self.files is None and len(self.cells) < len(job.cells):
            return len(self.cells) + 1
        return None


def _cell(payload: bytes, arrays_payload: bytes, observed: Observations, job: Job, budget: int) -> int:
    frame = _json(payload, CellFrame)
    if frame.cell != len(observed.cells) + 1 or frame.cell > len(job.cells):
        raise ResultInvalid(f"cell frame {frame.cell} arrived after {len(observed.cells)} of {len(job.cells)} cells")
    if set(frame.arrays) & set(observed.arrays) or len(observed.arrays) + len(frame.arrays) > MAX_SENT:
        raise ResultInvalid(f"cell {frame.cell}: array keys reused or more than {MAX_SENT} arrays")
    if any(math.prod(spec.shape) > MAX_ELEMENTS for spec in frame.arrays.values()):
        raise ResultInvalid(f"cell {frame.cell}: an array of more than {MAX_ELEMENTS} elements")
    values, budget = load_values(arrays_payload, frame.arrays, budget)
    observed.arrays.update(values)
    keys = [k for c in frame.forward_calls for k in (c.input, c.output, *c.params.values()) if k is not None]
    keys += [k for s in frame.grads for k in (*s.params.values(), *s.grads.values())]
    keys += [e.array for e in frame.namespace] + [k for b in frame.backward for k in b.keys()]
    keys += [d.array for d in frame.draws]
    missing = {k for k in keys if k not in observed.arrays}
    if missing:
        raise ResultInvalid(f"cell {frame.cell}: records refer to undefined arrays {sorted(missing)[:5]}")
    if any(observed.arrays[d.array].shape != (d.count, *d.shape) for d in frame.draws):
        raise ResultInvalid(f"cell {frame.cell}: draws whose array is not (count, *shape)")
    if any(
        r.cell != frame.cell
        for r in (*frame.forward_calls, *frame.grads, *frame.namespace, *frame.backward, *frame.draws)
    ):
        raise ResultInvalid(f"cell {frame.cell}: records of another cell")
    observed.cells.append(frame)
    observed.notes += frame.notes
    return budget


def _files(payload: bytes, raw: bytes, observed: Observations) -> None:
    frame = _json(payload, FilesFrame)
    total = sum(frame.files.values())
    if total != len(raw) or total > MAX_FILES_TOTAL or set(frame.files) & set(frame.skipped):
        raise ResultInvalid(f"files: {len(raw)} bytes where {total} were announced (at most {MAX_FILES_TOTAL})")
    observed.files, offset = {}, 0
    for name, size in frame.files.items():
        observed.files[name] = raw[offset : offset + size]
        offset += size
    observed.file_sizes = {**frame.files, **frame.skipped}
    observed.notes += frame.notes


def parse_run(
    blob: bytes, job: Job, limits: Limits, asked: list[Asked] = ()
) -> tuple[ChildResults, bool, Observations]:
    """Validate a notebook-mode result stream: cell frames, the files frame, then the answers to `asked`
    (channel.parse_answers)."""
    frames, truncated = split_frames(blob)
    observed, budget, index = Observations(), limits.result_mb << 20, 0
    while index < len(frames):
        kind = _peek_kind(frames[index])
        if kind not in ("cell", "files", "counterfactual"):
            break
        if observed.files is not None:
            raise ResultInvalid(f"a {kind!r} frame after the files frame")
        if index + 1 >= len(frames):  # killed between the two frames of a pair: drop the incomplete one
            return ChildResults(), truncated, observed
        if kind == "counterfactual":
            try:
                if observed.counterfactual is not None:
                    raise ResultInvalid("a second counterfactual run")
                observed.counterfactual = parse_counterfactual(frames[index], frames[index + 1], job.counterfactual)
            except ResultInvalid as exc:  # the grader's instrument, not the student's: dropped, noted
                observed.counterfactual = None
                observed.notes.append(
                    f"the provenance run's results could not be used ({str(exc)[:200]}); provenance was not checked"
                )
        elif kind == "cell":
            budget = _cell(frames[index], frames[index + 1], observed, job, budget)
        else:
            _files(frames[index], frames[index + 1], observed)
        index += 2
    if index < len(frames) and observed.files is None:
        raise ResultInvalid(f"frame {index} arrived before the notebook's files frame")
    results = parse_answers(frames[index:], truncated, job, budget, asked)
    if results.cells is not None and results.cells.status != "ok":
        raise ResultInvalid(f"notebook mode ended with status {results.cells.status!r}, expected 'ok'")
    return results, truncated, observed


def _forward_calls(observed: Observations) -> list[ForwardCall]:
    """Per instance the first FIRST_CALLS calls and the last; total_calls from the highest index seen."""
    calls = [c for frame in observed.cells for c in frame.forward_calls]
    total, last = {}, {}
    for call in calls:
        total[call.instance] = max(total.get(call.instance, 0), call.index + 1)
        if call.index >= FIRST_CALLS and call.index + 1 == total[call.instance]:
            last[call.instance] = call
    kept, seen = [], set()
    for call in calls:
        if (call.instance, call.index) in seen or (call.index >= FIRST_CALLS and last.get(call.instance) is not call):
            continue
        seen.add((call.instance, call.index))
        kept.append(ForwardCall(**call.model_dump(), total_calls=total[call.instance]))
    return kept


def fields(job: Job, limits: Limits, observed: Observations) -> dict:
    """The RunResult fields of notebook mode; arrays no kept record refers to are left out."""
    cells = [
        CellRecord(
            cell=f.cell,
            status=f.status,
            message=messages.cell_message(f, limits),
            error_type=f.error_type,
            traceback=f.traceback,
            line=f.line,
            exit_code=f.exit_code,
            missing_module=f.missing_module,
            name_errors=f.name_errors,
            stdout=f.stdout,
            seconds=f.seconds,
            missing_modules=[m.model_dump() for m in f.missing_modules],
            gpu_request=f.gpu_request and f.gpu_request.model_dump(),
            draws=[d.model_dump() for d in f.draws],
        )
        for f in observed.cells
    ]
    forward = _forward_calls(observed)
    grads = [GradSnapshot(**s.model_dump()) for f in observed.cells for s in f.grads]
    namespace = [NamespaceEntry(**e.model_dump()) for f in observed.cells for e in f.namespace]
    backward = [BackwardRecord(**b.model_dump()) for f in observed.cells for b in f.backward][:1]
    used = {k for c in forward for k in (c.input, c.output, *c.params.values()) if k is not None}
    used |= {k for s in grads for k in (*s.params.values(), *s.grads.values())} | {e.array for e in namespace}
    used |= {k for b in backward for k in b.keys()} | {d.array for c in cells for d in c.draws}
    notes = observed.notes[:MAX_NOTES] + (
        [f"more than {MAX_NOTES} notes; the rest were left out"] if len(observed.notes) > MAX_NOTES else []
    )
    return {
        "cells": cells,
        "forward_calls": forward,
        "grads": grads,
        "namespace": namespace,
        "backward": backward,
        "arrays": {k: v for k, v in observed.arrays.items() if k in used},
        "files": observed.files or {},
        "file_sizes": observed.file_sizes,
        "notes": notes,
        "counterfactual": observed.counterfactual,
    }
