"""The node names a notebook listed for loss.grad_fn's graph, read from its output and compared with its graph."""

from grader.notebook.kinds.graph import _compare, listed_nodes

GRAPH = [
    "PowBackward0",
    "SubBackward0",
    "AddmmBackward0",
    "AccumulateGrad",
    "TBackward0",
    "AccumulateGrad",
    "ReluBackward0",
    "AddmmBackward0",
    "AccumulateGrad",
    "TBackward0",
    "AccumulateGrad",
]


def test_names_are_read_from_lists_node_reprs_and_fn_name_but_not_from_tensor_reprs():
    text = (
        "tensor([[0.2544]], grad_fn=<AddmmBackward0>)\n"
        "['PowBackward0', 'torch::autograd::AccumulateGrad']\n"
        "((<SubBackward0 object at 0x7f2e60233010>, 0),)\n"
    )
    assert listed_nodes(text) == ["PowBackward0", "AccumulateGrad", "SubBackward0"]


def test_every_node_or_every_kind_once_passes_in_torch_1_or_2_names():
    assert _compare(GRAPH, GRAPH) == (True, "all 11 nodes named")
    typed = ["PowBackward", "SubBackward", "AddmmBackward", "ReluBackward", "TBackward", "AccumulateGrad"]
    assert _compare(typed, GRAPH) == (True, "every kind of node named (6 kinds, 11 nodes)")


def test_a_list_without_the_leaves_or_with_a_node_the_graph_lacks_fails_saying_which():
    passed, message = _compare([n for n in GRAPH if n != "AccumulateGrad"] + ["SigmoidBackward0"], GRAPH)
    assert not passed and "missing AccumulateGrad" in message and "not in the graph: SigmoidBackward" in message
    passed, message = _compare(GRAPH + ["ReluBackward0"], GRAPH)
    assert not passed and "ReluBackward0 listed 2 times where the graph has 1" in message
