"""Finding rubric files, reading them, and explaining why one is invalid.

A rubric is named by id (a bundled file `rubrics/<id>.toml`, found after a normal install through the
`rubrics` package) or by path. Invalid files raise `RubricInvalid` with one line per problem:
the file, the field as a dotted path, what was found and what is allowed.
"""

import hashlib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from grader.errors import RubricInvalid, RubricNotFound
from grader.rubric.model import Rubric


def bundled_rubrics() -> dict[str, Path]:
    """Id → path of every rubric shipped with the package."""
    folder = resources.files("rubrics")
    found = {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml")}
    return dict(sorted(found.items()))


def find_rubric(name: str) -> Path:
    """The file for a rubric id or path; `RubricNotFound` lists the bundled ids when neither exists."""
    bundled = bundled_rubrics()
    if name in bundled:
        return bundled[name]
    path = Path(name)
    if path.is_file():
        return path
    raise RubricNotFound(
        f"rubric {name!r}: no bundled rubric has this id and no file exists at this path.\n"
        f"  bundled ids: {', '.join(bundled) or '(none)'}\n"
        "  what to do: pass one of these ids, or the path of a rubric .toml file."
    )


def load_rubric(name: str) -> Rubric:
    """Read and validate a rubric by id or path."""
    path = find_rubric(name)
    return parse_rubric(path.read_bytes(), path)


def rubric_hash(name: str) -> str:
    """sha256 of the rubric file's bytes: reports record it so a re-grade can prove it used the same rubric."""
    return hashlib.sha256(find_rubric(name).read_bytes()).hexdigest()


def parse_rubric(data: bytes, path: Path) -> Rubric:
    """Validate rubric TOML bytes; every problem is reported against `path`."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise RubricInvalid(f"{path}: not UTF-8 text (byte {error.start}); save the rubric as UTF-8.") from None
    except tomllib.TOMLDecodeError as error:
        raise RubricInvalid(f"{path}: not valid TOML: {error}") from None
    try:
        return Rubric.model_validate(raw)
    except ValidationError as error:
        lines = [describe_problem(problem) for problem in error.errors()]
        raise RubricInvalid(
            f"{path}: invalid rubric ({len(lines)} problem{'s' * (len(lines) != 1)})\n"
            + "\n".join(f"  {line}" for line in lines)
            + "\n  what to do: fix these fields; `backprop-grader rubric schema` prints every allowed key."
        ) from None


def describe_problem(problem: dict[str, Any]) -> str:
    """One pydantic error as `field: what is wrong (found …; allowed …)`."""
    field = _dotted(problem["loc"])
    if problem["type"] == "extra_forbidden":
        allowed = _allowed_keys(problem["loc"][:-1])
        return f"{field}: unknown key; allowed here: {', '.join(allowed)}"
    message = problem["msg"].removeprefix("Value error, ")
    found = problem.get("input")
    if problem["type"] in {"missing", "model_type"} or isinstance(found, dict):
        return f"{field}: {message}"
    return f"{field}: {message} (found {found!r})"


def _dotted(loc: tuple[Any, ...]) -> str:
    """`('tasks', 0, 'mlp_regression', 'layers', 2)` → `tasks[0].layers[2]` (the union tag is dropped)."""
    text = ""
    model: Any = Rubric
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            model = _item_type(model)
        elif _is_union_tag(model, part):
            model = _union_member(model, part)
        else:
            text += f".{part}" if text else str(part)
            model = _field_type(model, part)
    return text or "(top level)"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Rubric
    for part in loc:
        if isinstance(part, int):
            model = _item_type(model)
        elif _is_union_tag(model, part):
            model = _union_member(model, part)
        else:
            model = _field_type(model, part)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return ["(any)"]


def _field_type(model: Any, name: str) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel) and name in model.model_fields:
        return _unwrap(model.model_fields[name].annotation)
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional and Annotated so the model (or list/union) underneath is reached."""
    while get_origin(annotation) is not None and get_args(annotation) and hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is not list and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def _item_type(annotation: Any) -> Any:
    args = get_args(annotation)
    return _unwrap(args[0]) if get_origin(annotation) is list and args else None


def _union_members(annotation: Any) -> list[type[BaseModel]]:
    return [arg for arg in get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]


def _is_union_tag(annotation: Any, part: Any) -> bool:
    return any(_tag(member) == part for member in _union_members(annotation))


def _union_member(annotation: Any, tag: str) -> Any:
    return next(member for member in _union_members(annotation) if _tag(member) == tag)


def _tag(member: type[BaseModel]) -> Any:
    field = member.model_fields.get("kind")
    return get_args(field.annotation)[0] if field is not None and get_args(field.annotation) else None
