"""Torch-autograd twins of every task: the same quantities as the numpy scratch code, by `.backward()`.

A twin never differentiates by hand; its gradients come from autograd alone, so agreement with the
hand-written chain rule (to ~1e-12 in float64) is evidence about the mathematics, not an echo of it.
Inputs and outputs are numpy float64 arrays with the same keys as the scratch functions; the inputs are
copied into fresh tensors and never modified. Each twin runs under `torch.enable_grad()`, so it works
even when called inside `torch.no_grad()`, and leaves torch's global RNG alone.

The canonical mlp is what students build: torch.nn.Linear layers (float64), torch.sigmoid / torch.relu /
torch.tanh between them (one name for all hidden layers, or one per layer, "identity" for none), identity
output, loss = ((prediction − y)**2).sum() or .mean().
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference.dropout_training import check_drop_probability
from reference.mlp_regression import Activations, check_reduction, count_layers, target
from reference.softmax_classifier import has_biases

Array = np.ndarray

TORCH_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "tanh": torch.tanh,
}


def to_tensor(a: Array, requires_grad: bool = False) -> Tensor:
    """A float64 tensor holding a copy of `a` (so nothing done to it reaches the caller's array)."""
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=requires_grad)


def to_numpy(t: Tensor) -> Array:
    """A float64 numpy copy of `t`, detached from the graph."""
    return t.detach().cpu().numpy().astype(np.float64, copy=True)


def torch_activation(name: str) -> Callable[[Tensor], Tensor]:
    """torch.sigmoid / torch.relu / torch.tanh by name; "identity": the layer's output as it is."""
    if name == "identity":
        return lambda t: t
    if name not in TORCH_ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of: {', '.join(TORCH_ACTIVATIONS)}")
    return TORCH_ACTIVATIONS[name]


def build_mlp(layers: Sequence[int], bias: bool) -> list[nn.Linear]:
    """float64 nn.Linear layers [d → h1 → … → out], uninitialised (skip_init spares torch's RNG)."""
    return [
        nn.utils.skip_init(nn.Linear, n_in, n_out, bias=bias, dtype=torch.float64)
        for n_in, n_out in zip(layers[:-1], layers[1:])
    ]


def run_mlp(linears: Sequence[nn.Linear], activation: Activations, x: Tensor) -> Tensor:
    """The canonical forward pass: activation after every Linear but the last (one name for all hidden
    layers, or one per hidden layer)."""
    names = [activation] * (len(linears) - 1) if isinstance(activation, str) else list(activation)
    if len(names) != len(linears) - 1:
        raise ValueError(f"activation: expected one name per hidden layer ({len(linears) - 1}), found {names}")
    a = x
    for l, linear in enumerate(linears, start=1):
        a = linear(a)
        if l < len(linears):
            a = torch_activation(names[l - 1])(a)
    return a


def squared_error(prediction: Tensor, y: Tensor, reduction: str) -> Tensor:
    """((prediction − y)**2).sum() or .mean(), written as students write it."""
    check_reduction(reduction)
    squared = (prediction - y) ** 2
    return squared.sum() if reduction == "sum" else squared.mean()


def mlp_regression(
    x: Array, y: Array, params: Mapping[str, Array], activation: Activations = "sigmoid", reduction: str = "sum"
) -> dict[str, Array]:
    """prediction, loss, dW_l (and db_l) of task 1 from autograd on the canonical nn.Linear net."""
    L, bias = count_layers(params)
    layers = [np.shape(params["W1"])[1]] + [np.shape(params[f"W{l}"])[0] for l in range(1, L + 1)]
    with torch.enable_grad():
        linears = build_mlp(layers, bias)
        with torch.no_grad():
            for l, linear in enumerate(linears, start=1):
                linear.weight.copy_(to_tensor(params[f"W{l}"]))
                if bias:
                    linear.bias.copy_(to_tensor(params[f"b{l}"]))
        prediction = run_mlp(linears, activation, to_tensor(x))
        loss = squared_error(prediction, to_tensor(y), reduction)
        loss.backward()
    out = {"prediction": to_numpy(prediction), "loss": to_numpy(loss)}
    for l, linear in enumerate(linears, start=1):
        out[f"dW{l}"] = to_numpy(linear.weight.grad)
        if bias:
            out[f"db{l}"] = to_numpy(linear.bias.grad)
    return out


def _classifier(
    x: Array,
    y: Array,
    params: Mapping[str, Array],
    mask: Array | None,
    p: float,
    reduction: str,
) -> dict[str, Array]:
    """Forward with optional inverted dropout after the ReLU, then torch.autograd.grad on the loss."""
    check_reduction(reduction)
    names = ["W1", "W2"] + (["b1", "b2"] if has_biases(params) else [])
    with torch.enable_grad():
        theta = {name: to_tensor(params[name], requires_grad=True) for name in names}
        h = torch.relu(F.linear(to_tensor(x), theta["W1"], theta.get("b1")))
        if mask is not None:
            h = h * (to_tensor(mask) / (1.0 - p))  # F.dropout's noise tensor: mask / (1 − p)
        z2 = F.linear(h, theta["W2"], theta.get("b2"))
        loss = F.cross_entropy(z2, to_tensor(y), reduction=reduction)  # y as class probabilities
        grads = torch.autograd.grad(loss, [theta[name] for name in names])
    out = {"probs": to_numpy(torch.softmax(z2, dim=1)), "loss": to_numpy(loss)}
    out.update({f"d{name}": to_numpy(g) for name, g in zip(names, grads)})
    return out


def softmax_classifier(x: Array, y: Array, params: Mapping[str, Array], reduction: str = "sum") -> dict[str, Array]:
    """probs, loss, dW1, dW2 (and db1, db2) of task 2 from autograd, with F.cross_entropy."""
    return _classifier(x, y, params, None, 0.0, reduction)


def dropout_step(
    x: Array, y: Array, params: Mapping[str, Array], mask: Array, p: float, reduction: str = "sum"
) -> dict[str, Array]:
    """Task 3's single pass through the given keep-mask, gradients from autograd."""
    check_drop_probability(p)
    return _classifier(x, y, params, mask, p, reduction)


def dropout_train(
    x: Array, y: Array, params: Mapping[str, Array], masks: Array, p: float, lr: float, reduction: str = "sum"
) -> dict[str, Array]:
    """Task 3's training: each epoch `loss.backward()` through masks[e], then P ← P − lr·P.grad."""
    check_reduction(reduction)
    check_drop_probability(p)
    names = ["W1", "W2"] + (["b1", "b2"] if has_biases(params) else [])
    X, Y, M = to_tensor(x), to_tensor(y), to_tensor(masks)
    losses = []
    with torch.enable_grad():
        theta = {name: to_tensor(params[name], requires_grad=True) for name in names}
        for e in range(M.shape[0]):
            h = torch.relu(F.linear(X, theta["W1"], theta.get("b1")))
            h = h * (M[e] / (1.0 - p))
            z2 = F.linear(h, theta["W2"], theta.get("b2"))
            loss = F.cross_entropy(z2, Y, reduction=reduction)
            losses.append(loss.item())
            loss.backward()
            with torch.no_grad():  # plain SGD: torch.optim's first step imports torch._dynamo, not needed here
                for P in theta.values():
                    P -= lr * P.grad
                    P.grad = None
    out = {name: to_numpy(P) for name, P in theta.items()}
    out["losses"] = np.array(losses, dtype=np.float64)
    return out


def graph_node_names(root: torch.autograd.graph.Node) -> list[str]:
    """Sorted class names of every node reachable from `root` through next_functions.

    A node is counted once, however many paths reach it (identity of the node object; torch hands out
    the same Python object for a node while it is alive, and `seen` keeps them alive). Edges to inputs
    that need no gradient are None and add nothing.
    """
    seen: dict[int, torch.autograd.graph.Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return sorted(type(node).__name__ for node in seen.values())


def autograd_graph_nodes(
    layers: Sequence[int],
    activation: str = "sigmoid",
    bias: bool = True,
    reduction: str = "sum",
    batch: int = 1,
) -> list[str]:
    """Node names of loss.grad_fn's graph for the canonical mlp on a deterministic (batch, d) input."""
    if len(layers) < 2:
        raise ValueError(f"layers: expected at least [inputs, outputs], found {list(layers)}")
    rng = np.random.default_rng(0)  # deterministic values; the graph does not depend on them
    with torch.enable_grad():
        linears = build_mlp(layers, bias)
        with torch.no_grad():
            for linear in linears:
                for P in linear.parameters():
                    k = 1.0 / np.sqrt(linear.in_features)
                    P.copy_(to_tensor(rng.uniform(-k, k, size=tuple(P.shape))))
        x = rng.uniform(size=(batch, layers[0]))
        prediction = run_mlp(linears, activation, to_tensor(x))
        loss = squared_error(prediction, to_tensor(np.repeat(target(x), layers[-1], axis=1)), reduction)
        return graph_node_names(loss.grad_fn)
