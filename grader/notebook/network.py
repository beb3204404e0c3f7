"""The student's network as a notebook run saw it: found in its forward calls, with autograd's gradients.

A net is a module instance whose parameters chain into fully connected layers fed by its call's input;
it is read as the call the first backward pass differentiated saw it (`module_nets`), so the reference
later runs on exactly those weights and that input. Which of several nets the reported values belong to
is `grader.notebook.nets`; what the run's files and variables hold of it is `grader.notebook.observation`.
"""

from dataclasses import dataclass, replace

import numpy as np

from grader.notebook.activations import hidden_activation
from grader.notebook.graph_ops import Graph
from grader.sandbox import RunResult


@dataclass(frozen=True)
class Net:
    """The student's network as its first top-level forward call saw it. `activation`: the hidden
    activation, or one per hidden layer where they differ ('identity': none, grader.notebook.activations);
    None when no forward pass with these weights reproduced the net's output."""

    layers: list[int]
    activation: str | tuple[str, ...] | None
    x: np.ndarray
    params: dict[str, np.ndarray]
    names: dict[str, str]
    variable: str
    cell: int


def identify_net(run: RunResult) -> Net | None:
    """The first top-level module call whose parameters form a chain of linear layers."""
    return next(iter(module_nets(run)), None)


def module_nets(run: RunResult) -> list[Net]:
    """Each module instance whose parameters form a chain of linear layers, in the order they were first
    called (a notebook may build a decoy, or a second net for its own backprop), as the call that was
    differentiated saw it: the call whose input the first backward pass saved, else its first call. A
    notebook that first evaluates the net on the whole data set, then differentiates it on one point, is
    graded on that point."""
    nets, seen = [], set()
    differentiated = {saved.array for record in run.backward[:1] for saved in record.saved}
    for call in run.forward_calls:
        if call.instance in seen:
            continue
        net = _net_of(run, call)
        if net is None:
            continue
        seen.add(call.instance)
        later = (c for c in run.forward_calls if c.instance == call.instance and c.input in differentiated)
        used = next(later, call)
        if used is not call and (other := _net_of(run, used)) is not None and other.layers == net.layers:
            net = replace(other, cell=net.cell)  # first called where it was first called
        nets.append(net)
    return nets


def _net_of(run: RunResult, call) -> Net | None:
    """The net one forward call saw, when its parameters chain into linear layers fed by its input."""
    weights = [(n, run.arrays[k]) for n, k in call.params.items() if run.arrays[k].ndim == 2]
    biases = [(n, run.arrays[k]) for n, k in call.params.items() if run.arrays[k].ndim == 1]
    if not weights or call.input not in run.arrays:
        return None
    x = np.atleast_2d(run.arrays[call.input])
    shapes = [w.shape for _, w in weights]
    if x.shape[-1] != shapes[0][1] or any(a[0] != b[1] for a, b in zip(shapes, shapes[1:])):
        return None
    params, names = {}, {}
    for l, (name, w) in enumerate(weights, start=1):
        params[f"W{l}"], names[f"W{l}"] = w, name
    if len(biases) == len(weights) and all(b.shape[0] == w.shape[0] for (_, b), (_, w) in zip(biases, weights)):
        for l, (name, b) in enumerate(biases, start=1):
            params[f"b{l}"], names[f"b{l}"] = b, name
    output = run.arrays.get(call.output) if call.output else None
    owner = call.variable or call.module
    grads = _first_grads(run, call, {name: key for key, name in names.items()})
    activation = hidden_activation(run, [f"{owner}.{name}" for name, _ in weights], x, params, output, grads)
    layers = [shapes[0][1], *(s[0] for s in shapes)]
    return Net(layers, activation, x, params, names, call.variable or call.module, call.cell)


def _first_grads(run: RunResult, call, keys: dict[str, str]) -> dict[str, np.ndarray]:
    """Autograd's gradients of the called module at its first snapshot that has them, keyed dW1, db1, …"""
    for snapshot in run.grads:
        if snapshot.instance == call.instance and snapshot.grads:
            return {f"d{keys[name]}": run.arrays[key] for name, key in snapshot.grads.items() if name in keys}
    return {}


def module_grads(run: RunResult, net: Net) -> dict:
    """`.grad` of the net's parameters at the first snapshot that has them (the first backward pass); else,
    for a net no variable reaches after its cell (built inside a function) or differentiated with
    torch.autograd.grad (no .grad is set), what the first autograd call gave its parameters."""
    for snapshot in run.grads:
        if snapshot.variable != net.variable:
            continue
        by_name = {name: run.arrays[key] for name, key in snapshot.grads.items()}
        if not by_name:
            continue
        out: dict = {"cell": snapshot.cell}
        for key, name in net.names.items():
            if name in by_name:
                out[f"d{key}"] = by_name[name]
        return out
    return _first_call_grads(run, net)


def _first_call_grads(run: RunResult, net: Net) -> dict:
    """The gradients the notebook's first autograd call produced for the net's parameters, matched by value
    (a leaf holding exactly a parameter's weights is that parameter); {} when it produced none for them."""
    if not run.backward:
        return {}
    record, out = run.backward[0], {}
    leaves = [leaf for leaf in record.leaves if leaf.value is not None and leaf.grad is not None]
    leaves = Graph(record).order(leaves)  # from the input on: parameters of equal values (zero biases) in layer order
    for key, param in net.params.items():  # W1, b1, W2, …: layer order too
        for leaf in leaves:
            value = run.arrays[leaf.value]
            if value.shape == param.shape and np.array_equal(value, param):
                out[f"d{key}"] = run.arrays[leaf.grad]
                leaves.remove(leaf)
                break
    return {"cell": record.cell, **out} if out else {}
