"""Gradients a notebook only printed (grader.notebook.printed): read from the cells' output, autograd's told
from the student's by the counterfactual run, and nothing credited that cannot be told."""

from conftest import derived_notebook

from grader.grade import grade_submission
from grader.notebook.provenance import PROVENANCE_SWITCH
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

RUBRIC = "bs6207-a1-notebook"
GRADIENTS = ["dW1", "db1", "dW2", "db2", "dW3", "db3"]


def graded(tmp_path, sandbox, edit=lambda cells: cells):
    path = tmp_path / "printed.ipynb"
    path.write_text(derived_notebook("printed_in_a_function", edit), encoding="utf-8")
    return grade_submission(load_rubric(RUBRIC), rubric_hash(RUBRIC), path, sandbox)


def scratch(report):
    return {c.quantity.split(".")[1]: c for c in report.checks if c.quantity.startswith("scratch.")}


def with_weights_printed_first(cells):
    """The parameters printed bare before the backward pass: same shapes as the gradients, no label."""
    for cell in cells:
        text = "".join(cell["source"])
        if "loss.backward()" in text:
            text = text.replace(
                "    loss.backward()", "    for p in net.parameters():\n        print(p.data)\n    loss.backward()"
            )
            cell["source"] = text.splitlines(keepends=True)
    return cells


def test_printed_gradients_are_graded_as_they_were_printed(grading_sandbox, tmp_path):
    checks = scratch(graded(tmp_path, grading_sandbox))
    assert all(checks[k].status == CheckStatus.passed for k in GRADIENTS), {k: c.message for k, c in checks.items()}
    assert all("'my backprop'" in checks[k].provenance or "printed in cell" in checks[k].provenance for k in GRADIENTS)


def test_parameters_printed_beside_the_gradients_are_never_read_as_gradients(grading_sandbox, tmp_path):
    report = graded(tmp_path, grading_sandbox, with_weights_printed_first)
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]


def test_without_the_counterfactual_run_nothing_printed_after_autograd_is_credited(
    grading_sandbox, tmp_path, monkeypatch
):
    """Which printed copy is autograd's can only be told by the counterfactual run: with it off, the copies
    printed after the backward pass are not read (MISSING), rather than credited by guess."""
    monkeypatch.setenv(PROVENANCE_SWITCH, "off")
    checks = scratch(graded(tmp_path, grading_sandbox))
    assert all(checks[k].status == CheckStatus.missing for k in GRADIENTS)


def scratch_before_autograd(cells):
    """main() runs its own backprop, and prints it, before it calls loss.backward()."""
    for cell in cells:
        text = "".join(cell["source"])
        if "    # my own backprop" in text:
            body, end = text.split("\n\nmain()", 1)
            first, mine = body.split("    # my own backprop", 1)
            names = '    names = ["dW1", "db1", "dW2", "db2", "dW3", "db3"]\n'
            first = first.replace(names, "").replace(
                "    loss.backward()\n", names + "    # my own backprop" + mine + "\n    loss.backward()\n"
            )
            cell["source"] = (first + "\n\nmain()" + end).splitlines(keepends=True)
    return cells


def test_gradients_printed_before_autograd_in_the_same_cell_are_the_students_own(grading_sandbox, tmp_path):
    """What the cell printed before its backward pass is printed again unchanged by the counterfactual run."""
    checks = scratch(graded(tmp_path, grading_sandbox, scratch_before_autograd))
    assert all(checks[k].status == CheckStatus.passed for k in GRADIENTS), {k: c.message for k, c in checks.items()}


def with_zero_biases(cells):
    """Biases initialised to zero, as many students do: b1 and b2 then hold equal values."""
    for cell in cells:
        text = "".join(cell["source"])
        if "    loss = " in text:
            zeros = "    for i in (0, 2, 4):\n        nn.init.zeros_(net[i].bias)\n"
            text = text.replace("    x = torch.rand(1, 2)\n", zeros + "    x = torch.rand(1, 2)\n")
            cell["source"] = text.splitlines(keepends=True)
    return cells


def test_a_local_net_with_zero_biases_gets_each_layers_own_autograd_gradient(grading_sandbox, tmp_path):
    """The net is local to main(): autograd's gradients come from the first backward's leaves, matched to
    parameters by value, and b1 = b2 = 0 must still give db1 and db2 each its own layer's gradient."""
    report = graded(tmp_path, grading_sandbox, with_zero_biases)
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]


RAW_ZERO_BIASES = """import torch
torch.manual_seed(1)
W1 = torch.randn(2, 10, requires_grad=True)
b1 = torch.zeros(10, requires_grad=True)
W2 = torch.randn(10, 10, requires_grad=True)
b2 = torch.zeros(10, requires_grad=True)
W3 = torch.randn(10, 1, requires_grad=True)
b3 = torch.zeros(1, requires_grad=True)
x = torch.rand(1, 2)
y = (x**2).sum() / 2
h1 = torch.sigmoid(x @ W1 + b1)
h2 = torch.sigmoid(h1 @ W2 + b2)
out = h2 @ W3 + b3
L = ((out - y)**2).sum()
L.backward()
for name, t in [("dL/dW1", W1), ("dL/db1", b1), ("dL/dW2", W2), ("dL/db2", b2), ("dL/dW3", W3), ("dL/db3", b3)]:
    print(name, t.grad)
with torch.no_grad():
    g_out = 2 * (out - y)
    gW3 = h2.T @ g_out; gb3 = g_out.sum(0)
    g_h2 = g_out @ W3.T * h2 * (1 - h2)
    gW2 = h1.T @ g_h2; gb2 = g_h2.sum(0)
    g_h1 = g_h2 @ W2.T * h1 * (1 - h1)
    gW1 = x.T @ g_h1; gb1 = g_h1.sum(0)
"""


def test_a_raw_tensor_net_with_zero_biases_gets_each_layers_own_autograd_gradient(grading_sandbox, tmp_path):
    def raw(cells):
        code = dict(cells[1], source=RAW_ZERO_BIASES.splitlines(keepends=True), id="raw-zero-biases")
        return [cells[0], code]

    report = graded(tmp_path, grading_sandbox, raw)
    assert report.score == report.max_score, [c.message for c in report.checks if c.status != CheckStatus.passed]
