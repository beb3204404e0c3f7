"""The child records the dropout masks and numpy draws a notebook makes, without changing what it computes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.limits import Limits
from grader.sandbox import Job

CELLS = [
    "import numpy as np, torch, torch.nn.functional as F\nnp.random.seed(5); torch.manual_seed(5)",
    "h = torch.arange(1.0, 9.0).reshape(2, 4)\nh[0, 1] = 0.0\nkept = []\n"
    "for e in range(3):\n    kept.append(F.dropout(h, p=0.4, training=True))\n"
    "kept.append(torch.nn.Dropout(0.4)(h))\nkept.append(torch.dropout(h, 0.4, True))\n"
    "off = F.dropout(h, p=0.4, training=False)\ntotal = sum(k.sum() for k in kept)",
    "m = [np.random.binomial(1, 0.6, size=(2, 4)) for e in range(4)]\nu = np.random.rand(2, 4)\nbig = np.random.rand(100, 100)",
]


@pytest.fixture(scope="module")
def run(grading_sandbox):
    return grading_sandbox.run(Job(filename="draws.ipynb", cells=CELLS, observe=True, files={}, seed=1), Limits())


def draws(run, cell):
    return [(d.function, d.p, d.training, d.shape, d.count, run.arrays[d.array]) for d in run.cells[cell - 1].draws]


def test_torch_dropout_in_every_form_is_recorded_as_the_keep_mask_it_applied(run):
    """The masks are those torch draws from the same seed in this process: recording changed nothing."""
    torch.manual_seed(5)
    h = torch.arange(1.0, 9.0).reshape(2, 4)
    h[0, 1] = 0.0
    outputs = [F.dropout(h, p=0.4, training=True) for _ in range(3)] + [
        torch.nn.Dropout(0.4)(h),
        torch.dropout(h, 0.4, True),
    ]
    expected = [((o != 0) | (h == 0)).double().numpy() for o in outputs]
    recorded = draws(run, 2)
    assert run.cells[0].draws == []  # a cell that drew nothing
    assert [(f, p, t, s, c) for f, p, t, s, c, _ in recorded] == [
        ("torch.nn.functional.dropout", 0.4, True, [2, 4], 4),
        ("torch.dropout", 0.4, True, [2, 4], 1),
        ("torch.nn.functional.dropout", 0.4, False, [2, 4], 1),
    ]
    masks = np.concatenate([recorded[0][5], recorded[1][5]])
    assert np.array_equal(masks, np.array(expected)) and masks[:, 0, 1].tolist() == [1.0] * 5  # a zero input: kept
    assert np.array_equal(recorded[2][5], np.ones((1, 2, 4)))  # training=False keeps everything
    total = next(e for e in run.namespace if e.name == "total")
    assert run.arrays[total.array] == pytest.approx(float(sum(o.sum() for o in outputs)), rel=1e-6)


def test_numpy_draws_are_recorded_as_drawn_and_large_ones_are_left_out(run):
    np.random.seed(5)
    binomial = [np.random.binomial(1, 0.6, size=(2, 4)) for _ in range(4)]
    uniform = np.random.rand(2, 4)
    recorded = draws(run, 3)
    assert [(f, p, s, c) for f, p, _, s, c, _ in recorded] == [
        ("numpy.random.binomial", 0.6, [2, 4], 4),
        ("numpy.random.rand", None, [2, 4], 1),
    ]
    assert np.array_equal(recorded[0][5], np.array(binomial)) and np.array_equal(recorded[1][5][0], uniform)
