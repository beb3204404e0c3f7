"""Task 4, autograd_graph: the nodes of `loss.grad_fn`'s graph, predicted from the architecture alone.

The net is task 1's, built the canonical way (`reference.twins.autograd_graph_nodes`): torch.nn.Linear
layers, torch.sigmoid / torch.relu / torch.tanh between them, identity output, and
loss = ((prediction − y)**2).sum() or .mean(), on a batch input x of shape (N, d), N ≥ 1.

Reasoning, walking back from the loss (x and y do not require grad, so they add no node):
- the reduction is one SumBackward0 or MeanBackward0, the square one PowBackward0, the difference
  one SubBackward0;
- each nn.Linear on a 2-D input with a bias is torch.addmm(b, a, Wᵀ): one AddmmBackward0, whose Wᵀ is a
  TBackward0; without a bias it is a @ Wᵀ: one MmBackward0 and one TBackward0;
- each parameter tensor (every W_l, and b_l when present) is a leaf: one AccumulateGrad;
- each hidden activation is one SigmoidBackward0, ReluBackward0 or TanhBackward0.
The graph is a chain with leaves hanging off it, so no node is reached by two paths; a node is counted
once however many paths reach it. Nothing depends on N.
"""

from __future__ import annotations

from collections.abc import Sequence

ACTIVATION_NODES: dict[str, str] = {
    "sigmoid": "SigmoidBackward0",
    "relu": "ReluBackward0",
    "tanh": "TanhBackward0",
}
REDUCTION_NODES: dict[str, str] = {"sum": "SumBackward0", "mean": "MeanBackward0"}


def scratch(
    layers: Sequence[int],
    activation: str = "sigmoid",
    bias: bool = True,
    reduction: str = "sum",
) -> list[str]:
    """Sorted names of the nodes of loss.grad_fn's graph, one entry per node, for `layers` = [d, …, out]."""
    if len(layers) < 2:
        raise ValueError(f"layers: expected at least [inputs, outputs], found {list(layers)}")
    if activation not in ACTIVATION_NODES:
        raise ValueError(f"unknown activation {activation!r}; expected one of: {', '.join(ACTIVATION_NODES)}")
    if reduction not in REDUCTION_NODES:
        raise ValueError(f"unknown reduction {reduction!r}; expected 'sum' or 'mean'")
    L = len(layers) - 1  # number of Linear layers
    nodes = [REDUCTION_NODES[reduction], "PowBackward0", "SubBackward0"]  # loss = reduce((pred − y)²)
    for l in range(1, L + 1):
        if bias:
            nodes += ["AddmmBackward0", "TBackward0", "AccumulateGrad", "AccumulateGrad"]  # addmm(b, a, Wᵀ)
        else:
            nodes += ["MmBackward0", "TBackward0", "AccumulateGrad"]  # a @ Wᵀ
        if l < L:
            nodes.append(ACTIVATION_NODES[activation])  # hidden activation; the output is identity
    return sorted(nodes)
