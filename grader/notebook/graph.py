"""Raw-tensor nets (no nn.Module), seen through the autograd graph of a notebook's first backward pass.

Students build nets from tensors (`w1 = torch.randn(10, 2, requires_grad=True)`, a forward written out,
`loss.backward()`). The sandbox records that call's graph (RunResult.backward): its leaves with their values
and gradients, and the constants the first products saved (the input x). From it `identify_raw_net` builds
the `Net` that grader.notebook.observation.identify_net builds for an nn.Module, in torch layout (W_l (out, in)), and
proves it by replaying the forward pass: on these weights and x it reproduces the recorded loss with
y = target(x), or, whatever loss and target the student used, the recorded gradients are an MLP's. When no
MLP on these leaves does, the net is still returned, without an activation, with `finding` saying where the
recorded ops first differ from an MLP's. Free of torch, as the grading process is.
"""

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from grader.notebook.graph_ops import Graph, difference
from grader.notebook.network import Net
from grader.sandbox import RunResult
from grader.sandbox.records import BackwardRecord, GraphLeaf
from reference import mlp_regression

ACTIVATIONS = ("sigmoid", "relu", "tanh")
MAX_CANDIDATES = 50  # namespace arrays tried as the input x when no saved tensor is one
LOSS_RTOL = 1e-4  # the loss is float32: 1e-7 relative; a different net is off by far more
GRAD_RTOL = 1e-3  # of each gradient's largest magnitude


@dataclass(frozen=True)
class RawNet(Net):
    """A net of raw tensors: its weights' layouts as the student stored them, autograd's gradients in
    torch layout, and (when no MLP reproduces what it computed) where its forward differs from an MLP's."""

    layouts: dict[str, str] = field(default_factory=dict)  # "W1" -> "out_in" (torch) or "in_out" (x @ W)
    grads: dict[str, np.ndarray] = field(default_factory=dict)  # "dW1" -> the leaf's .grad, torch layout
    finding: str = ""


def identify_raw_net(run: RunResult) -> RawNet | None:
    """The net of the first backward pass's leaves, when they chain into fully connected layers and an
    input x is found for them: a leaf (an x that requires grad), a tensor the first product saved, or a
    namespace array that reproduces the loss or the gradients; else None."""
    if not run.backward:
        return None
    record = run.backward[0]
    graph = Graph(record)
    leaves = [leaf for leaf in record.leaves if leaf.value is not None and len(leaf.shape) in (1, 2)]
    roles = {id(leaf): graph.role(leaf) for leaf in leaves}
    weights = [leaf for leaf in graph.order(leaves) if roles[id(leaf)][0] == "weight"]
    biases = [leaf for leaf in graph.order(leaves) if roles[id(leaf)][0] == "bias"]
    if not weights:
        return None
    loss = run.arrays.get(record.loss) if record.loss else None
    candidates = [(run.arrays[leaf.value], True, leaf) for leaf in graph.paired(weights)]  # x.requires_grad
    candidates += [(run.arrays[leaf.value], True, None) for leaf in leaves if roles[id(leaf)][0] == "other"]
    candidates += [(value, True, None) for value in _inputs(run, record, graph, weights[0])]
    candidates += [(value, False, None) for value in _namespace_inputs(run, record)]
    fallback = None
    for x_value, from_graph, input_leaf in candidates:
        layers = [leaf for leaf in weights if leaf is not input_leaf]
        differs = difference(graph, layers) if layers else ""
        for width in dict.fromkeys(run.arrays[layers[0].value].shape if layers else ()):
            x = _as_input(x_value, width)
            built = None if x is None else _build(run, layers, biases, roles, width)
            if built is None:
                continue
            params, layouts, names, grads = built
            activation = _replay(x, params, grads, loss, by_gradients=not differs)
            net = RawNet(
                _layers(params),
                activation,
                x,
                params,
                names,
                _variable(names),
                record.cell,
                layouts=layouts,
                grads=grads,
                finding=differs,
            )
            if activation is not None:
                return replace(net, finding="")
            if from_graph and fallback is None:
                fallback = net
    if fallback is None:
        return None
    found = fallback.finding or (
        f"its forward pass on these weights reproduces neither the loss it computed nor "
        f"its gradients with any of {', '.join(ACTIVATIONS)}"
    )
    return replace(fallback, finding=found)


def raw_grads(run: RunResult, net: Net) -> dict:
    """Autograd's gradients of a raw net in the form grader.notebook.observation.module_grads gives a module's:
    {"cell": cell of the backward pass, "dW1": …, "db1": …} in torch layout; {} for any other net."""
    if not isinstance(net, RawNet) or not net.grads:
        return {}
    return {"cell": net.cell, **net.grads}


def grad_name(net: Net, key: str) -> str:
    """Where autograd's gradient of parameter `key` ('W1') is read: 'net.fc1.weight.grad', or for a raw net
    'w1.grad' (with the layout it was read in)."""
    if not isinstance(net, RawNet):
        return f"{net.variable}.{net.names[key]}.grad"
    layout = ", read in the transposed (in, out) layout" if net.layouts.get(key) == "in_out" else ""
    return f"{net.names[key]}.grad{layout}"


def found_text(net: Net) -> str:
    """What the architecture check found: layer sizes and activation; for a raw net, also how its weights
    were laid out, or where its forward differs from an MLP's."""
    layers = "-".join(map(str, net.layers))
    if isinstance(net, RawNet) and net.finding:
        return f"{layers} from raw tensors, but its forward pass is not an MLP's: {net.finding}"
    text = f"{layers} with {net.activation or 'an activation that could not be identified'}"
    if isinstance(net, RawNet) and "in_out" in net.layouts.values():
        text += ", its weights stored in×out (x @ W) and read transposed"
    return text


def _inputs(run: RunResult, record: BackwardRecord, graph: Graph, first: GraphLeaf) -> list[np.ndarray]:
    """Constants the graph saved, those of the first layer's product first (not mse_loss's target)."""
    use = graph.use(first.node) if graph.names else None
    product = use[0] if use else -1
    saved = sorted((s for s in record.saved if s.slot != "target"), key=lambda s: s.node != product)
    return [run.arrays[s.array] for s in saved]


def _namespace_inputs(run: RunResult, record: BackwardRecord) -> list[np.ndarray]:
    """Arrays in the namespace by the backward pass's cell, latest first (only the one that reproduces the
    recorded loss or gradients is taken)."""
    entries = [e for e in run.namespace if e.cell <= record.cell and run.arrays[e.array].ndim <= 2]
    return [run.arrays[e.array] for e in reversed(entries)][:MAX_CANDIDATES]


def _as_input(value: np.ndarray, width: int) -> np.ndarray | None:
    """`value` as a batch of rows (N, width): x (width,), (N, width) or a column layout (width, N)."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 1 and value.size == width:
        return value.reshape(1, width)
    if value.ndim == 2 and value.shape[1] == width:
        return value
    if value.ndim == 2 and value.shape[0] == width:
        return value.T.copy()
    return None


def _build(run: RunResult, weights: list, biases: list, roles: dict, width: int):
    """(params W_l (out, in), b_l (out,), layouts, names, grads) chaining the weights from `width` inputs;
    None when they do not chain or the biases do not fit. A square weight the shapes cannot orient takes
    the layout its use in the graph shows, else its siblings'."""
    forced, inner = [], width
    for leaf in weights:
        a, b = leaf.shape if len(leaf.shape) == 2 else (1, leaf.shape[0])
        fits = [layout for layout, ok in (("out_in", b == inner), ("in_out", a == inner)) if ok]
        if not fits:
            return None
        forced.append(fits[0] if len(fits) == 1 else None)
        inner = a if fits[0] == "out_in" else b
    siblings = Counter(layout for layout in forced if layout).most_common(1)
    params, layouts, names, grads = {}, {}, {}, {}
    for l, (leaf, layout) in enumerate(zip(weights, forced), start=1):
        layout = layout or roles[id(leaf)][1] or (siblings[0][0] if siblings else "out_in")
        value = run.arrays[leaf.value].reshape(leaf.shape if len(leaf.shape) == 2 else (1, -1))
        params[f"W{l}"], layouts[f"W{l}"], names[f"W{l}"] = (
            (value if layout == "out_in" else value.T),
            layout,
            _name(leaf),
        )
        if leaf.grad is not None:
            grad = run.arrays[leaf.grad].reshape(value.shape)
            grads[f"dW{l}"] = grad if layout == "out_in" else grad.T
    if biases:
        if len(biases) != len(weights):
            return None
        for l, leaf in enumerate(biases, start=1):
            bias = run.arrays[leaf.value].reshape(-1)
            if bias.size != params[f"W{l}"].shape[0]:
                return None
            params[f"b{l}"], names[f"b{l}"] = bias, _name(leaf)
            if leaf.grad is not None:
                grads[f"db{l}"] = run.arrays[leaf.grad].reshape(-1)
    return params, layouts, names, grads


def _replay(x: np.ndarray, params: dict, grads: dict, loss: np.ndarray | None, by_gradients: bool) -> str | None:
    """The hidden activation under which the MLP on `params` reproduces the recorded loss (sum or mean of
    squared errors against y = target(x)), else (`by_gradients`: when the recorded ops show no other
    difference, such as an output activation, which gradients cannot tell from a loss) the recorded
    gradients, whatever the loss and target; None."""
    y = mlp_regression.target(x)
    if loss is not None and loss.size == 1:
        value = float(loss.reshape(-1)[0])
        for activation in ACTIVATIONS:
            for reduction in mlp_regression.REDUCTIONS:
                expected = float(mlp_regression.scratch(x, y, params, activation, reduction)["loss"])
                if abs(expected - value) <= LOSS_RTOL * max(abs(value), 1e-12):
                    return activation
    return next((a for a in ACTIVATIONS if by_gradients and _gradients_fit(x, params, grads, a)), None)


def _gradients_fit(x: np.ndarray, params: dict, grads: dict, activation: str) -> bool:
    """Whether the recorded gradients are the MLP's for some dL/d(output) G: G is solved from the output
    layer's dW_L = Gᵀ a_(L-1), then every gradient is recomputed from it."""
    if set(grads) != {f"d{key}" for key in params}:
        return False
    L = len([key for key in params if key.startswith("W")])
    cache = mlp_regression.forward(x, params, activation)
    G = (grads[f"dW{L}"] @ np.linalg.pinv(cache[f"a{L - 1}"])).T  # (N, out)
    # a target that makes 2 (a_L − y) = G: the sum-of-squares backward then starts from G
    expected = mlp_regression.scratch(x, cache[f"a{L}"] - G / 2, params, activation, "sum")
    return all(_close(grads[key], expected[key]) for key in grads)


def _close(found: np.ndarray, expected: np.ndarray) -> bool:
    if found.size != expected.size:
        return False
    scale = max(float(np.max(np.abs(expected), initial=0.0)), float(np.max(np.abs(found), initial=0.0)), 1e-30)
    return float(np.max(np.abs(found.reshape(expected.shape) - expected), initial=0.0)) <= GRAD_RTOL * scale


def _layers(params: dict) -> list[int]:
    weights = [params[f"W{l}"] for l in range(1, len(params) + 1) if f"W{l}" in params]
    return [weights[0].shape[1], *(w.shape[0] for w in weights)]


def _name(leaf: GraphLeaf) -> str:
    return leaf.name or f"an unnamed {tuple(leaf.shape)} tensor"


def _variable(names: dict[str, str]) -> str:
    """How the net is named in reports: the tensors it is made of."""
    listed = [names[key] for key in sorted(names, key=lambda key: (int(key[1:]), key[0] != "W"))]  # W1, b1, W2, …
    return "tensors " + ", ".join(listed[:8]) + (", …" if len(listed) > 8 else "")
