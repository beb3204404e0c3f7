"""Student notes about the cells of a notebook run: each cause stated once, with what it cost.

- A failed cell gets one note; execution went on after it.
- A cascade is one cause, not N: a later cell that failed with NameError on a name an earlier failed cell
  should have defined is listed in that cell's note ("cell 3 failed (RuntimeError: …); cells 4 and 5 then
  failed with NameError on names it should have defined (net, x)"). "Should have defined" is read from the
  earlier cell's source: the names it binds at top level (assignments, imports, def, class, for/with/except
  targets), by its AST; a chain (cell 5 on a name of cell 4, itself cascading from cell 3) goes to the first.
- A module the grading environment lacks (bound as a placeholder in the sandbox, see
  grader/sandbox/child/missing.py) gets one note from the records' data: never used (it cost nothing), or where
  it was used and whether that cell stopped there (with the cells that cascaded from it).
- A notebook that asked for a GPU and ran on the CPU (grader/sandbox/child/gpu.py) gets one note.

Cell numbers in the records are positions among the code cells; `number` maps them to the notebook's own.
"""

import ast
from collections.abc import Callable

from grader.sandbox import RunResult
from grader.sandbox.records import CellRecord

MAX_PREFIX_TRIES = 200  # a cell with a syntax error: its longest parsable prefix is searched this far back


def _parse(source: str, error_line: int | None) -> ast.Module | None:
    """The cell's AST; for a cell that does not compile, the AST of its longest parsable prefix before the
    error line (what the student meant to define up to there)."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the last two: nested too deeply
        pass
    lines = source.splitlines(keepends=True)
    end = min(len(lines), (error_line or len(lines)) - 1)
    for count in range(end, max(0, end - MAX_PREFIX_TRIES), -1):
        try:
            return ast.parse("".join(lines[:count]))
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # the last two: nested too deeply
            continue
    return None


def top_level_names(source: str, error_line: int | None = None) -> set[str]:
    """Names a cell binds in the notebook's namespace (not inside functions, classes or comprehensions)."""
    tree = _parse(source, error_line)
    if tree is None:
        return set()
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return names


def _failed(record: CellRecord) -> bool:
    return record.status != "ok"


def cascades(records: list[CellRecord], cells: list[str]) -> dict[int, list[tuple[int, str]]]:
    """For each failed cell that others cascade from: (cell, name) of each cell that then failed with
    NameError on a name it should have defined, in order. Keyed by the first cell of the chain."""
    defines: dict[int, set[str]] = {}
    root: dict[int, int] = {}
    groups: dict[int, list[tuple[int, str]]] = {}
    earlier: list[int] = []
    for record in records:
        if not _failed(record):
            continue
        name = record.name_errors[0] if record.status == "raised" and record.name_errors else None
        cause = next((c for c in reversed(earlier) if name in defines[c]), None) if name else None
        if cause is not None:
            first = root[record.cell] = root.get(cause, cause)
            groups.setdefault(first, []).append((record.cell, name))
        source = cells[record.cell - 1] if 0 < record.cell <= len(cells) else ""
        error_line = record.line if record.status == "syntax_error" else None
        defines[record.cell] = top_level_names(source, error_line)
        earlier.append(record.cell)
    return groups


def _series(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    return f"cells {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"


def _then(group: list[tuple[int, str]], number: Callable[[int], int]) -> str:
    """'; cells 4 and 5 then failed with NameError on names it should have defined (net, x)'."""
    if not group:
        return ""
    names = list(dict.fromkeys(name for _, name in group))
    return (
        f"; {_series([number(cell) for cell, _ in group])} then failed with NameError on names it should "
        f"have defined ({', '.join(names)})"
    )


def _at(cell: int, line: int | None, number: Callable[[int], int]) -> str:
    return f"cell {number(cell)}" + (f", line {line}" if line else "")


def _module_notes(records: list[CellRecord], groups: dict, number: Callable[[int], int]) -> list[tuple[int, str, int]]:
    """(cell, note, cell whose failure it covers or 0) for each missing module bound as a placeholder."""
    imported, used = {}, {}
    for record in records:
        for event in record.missing_modules:
            (imported if event.event == "imported" else used).setdefault(event.module, event)
    by_cell = {record.cell: record for record in records}
    notes = []
    for module, where in imported.items():
        use = used.get(module)
        if use is None:
            notes.append(
                (
                    where.cell,
                    f"module {module!r} is not installed here; it was never used (imported in "
                    f"{_at(where.cell, where.line, number)})",
                    0,
                )
            )
            continue
        record = by_cell.get(use.cell)
        stopped = record is not None and record.status == "raised" and record.missing_module == module
        how = "that cell stopped there" if stopped else "the error it raised was caught"
        note = (
            f"module {module!r} is not installed here; it was imported in {_at(where.cell, where.line, number)} "
            f"and used in {_at(use.cell, use.line, number)} ({how})"
        )
        notes.append(
            (use.cell, note + (_then(groups.get(use.cell, []), number) if stopped else ""), use.cell if stopped else 0)
        )
    return notes


def cell_notes(run: RunResult, cells: list[str], number: Callable[[int], int]) -> list[str]:
    """The notes of a run's cell records, in cell order (see the module docstring)."""
    records = sorted(run.cells, key=lambda r: r.cell)
    groups = cascades(records, cells)
    members = {cell for group in groups.values() for cell, _ in group}
    notes = _module_notes(records, groups, number)
    covered = {cell for _, _, cell in notes if cell}
    for record in records:
        if record.gpu_request is not None:
            request = record.gpu_request
            notes.append(
                (
                    request.cell,
                    f"this notebook asks for a GPU ({_at(request.cell, request.line, number)}: "
                    f"{request.call}); it ran on the CPU here, which gives the same gradients",
                    0,
                )
            )
        if not _failed(record) or record.cell in members or record.cell in covered:
            continue
        group, where = groups.get(record.cell, []), _at(record.cell, record.line, number)
        if record.missing_module:
            text = (
                f"cell {number(record.cell)}: module {record.missing_module!r} is not installed here; that cell "
                f"stopped, the rest ran{_then(group, number)}"
            )
        elif group:
            text = f"{where} failed ({record.message.rstrip('. ')}){_then(group, number)}"
        else:
            text = f"{where}: {record.message} (execution went on with the next cell)"
        notes.append((record.cell, text, 0))
    return [text for _, text, _ in sorted(notes, key=lambda note: note[0])]
