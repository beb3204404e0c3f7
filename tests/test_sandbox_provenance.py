"""The counterfactual provenance run (grader/sandbox/child/provenance.py) in the real sandbox: forked at the first
autograd call, autograd's answers scaled, the rest of the notebook re-run without touching the real run."""

import numpy as np
import pytest

from grader.limits import Limits
from grader.sandbox import Job, RunStatus

LIMITS = Limits(wall_seconds=20, cpu_seconds=20)
FACTOR = 1.618
SETUP = """import numpy as np
import torch
import torch.nn as nn
torch.manual_seed(3)
net = nn.Sequential(nn.Linear(2, 10), nn.Sigmoid(), nn.Linear(10, 1))
x = torch.rand(1, 2)
y = (x ** 2).sum(dim=1, keepdim=True) / 2
"""
BACKWARD = """loss = ((net(x) - y) ** 2).sum()
loss.backward()
print("loss", loss.item())
"""
REPORT = """copied = net[0].weight.grad.numpy().copy()
W1 = net[0].weight.detach().numpy().copy()
by_hand = W1 * 3.0
"""


def run(sandbox, cells, factor=FACTOR, files=None):
    result = sandbox.run(
        Job(filename="nb.ipynb", cells=cells, observe=True, counterfactual=factor, files=files or {}), LIMITS
    )
    assert result.status == RunStatus.ok, (result.message, result.detail)
    return result


def final(result, name):
    return result.arrays[[e for e in result.namespace if e.name == name][-1].array]


def test_values_copied_from_autograd_move_by_the_factor_and_others_do_not(grading_sandbox):
    result = run(grading_sandbox, [SETUP, BACKWARD, REPORT])
    counterfactual = result.counterfactual
    assert counterfactual is not None and counterfactual.factor == FACTOR and counterfactual.cell == 2
    copied, by_hand = counterfactual.value("copied", 3), counterfactual.value("by_hand", 3)
    assert np.allclose(copied, FACTOR * final(result, "copied"), rtol=1e-6, atol=0)
    assert np.array_equal(by_hand, final(result, "by_hand"))
    assert counterfactual.value("x", 1) is None  # before the fork point's cell: the same by construction


def test_the_real_run_is_untouched_by_the_counterfactual_one(grading_sandbox):
    cells = [SETUP, BACKWARD, REPORT]
    plain, watched = run(grading_sandbox, cells, factor=None), run(grading_sandbox, cells)
    assert plain.counterfactual is None
    assert [c.stdout for c in plain.cells] == [c.stdout for c in watched.cells]
    assert np.array_equal(final(plain, "copied"), final(watched, "copied"))
    assert watched.stdout.count("loss") == 1  # the fork's output is discarded


def test_a_file_opened_before_the_fork_and_written_after_is_written_once(grading_sandbox):
    opened = SETUP + 'log = open("log.dat", "w")\nlog.write("before\\n")\nopen("appended.dat", "a").write("x\\n")\n'
    after = 'log.write("after\\n")\nlog.close()\nwith open("appended.dat", "a") as f:\n    f.write("y\\n")\n'
    result = run(grading_sandbox, [opened, BACKWARD, after])
    assert result.files["log.dat"] == b"before\nafter\n"
    assert result.files["appended.dat"] == b"x\ny\n"
    assert result.counterfactual.files["log.dat"] == b"before\nafter\n"
    assert result.counterfactual.files["appended.dat"] == b"x\ny\n"
    assert not any(".bpg_counterfactual" in name for name in result.files)


def test_a_colab_path_written_in_the_counterfactual_run_stays_in_its_copy(grading_sandbox):
    write = 'open("/content/drive/MyDrive/A1/my_autograd.dat", "a").write(str(net[0].weight.grad.numpy()))\n'
    result = run(grading_sandbox, [SETUP, BACKWARD, write])
    main = result.files["my_autograd.dat"].decode()
    again = result.counterfactual.files["my_autograd.dat"].decode()
    assert main.count("[[") == 1 and again.count("[[") == 1 and main != again


def test_a_counterfactual_run_that_does_not_finish_is_ended_and_the_real_run_goes_on(grading_sandbox):
    # Only the counterfactual run sees scaled gradients, so only it sleeps past its time.
    stall = (
        "import time\nby_hand = (2 * (net(x) - y)).detach().sum(0)\n"
        "if not torch.allclose(net[2].bias.grad, by_hand):\n    time.sleep(60)\nprint('done')\n"
    )
    result = run(grading_sandbox, [SETUP, BACKWARD, stall])
    assert result.cells[-1].stdout == "done\n"
    assert result.counterfactual is None
    assert any("provenance run did not finish in time" in note for note in result.notes)


def test_a_notebook_without_autograd_has_no_counterfactual_run(grading_sandbox):
    result = run(grading_sandbox, [SETUP, "print(net(x).item())\n"])
    assert result.counterfactual is None
    assert not any("provenance" in note for note in result.notes)


@pytest.mark.parametrize("exit_call", ["os._exit(3)", "raise SystemExit(0)"])
def test_an_exit_after_the_first_backward_ends_both_runs_cleanly(grading_sandbox, exit_call):
    cells = [
        SETUP,
        BACKWARD,
        f"import os\ncopied = net[0].weight.grad.numpy().copy()\n{exit_call}\n",
        "print('later')\n",
    ]
    result = grading_sandbox.run(Job(filename="nb.ipynb", cells=cells, observe=True, counterfactual=FACTOR), LIMITS)
    assert result.counterfactual is not None
    assert np.allclose(result.counterfactual.value("copied", 3), FACTOR * final(result, "copied"), rtol=1e-6, atol=0)
