"""Notebook mode (Job.observe) end to end in the real bubblewrap sandbox: keep going, shims, redirected
paths, observation of forward calls, gradients, namespace and files, caps, and strict validation."""

import io
import json

import numpy as np
import pytest
import torch

from grader.limits import Limits
from grader.notebook.saved_outputs import first_difference
from grader.sandbox import Call, CallStatus, CellStatus, Job, RunStatus
from grader.sandbox.channel import Asked
from grader.sandbox.observed import parse_run
from grader.sandbox.process import frame
from grader.sandbox.wire import ResultInvalid

SEED = 1234
LIMITS = Limits(wall_seconds=20, cpu_seconds=20)
IMPORTS = "import numpy as np\nimport torch\nimport torch.nn as nn\n"
MODEL = """class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 10)
        self.fc2 = nn.Linear(10, 10)
        self.fc3 = nn.Linear(10, 1)

    def forward(self, x):
        h1 = torch.sigmoid(self.fc1(x))
        h2 = torch.sigmoid(self.fc2(h1))
        return self.fc3(h2)

net = Net()
x = torch.rand(1, 2)
y = (x ** 2).sum(dim=1, keepdim=True) / 2
criterion = nn.MSELoss(reduction="sum")
"""
BACKWARD = """prediction = net(x)
loss = criterion(prediction, y)
loss.backward()
display(loss)
"""
SAVE = """grads = {"dW1": net.fc1.weight.grad.numpy().copy(), "db1": net.fc1.bias.grad.numpy().copy()}
dW1 = grads["dW1"]
np.savetxt("/content/drive/MyDrive/A1/torch_autograd.dat", dW1)
with open("/content/drive/MyDrive/A1/my_autograd.dat", "w") as f:
    f.write("dW1\\n" + str(dW1))
"""
TRAIN = """optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for step in range(10):
    optimizer.zero_grad()
    criterion(net(x), y).backward()
    optimizer.step()
"""
CELLS = [
    IMPORTS,
    "from google.colab import drive\ndrive.mount('/content/drive')\n",
    "get_ipython().run_line_magic('matplotlib', 'inline')\nimport pandas as pd\nimport seaborn as sns\n",
    MODEL,
    BACKWARD,
    SAVE,
    "weights = net.fc1.weight.detach().numpy()\nweights @ np.ones(3)  # raises: shapes do not align\n",
    "points = np.loadtxt('/content/drive/MyDrive/A1/points.csv', delimiter=',')\nprint(open('readme.txt').read())\n",
    TRAIN,
    "from IPython.display import display as show, HTML\nshow(HTML('<b>done</b>'))\nprint('trained')\n",
]
INPUTS = {"points.csv": b"0.25,0.75\n", "readme.txt": b"hello from the student"}


def notebook_job(cells=CELLS, **kwargs) -> Job:
    return Job(filename="a1.ipynb", cells=cells, observe=True, seed=SEED, files=kwargs.pop("files", INPUTS), **kwargs)


def expected_run() -> dict:
    """What the notebook computes, recomputed here under the same seed."""
    namespace: dict = {}
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        exec(IMPORTS + MODEL, namespace)
    net, x, y = namespace["net"], namespace["x"], namespace["y"]
    initial = {name: p.detach().double().numpy().copy() for name, p in net.named_parameters()}
    namespace["criterion"](net(x), y).backward()
    grads = {name: p.grad.double().numpy().copy() for name, p in net.named_parameters()}
    return {"x": x.double().numpy(), "initial": initial, "grads": grads, "dW1": net.fc1.weight.grad.numpy().copy()}


@pytest.fixture(scope="module")
def observed_run(bwrap_sandbox):
    result = bwrap_sandbox.run(notebook_job(), LIMITS)
    assert result.status == RunStatus.ok, (result.message, result.detail, result.stderr)
    return result


def test_every_cell_runs_in_order_and_a_failing_cell_is_recorded_while_the_rest_still_run(observed_run):
    cells = observed_run.cells
    assert [c.cell for c in cells] == list(range(1, 11))
    assert [c.status for c in cells] == [CellStatus.ok] * 6 + [CellStatus.raised] + [CellStatus.ok] * 3
    failed = cells[6]
    assert failed.error_type == "ValueError" and failed.line == 2
    assert failed.message.startswith("ValueError: matmul")
    assert failed.traceback.startswith('Traceback (most recent call last):\n  File "<cell 7>", line 2')
    assert "sandbox" not in failed.traceback
    assert cells[-1].stdout == "<b>done</b>\ntrained\n"


def test_a_missing_module_is_recorded_with_its_cell_and_an_unused_import_does_not_stop_the_rest(observed_run):
    cell = observed_run.cells[2]  # pandas and seaborn are bound as placeholders (sandbox/child/missing.py), never used
    assert cell.status == CellStatus.ok
    assert [(m.module, m.event, m.cell, m.line) for m in cell.missing_modules] == [
        ("pandas", "imported", 3, 2),
        ("seaborn", "imported", 3, 3),
    ]
    assert all(c.missing_module is None and (c.cell == 3) == bool(c.missing_modules) for c in observed_run.cells)
    assert observed_run.cells[-1].status == CellStatus.ok


def test_colab_drive_magics_and_display_work_and_are_noted(observed_run):
    notes = observed_run.notes
    assert any(n.startswith("cell 2: drive.mount('/content/drive') did nothing") for n in notes)
    assert "cell 3: %matplotlib inline was not run (magics never run here)" in notes
    assert observed_run.cells[1].stdout == "Mounted at /content/drive\n"
    assert (
        observed_run.cells[4].stdout.startswith("tensor(")
        and "grad_fn=<MseLossBackward0>" in observed_run.cells[4].stdout
    )


def test_the_first_forward_call_records_the_seeded_initial_weights_and_the_input(observed_run):
    expected = expected_run()
    calls = [c for c in observed_run.forward_calls if c.module == "Net"]
    first = calls[0]
    assert (first.cell, first.variable, first.index) == (5, "net", 0)
    assert set(first.params) == set(expected["initial"])
    for name, value in expected["initial"].items():
        np.testing.assert_array_equal(observed_run.arrays[first.params[name]], value)
    np.testing.assert_array_equal(observed_run.arrays[first.input], expected["x"])
    assert {c.module for c in observed_run.forward_calls} == {"Net", "MSELoss"}  # nested fc1/fc2/fc3 are not top level


def test_training_loops_keep_the_first_three_calls_and_the_last_with_the_total_count(observed_run):
    calls = [c for c in observed_run.forward_calls if c.module == "Net"]
    assert [c.index for c in calls] == [0, 1, 2, 10]
    assert all(c.total_calls == 11 for c in calls)
    assert [c.cell for c in calls] == [5, 9, 9, 9]
    first, last = calls[0], calls[-1]
    assert not np.array_equal(
        observed_run.arrays[last.params["fc1.weight"]], observed_run.arrays[first.params["fc1.weight"]]
    )
    assert first.input == last.input  # the same x: one array, shared by key


def test_gradient_snapshots_hold_the_autograd_gradients_after_the_backward_cell_and_after_training(observed_run):
    expected = expected_run()
    snapshots = [s for s in observed_run.grads if s.variable == "net"]
    assert [s.cell for s in snapshots] == [4, 5, 9]
    assert snapshots[0].grads == {} and snapshots[0].module == "Net"
    after_backward = snapshots[1]
    assert set(after_backward.grads) == set(expected["grads"])
    for name, value in expected["grads"].items():  # float32 gradients computed in another process: within noise
        np.testing.assert_allclose(observed_run.arrays[after_backward.grads[name]], value, rtol=1e-5, atol=1e-9)
    trained = snapshots[2]
    assert set(trained.grads) == set(expected["grads"])
    assert not np.array_equal(observed_run.arrays[trained.params["fc1.weight"]], expected["initial"]["fc1.weight"])


def test_namespace_arrays_are_recorded_by_name_cell_kind_and_dtype_when_new_or_changed(observed_run):
    expected = expected_run()
    entries = {(e.name, e.cell): e for e in observed_run.namespace}
    dW1 = entries[("dW1", 6)]
    assert (dW1.kind, dW1.dtype, dW1.requires_grad) == ("ndarray", "float32", False)
    np.testing.assert_allclose(observed_run.arrays[dW1.array], expected["dW1"], rtol=1e-5, atol=1e-9)
    assert entries[("grads['dW1']", 6)].array == dW1.array
    assert entries[("x", 4)].kind == "tensor" and entries[("x", 4)].dtype == "float32"
    assert entries[("loss", 5)].requires_grad
    np.testing.assert_array_equal(observed_run.arrays[entries[("points", 8)].array], [0.25, 0.75])
    assert [e.cell for e in observed_run.namespace if e.name == "x"] == [4]  # unchanged later: not repeated


def test_writes_to_colab_drive_paths_land_in_the_work_directory_and_come_back_with_their_bytes(observed_run):
    dW1 = expected_run()["dW1"]
    assert set(observed_run.files) == {"my_autograd.dat", "torch_autograd.dat"}
    assert first_difference("dW1\n" + str(dW1), observed_run.files["my_autograd.dat"].decode()) is None
    np.testing.assert_allclose(
        np.loadtxt(io.BytesIO(observed_run.files["torch_autograd.dat"])), dW1, rtol=1e-5, atol=1e-9
    )
    assert observed_run.file_sizes == {name: len(data) for name, data in observed_run.files.items()}
    assert (
        "cell 6: '/content/drive/MyDrive/A1/torch_autograd.dat' was written as 'torch_autograd.dat'"
        in observed_run.notes
    )


def test_input_files_are_visible_to_the_notebook_and_reads_of_drive_paths_find_them(observed_run):
    assert observed_run.cells[7].stdout == "hello from the student\n"
    assert "cell 8: '/content/drive/MyDrive/A1/points.csv' was read from 'points.csv'" in observed_run.notes
    assert "points.csv" not in observed_run.files and "readme.txt" not in observed_run.files  # unchanged inputs


def test_the_same_notebook_gives_the_same_observations_every_time(bwrap_sandbox, observed_run):
    again = bwrap_sandbox.run(notebook_job(), LIMITS)

    def comparable(result):
        data = result.model_dump(exclude={"wall_seconds", "usage", "arrays"})
        for cell in data["cells"]:
            cell.pop("seconds")
        return data

    assert comparable(again) == comparable(observed_run)
    assert again.arrays.keys() == observed_run.arrays.keys()
    for key, value in again.arrays.items():
        np.testing.assert_array_equal(value, observed_run.arrays[key])


EXITS = [
    IMPORTS + "model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid())\nout = model(torch.ones(1, 2))\n"
    "torch.save(model.state_dict(), '/content/drive/MyDrive/model.pt')\n",
    "import sys\nsys.exit(2)\n",
    "x = 1\ndef broken(:\n    pass\n",
    "frame = pd.DataFrame()\n",
    "kept = np.arange(3.0)\n",
    "import os\nopen('/content/out.txt', 'w').write('before exit')\nos._exit(3)\n",
    "never = 1\n",
]


def test_sys_exit_ends_only_its_cell_and_os_exit_ends_the_run_keeping_what_was_observed(bwrap_sandbox):
    result = bwrap_sandbox.run(notebook_job(EXITS, files={}), LIMITS)
    assert result.status == RunStatus.exited and result.exit_code == 3
    assert (result.cell, result.line) == (6, 3)
    assert "cells after it did not run" in result.message
    assert [c.status for c in result.cells] == [
        CellStatus.ok,
        CellStatus.exited,
        CellStatus.syntax_error,
        CellStatus.raised,
        CellStatus.ok,
        CellStatus.exited,
    ]
    assert result.cells[1].exit_code == 2 and "sys.exit(2) ended this cell" in result.cells[1].message
    assert result.cells[2].line == 2 and result.cells[2].message.startswith("syntax error: ")
    assert result.cells[3].name_errors == ["pd"] and result.cells[3].message == "NameError: name 'pd' is not defined"
    assert result.cells[5].error_type == "os._exit"
    assert [c.variable for c in result.forward_calls] == ["model"]
    assert set(result.forward_calls[0].params) == {"0.weight", "0.bias"}
    assert "kept" in {e.name for e in result.namespace}
    assert sorted(result.files) == ["model.pt", "out.txt"] and result.files["out.txt"] == b"before exit"
    assert result.files["model.pt"].startswith(b"PK")  # a torch zip archive, never unpickled here
    assert "cell 1: '/content/drive/MyDrive/model.pt' was written as 'model.pt'" in result.notes


def test_notebook_mode_observes_the_same_without_namespaces_in_fallback_mode(fallback_sandbox, bwrap_sandbox):
    results = [sandbox.run(notebook_job(EXITS, files={}), LIMITS) for sandbox in (fallback_sandbox, bwrap_sandbox)]
    fallback, bwrap = (
        r.model_dump(exclude={"wall_seconds", "usage", "arrays", "protections", "detail"}) for r in results
    )
    for data in (fallback, bwrap):
        for cell in data["cells"]:
            cell.pop("seconds")
    assert fallback == bwrap and results[0].files["out.txt"] == b"before exit"


def test_a_cell_over_the_time_limit_keeps_the_cells_before_it(bwrap_sandbox):
    cells = ["a = 1.5 * __import__('numpy').ones(2)\n", "while True:\n    pass\n", "b = 2\n"]
    result = bwrap_sandbox.run(notebook_job(cells, files={}), Limits(wall_seconds=1.5, cpu_seconds=30))
    assert result.status == RunStatus.timeout
    assert result.cell == 2 and "while running a1.ipynb, cell 2" in result.message
    assert [c.cell for c in result.cells] == [1]
    assert [e.name for e in result.namespace] == ["a"]


HOSTILE = [
    "import numpy as np\nopen('big.bin', 'wb').write(b'x' * (50 << 20))\nopen('small.txt', 'w').write('ok')\n",
    "many = [np.full(3, float(i)) for i in range(10000)]\n"
    "for i in range(10000):\n    globals()[f'v{i}'] = np.full(2, float(i))\n",
    "import torch\nlayer = torch.nn.Linear(2, 2)\nout = layer(torch.ones(1, 2))\n",
]


def test_a_hostile_notebook_is_capped_with_notes_and_a_correct_job_afterwards_is_unaffected(bwrap_sandbox):
    result = bwrap_sandbox.run(notebook_job(HOSTILE, files={}), LIMITS)
    assert result.status == RunStatus.ok, (result.message, result.detail)
    assert all(c.status == CellStatus.ok for c in result.cells)
    assert result.files == {"small.txt": b"ok"} and result.file_sizes["big.bin"] == 50 << 20
    assert any("'big.bin' (50.0 MiB) was written but not collected" in n for n in result.notes)
    assert any("only the first 200 items of 'many' were examined" in n for n in result.notes)
    assert any(n.startswith("observation capped: at most 80 arrays of namespace") for n in result.notes)
    assert len(result.arrays) <= 256 and len(result.namespace) <= 80
    assert [c.variable for c in result.forward_calls] == ["layer"]  # observation still works after the flood
    source = "import numpy as np\ndef forward(x):\n    return {'h': np.tanh(x)}\n"
    x = np.random.default_rng(0).normal(size=(2, 3))
    for _ in range(2):  # both slots
        contract = bwrap_sandbox.run(
            Job(
                filename="a1.py", cells=[source], arrays={"x": x}, calls=[Call(id="f", function="forward", args=["x"])]
            ),
            LIMITS,
        )
        assert contract.status == RunStatus.ok and contract.calls["f"].status == CallStatus.ok
        np.testing.assert_array_equal(contract.calls["f"].values["h"], np.tanh(x))
        assert contract.cells == [] and contract.notes == [] and contract.arrays == {}


def test_graded_calls_still_run_after_a_notebook_whose_cells_failed(bwrap_sandbox):
    cells = ["import numpy as np\ndef f(x):\n    return {'twice': 2 * x}\n", "1 / 0\n"]
    job = Job(
        filename="a1.ipynb",
        cells=cells,
        observe=True,
        arrays={"x": np.arange(3.0)},
        calls=[Call(id="f", function="f", args=["x"])],
    )
    result = bwrap_sandbox.run(job, LIMITS)
    assert result.status == RunStatus.ok and result.cells[1].error_type == "ZeroDivisionError"
    np.testing.assert_array_equal(result.calls["f"].values["twice"], [0.0, 2.0, 4.0])


def test_contract_jobs_see_no_shims_and_get_their_input_files(bwrap_sandbox):
    source = (
        "import builtins, os\ndef probe():\n    return {'shims': [str(hasattr(builtins, 'get_ipython')),"
        " str(hasattr(builtins, 'display'))], 'text': [open('data.txt').read()]}\n"
    )
    result = bwrap_sandbox.run(
        Job(filename="a1.py", cells=[source], files={"data.txt": b"given"}, calls=[Call(id="p", function="probe")]),
        LIMITS,
    )
    assert result.status == RunStatus.ok, result.detail
    assert result.calls["p"].texts == {"shims": ["False", "False"], "text": ["given"]}


@pytest.mark.parametrize("name", ["a/b.dat", "..", ".", "", "x\\y", "bad\x00name"])
def test_input_file_names_must_be_plain_names(name):
    with pytest.raises(ValueError, match="plain file name"):
        Job(filename="a.ipynb", cells=[""], files={name: b"1"})


def _stream(*parts) -> bytes:
    return b"".join(frame(p if isinstance(p, bytes) else json.dumps(p).encode()) for p in parts)


def _raw(*arrays) -> bytes:
    """Arrays as the child sends them: float64 bytes laid end to end."""
    return b"".join(np.asarray(a, dtype="<f8").tobytes() for a in arrays)


def _cell(number=1, **changes) -> dict:
    record = {
        "kind": "cell",
        "cell": number,
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
        "notes": [],
        "namespace": [
            {"cell": number, "name": "x", "array": "a0", "kind": "ndarray", "requires_grad": False, "dtype": "float64"}
        ],
        "arrays": {"a0": {"name": "v0", "shape": [2]}},
    }
    return {**record, **changes}


FILES = {"kind": "files", "files": {"out.dat": 2}, "skipped": {}, "notes": []}
SUMMARY = {
    "kind": "cells",
    "status": "ok",
    "cell": None,
    "line": None,
    "error_type": "",
    "error": "",
    "traceback": "",
    "exit_code": None,
}


def test_a_well_formed_notebook_stream_is_read():
    job = Job(filename="a.ipynb", cells=["x = 1"], observe=True)
    results, truncated, observed = parse_run(
        _stream(_cell(), _raw(np.ones(2)), FILES, b"hi", SUMMARY, {"kind": "done", "nonce": "n1"}),
        job,
        LIMITS,
        [Asked(None, "n1")],
    )
    assert results.done and not truncated and observed.files == {"out.dat": b"hi"}
    np.testing.assert_array_equal(observed.arrays["a0"], np.ones(2))


@pytest.mark.parametrize(
    "parts, reason",
    [
        (
            [
                _cell(
                    namespace=[
                        {
                            "cell": 1,
                            "name": "x",
                            "array": "a7",
                            "kind": "ndarray",
                            "requires_grad": False,
                            "dtype": "float64",
                        }
                    ]
                ),
                _raw(np.ones(2)),
                FILES,
                b"hi",
            ],
            "undefined arrays",
        ),
        ([_cell(2), _raw(np.ones(2)), FILES, b"hi"], "arrived after 0"),
        ([_cell(), _raw(np.ones(3)), FILES, b"hi"], "where the announced shapes make 16"),
        ([_cell(arrays={"a0": {"name": "v0", "shape": [200001]}}), _raw(np.ones(200001)), FILES, b"hi"], "elements"),
        ([_cell(), _raw(np.ones(2)), dict(FILES, files={"../x": 2}), b"hi"], "relative file name"),
        ([_cell(), _raw(np.ones(2)), FILES, b"toolong"], "were announced"),
        ([_cell(surprise=1), _raw(np.ones(2)), FILES, b"hi"], "CellFrame"),
        ([_cell(), _raw(np.ones(2)), SUMMARY], "before the notebook's files frame"),
        ([_cell(), _raw(np.ones(2)), FILES, b"hi", dict(SUMMARY, status="syntax_error")], "expected 'ok'"),
    ],
)
def test_forged_notebook_frames_are_rejected(parts, reason):
    job = Job(filename="a.ipynb", cells=["x = 1"], observe=True)
    with pytest.raises(ResultInvalid, match=reason):
        parse_run(_stream(*parts), job, LIMITS)
