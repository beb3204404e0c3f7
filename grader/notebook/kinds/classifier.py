"""softmax_classifier in a free-form notebook: the handout's x, y, W1, W2 through a hidden ReLU and softmax.

Seed 003 writes it twice: raw tensors (`w1_torch = torch.tensor(…, requires_grad=True)`, `torch.matmul`,
`F.relu`, `F.softmax`, a cross-entropy of its own, `loss.backward()`), and a numpy class whose `forward` and
`backward` keep `self.z1`, `self.a1`, … and return the gradient. The trial is the handout's instance (the
rubric's given values); what each source computed on it is found in the run:
- torch: the first backward pass's graph (RunResult.backward) gives the loss it differentiated and its
  leaves' gradients, oriented by their shapes (`x @ W` weights are read transposed); probs is the tensor
  in the namespace closest to the reference's;
- scratch: the student's numpy values, by name first (grad_w1, dL_dw1, self.dL_dw2), then by value, in
  either layout; never autograd's gradients nor a weight taken as it is; one that moved with autograd's
  answers in the provenance run (grader/notebook/provenance.py) was copied from autograd and earns nothing.
Cells that drew dropout masks belong to the training task and are not looked in here.
"""

import numpy as np

from grader.checks import check_task
from grader.found import Found
from grader.notebook.kinds.common import KindResult, NotebookRun, all_missing, judged
from grader.notebook.provenance import Follows, copied_flag, copied_from_autograd, entry_again, follows
from grader.notebook.variables import is_copy, scratch_variable, where
from grader.report import CheckResult
from grader.rubric.tasks import SoftmaxClassifierTask
from grader.run import call_id
from grader.sandbox import RunResult
from grader.trials import Trial, make_trial

NAMES = {
    "probs": ("prob", "output", "out", "pred", "softmax", "a2", "yhat", "y_hat"),
    "loss": ("loss", "cost", "entropy", "ce"),
}


def check(nb: NotebookRun, task: SoftmaxClassifierTask) -> KindResult:
    """probs, loss, dW1, dW2 from the notebook's torch and numpy implementations, on the handout's instance."""
    trial = handout_trial(nb, task)
    if trial is None:
        return all_missing(task, f"task {task.id}: the rubric gives no instance ([tasks.given]) to grade a notebook on")
    run, notes = nb.run, []
    training = training_cells(run)
    record = run.backward[0] if run.backward else None
    leaves = _leaves(run, trial) if record is not None else {}
    grads = {f"d{name}": grad for name, (_, grad, _, _) in leaves.items() if grad is not None}
    reference = _expected(task, trial)
    found, copied = {}, {}
    for source in task.contract.functions():
        values, provenance = {}, {}
        if source == "torch":
            if record is not None and record.loss is not None:
                values["loss"], provenance["loss"] = (
                    run.arrays[record.loss],
                    f"cell {nb.cell(record.cell)}: the loss of {record.call}",
                )
            for key, grad in grads.items():
                layout = ", read transposed (in, out)" if leaves[key[1:]][3] != trial.params[key[1:]].shape else ""
                values[key], provenance[key] = grad, f"cell {nb.cell(record.cell)}: {leaves[key[1:]][2]}.grad{layout}"
        autograd = list(grads.values())
        weights = [value for value, _, _, _ in leaves.values()] + list(trial.params.values())
        for key in ("probs", "loss", "dW1", "dW2"):
            if key in values or key not in reference:
                continue
            hit = _value(run, key, source, reference[key], autograd, weights, training)
            if hit is not None:
                entry, how = hit
                values[key], provenance[key] = (
                    run.arrays[entry.array],
                    f"cell {nb.cell(entry.cell)}: {where(entry.name)}{how}",
                )
                again = entry_again(run, entry.name, entry.cell)
                if (
                    source == "scratch"
                    and run.counterfactual is not None
                    and follows(values[key], again, run.counterfactual.factor) == Follows.autograd
                ):
                    copied[key] = f"{where(entry.name)} (cell {nb.cell(entry.cell)})"
        found[call_id(task, source, trial)] = Found(
            values=values,
            provenance=provenance,
            problems={
                key: f"{source}.{key}: not found — no {'tensor' if source == 'torch' else 'numpy array'} of the notebook "
                f"holds it; keep it in a variable (or print it) after computing it"
                for key in reference
                if key not in values
            },
        )
    if record is None:
        notes.append("the notebook never called backward(): the torch gradients cannot be observed")
    elif leaves and not all(np.allclose(value, trial.params[name]) for name, (value, _, _, _) in leaves.items()):
        notes.append(
            "the weights of the first backward pass are not the handout's W1 and W2: your torch gradients are "
            "checked on the handout's values"
        )
    results = check_task(nb.rubric, task, [trial], found)
    checks = [
        copied_from_autograd(_architecture(nb, task, leaves, r) if r.quantity == "architecture" else r, copied)
        for r in results
    ]
    return KindResult(checks, notes, copied_flag(copied))


def handout_trial(nb: NotebookRun, task) -> Trial | None:
    """The rubric's given instance, as the notebook's own trial."""
    if task.given is None:
        return None
    given = make_trial(nb.rubric, task, "public", 0)
    return Trial(task.id, "notebook", 0, given.x, given.y, given.params, given=True)


def training_cells(run: RunResult) -> set[int]:
    """Cells that drew dropout masks (or numpy random numbers): the training's, not the classifier's."""
    return {cell.cell for cell in run.cells if cell.draws}


def _expected(task, trial: Trial) -> dict[str, np.ndarray]:
    from grader.expected import expected_values

    return {k: v for k, v in expected_values(task, trial).items() if isinstance(v, np.ndarray)}


def _leaves(run: RunResult, trial: Trial) -> dict[str, tuple[np.ndarray, np.ndarray | None, str, tuple]]:
    """The first backward pass's leaves that are the task's weights: name → (value, gradient, student's
    name, shape as stored), in torch's layout (a leaf stored (in, out) for x @ W is transposed)."""
    found = {}
    for leaf in run.backward[0].leaves:
        if leaf.value is None or len(leaf.shape) != 2:
            continue
        value = run.arrays[leaf.value].reshape(leaf.shape)
        grad = run.arrays[leaf.grad].reshape(leaf.shape) if leaf.grad is not None else None
        for name, param in trial.params.items():
            if name in found or not name.startswith("W"):
                continue
            flip = value.shape != param.shape and value.T.shape == param.shape
            if value.shape == param.shape or flip:
                found[name] = (
                    value.T if flip else value,
                    None if grad is None else (grad.T if flip else grad),
                    leaf.name or f"an unnamed {tuple(leaf.shape)} tensor",
                    tuple(leaf.shape),
                )
                break
    return found


def _value(
    run: RunResult, key: str, source: str, expected: np.ndarray, autograd: list, weights: list, training: set[int]
):
    """(namespace entry, how it was found) holding `key` for `source`: a tensor for torch, anything else for
    scratch; outside the training cells; gradients by name then value, probs and loss by name then value."""
    kind = "tensor" if source == "torch" else "ndarray"
    entries = [e for e in run.namespace if e.cell not in training and e.kind == kind]
    view = run.model_copy(update={"namespace": entries})
    if key.startswith("d"):
        hit = scratch_variable(view, key, expected.shape, expected, autograd, weights)
        return None if hit is None else (hit[0], hit[1])
    fits = [
        e for e in entries if run.arrays[e.array].size == expected.size and not is_copy(run.arrays[e.array], weights)
    ]
    named = [e for e in fits if any(word in e.name.lower().rsplit(".", 1)[-1] for word in NAMES[key])]
    for pool, how in ((named, ""), (fits, " (found by its value)")):
        ranked = sorted(pool, key=lambda e: _distance(run.arrays[e.array], expected))
        if ranked and _distance(run.arrays[ranked[0].array], expected) < 1.0:
            return ranked[0], how
    return None


def _distance(value: np.ndarray, expected: np.ndarray) -> float:
    """Largest difference relative to the largest expected magnitude, in either layout."""
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    layouts = [
        v
        for v in (
            value.reshape(expected.shape) if value.size == expected.size else None,
            value.T if value.ndim == 2 and value.T.shape == expected.shape else None,
        )
        if v is not None
    ]
    return min((float(np.max(np.abs(v - expected), initial=0.0)) / scale for v in layouts), default=np.inf)


def _architecture(nb: NotebookRun, task, leaves: dict, result: CheckResult) -> CheckResult:
    """Two weight matrices of the task's shapes (either layout), no biases where none are asked, a ReLU."""
    wanted = f"{task.inputs}-{task.hidden}-{task.classes} with a ReLU hidden layer and a softmax output"
    run = nb.run
    record = run.backward[0] if run.backward else None
    nodes = {node.name for node in record.nodes} if record is not None else set()
    biases = [leaf for leaf in (record.leaves if record is not None else []) if len(leaf.shape) == 1]
    said = [f"{leaves[key][2]} {leaves[key][3]}" for key in sorted(leaves)]
    passed = len(leaves) == 2 and (task.bias or not biases) and "ReluBackward0" in nodes
    if passed:
        message = f"architecture: {wanted} (cell {nb.cell(record.cell)}: {', '.join(said)})"
    elif record is None:
        message = f"architecture: expected {wanted}; no backward pass was seen to observe the net"
    else:
        missing = [
            what
            for what, ok in (
                ("both weight matrices", len(leaves) == 2),
                ("no biases", task.bias or not biases),
                ("a ReLU", "ReluBackward0" in nodes),
            )
            if not ok
        ]
        message = f"architecture: expected {wanted}; the first backward pass's graph lacks {', '.join(missing)}"
    return judged(
        result, passed, message, f"cell {nb.cell(record.cell)}: {', '.join(said)}" if record is not None else ""
    )
