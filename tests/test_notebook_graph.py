"""Raw-tensor nets identified from the first backward pass's graph (grader/notebook/graph.py): notebooks run in
the real sandbox, their nets compared with the same cells run here."""

import numpy as np
import pytest
import torch

from grader.limits import Limits
from grader.notebook.graph import RawNet, found_text, grad_name, identify_raw_net, raw_grads
from grader.notebook.network import Net, identify_net
from grader.sandbox import Job, RunStatus

LIMITS = Limits(wall_seconds=30, cpu_seconds=30)
START = "import torch\nimport torch.nn.functional as F\nimport numpy as np\ntorch.manual_seed(17)\n"


def tensors(names: str, shapes: list[tuple]) -> str:
    """Source creating one random tensor with requires_grad per name."""
    return "".join(f"{name} = torch.randn{shape}.requires_grad_()\n" for name, shape in zip(names.split(), shapes))


LAYERS = [(10, 2), (10,), (10, 10), (10,), (1, 10), (1,)]  # W1, b1, W2, b2, W3, b3 in torch layout
RAW = START + tensors("w1 b1 w2 b2 w3 b3", LAYERS) + "x = torch.rand(1, 2)\ny = (x ** 2).sum(dim=1, keepdim=True) / 2\n"
IN_OUT = START + tensors("W1 B1 W2 B2 W3 B3", [shape[::-1] for shape in LAYERS]) + "X = torch.rand(4, 2)\n"
NOTEBOOKS = {
    "transposed": [
        RAW,
        "h = torch.sigmoid(torch.matmul(x, w1.t()) + b1)\nh = torch.sigmoid(h @ w2.T + b2)\n"
        "loss = ((h @ w3.T + b3 - y) ** 2).sum()\nloss.backward()\n",
    ],
    "in_out": [
        IN_OUT,
        "h = torch.relu(X @ W1 + B1)\nh = torch.relu(h @ W2 + B2)\n"
        "loss = F.mse_loss(h @ W3 + B3, (X ** 2).sum(1, keepdim=True) / 2)\nloss.backward()\n",
    ],
    "columns": [
        RAW,
        "xc, b1c, b2c = x.T, b1.detach().reshape(10, 1).requires_grad_(), b2.detach().reshape(10, 1).requires_grad_()\n"
        "h = torch.tanh(w1 @ xc + b1c)\nh = torch.tanh(w2 @ h + b2c)\n"
        "loss = ((w3 @ h + b3 - y) ** 2).sum()\nloss.backward()\n",
    ],
    "by_hand": [
        RAW,
        "sig = lambda z: 1 / (1 + torch.exp(-z))\nh = sig(F.linear(x, w1, b1))\nh = sig(F.linear(h, w2, b2))\n"
        "loss = F.mse_loss(F.linear(h, w3, b3), y, reduction='sum')\nloss.backward()\n",
    ],
    "other_target": [
        RAW,
        "h = torch.sigmoid(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2)\n"
        "loss = ((h @ w3.T + b3 - (x ** 2).sum()) ** 2).sum()\nloss.backward()\n",
    ],
    "sample_loop": [
        RAW,
        "xs = torch.rand(5, 2)\nloss = 0\nfor row in xs:\n"
        "    h = torch.sigmoid(torch.sigmoid(row @ w1.T + b1) @ w2.T + b2)\n"
        "    loss = loss + (h @ w3.T + b3 - (row ** 2).sum() / 2) ** 2\nloss.backward()\n",
    ],
    "x_requires_grad": [
        START + tensors("w1 b1 w2 b2 w3 b3", LAYERS) + "x = torch.rand(1, 2, requires_grad=True)\n",
        "y = (x[:, 0] ** 2 + x[:, 1] ** 2) / 2\nh = torch.sigmoid(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2)\n"
        "loss = ((h @ w3.T + b3 - y) ** 2).sum()\nloss.backward()\n",
    ],
    "x_requires_grad_in_out": [
        START
        + tensors("w1 b1 w2 b2 w3 b3", [shape[::-1] for shape in LAYERS])
        + "x = torch.rand(1, 2, requires_grad=True)\ny = (x.detach() ** 2).sum() / 2\n",
        "h = torch.sigmoid(torch.sigmoid(x @ w1 + b1) @ w2 + b2)\n"
        "loss = ((h @ w3 + b3 - y) ** 2).sum()\nloss.backward()\n",
    ],
    "softmax": [
        START + "x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])\n"
        "w1 = torch.randn(3, 4, requires_grad=True)\nw2 = torch.randn(4, 2, requires_grad=True)\n",
        "out = F.softmax(torch.matmul(F.relu(torch.matmul(x, w1)), w2), dim=1)\n"
        "loss = -torch.sum(torch.tensor([[0, 1], [1, 0]]) * torch.log(out))\nloss.backward()\n",
    ],
    "sums": [
        RAW,
        "v = x[0]\nlayer = lambda inp, w, b: torch.sum(w * inp) + b\n"
        "h = torch.sigmoid(layer(v, w1, b1))\nh = torch.sigmoid(layer(h, w2, b2))\n"
        "loss = (layer(h, w3, b3) - y[0]) ** 2\nloss.backward()\n",
    ],
    "no_activation": [
        RAW,
        "h = x @ w1.T + b1\nh = torch.sigmoid(h @ w2.T + b2)\n"
        "loss = ((h @ w3.T + b3 - y) ** 2).sum()\nloss.backward()\n",
    ],
    "output_activation": [
        RAW,
        "h = torch.sigmoid(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2)\n"
        "loss = ((torch.sigmoid(h @ w3.T + b3) - y) ** 2).sum()\nloss.backward()\n",
    ],
    "module": [
        START + "net = torch.nn.Sequential(torch.nn.Linear(2, 10), torch.nn.Tanh(), torch.nn.Linear(10, 10),\n"
        "                          torch.nn.Tanh(), torch.nn.Linear(10, 1))\nx = torch.rand(3, 2)\n",
        "loss = ((net(x) - (x ** 2).sum(1, keepdim=True) / 2) ** 2).sum()\nloss.backward()\n",
    ],
    "no_backward": [RAW],
}


@pytest.fixture(scope="module")
def runs(grading_sandbox):
    results = {}
    for name, cells in NOTEBOOKS.items():
        result = grading_sandbox.run(Job(filename=f"{name}.ipynb", cells=cells, observe=True, seed=1), LIMITS)
        assert result.status == RunStatus.ok, (name, result.message, result.detail)
        results[name] = result
    return results


def local(name: str) -> dict:
    namespace: dict = {}
    for cell in NOTEBOOKS[name]:
        exec(cell, namespace)
    return namespace


def numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().numpy()


def assert_net(net: RawNet, here: dict, weights: list[str], biases: list[str], transposed: bool) -> None:
    """The net's params and autograd's gradients are the local tensors', in torch layout."""
    for l, name in enumerate(weights, start=1):
        value, grad = numpy(here[name]), here[name].grad.double().numpy()
        expected, expected_grad = (value.T, grad.T) if transposed else (value, grad)
        np.testing.assert_array_equal(net.params[f"W{l}"], expected)
        np.testing.assert_allclose(net.grads[f"dW{l}"], expected_grad, rtol=1e-5, atol=1e-7)
        assert net.names[f"W{l}"] == name and net.layouts[f"W{l}"] == ("in_out" if transposed else "out_in")
    for l, name in enumerate(biases, start=1):
        np.testing.assert_array_equal(net.params[f"b{l}"], numpy(here[name]).reshape(-1))
        np.testing.assert_allclose(
            net.grads[f"db{l}"], here[name].grad.double().numpy().reshape(-1), rtol=1e-5, atol=1e-7
        )


RAW_NAMES = (["w1", "w2", "w3"], ["b1", "b2", "b3"])


def test_a_raw_net_written_with_transposes_is_the_2_10_10_1_sigmoid_mlp_of_its_tensors(runs):
    net, here = identify_raw_net(runs["transposed"]), local("transposed")
    assert net.layers == [2, 10, 10, 1] and net.activation == "sigmoid" and net.finding == "" and net.cell == 2
    assert_net(net, here, *RAW_NAMES, transposed=False)
    np.testing.assert_array_equal(net.x, numpy(here["x"]))
    assert net.variable == "tensors w1, b1, w2, b2, w3, b3"


def test_weights_stored_in_by_out_are_read_transposed_with_a_batch_a_mean_loss_and_relu(runs):
    net, here = identify_raw_net(runs["in_out"]), local("in_out")
    assert net.layers == [2, 10, 10, 1] and net.activation == "relu"
    assert_net(net, here, ["W1", "W2", "W3"], ["B1", "B2", "B3"], transposed=True)
    np.testing.assert_array_equal(net.x, numpy(here["X"]))
    assert "stored in×out (x @ W) and read transposed" in found_text(net)
    assert (
        grad_name(net, "W2") == "W2.grad, read in the transposed (in, out) layout" and grad_name(net, "b2") == "B2.grad"
    )


def test_a_column_layout_with_2_d_biases_and_tanh_is_read_as_rows(runs):
    net, here = identify_raw_net(runs["columns"]), local("columns")
    assert net.layers == [2, 10, 10, 1] and net.activation == "tanh"
    assert_net(net, here, ["w1", "w2", "w3"], ["b1c", "b2c", "b3"], transposed=False)
    np.testing.assert_array_equal(net.x, numpy(here["x"]))


def test_f_linear_a_sigmoid_written_out_and_mse_loss_are_an_mlp(runs):
    net, here = identify_raw_net(runs["by_hand"]), local("by_hand")
    assert net.activation == "sigmoid" and net.finding == ""
    assert_net(net, here, *RAW_NAMES, transposed=False)


def test_a_loss_on_another_target_still_shows_an_mlp_through_its_gradients(runs):
    net = identify_raw_net(runs["other_target"])
    assert net.layers == [2, 10, 10, 1] and net.activation == "sigmoid" and net.finding == ""


def test_a_loss_summed_over_samples_one_at_a_time_finds_the_batch_in_the_namespace(runs):
    net, here = identify_raw_net(runs["sample_loop"]), local("sample_loop")
    assert net.activation == "sigmoid"
    np.testing.assert_array_equal(net.x, numpy(here["xs"]))


@pytest.mark.parametrize("name", ["x_requires_grad", "x_requires_grad_in_out"])
def test_an_input_that_requires_grad_is_told_from_the_weights(runs, name):
    net, here = identify_raw_net(runs[name]), local(name)
    assert net.layers == [2, 10, 10, 1] and net.activation == "sigmoid" and "x" not in net.names.values()
    assert_net(net, here, *RAW_NAMES, transposed=name.endswith("in_out"))
    np.testing.assert_array_equal(net.x, numpy(here["x"]))


def test_a_softmax_classifier_without_biases_is_seen_as_its_layers_and_its_output_activation(runs):
    net = identify_raw_net(runs["softmax"])
    assert (
        net.layers == [3, 4, 2] and set(net.params) == {"W1", "W2"} and net.layouts == {"W1": "in_out", "W2": "in_out"}
    )
    assert net.activation is None and "the output layer has an activation (SoftmaxBackward0)" in net.finding


@pytest.mark.parametrize(
    "name, finding",
    [
        (
            "sums",
            "layer 1's pre-activation sums across neurons (SumBackward0 between MulBackward0 and SigmoidBackward0)",
        ),
        ("no_activation", "layer 1 has no activation"),
        ("output_activation", "the output layer has an activation (SigmoidBackward0) where an MLP's output is linear"),
    ],
)
def test_a_forward_that_is_not_an_mlp_says_where_it_first_differs(runs, name, finding):
    net, here = identify_raw_net(runs[name]), local(name)
    assert net.layers == [2, 10, 10, 1] and net.activation is None
    assert finding in net.finding and finding in found_text(net)
    assert found_text(net).startswith("2-10-10-1 from raw tensors, but its forward pass is not an MLP's: ")
    assert_net(net, here, *RAW_NAMES, transposed=False)  # autograd's gradients of the student's own forward


def test_a_module_nets_graph_gives_the_net_its_forward_calls_give(runs):
    run = runs["module"]
    module, raw = identify_net(run), identify_raw_net(run)
    assert raw.layers == module.layers == [2, 10, 10, 1] and raw.activation == module.activation == "tanh"
    for key, value in module.params.items():
        np.testing.assert_array_equal(raw.params[key], value)
    np.testing.assert_array_equal(raw.x, module.x)
    assert raw.names["W1"] == "net.0.weight"


def test_raw_gradients_come_in_the_form_of_a_modules(runs):
    net = identify_raw_net(runs["transposed"])
    grads = raw_grads(runs["transposed"], net)
    assert grads["cell"] == 2 and sorted(grads) == ["cell", "dW1", "dW2", "dW3", "db1", "db2", "db3"]
    assert grads["dW1"].shape == (10, 2)
    module = Net([2, 1], "sigmoid", np.zeros((1, 2)), {"W1": np.zeros((1, 2))}, {"W1": "0.weight"}, "net", 1)
    assert raw_grads(runs["transposed"], module) == {} and grad_name(module, "W1") == "net.0.weight.grad"
    assert found_text(module) == "2-1 with sigmoid"


def test_no_autograd_call_no_raw_net(runs):
    assert runs["no_backward"].backward == [] and identify_raw_net(runs["no_backward"]) is None
