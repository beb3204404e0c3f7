"""Modules the grading environment lacks: an import binds a placeholder that fails only when it is used.

Standalone on purpose: shipped as source into the sandbox (as bpg_missing) and installed by notebook.py in
the child of a notebook-mode job only; imports only the standard library and bpg_places.

Why: real hand-ins start with `import pandas as pd` or `import tensorflow as tf` that they never use (or use
in one cell). Without this, that import stops the first cell before `import torch`, and every later cell
fails with NameError: a correct notebook scores 0.

What: a finder at the END of sys.meta_path (every installed module, and the Colab/IPython shims, win)
serves a placeholder for an import of a module nothing else provides, when all of these hold:
- the import statement is the student's own: the frame right outside the import machinery is a cell's
  (a library's optional import, importlib.import_module, importlib.util.find_spec get the real answer);
- the name is not the standard library's, the sandbox's own (bpg_*), the grader's or the reference's;
  relative imports never get here (a cell has no package);
- for a dotted name, its parent is already a placeholder (`import matplotlib.pyplot as plt`);
- the statement is not guarded: no student frame on the stack stands in the body of a `try` with a handler
  that may catch ImportError (bare, ImportError, ModuleNotFoundError, Exception, BaseException, or any
  name that is not another built-in exception), nor in `with suppress(...)` of such a class. Decided
  from the AST of the cell's source at the frame's line: a student who wrote `try: import cupy
  except ImportError:` asked for the ImportError and gets it, unchanged.
Attribute access on a placeholder gives placeholders (so `from pandas import DataFrame` binds one), and
dunder names used by the import machinery and by introspection behave as on an empty module. Using one —
calling it, iterating, indexing, arithmetic, comparing by order, truth, setting an attribute, subclassing
it — raises ModuleNotFoundError naming the module and where it was imported. Each module's import and its
first use by student code (not by the grader's own probes) are recorded as data for the cell's record.
"""

import ast
import builtins
import importlib.abc
import importlib.machinery
import linecache
import sys
import types

from bpg_places import Places

NEVER = frozenset({"grader", "reference", "__main__"})
OUR_PREFIX = "bpg_"
MAX_MODULES = 50  # placeholders per run; further missing modules fail to import as usual
_NOT_CATCHING = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException) and not issubclass(ModuleNotFoundError, value)
)


def _catches(handler: ast.expr | None) -> bool:
    """Whether an except clause may catch ImportError (an unknown expression is assumed to)."""
    if handler is None:
        return True
    if isinstance(handler, ast.Tuple):
        return any(_catches(item) for item in handler.elts)
    if isinstance(handler, ast.Name):
        return handler.id not in _NOT_CATCHING
    if isinstance(handler, ast.Attribute):
        return handler.attr not in _NOT_CATCHING
    return True


def _suppresses(expr: ast.expr) -> bool:
    """`suppress(ImportError)`, `contextlib.suppress(Exception)`, ..."""
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name == "suppress" and any(_catches(arg) for arg in expr.args)


def guarded_lines(source: str) -> frozenset:
    """Lines of `source` inside the body of a try (or with suppress) that may catch ImportError."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the last two: nested too deeply
        return frozenset()
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Try, ast.TryStar)) and any(_catches(h.type) for h in node.handlers):
            body = node.body
        elif isinstance(node, (ast.With, ast.AsyncWith)) and any(_suppresses(i.context_expr) for i in node.items):
            body = node.body
        else:
            continue
        lines.update(range(body[0].lineno, (body[-1].end_lineno or body[-1].lineno) + 1))
    return frozenset(lines)


class Absent:
    """One missing top-level module: where it was imported, whether student code used it yet."""

    def __init__(self, finder: "MissingFinder", name: str, cell: int, line: int):
        self.finder, self.name, self.cell, self.line, self.used = finder, name, cell, line, False

    def error(self, frame) -> ModuleNotFoundError:
        """The error a use raises; the first use by student code is recorded."""
        if not self.used:
            self.finder.used(self, frame)
        return ModuleNotFoundError(
            f"No module named {self.name!r} (not installed in the grading environment; it was "
            f"imported in cell {self.cell}, line {self.line})",
            name=self.name,
        )


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


class PlaceholderModule(types.ModuleType):
    """What `import pandas` binds when pandas is not installed; a package, so submodules can be imported."""

    def __repr__(self) -> str:
        return f"<module {self.__name__!r}: not installed in the grading environment>"

    def __getattr__(self, name: str):
        if _dunder(name):  # as on an empty module: getattr(module, "__version__", None) and the like work
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r} (it is not installed in the grading environment)"
            )
        value = Placeholder(self.__dict__["__bpg_absent__"], f"{self.__name__}.{name}")
        self.__dict__[name] = value
        return value


class Placeholder:
    """An attribute of a missing module (`pd.DataFrame`, `tf.keras.layers`): inert until used."""

    __slots__ = ("_bpg_absent", "_bpg_path")

    def __init__(self, absent: Absent, path: str):
        object.__setattr__(self, "_bpg_absent", absent)
        object.__setattr__(self, "_bpg_path", path)

    def __getattr__(self, name: str):
        if _dunder(name):
            raise AttributeError(name)
        return Placeholder(self._bpg_absent, f"{self._bpg_path}.{name}")

    def __repr__(self) -> str:
        return f"<{self._bpg_path}: module {self._bpg_absent.name!r} is not installed in the grading environment>"

    def __instancecheck__(self, instance) -> bool:
        return False  # nothing is an instance of a class that is not installed

    def __subclasscheck__(self, subclass) -> bool:
        return False


def _used(self, *args, **kwargs):
    raise self._bpg_absent.error(sys._getframe(1))


_USES = (
    "call",
    "iter",
    "next",
    "len",
    "getitem",
    "setitem",
    "delitem",
    "contains",
    "bool",
    "int",
    "float",
    "complex",
    "index",
    "round",
    "trunc",
    "floor",
    "ceil",
    "enter",
    "exit",
    "aenter",
    "aexit",
    "await",
    "aiter",
    "anext",
    "neg",
    "pos",
    "abs",
    "invert",
    "lt",
    "le",
    "gt",
    "ge",
    "mro_entries",
    "setattr",
    "delattr",
    "fspath",
    "buffer",
)
_OPERATORS = (
    "add",
    "sub",
    "mul",
    "matmul",
    "truediv",
    "floordiv",
    "mod",
    "divmod",
    "pow",
    "lshift",
    "rshift",
    "and",
    "xor",
    "or",
)
PlaceholderModule.__call__ = _used  # a module's other operations are nonsense either way (TypeError)
for _name in _USES + _OPERATORS + tuple("r" + op for op in _OPERATORS) + tuple("i" + op for op in _OPERATORS):
    setattr(Placeholder, f"__{_name}__", _used)
del _name


class MissingFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves placeholders (see the module docstring) and collects the events for the cell records."""

    def __init__(self, places: Places):
        self.places = places
        self.absent: dict[str, Absent] = {}
        self.events: list[dict] = []
        self.guards: dict[str, frozenset] = {}

    def find_spec(self, name, path=None, target=None):
        top, dot, _ = name.partition(".")
        if dot:
            if not isinstance(sys.modules.get(name.rpartition(".")[0]), PlaceholderModule):
                return None
        elif (
            not top.isidentifier()
            or len(top) > 100
            or top in NEVER
            or top.startswith(OUR_PREFIX)
            or top in sys.stdlib_module_names
            or top in sys.builtin_module_names
            or (top not in self.absent and len(self.absent) >= MAX_MODULES)
        ):
            return None
        place = self.places.importer(sys._getframe(1))
        if place is None or any(self._guarded(frame) for frame in self.places.student_frames(place[2])):
            return None
        if top not in self.absent:
            self.absent[top] = Absent(self, top, place[0], place[1])
            self.events.append({"module": top, "event": "imported", "cell": place[0], "line": place[1]})
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def _guarded(self, frame) -> bool:
        filename = frame.f_code.co_filename
        if filename not in self.guards:
            entry = linecache.cache.get(filename)
            self.guards[filename] = guarded_lines("".join(entry[2])) if entry else frozenset()
        return frame.f_lineno in self.guards[filename]

    def create_module(self, spec):
        module = PlaceholderModule(spec.name)
        module.__dict__["__bpg_absent__"] = self.absent[spec.name.partition(".")[0]]
        return module

    def exec_module(self, module) -> None:
        return None

    def used(self, absent: Absent, frame) -> None:
        """Record the first use of `absent` by student code, at the running cell's top-level line."""
        if self.places.innermost(frame) is None:
            return  # our own code probing a value
        cell, line = self.places.top_level(frame)
        if cell:
            absent.used = True
            self.events.append({"module": absent.name, "event": "used", "cell": cell, "line": line})

    def take(self) -> list[dict]:
        """The events since the last call (for the record of the cell that just ran)."""
        taken, self.events = self.events, []
        return taken


def install(places: Places) -> MissingFinder:
    """Append the finder to the end of sys.meta_path (notebook mode only) and return it."""
    finder = MissingFinder(places)
    sys.meta_path.append(finder)
    return finder
