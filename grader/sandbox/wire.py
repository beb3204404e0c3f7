"""Strict decoding of everything a child sent back: frames, their schemas, raw float64 values.

The child runs student code, so its output is hostile until proven otherwise: it is parsed as JSON and
raw float64 bytes only (nothing is ever unpickled, no container format is parsed), every frame must match a schema
with no extra keys, every array must be float64 with the announced shape, and sizes are capped before
anything is read. Which frames are accepted in which order (the answers to the grader's requests, each
with its nonce) is channel.py's; a notebook's own frames are observed.py's. Any violation raises
ResultInvalid; the caller turns it into RunStatus.result_invalid.
"""

import json
import math
import re
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from grader.sandbox.process import HEADER

MAX_JSON_FRAME = 16 << 20
MAX_IGNORED_KEYS = 20  # convert.MAX_IGNORED: returned keys that are no quantity, noted one by one


class ResultInvalid(Exception):
    """The child's results cannot be trusted; the message says what was wrong (instructor detail)."""


# Where a lone surrogate can come from: a \uD800-\uDFFF escape, or (json.loads decodes bytes with
# "surrogatepass") raw bytes of one, which are never ASCII. The child's frames are ASCII (json.dumps), so the
# cleaning below is almost never needed, and checked for once per frame instead of once per text.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _clean(value: object) -> object:
    """`value` (decoded JSON) with lone surrogates replaced in every text and key, so every text encodes
    as UTF-8 later. RecursionError on data nested deeper than the interpreter allows (json.loads's own limit)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value


def Text(limit: int):
    """A text of at most `limit` characters (lone surrogates are replaced before validation: _json)."""
    return Annotated[str, Field(max_length=limit)]


_STRICT = ConfigDict(extra="forbid", strict=True)
Key = Text(1000)


class CellsFrame(BaseModel):
    model_config = _STRICT
    kind: Literal["cells"]
    status: Literal["ok", "syntax_error", "import_error", "exited", "memory_limit"]
    cell: StrictInt | None = Field(None, ge=1)
    line: StrictInt | None = Field(None, ge=0)
    error_type: Text(200)
    error: Text(5000)
    traceback: Text(50000)
    exit_code: StrictInt | None


class MissingModuleFrame(BaseModel):
    """records.MissingModule as the child sends it in a cell frame."""

    model_config = _STRICT
    module: Text(200)
    event: Literal["imported", "used"]
    cell: StrictInt = Field(..., ge=1)
    line: StrictInt | None = Field(None, ge=0)


class GpuRequestFrame(BaseModel):
    """records.GpuRequest as the child sends it in a cell frame."""

    model_config = _STRICT
    cell: StrictInt = Field(..., ge=1)
    line: StrictInt | None = Field(None, ge=0)
    call: Text(200)


class ValueSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(..., pattern=r"^v[0-9]{1,6}$")
    shape: list[Annotated[int, Field(ge=0)]] = Field(..., max_length=32)


class CallFrame(BaseModel):
    model_config = _STRICT
    MAX_BYTES: ClassVar[int] = 2 << 20  # convert.py sends at most 64 Ki characters of texts and problems
    kind: Literal["call"]
    id: Text(200)
    status: Literal["ok", "missing_function", "not_callable", "raised", "bad_return"]
    error_type: Text(200)
    error: Text(5000)
    traceback: Text(50000)
    suggestions: list[Text(200)] = Field(..., max_length=3)
    found: Text(500)
    memory: StrictBool
    seconds: float = Field(..., ge=0, allow_inf_nan=False)
    values: dict[Key, ValueSpec] = Field(..., max_length=2000)
    texts: dict[Key, Annotated[list[Text(1000)], Field(max_length=10000)]] = Field(..., max_length=2000)
    problems: dict[Key, Text(2000)] = Field(..., max_length=2001)


@dataclass
class ChildResults:
    """The validated content of a child's result stream (possibly cut short by a kill)."""

    cells: CellsFrame | None = None
    calls: dict[str, tuple[CallFrame, dict[str, np.ndarray]]] = field(default_factory=dict)
    started: str | None = None  # a call that started and never reported
    done: bool = False


def split_frames(blob: bytes) -> tuple[list[bytes], bool]:
    """Frames in blob, and whether the last one was cut short."""
    frames, offset = [], 0
    while offset < len(blob):
        if offset + HEADER.size > len(blob):
            return frames, True
        (size,) = HEADER.unpack_from(blob, offset)
        if offset + HEADER.size + size > len(blob):
            return frames, True
        frames.append(blob[offset + HEADER.size : offset + HEADER.size + size])
        offset += HEADER.size + size
    return frames, False


def _json(payload: bytes, model: type[BaseModel]):
    """`payload` decoded as JSON and validated as `model`, its size checked first (a model's MAX_BYTES, else
    MAX_JSON_FRAME). JSON nested too deep for the decoder is invalid like any other (pydantic's parser
    stops at its depth limit, json.loads raises RecursionError), never an error of the grader's own."""
    limit = getattr(model, "MAX_BYTES", MAX_JSON_FRAME)
    if len(payload) > limit:
        raise ResultInvalid(f"a {model.__name__} frame of {len(payload)} bytes is over {limit}")
    try:
        if payload.isascii() and not _SURROGATE_ESCAPE.search(payload):  # as the child writes every frame
            return model.model_validate_json(payload)  # parsed and validated in one pass, depth-limited
        return model.model_validate(_clean(json.loads(payload)))
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" and "recursion limit" in e["msg"] for e in exc.errors()):
            raise ResultInvalid(f"expected a {model.__name__}: JSON nested too deep to read") from None
        raise ResultInvalid(f"expected a {model.__name__}: {str(exc)[:1000]}") from None
    except ValueError as exc:
        raise ResultInvalid(f"expected a {model.__name__}: {str(exc)[:1000]}") from None
    except RecursionError:
        raise ResultInvalid(f"expected a {model.__name__}: JSON nested too deep to read") from None


def load_values(payload: bytes, specs: dict[str, ValueSpec], budget: int) -> tuple[dict[str, np.ndarray], int]:
    """Arrays announced by specs, read as raw float64 bytes laid end to end in the specs' order (nothing
    is parsed, let alone unpickled); the payload must be exactly as long as the shapes say. Returns the
    arrays and the budget left."""
    names = [spec.name for spec in specs.values()]
    if len(set(names)) != len(names):
        raise ResultInvalid("two values share one array name")
    sizes = [math.prod(spec.shape) for spec in specs.values()]
    declared = sum(sizes) * 8
    if declared > budget:
        raise ResultInvalid(f"values of {declared} bytes exceed the {budget} bytes left for results")
    if len(payload) != declared:
        raise ResultInvalid(f"values of {len(payload)} bytes where the announced shapes make {declared}")
    values, offset = {}, 0
    for (key, spec), size in zip(specs.items(), sizes):
        values[key] = np.frombuffer(payload, dtype="<f8", count=size, offset=offset).reshape(spec.shape)
        offset += size * 8
    return values, budget - declared


def _check_returns(call: CallFrame, returns: dict[str, list[int] | None] | None) -> None:
    """A call the grader said what it reads from carries those quantities only: numbers for those with a
    shape, lists of strings for the others, and a bounded number of problems (the converter's notes on
    keys it dropped among them). Anything else was not written by the converter."""
    if returns is None:
        return
    numbers = {name for name, shape in returns.items() if shape is not None}
    extra = [*(set(call.values) - numbers), *(set(call.texts) - (set(returns) - numbers))]
    if extra or len(call.problems) > len(returns) + MAX_IGNORED_KEYS + 2:
        raise ResultInvalid(
            f"call {call.id!r}: keys the job did not ask for ({sorted(extra)[:5]}) or {len(call.problems)} problems"
        )


def _peek_kind(payload: bytes) -> str:
    if len(payload) > MAX_JSON_FRAME:
        raise ResultInvalid(f"a frame of {len(payload)} bytes where a small JSON frame was expected")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise ResultInvalid("a frame that is not JSON (or JSON nested too deep) where JSON was expected") from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise ResultInvalid("a frame without a 'kind'")
    return data["kind"]
