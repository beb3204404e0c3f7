"""Which of a notebook's nets its reported values belong to.

A notebook may call more than one `nn.Module`: a decoy or an experiment first, the graded net later, or a
second net built for the hand-written part (often by re-running the model cell without a seed). The net
graded is the one the reported values depend on, not merely the first one called: the autograd values
(torch_autograd.dat, else the parameters' `.grad`) decide; when they cannot tell, the first net called
stays. Scratch values that match none of that net's reference but another observed net's were computed
on other weights: they are graded on the weights they used, and the notebook is flagged.
"""

from collections.abc import Callable, Mapping

import numpy as np

from grader.found import Found
from grader.notebook.datfile import read_dat
from grader.notebook.network import Net, module_grads
from grader.notebook.observation import written_file
from grader.sandbox import RunResult
from reference import mlp_regression


def reference_of(net: Net, activation: str) -> dict[str, np.ndarray]:
    """The reference gradients of `net` on its own input and the assignment's target."""
    return mlp_regression.scratch(net.x, mlp_regression.target(net.x), net.params, net.activation or activation)


def matches(
    values: Mapping[str, np.ndarray], uncertainty: Mapping[str, np.ndarray], reference: dict[str, np.ndarray]
) -> int:
    """How many of `values` equal the reference's gradient of the same name, in either layout, within their
    printed precision and float32 noise (a loose test: it tells one net's gradients from another's)."""
    count = 0
    for key, value in values.items():
        expected = reference.get(key)
        if expected is None or not key.startswith("d"):
            continue
        value = np.asarray(value, dtype=np.float64)
        candidates = [value.reshape(expected.shape)] if value.size == expected.size else []
        if value.ndim == 2 and value.T.shape == expected.shape:
            candidates.append(value.T)
        allowance = 1e-6 * float(np.max(np.abs(expected), initial=0.0))
        if key in uncertainty and np.size(uncertainty[key]) in (1, expected.size):
            allowance += float(np.max(uncertainty[key]))
        if any(np.all(np.abs(c - expected) <= allowance + 1e-3 * np.abs(expected)) for c in candidates):
            count += 1
    return count


def _file_values(files: dict[str, str], name: str, net: Net) -> tuple[dict, dict]:
    text = written_file(files, name)
    if text is None:
        return {}, {}
    assignment = read_dat(text, net.layers)
    read = {key: assignment.in_torch_layout(key) for key in assignment.values}
    return {k: v for k, (v, _) in read.items()}, {k: u for k, (_, u) in read.items() if u is not None}


def choose_net(
    nets: list[Net],
    run: RunResult,
    files: dict[str, str],
    torch_file: str,
    activation: str,
    cell_number: Callable[[int], int],
) -> tuple[Net, list[str]]:
    """The net the reported autograd values belong to, and a note when it is not the first one called."""
    if len(nets) == 1:
        return nets[0], []
    scores = []
    for net in nets:
        values, uncertainty = _file_values(files, torch_file, net)
        if not values:
            values = {k: v for k, v in module_grads(run, net).items() if k != "cell"}
        scores.append((matches(values, uncertainty, reference_of(net, activation)), bool(module_grads(run, net))))
    best = max(range(len(nets)), key=lambda i: (scores[i], -i))
    net = nets[best]
    if best == 0 or scores[best] == scores[0]:
        return nets[0], []
    first = nets[0]
    return net, [
        f"cell {cell_number(first.cell)} called `{first.variable}` first, but the gradients you report are "
        f"those of `{net.variable}` (cell {cell_number(net.cell)}): that net is graded"
    ]


def other_net_for_scratch(nets: list[Net], net: Net, found: Found, activation: str) -> Net | None:
    """Another observed net whose reference the scratch values match, when they match none of `net`'s."""
    if len(nets) < 2 or not found.values or matches(found.values, found.uncertainty, reference_of(net, activation)):
        return None
    best, best_count = None, 0
    for other in nets:
        if other is net or other.layers != net.layers:
            continue
        count = matches(found.values, found.uncertainty, reference_of(other, activation))
        if count > best_count:
            best, best_count = other, count
    return best if best_count * 2 > len(found.values) else None


def never_run(net: Net, saved_counts: list[int | None], cell_number: Callable[[int], int]) -> list[str]:
    """A flag when the graded net is first called in a cell the handed-in notebook shows as never run (no
    saved execution count while other cells have one): what was handed in was not produced by this code."""
    index = net.cell - 1
    if not 0 <= index < len(saved_counts) or saved_counts[index] is not None or not any(saved_counts):
        return []
    return [
        f"the graded net `{net.variable}` is first called in cell {cell_number(net.cell)}, which the handed-in "
        f"notebook shows as never run (no execution count): its saved outputs and files came from other code"
    ]
