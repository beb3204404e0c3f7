"""Notebooks written for a GPU run on the CPU, as an expert TA would run them.

Standalone on purpose: shipped as source into the sandbox (as bpg_gpu); imports only the standard library,
torch and bpg_places. Loaded once in the worker (torch.load is wrapped there, inert); a notebook-mode run
that asks for a GPU turns it on in its own child (`activate`).

Why: Colab hand-ins hard-code the GPU (`device = 'cuda'`, `.cuda()`, `.to('cuda:0')`,
`torch.zeros(..., device=device)`); on the grader's CPU the first such line raises "Torch not compiled with
CUDA enabled" and the notebook scores 0, though its gradients are the same on either device.

How: one torch function mode (torch.overrides.TorchFunctionMode) sees every torch call of the run and
turns a CUDA device into the CPU: `Tensor.cuda()` becomes `.to('cpu')` (modules' `.cuda()` and `.to()`
move their tensors through these), `Tensor.to('cuda' | 'cuda:0' | torch.device('cuda') | 0 | device=...)`
and the `device=` keyword of every factory (`torch.tensor`, `zeros`, `randn`, `new_zeros`, `nn.Linear(...,
device=)`, ...) get 'cpu'. `torch.load(map_location='cuda' or a dict mapping to it)` loads to the CPU.
Nothing else changes: `torch.cuda.is_available()` stays False and `.is_cuda`/`.device` tell the truth, so
a notebook that falls back on its own (`'cuda' if torch.cuda.is_available() else 'cpu'`) runs as written.
The first request is recorded once (cell, line, source text) for the student's note.

Cost: a mode puts every torch call through Python (measured here: 1000 SGD steps of a 2-10-10-1 net took
45-65% longer with it, 0.26 -> 0.38 s and 0.53 -> 0.86 s on a busy machine), so it
is entered only when the notebook's source asks for CUDA outside an `is_available()` test (`asks_for_gpu`,
from the AST); a device string built at run time is not seen and fails as before.
"""

import ast
import functools
import re
import sys

import torch
from bpg_places import Places
from torch.overrides import TorchFunctionMode

CUDA = re.compile(r"cuda(:\d+)?")
_TO, _CUDA = torch.Tensor.to, torch.Tensor.cuda
_ACTIVE: list = [None]  # the running notebook's OnCpu mode; None: torch.load passes through


def _is_cuda(device, positional: bool = False) -> bool:
    """A CUDA device given as a string, a torch.device, or (as a positional `.to`/`.cuda` argument) an index."""
    if isinstance(device, str):
        return CUDA.fullmatch(device.strip()) is not None
    if isinstance(device, torch.device):
        return device.type == "cuda"
    return positional and isinstance(device, int) and not isinstance(device, bool)


def _guards(test: ast.expr) -> bool:
    """A test that calls something's is_available() (torch.cuda.is_available())."""
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "is_available"
        for n in ast.walk(test)
    )


def _asks(source: str) -> bool:
    if "cuda" not in source:
        return False
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the last two: nested too deeply
        return True
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp)) and _guards(node.test):
            branches = node.body if isinstance(node.body, list) else [node.body]
            branches += node.orelse if isinstance(node.orelse, list) else [node.orelse]
            guarded.update(id(inner) for branch in branches for inner in ast.walk(branch))
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and CUDA.fullmatch(node.value.strip()):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "cuda":
            return True
    return False


def asks_for_gpu(cells: list[str]) -> bool:
    """Whether a cell asks for CUDA outside an `is_available()` test (a 'cuda' string or a `.cuda()` call)."""
    return any(_asks(source) for source in cells)


class OnCpu(TorchFunctionMode):
    """The mode of a notebook run that asks for a GPU: CUDA devices become the CPU."""

    def __init__(self, places: Places):
        super().__init__()
        self.places, self.request, self.pending = places, None, None

    def asked(self, frame) -> None:
        """Record the first request for a GPU at the innermost student frame around `frame`."""
        if self.request is not None:
            return
        place = self.places.innermost(frame)
        if place is not None:
            cell, line, student = place
            self.request = self.pending = {"cell": cell, "line": line, "call": self.places.text(student)}

    def take(self) -> dict | None:
        """The first request, once (for the record of the cell it happened in)."""
        taken, self.pending = self.pending, None
        return taken

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is _CUDA:
            self.asked(sys._getframe(1))
            keep = {k: v for k, v in kwargs.items() if k in ("non_blocking", "memory_format")}
            return _TO(args[0], "cpu", **keep)
        if func is _TO and len(args) > 1 and _is_cuda(args[1], positional=True):
            self.asked(sys._getframe(1))
            args = (args[0], "cpu", *args[2:])
        if "device" in kwargs and _is_cuda(kwargs["device"]):
            self.asked(sys._getframe(1))
            kwargs = dict(kwargs, device="cpu")
        return func(*args, **kwargs)


def _location(location):
    """map_location with CUDA devices replaced by 'cpu' (a dict's values too); None when nothing changed."""
    if _is_cuda(location, positional=True):
        return "cpu"
    if isinstance(location, dict) and any(_is_cuda(v, positional=True) for v in location.values()):
        return {k: "cpu" if _is_cuda(v, positional=True) else v for k, v in location.items()}
    return None


_real_load = torch.load


@functools.wraps(_real_load)
def _load(f, map_location=None, *args, **kwargs):
    mode = _ACTIVE[0]
    if mode is not None and (cpu := _location(map_location)) is not None:
        mode.asked(sys._getframe(1))
        map_location = cpu
    return _real_load(f, map_location, *args, **kwargs)


torch.load = _load  # once, in the worker: a pass-through until a notebook run activates a mode


def activate(cells: list[str], places: Places) -> OnCpu | None:
    """In the child of a notebook run: enter the mode when the notebook asks for a GPU; return it (or None)."""
    if not asks_for_gpu(cells):
        return None
    mode = OnCpu(places)
    mode.__enter__()
    _ACTIVE[0] = mode
    return mode
