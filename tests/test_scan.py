"""The static scan flags autograd use in scratch code, including helpers it calls."""

from grader.scan import scan_scratch


def test_backward_in_a_helper_called_by_the_scratch_function_is_flagged():
    source = (
        "import torch\n"
        "def helper(t):\n"
        "    t.backward()\n"
        "def scratch_gradients(x, y, params):\n"
        "    return helper(x)\n"
        "def torch_gradients(x, y, params):\n"
        "    loss.backward()\n"
    )
    flags = scan_scratch([source], [1], ["scratch_gradients"])
    assert len(flags) == 1 and "`.backward`" in flags[0] and "helper()" in flags[0] and "line 3" in flags[0]


def test_plain_numpy_backprop_is_not_flagged():
    source = "import numpy as np\ndef scratch_gradients(x, y, params):\n    grad = x.T @ y\n    return {'dW1': grad}\n"
    assert scan_scratch([source], [1], ["scratch_gradients"]) == []


def test_evasion_through_getattr_and_requires_grad_is_flagged():
    source = "def scratch_gradients(x, y, p):\n    t = torch.tensor(x, requires_grad=True)\n    getattr(t, 'back' + 'ward')()\n"
    flags = " ".join(scan_scratch([source], [4], ["scratch_gradients"]))
    assert "requires_grad" in flags and "getattr" in flags and "cell 4" in flags


def test_unparsable_cells_are_skipped():
    assert scan_scratch(["def (:"], [1], ["scratch_gradients"]) == []


def test_a_scratch_function_defined_inside_if_try_with_or_a_class_is_still_scanned():
    source = (
        "import torch\n"
        "if True:\n"
        "    try:\n"
        "        with open(__file__):\n"
        "            def scratch_gradients(x, y, params):\n"
        "                return helper(x)\n"
        "    except OSError:\n"
        "        pass\n"
        "class Net:\n"
        "    def unused(self):\n"
        "        pass\n"
        "def helper(x):\n"
        "    x.backward()\n"
    )
    flags = scan_scratch([source], [3], ["scratch_gradients"])
    assert flags == [
        "scratch code uses `.backward` in helper() (cell 3, line 13); check that the backward pass is by hand"
    ]
