"""The autograd graph of a notebook's first backward pass, read as a net: which leaf is a weight or a bias,
how each weight was used (its layout), the order of layers, and where the recorded ops differ from an MLP's.

Works on grader.sandbox.records.BackwardRecord (recorded by grader/sandbox/child/graph.py): nodes in topological
order from the loss, each with its inputs as indices of later nodes. Node names are torch's autograd class
names (torch 2.x: 'MmBackward0', 'AddmmBackward0', …). Free of torch, as the grading process is.
"""

from grader.sandbox.records import BackwardRecord, GraphLeaf

# Ops that only reshape or lay out their input; the transposing ones flip a weight's layout.
TRANSPOSING = {"TBackward0", "PermuteBackward0", "TransposeBackward0", "TransposeBackward1"}
LAYOUT = TRANSPOSING | {
    "ViewBackward0",
    "ReshapeAliasBackward0",
    "UnsafeViewBackward0",
    "UnsqueezeBackward0",
    "SqueezeBackward0",
    "SqueezeBackward1",
    "SqueezeBackward2",
    "SqueezeBackward3",
    "SqueezeBackward4",
    "ExpandBackward0",
    "CloneBackward0",
    "ToCopyBackward0",
    "AliasBackward0",
}
# Matrix products, by the input slot of their left and right operand (h @ W: W is the right one).
PRODUCTS = {
    "MmBackward0": (0, 1),
    "AddmmBackward0": (1, 2),
    "MvBackward0": (0, 1),
    "BmmBackward0": (0, 1),
    "DotBackward0": (0, 1),
    "MatmulBackward0": (0, 1),
}
ADDS = {"AddBackward0"}
ACTIVATIONS = {"SigmoidBackward0": "sigmoid", "ReluBackward0": "relu", "TanhBackward0": "tanh"}
OTHER_ACTIVATIONS = {
    "SoftmaxBackward0",
    "LogSoftmaxBackward0",
    "LeakyReluBackward0",
    "EluBackward0",
    "SoftplusBackward0",
    "GeluBackward0",
    "SiluBackward0",
    "HardtanhBackward0",
}
BY_HAND = {"ExpBackward0"}  # 1 / (1 + exp(-z)) and friends: an activation written out
FULL_REDUCTIONS = {"SumBackward0": "sums", "MeanBackward0": "averages"}  # over every element
LOSS_OPS = {"SubBackward0", "RsubBackward0", "RsubBackward1", "MseLossBackward0", "L1LossBackward0"}


class Graph:
    """Consumers and depth (longest distance from the loss) of each node of one record."""

    def __init__(self, record: BackwardRecord):
        self.record = record
        self.names = [node.name for node in record.nodes]
        self.consumers: list[list[tuple[int, int]]] = [[] for _ in record.nodes]
        self.depth = [0] * len(record.nodes)
        for i, node in enumerate(record.nodes):  # topological: every consumer comes before its inputs
            for slot, j in enumerate(node.inputs):
                if j >= 0:
                    self.consumers[j].append((i, slot))
                    self.depth[j] = max(self.depth[j], self.depth[i] + 1)

    def use(self, node: int) -> tuple[int, int, bool] | None:
        """(op, input slot, transposed on the way) of the first op past layout ops that consumes `node`."""
        transposed = False
        for _ in range(32):
            if node < 0 or not self.consumers[node]:
                return None
            node, slot = self.consumers[node][0]
            if self.names[node] not in LAYOUT:
                return node, slot, transposed
            transposed ^= self.names[node] in TRANSPOSING
        return None

    def role(self, leaf: GraphLeaf) -> tuple[str, str | None]:
        """('bias', None), ('weight', the layout its use shows: 'out_in' or 'in_out'), or ('other', None) for
        a leaf no product or sum takes (an input or target that requires grad, used on its own); without
        nodes, by its number of dimensions."""
        use = self.use(leaf.node) if self.names else None
        if use is None:
            return ("weight" if len(leaf.shape) == 2 else "bias"), None
        op, slot, transposed = use
        name = self.names[op]
        if name in ADDS or (name == "AddmmBackward0" and slot == 0):
            return "bias", None
        if name in PRODUCTS and slot in PRODUCTS[name]:
            natural = "in_out" if slot == PRODUCTS[name][1] else "out_in"  # h @ W, or W @ h
        elif name == "MulBackward0":
            natural = "out_in"  # (w * x).sum(dim=1): each row of w is a neuron
        else:
            return "other", None
        return "weight", ({"in_out": "out_in", "out_in": "in_out"}[natural] if transposed else natural)

    def paired(self, weights: list[GraphLeaf]) -> list[GraphLeaf]:
        """Weights that share their product with another weight: one of each pair is an input that requires
        grad (x @ w1.T with x.requires_grad)."""
        products = [use[0] if self.names and (use := self.use(w.node)) else -1 for w in weights]
        return [w for w, p in zip(weights, products) if p >= 0 and products.count(p) > 1]

    def order(self, leaves: list[GraphLeaf]) -> list[GraphLeaf]:
        """Leaves from the input side on: deepest first (the leaves' own order reversed without nodes)."""
        if not self.names:
            return list(reversed(leaves))
        return sorted(leaves, key=lambda leaf: -self.depth[leaf.node])

    def path(self, start: int, stop: int | None) -> list[str]:
        """Names of the ops from `start` (excluded) toward the loss, up to `stop` (excluded) or the loss."""
        names, node = [], start
        for _ in range(64):
            if node < 0 or not self.consumers[node]:
                break
            node = self.consumers[node][0][0]
            if node == stop:
                break
            if self.names[node] not in LAYOUT:
                names.append(self.names[node])
        return names


def difference(graph: Graph, weights: list[GraphLeaf]) -> str:
    """Where the recorded ops, from the input on, first differ from an MLP's (hidden layers: a product, a
    bias, an activation; the output: a product and a bias), in words for the student; '' when they do not."""
    if not graph.names:
        return ""
    products = [use[0] if (use := graph.use(w.node)) else -1 for w in weights]
    for layer, product in enumerate(products, start=1):
        if product < 0:
            return ""
        stop = products[layer] if layer < len(products) else None
        ops, name = graph.path(product, stop), graph.names[product]
        if name == "MulBackward0" and ops[:1] == ["SumBackward1"]:
            ops = ops[1:]  # (w * x).sum(dim=1): a product written out
        if layer == len(products):
            ops = ops[: next((i for i, op in enumerate(ops) if op in LOSS_OPS), len(ops))]
            act = next((op for op in ops if op in ACTIVATIONS or op in OTHER_ACTIVATIONS), None)
            return f"the output layer has an activation ({act}) where an MLP's output is linear" if act else ""
        act = next(
            (i for i, op in enumerate(ops) if op in ACTIVATIONS or op in OTHER_ACTIVATIONS or op in BY_HAND), None
        )
        reduced = next((i for i, op in enumerate(ops) if op in FULL_REDUCTIONS), None)
        if reduced is not None:
            what, where = FULL_REDUCTIONS[ops[reduced]], "pre-activation" if act is None or reduced < act else "output"
            between = f"between {name} and {ops[act]}" if act is not None and reduced < act else f"after {name}"
            return (
                f"layer {layer}'s {where} {what} across neurons ({ops[reduced]} {between}): one number for "
                f"the whole layer, where each neuron sums over its own inputs only"
            )
        if act is None:
            return f"layer {layer} has no activation (after {name}, the next layer's product follows)"
        if ops[act] in OTHER_ACTIVATIONS:
            return f"layer {layer}'s activation is {ops[act]}, not sigmoid, ReLU or tanh"
    return ""
