"""A student's net as it ran: its hidden activations described and compared with the handout's in words."""

from grader.notebook.activations import describe, differences

DEEP = [10] + [21] * 10 + [1]
SEED_002 = [10] + [21] * 11 + [1]


def test_a_net_with_its_first_linear_left_without_relu_is_described_as_such():
    assert describe(("identity",) + ("relu",) * 10) == "relu after every hidden layer but layer 1 (no activation)"
    assert (
        describe(("tanh", "identity", "relu", "tanh"))
        == "tanh after every hidden layer but layers 2 (no activation) and 3 (relu)"
    )
    assert describe("sigmoid") == "sigmoid" and describe(None) == "an activation that could not be identified"


def test_the_differences_name_the_extra_layer_and_the_missing_activation():
    found = differences(DEEP, "relu", SEED_002, ("identity",) + ("relu",) * 10)
    assert found == "12 linear layers where 11 were asked (one more); no activation after layer 1"
    assert differences([2, 10, 10, 1], "sigmoid", [2, 10, 5, 1], "sigmoid") == "other layer widths"
    assert differences([2, 10, 10, 1], "sigmoid", [2, 10, 10, 1], "tanh") == "tanh where sigmoid was asked"
    assert differences(DEEP, "relu", DEEP, "relu") == ""
