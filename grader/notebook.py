"""Observe stage for free-form notebooks: find what the student computed in what their notebook did.

The net is the module of the first top-level forward call whose parameters chain into a fully connected
net; the reference then runs on exactly the weights and input that call saw, so an unseeded notebook is
graded as exactly as a seeded one. `torch.*` values come from the autograd file (torch_autograd.dat) or
the parameters' `.grad`; `scratch.*` from the student's own file (my_autograd.dat) or their variables,
by name first and by value second. Each value keeps where it came from and its printed precision.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.compare import align
from grader.datfile import read_dat
from grader.found import Found
from grader.notebook_provenance import Follows, entry_again, file_again, follows
from grader.run import call_id
from grader.sandbox import RunResult
from grader.tasks import Task
from grader.trials import Trial
from reference import mlp_regression


@dataclass(frozen=True)
class Net:
    """The student's network as its first top-level forward call saw it."""

    layers: list[int]
    activation: str | None
    x: np.ndarray
    params: dict[str, np.ndarray]
    names: dict[str, str]
    variable: str
    cell: int


@dataclass
class Observed:
    """Everything the check stage needs from one notebook run."""

    net: Net | None
    trial: Trial | None
    found: dict[str, Found] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    copied: dict[str, str] = field(default_factory=dict)  # scratch quantity -> where a value copied from autograd was reported
    scratch_trial: Trial | None = None  # the trial of a second net the scratch values were computed on, if any


def identify_net(run: RunResult) -> Net | None:
    """The first top-level module call whose parameters form a chain of linear layers."""
    return next(iter(module_nets(run)), None)


def module_nets(run: RunResult) -> list[Net]:
    """Each module instance's first top-level call whose parameters form a chain of linear layers, in the
    order they were first called (a notebook may build a decoy, or a second net for its own backprop)."""
    nets, seen = [], set()
    for call in run.forward_calls:
        if call.instance in seen:
            continue
        net = _net_of(run, call)
        if net is not None:
            seen.add(call.instance)
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
    activation = activation_of(x, params, output)
    layers = [shapes[0][1], *(s[0] for s in shapes)]
    return Net(layers, activation, x, params, names, call.variable or call.module, call.cell)


def observe(
    task: Task, run: RunResult, files: dict[str, str], *, scratch_file: str, torch_file: str,
    cell_number: Callable[[int], int] = lambda position: position,
) -> Observed:
    """The trial the student's own net defines, and what each source (torch, scratch) produced on it.

    `cell_number` turns the sandbox's position among code cells into the notebook's own cell number."""
    from grader.notebook_graph import grad_name, identify_raw_net, raw_grads  # they build on Net, defined here
    from grader.notebook_nets import choose_net, other_net_for_scratch

    nets = module_nets(run)
    net, chosen = choose_net(nets, run, files, torch_file, task.activation, cell_number) if nets else (None, [])
    net = net or identify_raw_net(run)  # raw-tensor nets: the first backward's graph
    if net is None:
        return Observed(None, None, notes=["no forward call of a torch.nn.Module with linear layers was seen; "
                                           "build the net as an nn.Module (or nn.Sequential) and call it on x"])
    x = net.x
    y = mlp_regression.target(x)
    trial = Trial(task.id, "notebook", 0, x, y, net.params)  # type: ignore[arg-type]
    observed = Observed(net, trial, notes=chosen)
    grads = _module_grads(run, net) or raw_grads(run, net)
    autograd_copies = [v for k, v in grads.items() if k != "cell"]
    reference = mlp_regression.scratch(x, y, net.params, net.activation or task.activation)
    for source, file_name in (("torch", torch_file), ("scratch", scratch_file)):
        values, uncertainty, provenance = {}, {}, {}
        text = _file(files, file_name)
        if text is not None:
            assignment = read_dat(text, net.layers)
            again = file_again(run, file_name, net.layers)
            for key in assignment.values:
                values[key], uncertainty[key] = assignment.in_torch_layout(key)
                item = assignment.values[key]
                label = f" ({item.label.strip()!r})" if item.label.strip() else ""
                layout = ", read in the transposed (in, out) layout" if assignment.layouts.get(key) == "in_out" else ""
                provenance[key] = f"{file_name} line {item.line}{label}{layout}"
                if source == "scratch" and key in again:
                    verdict = follows(values[key], again[key][0], run.counterfactual.factor, uncertainty[key])
                    if verdict == Follows.autograd:
                        observed.copied[key] = f"{file_name} line {item.line}{label}"
            observed.notes += [f"{file_name}: {note}" for note in assignment.problems]
        else:
            observed.notes.append(f"{file_name} was not written; looking for the {source} gradients in the notebook instead")
        wanted = [f"d{p}" for p in net.params]
        for key in wanted:
            if key in values:
                continue
            if source == "torch" and key in grads:
                values[key], provenance[key] = grads[key], f"cell {cell_number(grads['cell'])}: {grad_name(net, key[1:])}"
            elif source == "scratch":
                hit = _scratch_variable(run, key, net.params[key[1:]].shape, reference[key], autograd_copies, list(net.params.values()))
                if hit is not None:
                    entry, how, copied = hit
                    values[key] = run.arrays[entry.array]
                    provenance[key] = f"cell {cell_number(entry.cell)}: {_where(entry.name)}{how}"
                    if copied:
                        observed.copied[key] = f"{_where(entry.name)} (cell {cell_number(entry.cell)})"
        observed.found[call_id(task, source, trial)] = Found(
            values=values, uncertainty=uncertainty, provenance=provenance,
            problems={k: f"{source}.{k}: not found — not in {file_name} and no variable holds it; "
                         f"write every gradient to {file_name} with a label such as 'dW1'" for k in wanted if k not in values},
        )
    scratch = call_id(task, "scratch", trial)
    other = other_net_for_scratch(nets, net, observed.found[scratch], task.activation)
    if other is not None:  # graded on the weights they used, and flagged
        observed.scratch_trial = Trial(task.id, "notebook", 1, other.x, mlp_regression.target(other.x), other.params)  # type: ignore[arg-type]
        observed.found[call_id(task, "scratch", observed.scratch_trial)] = observed.found.pop(scratch)
        observed.flags.append(f"scratch gradients computed on other weights than the autograd net (a second net, "
                              f"`{other.variable}`, first called in cell {cell_number(other.cell)})")
        observed.notes.append(f"your own gradients match the net `{other.variable}` (cell {cell_number(other.cell)}), "
                              f"not `{net.variable}` whose autograd gradients you report; they are checked on "
                              f"`{other.variable}`'s weights — compute both on the same net")
    return observed


def _file(files: dict[str, str], name: str) -> str | None:
    """A written file by name, ignoring case and folders (Colab paths were redirected by name)."""
    for written, text in files.items():
        if written.rsplit("/", 1)[-1].lower() == name.lower():
            return text
    return None


def _module_grads(run: RunResult, net: Net) -> dict:
    """`.grad` of the net's parameters at the first snapshot that has them (the first backward pass)."""
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
    return {}


_NAME = re.compile(r"^(?P<pre>d|dl_?d|dloss_?d|grad_?|g|delta_?)?(?P<kind>[wb])(?P<layer>\d+)(?P<post>_?grad|_?gradient)?$")
_KEY = re.compile(r"^(?P<outer>.*)\[['\"]?(?P<inner>[^'\"\]]+)['\"]?\]$")


def _gradient_name(name: str) -> str | None:
    """`dW1` for names like dW1, dL_dW1, grad_w1, W1_grad, grads['W1'], my_grads['dW1'] or net.dW1; else None."""
    keyed = _KEY.match(name)
    outer, inner = (keyed.group("outer"), keyed.group("inner")) if keyed else ("", name)
    if not keyed and "." in name:  # an attribute of the student's object: net.dW1
        outer, inner = name.rsplit(".", 1)
    match = _NAME.match(re.sub(r"[^a-z0-9_]", "", inner.lower()))
    if not match:
        return None
    if not (match.group("pre") or match.group("post") or "grad" in outer.lower()):
        return None  # a bare W1 is the weight, not its gradient
    return f"d{match.group('kind').upper() if match.group('kind') == 'w' else 'b'}{match.group('layer')}"


def _is_copy(value: np.ndarray, copies: list[np.ndarray]) -> bool:
    """Whether `value` is one of `copies` exactly, in either layout (a .grad, or a weight, taken as it is)."""
    return any(
        (value.shape == c.shape and np.array_equal(value, c))
        or (value.ndim == 2 and value.T.shape == c.shape and np.array_equal(value.T, c))
        for c in copies
    )


def _where(name: str) -> str:
    """How a namespace name reads in a report: 'variable dW1', "variable grads['W1']", 'attribute dW1 of `net`'."""
    owner, dot, attribute = name.rpartition(".")
    if dot and owner and "[" not in attribute:
        return f"attribute {attribute} of `{owner}`"
    return f"variable {name}"


def _scratch_variable(
    run: RunResult, key: str, shape: tuple[int, ...], expected: np.ndarray, autograd: list[np.ndarray],
    weights: list[np.ndarray],
) -> tuple[Any, str, bool] | None:
    """The namespace entry that holds the student's own `key`: named like it (earliest cell first), else the
    closest by value; whether it requires grad does not matter (tensor ops on parameters carry it), where it
    came from does. A candidate the counterfactual run shows copied from autograd is passed over for one that
    is not; when every candidate was copied, the first is returned with copied=True."""
    size = int(np.prod(shape))
    named = [(e, "") for e in run.namespace if _gradient_name(e.name) == key and run.arrays[e.array].size == size]
    candidates = named + [(e, " (found by its value)") for e in _by_value(run, expected, [*autograd, *weights])]
    copied = None
    for entry, how in candidates:
        again = entry_again(run, entry.name, entry.cell)
        if run.counterfactual is not None and follows(
            run.arrays[entry.array], again, run.counterfactual.factor
        ) == Follows.autograd:
            copied = copied or (entry, how, True)
            continue
        return entry, how, False
    return copied


def _by_value(run: RunResult, expected: np.ndarray, excluded: list[np.ndarray]) -> list:
    """Namespace entries whose value is within a factor of `expected` (either layout), closest first; arrays
    equal to `excluded` ones (autograd's .grad, the weights themselves) are never taken for scratch work, nor
    tensors that require grad: by value alone, those are the forward pass's (prediction, loss, activations),
    and a gradient computed with tensor operations on the parameters is found by its name instead."""
    ranked = []
    scale = float(np.max(np.abs(expected))) or 1.0
    for entry in run.namespace:
        value = run.arrays[entry.array]
        if entry.requires_grad or value.size != expected.size or _is_copy(value, excluded):
            continue
        aligned, _ = align(value, expected, allow_transposed=True)
        if aligned is None:
            continue
        error = float(np.max(np.abs(aligned - expected))) / scale
        if error < 1.0:
            ranked.append((error, entry))
    return [entry for _, entry in sorted(ranked, key=lambda pair: pair[0])]


def activation_of(x: np.ndarray, params: dict[str, np.ndarray], output: np.ndarray | None) -> str | None:
    """The hidden activation whose forward pass reproduces the module's recorded output."""
    if output is None:
        return None
    for name in ("sigmoid", "relu", "tanh"):
        prediction = mlp_regression.forward(x, params, name)[f"a{len(params) // 2 if 'b1' in params else len(params)}"]
        if prediction.size == output.size and np.allclose(prediction.reshape(output.shape), output, rtol=1e-4, atol=1e-6):
            return name
    return None
