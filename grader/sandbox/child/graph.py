"""Notebook-mode record of the first backward pass's autograd graph (raw-tensor nets are seen through it).

Standalone on purpose: shipped as source into the sandbox (as bpg_graph) and run in the child that runs
student code; imports only the standard library, numpy, torch and its shipped siblings. Nothing here may
raise into student code.

Interface used by bpg_provenance.Watch (which sees every autograd entry point of a notebook run):
    recorder = GraphRecorder(store, notes)
    state = recorder.before(what, args, kwargs)    # just before the first backward / autograd.grad runs
    recorder.after(state, result)                  # just after it returned (leaves' .grad are filled)
    recorder.take(namespace) -> list[dict]         # records of the cell that just ran (names resolved)

One graph walk per run, at the first autograd call only: the nodes in topological order from the root(s)
(autograd's own execution order), each with its inputs (next_functions) as indices into that list, -1 for
an input that needs no gradient (a constant such as x or y). The leaves are the AccumulateGrad nodes'
variables: value before the call, .grad after it. Tensors saved by a node with a constant input are kept
when they need no gradient themselves (the input x of the first layer's product, the target y of
mse_loss); saved tensors are read before the call, since backward frees them.
"""

import sys

import bpg_names
import bpg_observe
import torch

MAX_WALK = 20_000  # nodes visited at most; a larger graph is not recorded
MAX_NODES = 3000  # nodes sent; a larger graph is sent with its leaves only
MAX_EDGES = 20_000
MAX_LEAVES = 64
MAX_SAVED = 8
MAX_ROOTS = 16
SAVED = (
    "_saved_self",
    "_saved_other",
    "_saved_mat1",
    "_saved_mat2",
    "_saved_mat",
    "_saved_vec",
    "_saved_input",
    "_saved_target",
)
CALLS = ("Tensor.backward()", "torch.autograd.backward()", "torch.autograd.grad()")


def _roots(what: str, args: tuple, kwargs: dict) -> list:
    """The tensors autograd differentiates in this call (loss.backward(): the loss)."""
    key = "outputs" if what == "torch.autograd.grad()" else "tensors"
    tensors = args[0] if args else kwargs.get(key, kwargs.get("self"))
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    if not isinstance(tensors, (list, tuple)):
        return []
    return [t for t in list(tensors)[:MAX_ROOTS] if isinstance(t, torch.Tensor) and t.grad_fn is not None]


def _walk(starts: list) -> tuple[list, dict] | None:
    """Nodes reachable from `starts` in topological order (Kahn's algorithm, roots first, ties in
    next_functions order) and each node's next_functions by id; None beyond MAX_WALK nodes."""
    starts = list({id(fn): fn for fn in starts}.values())
    nexts, stack, indegree = dict.fromkeys(map(id, starts)), list(starts), {}
    while stack:
        fn = stack.pop()
        nexts[id(fn)] = links = tuple(fn.next_functions)
        for nxt, _ in links:
            if nxt is None:
                continue
            indegree[id(nxt)] = indegree.get(id(nxt), 0) + 1
            if id(nxt) not in nexts:
                if len(nexts) >= MAX_WALK:
                    return None
                nexts[id(nxt)] = None
                stack.append(nxt)
    order, queue = [], [fn for fn in starts if indegree.get(id(fn), 0) == 0]
    while len(order) < len(queue):
        fn = queue[len(order)]
        order.append(fn)
        for nxt, _ in nexts[id(fn)]:
            if nxt is not None:
                indegree[id(nxt)] -= 1
                if indegree[id(nxt)] == 0:
                    queue.append(nxt)
    return order, nexts


def _dtype(tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")[:50]


class GraphRecorder:
    """Records the graph of the first autograd call of a run; its leaves are named after the cell."""

    def __init__(self, store, notes):
        self.store, self.notes, self.pending = store, notes, []
        self.started = False
        self.tensors: list = []  # the pending record's leaves, kept alive until their names are resolved
        self.early: dict = {}  # id(leaf) -> its name when the call started (a later rebinding may hide it)

    def before(self, what: str, args: tuple, kwargs: dict):
        """Walk the graph of the first autograd call (later calls: nothing); the state for after()."""
        if self.started:
            return None
        self.started = True
        try:
            return self._record(what, args, kwargs)
        except Exception as exc:
            self.notes.add(
                f"the autograd graph of the first backward pass could not be recorded ({type(exc).__name__})"
            )
            return None

    def _record(self, what: str, args: tuple, kwargs: dict):
        roots = _roots(what, args, kwargs)
        walked = _walk([t.grad_fn for t in roots]) if roots else None
        if walked is None:
            if roots:
                self.notes.add(
                    f"the autograd graph of the first backward pass has more than {MAX_WALK} nodes; it was not recorded"
                )
            return None
        order, nexts = walked
        index = {id(fn): i for i, fn in enumerate(order)}
        nodes = [
            {
                "name": type(fn).__name__[:100],
                "inputs": [index[id(n)] if n is not None else -1 for n, _ in nexts[id(fn)]],
            }
            for fn in order
        ]
        truncated = len(nodes) > MAX_NODES or sum(len(n["inputs"]) for n in nodes) > MAX_EDGES
        leaves, tensors, saved = [], [], []
        for i, fn in enumerate(order):
            if nodes[i]["name"] == "AccumulateGrad" and len(leaves) < MAX_LEAVES:
                variable = getattr(fn, "variable", None)
                if isinstance(variable, torch.Tensor):
                    tensors.append(variable)
                    leaves.append(
                        {
                            "node": -1 if truncated else i,
                            "name": None,
                            "shape": list(variable.shape)[:32],
                            "dtype": _dtype(variable),
                            "value": self._add(variable),
                            "grad": None,
                        }
                    )
            elif -1 in nodes[i]["inputs"] and len(saved) < MAX_SAVED and not truncated:
                saved += self._constants(fn, i)
        if len(tensors) >= MAX_LEAVES:
            self.notes.add(
                f"the autograd graph of the first backward pass has more than {MAX_LEAVES} leaves; "
                f"the rest were left out"
            )
        self.early = self._names(sys.modules["submission"].__dict__, tensors) if "submission" in sys.modules else {}
        record = {
            "cell": max(1, int(self.notes.cell)),
            "call": what if what in CALLS else CALLS[0],
            "loss": self._add(roots[0]),
            "nodes": [] if truncated else nodes,
            "saved": saved[:MAX_SAVED],
            "leaves": leaves,
            "truncated": truncated,
        }
        inputs = (args[1] if len(args) > 1 else kwargs.get("inputs")) if what == "torch.autograd.grad()" else None
        return record, tensors, inputs

    def _add(self, tensor) -> str | None:
        return self.store.add(bpg_observe.float64(tensor), "graph")

    def _constants(self, fn, i: int) -> list:
        """Tensors saved by node `i` that need no gradient (the constants it was given), at least 1-D."""
        found = []
        for attribute in SAVED:
            try:
                value = getattr(fn, attribute)
                if isinstance(value, torch.Tensor) and not value.requires_grad and value.dim() >= 1:
                    key = self._add(value)
                    if key is not None:
                        found.append({"node": i, "slot": attribute.removeprefix("_saved_"), "array": key})
            except Exception:
                continue
        return found

    def after(self, state, result=None) -> None:
        """Add the leaves' gradients (their .grad; for torch.autograd.grad(), what it returned)."""
        if state is None:
            return
        record, tensors, inputs = state
        try:
            returned = {}
            if inputs is not None and isinstance(result, tuple):
                inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
                returned = {id(t): g for t, g in zip(inputs, result) if isinstance(g, torch.Tensor)}
            for leaf, tensor in zip(record["leaves"], tensors):
                grad = returned.get(id(tensor)) if inputs is not None else tensor.grad
                leaf["grad"] = self._add(grad) if isinstance(grad, torch.Tensor) else None
        except Exception:
            pass
        self.pending.append(record)
        self.tensors = tensors

    def _names(self, namespace: dict, tensors: list) -> dict:
        """id(tensor) -> the first name that reaches it: a variable, a container item or an object's attribute
        (bpg_names), else a module's parameter ('net.fc1.weight')."""
        wanted, found = {id(t) for t in tensors}, {}
        if not wanted:
            return found
        try:
            pairs, modules = bpg_names.namespace_names(namespace, self.notes)
            for name, value in pairs:
                if id(value) in wanted:
                    found.setdefault(id(value), name)
            for name, module in modules.values():
                for parameter_name, parameter in module.named_parameters():
                    if id(parameter) in wanted:
                        found.setdefault(id(parameter), f"{name}.{parameter_name}")
        except Exception:
            pass
        return found

    def take(self, namespace: dict) -> list:
        """The records of the cell that just ran, their leaves named as the namespace now reaches them
        (else as it did when the call started)."""
        taken, self.pending = self.pending, []
        if taken:
            names = self._names(namespace, self.tensors)
            for record in taken:
                for leaf, tensor in zip(record["leaves"], self.tensors):
                    name = names.get(id(tensor)) or self.early.get(id(tensor))
                    leaf["name"] = name[:500] if isinstance(name, str) else None
            self.tensors, self.early = [], {}
        return taken
