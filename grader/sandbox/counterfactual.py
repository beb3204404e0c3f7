"""The grader's side of the counterfactual run: validate what the fork handed back (provenance.py).

The payload comes from a process that ran student code, so it is validated like every other frame
(strict JSON, raw float64 arrays of announced shapes, file bytes exactly as announced, sizes capped). It is
an instrument of the grader, not something the student owes: a payload that fails validation is dropped
(provenance is then not checked, and a note says so), it never makes the student's run invalid.
"""

import math
import struct
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt

from grader.sandbox.records import Counterfactual, CounterfactualEntry
from grader.sandbox.wire import _STRICT, ResultInvalid, Text, ValueSpec, _json, load_values

MAX_BYTES = 9 << 20
MAX_ENTRIES = 600
MAX_ELEMENTS = 100_000
MAX_STDOUT = 16_100  # characters a cell's kept output may have (bpg_notebook.STDOUT_KEEP and its tail)
MAX_STDOUT_CELLS = 2000
HEADER = struct.Struct(">Q")


class ForkFrame(BaseModel):
    model_config = _STRICT
    kind: Literal["counterfactual"]
    cell: Annotated[StrictInt, Field(ge=0, le=100_000)]
    factor: float = Field(..., gt=0, allow_inf_nan=False)


class EntrySpec(BaseModel):
    model_config = _STRICT
    cell: Annotated[StrictInt, Field(ge=1, le=100_000)]
    name: Text(500)
    array: str = Field(..., pattern=r"^c[0-9]{1,6}$")


class ForkHead(BaseModel):
    model_config = _STRICT
    entries: list[EntrySpec] = Field(..., max_length=MAX_ENTRIES)
    arrays: dict[Annotated[str, Field(pattern=r"^c[0-9]{1,6}$")], ValueSpec] = Field(..., max_length=MAX_ENTRIES)
    files: dict[Text(1000), Annotated[StrictInt, Field(ge=0, le=1 << 20)]] = Field(..., max_length=200)
    stdout: dict[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}$")], Text(MAX_STDOUT)] = Field(
        ..., max_length=MAX_STDOUT_CELLS
    )


def parse_counterfactual(frame: bytes, payload: bytes, expected_factor: float | None) -> Counterfactual:
    """The validated counterfactual run; ResultInvalid when anything is not as announced."""
    head_frame = _json(frame, ForkFrame)
    if expected_factor is None or head_frame.factor != expected_factor:
        raise ResultInvalid("a counterfactual frame the grader did not ask for")
    if len(payload) > MAX_BYTES or len(payload) < HEADER.size:
        raise ResultInvalid(f"a counterfactual payload of {len(payload)} bytes")
    (size,) = HEADER.unpack_from(payload, 0)
    head = _json(payload[HEADER.size : HEADER.size + size], ForkHead)
    offset = HEADER.size + size
    if offset + HEADER.size > len(payload):
        raise ResultInvalid("a counterfactual payload cut short")
    (raw_size,) = HEADER.unpack_from(payload, offset)
    offset += HEADER.size
    if any(math.prod(spec.shape) > MAX_ELEMENTS for spec in head.arrays.values()):
        raise ResultInvalid(f"a counterfactual array of more than {MAX_ELEMENTS} elements")
    arrays, _ = load_values(payload[offset : offset + raw_size], head.arrays, MAX_BYTES)
    offset += raw_size
    if offset + sum(head.files.values()) != len(payload):
        raise ResultInvalid("counterfactual files not as long as announced")
    files = {}
    for name, length in head.files.items():
        files[name] = payload[offset : offset + length]
        offset += length
    cells = [e.cell for e in head.entries]
    if cells != sorted(cells) or any(e.array not in arrays for e in head.entries):
        raise ResultInvalid("counterfactual entries out of order or without their values")
    entries = [CounterfactualEntry(**e.model_dump()) for e in head.entries]
    stdout = {int(cell): text for cell, text in head.stdout.items()}
    return Counterfactual(
        cell=head_frame.cell, factor=head_frame.factor, entries=entries, arrays=arrays, files=files, stdout=stdout
    )
