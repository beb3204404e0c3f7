"""Notebook-mode shims for missing modules (sandbox/child/missing.py) and GPU notebooks (sandbox/child/gpu.py), in real
sandbox jobs: a placeholder for a module the sandbox lacks, failing only when used; real ImportErrors where
the student or a library asked for one; CUDA requests run on the CPU with the same gradients."""

import numpy as np
import pytest
import torch

from grader.limits import Limits
from grader.sandbox import Call, CellStatus, Job, RunStatus
from grader.sandbox.child.worker import load_modules
from grader.sandbox.process import SHIPPED, shipped_sources

LIMITS = Limits(wall_seconds=30, cpu_seconds=30)
SEED = 99
OURS = load_modules(
    {name: source for name, source in shipped_sources().items() if name in ("bpg_places", "bpg_missing", "bpg_gpu")}
)


def run(sandbox, cells: list[str]):
    result = sandbox.run(Job(filename="a1.ipynb", cells=cells, observe=True, seed=SEED), LIMITS)
    assert result.status == RunStatus.ok, (result.message, result.detail)
    return result


def events(cell) -> list[tuple]:
    return [(m.module, m.event, m.cell, m.line) for m in cell.missing_modules]


def test_the_shims_are_shipped_before_the_notebook_module_that_installs_them():
    order = list(SHIPPED)
    assert order.index("bpg_places") < order.index("bpg_missing") < order.index("bpg_gpu") < order.index("bpg_notebook")


PLACEHOLDERS = [
    "import tensorflow as tf\nimport numpy as np\nx = np.arange(3.0)\n",
    "from tensorflow import keras\nfrom tensorflow.keras import layers as L\nimport tensorflow.keras.layers\n"
    "print(repr(keras))\n",
    "keep = [tf.constant, keras, L.Dense]\n"
    "print(isinstance(x, tf.Tensor), tf.constant is tf.constant, getattr(tf, '__version__', 'none'))\n",
    "from google.colab import drive\nprint(getattr(drive, '__grader_shim__', False))\n",
    "y = x * 2\nt = tf.constant([1.0])\nz = 1\n",
    "try:\n    tf.zeros(2)\nexcept ModuleNotFoundError as error:\n    caught = str(error)\nprint(caught)\n",
]


def test_an_import_of_a_missing_module_binds_a_placeholder_that_fails_only_where_it_is_used(grading_sandbox):
    result = run(grading_sandbox, PLACEHOLDERS)
    cells = result.cells
    assert [c.status for c in cells] == [CellStatus.ok] * 4 + [CellStatus.raised, CellStatus.ok]
    assert events(cells[0]) == [("tensorflow", "imported", 1, 1)]
    assert "x" in {e.name for e in result.namespace if e.cell == 1}  # the rest of the cell ran
    assert cells[1].stdout == "<tensorflow.keras: module 'tensorflow' is not installed in the grading environment>\n"
    assert cells[2].stdout == "False True none\n" and events(cells[2]) == []  # kept in a list and observed: no use
    assert cells[3].stdout == "True\n"  # the Colab shim, earlier on sys.meta_path, still wins
    used = cells[4]
    assert (used.error_type, used.line, used.missing_module) == ("ModuleNotFoundError", 2, "tensorflow")
    assert events(used) == [("tensorflow", "used", 5, 2)]
    expected = (
        "No module named 'tensorflow' (not installed in the grading environment; it was imported in cell 1, line 1)"
    )
    assert expected in used.traceback and "sandbox" not in used.traceback
    assert {e.name for e in result.namespace if e.cell == 5} == {"y"}  # the cell stopped at the use
    assert cells[5].stdout == expected + "\n" and events(cells[5]) == []  # a later use is not recorded again


USES = [
    "tf()",
    "list(tf.data)",
    "tf.a + 1",
    "1 - tf.a",
    "tf.a @ tf.b",
    "tf.a[0]",
    "len(tf.a)",
    "bool(tf.a)",
    "tf.a < 1",
    "-tf.a",
    "float(tf.a)",
    "tf.a.b = 1",
    "with tf.a:\n    pass",
    "class M(tf.keras.Model):\n    pass",
    "for item in tf.a:\n    pass",
    "1 in tf.a",
]


def test_every_kind_of_use_of_a_placeholder_raises_module_not_found_error(grading_sandbox):
    result = run(grading_sandbox, ["import tensorflow as tf\n", *(use + "\n" for use in USES)])
    assert result.cells[0].status == CellStatus.ok
    assert [(c.error_type, c.missing_module) for c in result.cells[1:]] == [
        ("ModuleNotFoundError", "tensorflow")
    ] * len(USES)


GUARDED = [
    "try:\n    import cupy as cp\nexcept ImportError:\n    cp = None\nprint(cp)\n",
    "try:\n    import cupy\nexcept Exception:\n    print('no cupy')\n",
    "try:\n    from cupy import ndarray\nexcept (AttributeError, ModuleNotFoundError):\n    print('no cupy')\n",
    "import contextlib\nwith contextlib.suppress(ImportError):\n    import cupy\nprint('cupy' in dir())\n",
    "def load():\n    import cupy\n    return cupy\n",
    "try:\n    load()\nexcept ImportError as error:\n    print(type(error).__name__)\n",
    "import importlib, importlib.util\nprint(importlib.util.find_spec('sklearn') is None)\n"
    "try:\n    importlib.import_module('sklearn')\nexcept ImportError:\n    print('real')\n",
    "import winreg\n",  # the standard library's (Windows only)
    "import bpg_absent\n",  # the sandbox's own prefix
    "import grader\n",
    "from . import helpers\n",
    "try:\n    import cupy\nexcept ValueError:\n    pass\nprint(repr(cupy))\n",
]


def test_a_guarded_import_a_library_import_and_names_that_are_not_the_students_get_the_real_import_error(
    grading_sandbox,
):
    result = run(grading_sandbox, GUARDED)
    cells = result.cells
    assert [c.stdout for c in cells[:7]] == [
        "None\n",
        "no cupy\n",
        "no cupy\n",
        "False\n",
        "",
        "ModuleNotFoundError\n",
        "True\nreal\n",
    ]
    assert [(c.error_type, c.missing_module) for c in cells[7:11]] == [
        ("ModuleNotFoundError", "winreg"),
        ("ModuleNotFoundError", "bpg_absent"),
        ("ModuleNotFoundError", "grader"),
        ("ImportError", None),
    ]
    assert all(events(c) == [] for c in cells[:11])
    # a handler that cannot catch ImportError does not guard the import
    assert cells[11].stdout == "<module 'cupy': not installed in the grading environment>\n"
    assert events(cells[11]) == [("cupy", "imported", 12, 2)]


def test_a_contract_job_gets_no_placeholder(grading_sandbox):
    source = "import tensorflow as tf\ndef f(x):\n    return {'y': x}\n"
    result = grading_sandbox.run(
        Job(filename="a1.py", cells=[source], calls=[Call(id="f", function="f", args=[])]), LIMITS
    )
    assert result.status == RunStatus.import_error and "tensorflow" in result.message


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("try:\n    import a\n    import b\nexcept ImportError:\n    pass\nimport c\n", {2, 3}),
        ("try:\n    import a\nexcept:\n    pass\n", {2}),
        ("try:\n    import a\nexcept (KeyError, ValueError):\n    pass\n", set()),
        ("try:\n    import a\nexcept MyError:\n    pass\n", {2}),  # not a built-in: it may be ImportError's alias
        ("try:\n    import a\nexcept* ModuleNotFoundError:\n    pass\n", {2}),
        ("from contextlib import suppress\nwith suppress(OSError, ImportError):\n    import a\n", {3}),
        ("import contextlib\nwith contextlib.suppress(KeyError):\n    import a\n", set()),
        ("def f(:\n", set()),
    ],
)
def test_the_lines_guarded_against_import_errors_are_read_from_the_ast(source, lines):
    assert OURS["bpg_missing"].guarded_lines(source) == lines


@pytest.mark.parametrize(
    ("source", "asks"),
    [
        ("device = 'cuda'\n", True),
        ("x = x.cuda()\n", True),
        ("x = x.to('cuda:0')\n", True),
        ("net.to(torch.device('cuda'))\n", True),
        ("device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n", False),
        ("if torch.cuda.is_available():\n    net.cuda()\n", False),
        ("use = torch.cuda.is_available()\ndevice = 'cuda' if use else 'cpu'\n", True),  # not recognised as a test
        ("torch.cuda.manual_seed(0)\nprint(torch.cuda.is_available())\n", False),
        ("x = torch.zeros(2)\n", False),
        ("x.cuda(\n", True),  # does not compile: "cuda" in it is enough
    ],
)
def test_a_notebook_asks_for_a_gpu_when_it_names_cuda_outside_an_is_available_test(source, asks):
    assert OURS["bpg_gpu"].asks_for_gpu(["import torch\n", source]) is asks


GPU = [
    "import torch\nimport torch.nn as nn\nprint(torch.cuda.is_available())\ndevice = 'cuda'\n",
    f"torch.manual_seed({SEED})\nnet = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1)).to(device)\n"
    "x = torch.rand(4, 2).cuda()\ny = torch.ones(4, 1, device=device)\n",
    "loss = ((net(x) - y) ** 2).sum()\nloss.backward()\n",
    "moved = [x.to('cuda:0'), x.to(torch.device('cuda')), x.to(device=device), x.to(0), x.cuda(0),\n"
    "         x.to('cuda', torch.float64), torch.zeros(2, device=torch.device('cuda')), torch.randn(2, device='cuda:0'),\n"
    "         torch.tensor([1.0], device=device), x.new_zeros(2, device=device), nn.Linear(2, 2, device=device).weight,\n"
    "         net.cuda()[0].weight, net.to('cuda')[0].weight]\n"
    "print(sorted({str(t.device) for t in moved}), torch.cuda.is_available(), x.is_cuda)\n",
    "torch.save(net.state_dict(), 'net.pt')\nstate = torch.load('net.pt', map_location='cuda')\n"
    "print(sorted({str(v.device) for v in state.values()}))\n",
]


def expected_gradients() -> dict[str, np.ndarray]:
    """The GPU notebook's gradients, computed here on the CPU without any device."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 1))
        x = torch.rand(4, 2)
    ((net(x) - torch.ones(4, 1)) ** 2).sum().backward()
    return {name: p.grad.double().numpy() for name, p in net.named_parameters()}


def test_a_notebook_written_for_a_gpu_runs_on_the_cpu_with_the_same_gradients(grading_sandbox):
    result = run(grading_sandbox, GPU)
    assert all(c.status == CellStatus.ok for c in result.cells), [c.message for c in result.cells]
    assert result.cells[0].stdout == "False\n"
    assert result.cells[3].stdout == "['cpu'] False False\n" and result.cells[4].stdout == "['cpu']\n"
    request = result.cells[1].gpu_request
    assert (request.cell, request.line) == (2, 2) and request.call.startswith("net = nn.Sequential(")
    assert [c.cell for c in result.cells if c.gpu_request is not None] == [2]  # the first request only
    snapshot = next(s for s in result.grads if s.cell == 3 and s.variable == "net")
    for name, value in expected_gradients().items():
        np.testing.assert_allclose(result.arrays[snapshot.grads[name]], value, rtol=1e-5, atol=1e-7)


def test_a_notebook_that_falls_back_to_the_cpu_itself_runs_as_written_without_the_mode(grading_sandbox):
    cells = [
        "import torch\nfrom torch.overrides import _get_current_function_mode_stack\n"
        "device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\nx = torch.ones(2).to(device)\n"
        "print(device, len(_get_current_function_mode_stack()))\n"
    ]
    result = run(grading_sandbox, cells)
    assert result.cells[0].stdout == "cpu 0\n" and result.cells[0].gpu_request is None
