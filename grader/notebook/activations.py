"""The hidden activations of a student's net as it ran: one for every hidden layer, or one per layer.

Students' nets are not always the MLP the handout describes: seed 002's `nn.Sequential` has one more
`Linear` than asked and no ReLU after the first. Such a net is graded as it is (DESIGN §5: "its gradients
are still judged against its own net"), so the activation of each hidden layer is found and proven: a
candidate is taken only when the forward pass with it reproduces the output the module's forward call
returned, and autograd's gradients when the net has them. Candidates: the ops that follow each layer's
product in the first backward pass's graph (when that graph is this net's); one activation for every
layer (the usual net); one activation for every layer but one left without. `"identity"` names a layer without activation, as
`reference.mlp_regression` does.
"""

from collections.abc import Iterator

import numpy as np

from grader.notebook.graph_ops import ACTIVATIONS as GRAPH_ACTIVATIONS
from grader.notebook.graph_ops import OTHER_ACTIVATIONS, Graph
from grader.sandbox import RunResult
from reference import mlp_regression

NAMES = ("sigmoid", "relu", "tanh")
Activation = str | tuple[str, ...]  # one name for every hidden layer, or one per hidden layer


def hidden_activation(
    run: RunResult,
    weight_names: list[str],
    x: np.ndarray,
    params: dict[str, np.ndarray],
    output: np.ndarray | None,
    grads: dict[str, np.ndarray],
) -> Activation | None:
    """The activation(s) under which the MLP on `params` reproduces `output` from `x` and, when `grads`
    (autograd's, torch layout) are given, those gradients too; else the first that reproduces the output
    (gradients read after training steps are another net's); else None. The output alone cannot always
    tell: a deep ReLU net's output barely depends on its first layers. `weight_names` are the full names
    of the net's weights as the namespace reaches them ('net.0.weight')."""
    from grader.notebook.graph import _gradients_fit  # gradients against an MLP's, whatever the loss (it imports Net)

    if output is None:
        return None
    L = len([key for key in params if key.startswith("W")])
    first = None
    for candidate in _candidates(run, weight_names, L):
        prediction = mlp_regression.forward(x, params, candidate)[f"a{L}"]
        if prediction.size != output.size or not np.allclose(
            prediction.reshape(output.shape), output, rtol=1e-4, atol=1e-6
        ):
            continue
        candidate = candidate if isinstance(candidate, str) or len(set(candidate)) > 1 else candidate[0]
        if not grads or _gradients_fit(x, params, grads, candidate):
            return candidate
        first = first or candidate
    return first


def _candidates(run: RunResult, weight_names: list[str], L: int) -> Iterator[Activation]:
    from_graph = graph_activations(run, weight_names) if L >= 2 else None
    if from_graph is not None:
        yield from_graph  # the ops the net ran, when the first backward pass is this net's
    yield from NAMES
    if L < 2:
        return
    for name in NAMES:
        for layer in range(L - 1):
            yield tuple("identity" if l == layer else name for l in range(L - 1))


def graph_activations(run: RunResult, weight_names: list[str]) -> tuple[str, ...] | None:
    """The activation after each hidden layer's product in the first backward pass's graph, when its leaves
    are these weights: the first activation op on the way to the next layer's product, 'identity' when
    there is none; None when the graph is not this net's, or a layer has an activation other than sigmoid,
    ReLU or tanh."""
    if not run.backward or not run.backward[0].nodes:
        return None
    record = run.backward[0]
    graph = Graph(record)
    leaves = {leaf.name: leaf for leaf in record.leaves if leaf.name}
    if len(weight_names) < 2 or any(name not in leaves for name in weight_names):
        return None
    products = [use[0] if (use := graph.use(leaves[name].node)) else -1 for name in weight_names]
    if -1 in products:
        return None
    found = []
    for layer, product in enumerate(products[:-1]):
        ops = graph.path(product, products[layer + 1])
        act = next((op for op in ops if op in GRAPH_ACTIVATIONS or op in OTHER_ACTIVATIONS), None)
        if act in OTHER_ACTIVATIONS:
            return None
        found.append(GRAPH_ACTIVATIONS[act] if act else "identity")
    return tuple(found)


def describe(activation: Activation | None) -> str:
    """In words for the report: 'relu', or 'relu after every hidden layer but layer 1 (no activation)'."""
    if activation is None:
        return "an activation that could not be identified"
    if isinstance(activation, str):
        return activation
    main = mlp_regression.main_activation(activation)
    if main == "identity":
        return "no activation after any hidden layer"
    others = [(layer, name) for layer, name in enumerate(activation, start=1) if name != main]
    listed = _and([f"{layer} ({'no activation' if name == 'identity' else name})" for layer, name in others])
    return f"{main} after every hidden layer but layer{'s' if len(others) > 1 else ''} {listed}"


def differences(wanted_layers: list[int], wanted: str, layers: list[int], activation: Activation | None) -> str:
    """What differs between the asked net and the one that ran, in words: the number of linear layers,
    their widths, layers without (or with another) activation; '' when nothing a count can say differs."""
    said = []
    asked, built = len(wanted_layers) - 1, len(layers) - 1
    if built != asked:
        more = (
            "one more"
            if built == asked + 1
            else "one fewer"
            if built == asked - 1
            else f"{abs(built - asked)} {'more' if built > asked else 'fewer'}"
        )
        said.append(f"{built} linear layers where {asked} were asked ({more})")
    elif layers != wanted_layers:
        said.append("other layer widths")
    if isinstance(activation, tuple):
        bare = [layer for layer, name in enumerate(activation, start=1) if name == "identity"]
        if bare:
            said.append(f"no activation after layer{'s' if len(bare) > 1 else ''} {_and([str(l) for l in bare])}")
        other = sorted({name for name in activation if name not in ("identity", wanted)})
        if other:
            said.append(f"{_and(other)} where {wanted} was asked")
    elif activation is not None and activation != wanted:
        said.append(f"{activation} where {wanted} was asked")
    return "; ".join(said)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
