"""Task 4: node names predicted from the architecture equal those torch 2.x actually builds."""

import pytest

from reference import autograd_graph, twins

DEPTHS = {  # hidden layers: 0 (a single Linear) to 4
    "0-hidden": [3, 1],
    "1-hidden": [2, 10, 1],
    "2-hidden": [2, 10, 10, 1],
    "3-hidden": [4, 3, 5, 2, 1],
    "4-hidden": [3, 6, 6, 6, 6, 2],
}


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("layers", DEPTHS.values(), ids=DEPTHS.keys())
def test_predicted_nodes_equal_the_graph_torch_builds(layers, activation, bias, reduction, batch):
    found = autograd_graph.scratch(layers, activation, bias, reduction)
    assert found == twins.autograd_graph_nodes(layers, activation, bias, reduction, batch=batch)


def test_the_classic_2_10_10_1_sigmoid_net_has_these_seventeen_nodes():
    assert autograd_graph.scratch([2, 10, 10, 1]) == [
        "AccumulateGrad", "AccumulateGrad", "AccumulateGrad",
        "AccumulateGrad", "AccumulateGrad", "AccumulateGrad",  # W1, b1, W2, b2, W3, b3
        "AddmmBackward0", "AddmmBackward0", "AddmmBackward0",  # one per Linear with a bias
        "PowBackward0",
        "SigmoidBackward0", "SigmoidBackward0",  # hidden layers only; the output is identity
        "SubBackward0",
        "SumBackward0",
        "TBackward0", "TBackward0", "TBackward0",  # Wᵀ inside each Linear
    ]  # fmt: skip


def test_without_biases_each_linear_is_a_matrix_product_with_one_leaf():
    found = autograd_graph.scratch([2, 10, 1], "relu", bias=False, reduction="mean")
    assert found == sorted(
        ["MeanBackward0", "PowBackward0", "SubBackward0", "ReluBackward0"]
        + ["MmBackward0", "TBackward0", "AccumulateGrad"] * 2
    )


@pytest.mark.parametrize("hidden", range(11))
def test_node_count_grows_by_five_per_hidden_layer_with_biases(hidden):
    layers = [2] + [3] * hidden + [1]
    assert len(autograd_graph.scratch(layers)) == 3 + 4 * (hidden + 1) + hidden


def test_the_answer_is_sorted_with_one_entry_per_node():
    found = autograd_graph.scratch([2, 4, 4, 1], "tanh")
    assert found == sorted(found)
    assert found.count("AccumulateGrad") == 6 and found.count("TanhBackward0") == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([2], "relu", True, "sum"), "at least"),
        (([2, 3, 1], "softplus", True, "sum"), "unknown activation"),
        (([2, 3, 1], "relu", True, "none"), "'sum' or 'mean'"),
    ],
)
def test_an_impossible_request_is_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        autograd_graph.scratch(*arguments)
