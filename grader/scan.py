"""Static scan of "from scratch" functions for autograd use, for the instructor to review.

At run time scratch functions already run with autograd off and `.backward()` raising; this scan catches
what run time cannot see (autograd reached through `getattr`, `__import__`, `torch.func`, or code that
would only use autograd on another path). It reads the source with `ast` and never executes it. A flag
never changes a score; it asks a person to look.
"""

import ast
from collections import deque
from collections.abc import Iterator

_SUSPECT_ATTRIBUTES = {
    "backward",
    "grad",
    "autograd",
    "requires_grad",
    "requires_grad_",
    "retain_grad",
    "func",
    "vjp",
    "jacrev",
    "jacfwd",
    "grad_fn",
}
_SUSPECT_NAMES = {
    "autograd",
    "functorch",
    "jax",
    "vjp",
    "jacrev",
    "jacfwd",
    "getattr",
    "__import__",
    "eval",
    "exec",
    "importlib",
}


def scan_scratch(cells: list[str], cell_numbers: list[int], functions: list[str]) -> list[str]:
    """Flags (one line each, with cell and line) for suspicious code in `functions` and what they call."""
    definitions: dict[str, tuple[ast.FunctionDef, int]] = {}
    for source, number in zip(cells, cell_numbers):
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # MemoryError: nested too deep to parse
            continue
        for node in _statements(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                definitions.setdefault(node.name, (node, number))
    flags: list[str] = []
    seen: set[str] = set()
    queue = [name for name in functions if name in definitions]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        node, cell = definitions[name]
        for inner in ast.walk(node):
            flag = _suspicious(inner)
            if flag:
                flags.append(
                    f"scratch code uses {flag} in {name}() (cell {cell}, line {inner.lineno}); check that the backward pass is by hand"
                )
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in definitions:
                queue.append(inner.func.id)  # helpers called by the scratch function are scratch code too
    return sorted(set(flags))


def _statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Every statement in breadth-first order, as ast.walk gives them, without visiting expressions (a
    function is defined by a statement; skipping expressions makes this several times quicker)."""
    pending = deque(tree.body)
    while pending:
        node = pending.popleft()
        yield node
        for block in ("body", "orelse", "finalbody", "handlers", "cases"):
            statements = getattr(node, block, None)
            if isinstance(statements, list):
                pending.extend(statements)


def _suspicious(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and node.attr in _SUSPECT_ATTRIBUTES:
        return f"`.{node.attr}`"
    if isinstance(node, ast.Name) and node.id in _SUSPECT_NAMES:
        return f"`{node.id}`"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "an import inside the function"
    if isinstance(node, ast.keyword) and node.arg == "requires_grad":
        return "`requires_grad=`"
    return None
