"""Notebook mode, child side, in the real sandbox: the first autograd call's graph (grader/sandbox/child/graph.py)
and values kept inside the student's objects (grader/sandbox/child/names.py), validated on the grader side."""

import json

import numpy as np
import pytest
import torch

from grader.limits import Limits
from grader.sandbox import Job, RunStatus
from grader.sandbox.observed import parse_run
from grader.sandbox.process import frame
from grader.sandbox.wire import ResultInvalid
from reference import twins

SEED = 4321
LIMITS = Limits(wall_seconds=30, cpu_seconds=30)
WEIGHTS = """import torch
import numpy as np
torch.manual_seed(5)
w1 = torch.randn(10, 2, requires_grad=True)
b1 = torch.randn(10, requires_grad=True)
w2 = torch.randn(10, 10, requires_grad=True)
b2 = torch.randn(10, requires_grad=True)
w3 = torch.randn(1, 10, requires_grad=True)
b3 = torch.randn(1, requires_grad=True)
x = torch.rand(1, 2)
y = (x ** 2).sum(dim=1, keepdim=True) / 2
"""
FORWARD = """h1 = torch.sigmoid(torch.matmul(x, w1.t()) + b1)
h2 = torch.sigmoid(h1 @ w2.T + b2)
loss = ((h2 @ w3.T + b3 - y) ** 2).sum()
"""
TRAIN = """for step in range(3):
    loss = ((torch.sigmoid(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2) @ w3.T + b3 - y) ** 2).sum()
    loss.backward()
    with torch.no_grad():
        for p in (w1, b1, w2, b2, w3, b3):
            p -= 0.1 * p.grad
            p.grad.zero_()
"""


def run(sandbox, cells: list[str], **kwargs):
    result = sandbox.run(Job(filename="a.ipynb", cells=cells, observe=True, seed=SEED, **kwargs), LIMITS)
    assert result.status == RunStatus.ok, (result.message, result.detail, result.stderr)
    return result


def local(cells: list[str]) -> dict:
    """The same cells run here, in this process: what the sandbox should have seen."""
    namespace: dict = {}
    for cell in cells:
        exec(cell, namespace)
    return namespace


@pytest.fixture(scope="module")
def raw_run(bwrap_sandbox):
    return run(bwrap_sandbox, [WEIGHTS, FORWARD + "loss.backward()\n", TRAIN], counterfactual=1.5)


def test_the_first_backward_of_a_raw_tensor_net_records_its_nodes_in_topological_order(raw_run):
    [record] = raw_run.backward
    assert record.cell == 2 and record.call == "Tensor.backward()" and not record.truncated
    here = local([WEIGHTS, FORWARD])
    assert sorted(n.name for n in record.nodes) == twins.graph_node_names(here["loss"].grad_fn)
    assert record.nodes[0].name == "SumBackward0"  # the loss itself first
    assert all(i < j for i, node in enumerate(record.nodes) for j in node.inputs if j != -1)
    assert np.isclose(raw_run.arrays[record.loss], here["loss"].item(), rtol=1e-6)


def test_its_leaves_hold_their_names_initial_values_and_gradients(raw_run):
    [record] = raw_run.backward
    here = local([WEIGHTS, FORWARD])
    here["loss"].backward()
    leaves = {leaf.name: leaf for leaf in record.leaves}
    assert set(leaves) == {"w1", "b1", "w2", "b2", "w3", "b3"}  # named as the namespace reaches them
    for name, leaf in leaves.items():
        tensor = here[name]
        assert leaf.shape == list(tensor.shape) and leaf.dtype == "float32"
        assert record.nodes[leaf.node].name == "AccumulateGrad"
        np.testing.assert_array_equal(raw_run.arrays[leaf.value], tensor.detach().double().numpy())  # before training
        np.testing.assert_allclose(raw_run.arrays[leaf.grad], tensor.grad.double().numpy(), rtol=1e-5, atol=1e-7)


def test_the_input_is_found_among_the_constants_the_graph_saved(raw_run):
    [record] = raw_run.backward
    x = local([WEIGHTS])["x"].double().numpy()
    assert any(np.array_equal(raw_run.arrays[s.array], x) for s in record.saved)
    first_product = record.nodes[next(s.node for s in record.saved if np.array_equal(raw_run.arrays[s.array], x))]
    assert first_product.name == "MmBackward0" and first_product.inputs[0] == -1


def test_the_weights_of_a_transposed_use_sit_behind_a_layout_op_of_their_product(raw_run):
    [record] = raw_run.backward
    w1 = next(leaf for leaf in record.leaves if leaf.name == "w1")
    consumer = next(i for i, node in enumerate(record.nodes) if w1.node in node.inputs)
    assert record.nodes[consumer].name in ("TBackward0", "PermuteBackward0")
    product = next(node for node in record.nodes if consumer in node.inputs)
    assert product.name == "MmBackward0" and product.inputs.index(consumer) == 1


def test_only_the_first_autograd_call_is_recorded_and_only_once(bwrap_sandbox):
    result = run(bwrap_sandbox, [WEIGHTS, TRAIN, FORWARD + "loss.backward()\n"])
    [record] = result.backward
    assert record.cell == 2
    w1 = next(leaf for leaf in record.leaves if leaf.name == "w1")
    np.testing.assert_array_equal(result.arrays[w1.value], local([WEIGHTS])["w1"].detach().double().numpy())


def test_leaves_are_named_inside_containers_objects_and_modules_and_when_rebound_as_they_were(bwrap_sandbox):
    cells = [
        WEIGHTS
        + """params = {'W1': torch.randn(10, 2, requires_grad=True)}
class Holder:
    pass
holder = Holder()
holder.bias = torch.randn(10, requires_grad=True)
net = torch.nn.Linear(10, 10)
""",
        """def hidden(h):
    v = torch.ones(10, requires_grad=True)  # local to the function: no name reaches it
    return torch.sigmoid(net(h) * v)
loss = ((torch.sigmoid(x @ params['W1'].T + holder.bias) @ w2.T) @ w3.T - y).pow(2).sum() + hidden(b2).sum()
loss.backward()
w3 = w3.detach() * 2
""",
    ]
    [record] = run(bwrap_sandbox, cells).backward
    names = {leaf.name for leaf in record.leaves}
    assert names == {"params['W1']", "holder.bias", "w2", "w3", "b2", "net.weight", "net.bias", None}


def test_torch_autograd_grad_records_the_gradients_it_returned(bwrap_sandbox):
    result = run(bwrap_sandbox, [WEIGHTS, FORWARD + "g1, g3 = torch.autograd.grad(loss, [w1, w3])\n"])
    [record] = result.backward
    here = local([WEIGHTS, FORWARD])
    expected = dict(zip(("w1", "w3"), torch.autograd.grad(here["loss"], [here["w1"], here["w3"]])))
    assert record.call == "torch.autograd.grad()"
    for leaf in record.leaves:
        if leaf.name in expected:
            np.testing.assert_allclose(
                result.arrays[leaf.grad], expected[leaf.name].double().numpy(), rtol=1e-5, atol=1e-7
            )
        else:
            assert leaf.grad is None  # not asked for: autograd.grad fills no .grad


def test_a_graph_too_large_to_send_keeps_its_leaves_and_says_so(bwrap_sandbox):
    cells = [WEIGHTS + "s = w1.sum()\nfor i in range(3100):\n    s = s + 1\ns.backward()\n"]
    result = run(bwrap_sandbox, cells)
    [record] = result.backward
    assert record.truncated and record.nodes == [] and [leaf.name for leaf in record.leaves] == ["w1"]
    assert record.leaves[0].node == -1 and result.arrays[record.leaves[0].grad].shape == (10, 2)


def test_a_custom_autograd_function_with_any_name_is_recorded(bwrap_sandbox):
    cells = [
        WEIGHTS
        + """class Ünïcode_Sqr(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t * t
    @staticmethod
    def backward(ctx, g):
        t, = ctx.saved_tensors
        return 2 * t * g
Ünïcode_Sqr.apply(x @ w1.T).sum().backward()
print(w1.grad.shape)
"""
    ]
    result = run(bwrap_sandbox, cells)
    [record] = result.backward
    assert "Ünïcode_SqrBackward" in {node.name for node in record.nodes}
    assert result.cells[0].stdout == "torch.Size([10, 2])\n"


STUDENT_OBJECTS = """import numpy as np
import torch

class MLP:
    def __init__(self):
        self.W1 = np.ones((2, 10))
    def backward(self):
        self.dW1 = np.full((2, 10), 0.5)
        self.grads = {'dW2': np.full((10, 10), 0.25), 'epoch': 3}
        self._private = np.zeros(3)
        return self.dW1 * 2, self.dW1 * 3

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(2, 10)
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.register_buffer('mask', torch.ones(10))
        self.dW1 = torch.full((10, 2), 0.125)

model = MLP()
kept = model.backward()
gw1, gw1_again = model.backward()
net = Net()
"""


def test_arrays_kept_as_attributes_of_the_students_objects_are_observed_with_their_owner(bwrap_sandbox):
    result = run(bwrap_sandbox, [STUDENT_OBJECTS])
    names = {entry.name: result.arrays[entry.array] for entry in result.namespace}
    np.testing.assert_array_equal(names["model.dW1"], np.full((2, 10), 0.5))
    np.testing.assert_array_equal(names["model.grads['dW2']"], np.full((10, 10), 0.25))
    np.testing.assert_array_equal(names["net.dW1"], np.full((10, 2), 0.125))
    np.testing.assert_array_equal(names["kept[0]"], np.ones((2, 10)))  # a returned tuple, kept whole
    np.testing.assert_array_equal(names["gw1_again"], np.full((2, 10), 1.5))  # and unpacked
    assert {"model.W1", "net.fc1", "net.scale", "net.mask", "model._private"} & set(names) == {"model.W1"}


def test_a_namespace_flooded_with_objects_is_examined_within_its_caps(bwrap_sandbox):
    cells = [
        """import numpy as np
class Box:
    pass
boxes = []
for i in range(3000):
    box = Box()
    for j in range(300):
        setattr(box, f"a{j}", np.full(2, float(j)))
    globals()[f"box{i}"] = box
print('ok')
"""
    ]
    result = run(bwrap_sandbox, cells)
    assert result.cells[0].stdout == "ok\n"
    assert any("attributes of the notebook's objects" in note for note in result.notes)
    assert sum(entry.name.startswith("box") for entry in result.namespace) <= 500


# --- the grader's validation of graph records -----------------------------------------------------


def _stream(*parts) -> bytes:
    return b"".join(frame(p if isinstance(p, bytes) else json.dumps(p).encode()) for p in parts)


def _backward(**changes) -> dict:
    record = {
        "cell": 1,
        "call": "Tensor.backward()",
        "loss": "a0",
        "truncated": False,
        "saved": [],
        "nodes": [{"name": "SumBackward0", "inputs": [1]}, {"name": "AccumulateGrad", "inputs": []}],
        "leaves": [{"node": 1, "name": "w", "shape": [2], "dtype": "float32", "value": "a0", "grad": "a0"}],
    }
    return {**record, **changes}


def _cell(backward: dict) -> dict:
    return {
        "kind": "cell",
        "cell": 1,
        "status": "ok",
        "line": None,
        "error_type": "",
        "error": "",
        "traceback": "",
        "exit_code": None,
        "missing_module": None,
        "name_errors": [],
        "memory": False,
        "stdout": "",
        "seconds": 0.1,
        "forward_calls": [],
        "grads": [],
        "namespace": [],
        "notes": [],
        "backward": [backward],
        "arrays": {"a0": {"name": "v0", "shape": [2]}},
    }


FILES = {"kind": "files", "files": {}, "skipped": {}, "notes": []}
JOB = Job(filename="a.ipynb", cells=["x = 1"], observe=True)


def test_a_well_formed_graph_record_is_read():
    _, _, observed = parse_run(_stream(_cell(_backward()), np.ones(2).tobytes(), FILES, b""), JOB, LIMITS)
    [record] = observed.cells[0].backward
    assert [n.name for n in record.nodes] == ["SumBackward0", "AccumulateGrad"] and record.leaves[0].name == "w"


@pytest.mark.parametrize(
    "changes, reason",
    [
        (
            {"nodes": [{"name": "SumBackward0", "inputs": [0]}, {"name": "AccumulateGrad", "inputs": []}]},
            "not a later node",
        ),
        (
            {"nodes": [{"name": "SumBackward0", "inputs": [5]}, {"name": "AccumulateGrad", "inputs": []}]},
            "not a later node",
        ),
        (
            {"leaves": [{"node": 0, "name": "w", "shape": [2], "dtype": "float32", "value": "a0", "grad": None}]},
            "AccumulateGrad",
        ),
        (
            {"leaves": [{"node": 1, "name": "w", "shape": [2], "dtype": "float32", "value": "a9", "grad": None}]},
            "undefined arrays",
        ),
        ({"saved": [{"node": 7, "slot": "self", "array": "a0"}]}, "not sent"),
        ({"cell": 2}, "another cell"),
        ({"call": "eval()"}, "backward.0.call"),
    ],
)
def test_forged_graph_records_are_rejected(changes, reason):
    with pytest.raises(ResultInvalid, match=reason):
        parse_run(_stream(_cell(_backward(**changes)), np.ones(2).tobytes(), FILES, b""), JOB, LIMITS)
