"""The default tolerances, chosen by measurement (DESIGN §6), and the margins they leave.

On every trial of every bundled rubric: a correct float32 implementation passes every check; gradients
taken at weights that already moved one SGD step (lr 0.01) fail; dropout training with and without the
1/(1−p) scaling are told apart. The measured margins (largest |error|/allowed for what must pass,
smallest for what must fail) are written to test-artifacts/tolerance-margins.json.
"""

import json

import numpy as np
import pytest
import torch
from conftest import CONTRACT_RUBRICS, REPO

from grader.compare import Verdict, compare
from grader.expected import expected_values
from grader.rubric.files import load_rubric
from grader.trials import trials_for
from reference.mistakes import CATALOGUE, run_mutant

MARGINS: dict[str, dict[str, float]] = {}
ACTIVATION = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


def float32_values(task, trial) -> dict[str, np.ndarray]:
    """A correct implementation in float32, as students write it with torch's default dtype."""
    x, y = torch.tensor(trial.x, dtype=torch.float32), torch.tensor(trial.y, dtype=torch.float32)
    params = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True) for k, v in trial.params.items()}
    if task.kind == "dropout_training":
        masks = torch.tensor(trial.masks, dtype=torch.float32)
        for mask in masks:
            h = torch.relu(x @ params["W1"].T) * mask / (1 - task.p)
            loss = -(y * torch.log_softmax(h @ params["W2"].T, dim=1)).sum()
            grads = torch.autograd.grad(loss, [params["W1"], params["W2"]])
            with torch.no_grad():
                params["W1"] -= task.lr * grads[0]
                params["W2"] -= task.lr * grads[1]
        return {k: v.detach().double().numpy() for k, v in params.items()}
    layers = len([k for k in params if k.startswith("W")])
    h = x
    for l in range(1, layers + 1):
        h = h @ params[f"W{l}"].T + (params[f"b{l}"] if f"b{l}" in params else 0)
        if l < layers:
            h = ACTIVATION[getattr(task, "activation", "relu")](h)
    if task.kind == "softmax_classifier":
        log_probs = torch.log_softmax(h, dim=1)
        loss = -(y * log_probs).sum()
        out = {"probs": log_probs.exp()}
    else:
        loss = ((h - y) ** 2).sum()
        out = {"prediction": h}
    loss.backward()
    out |= {"loss": loss} | {f"d{k}": v.grad for k, v in params.items()}
    return {k: v.detach().double().numpy() for k, v in out.items()}


def excess(task, rubric, name, found, expected, trial) -> tuple[Verdict, float]:
    check = next(c for c in task.checks if c.quantity.endswith(f".{name}"))
    if task.kind == "dropout_training":
        found, expected = found - trial.params[name], expected - trial.params[name]
    result = compare(name, found, expected, rubric.tolerance_for(check))
    return result.verdict, float(np.max(result.excess))


def cases():
    for rubric_id in CONTRACT_RUBRICS:
        rubric = load_rubric(rubric_id)
        for task in rubric.tasks:
            yield pytest.param(rubric, task, id=f"{rubric_id}/{task.id}")


def record(key: str, value: float, worst=max) -> None:
    entry = MARGINS.setdefault(key, {})
    entry["value"] = worst(entry.get("value", value), value)


@pytest.mark.parametrize("rubric, task", list(cases()))
def test_a_correct_float32_implementation_passes_every_check_on_every_trial(rubric, task):
    for trial in trials_for(rubric, task, ("public", "hidden")):
        expected = expected_values(task, trial)
        found = float32_values(task, trial)
        for name in task.quantities():
            verdict, worst = excess(task, rubric, name, found[name], expected[name], trial)
            assert verdict == Verdict.passed, (trial.name, name, worst)
            record(f"{rubric.id}/{task.id}: float32, largest error/allowed (must stay < 1)", worst)


@pytest.mark.parametrize(
    "rubric, task", [c for c in cases() if c.values[1].kind in ("mlp_regression", "softmax_classifier")]
)
def test_gradients_of_weights_after_one_sgd_step_at_lr_0_01_fail_on_every_trial(rubric, task):
    after_update = next(m for m in CATALOGUE if m.id == "gradients_after_update")
    for trial in trials_for(rubric, task, ("public", "hidden")):
        expected = expected_values(task, trial)
        found = run_mutant(
            after_update,
            task.kind,
            trial.x,
            trial.y,
            trial.params,
            activation=getattr(task, "activation", "relu"),
            reduction=task.reduction,
            lr=0.01,
        )
        gradients = [name for name in task.quantities() if name.startswith("d")]
        verdicts = {name: excess(task, rubric, name, found[name], expected[name], trial) for name in gradients}
        failing = [name for name, (verdict, _) in verdicts.items() if verdict == Verdict.failed]
        assert len(failing) >= len(gradients) // 2, (trial.name, verdicts)
        record(
            f"{rubric.id}/{task.id}: one SGD step, largest error/allowed of the clearest gradient (must be > 1)",
            max(w for _, w in verdicts.values()),
            min,
        )


@pytest.mark.parametrize("rubric, task", [c for c in cases() if c.values[1].kind == "dropout_training"])
def test_dropout_with_and_without_the_inverse_keep_scaling_are_told_apart(rubric, task):
    without = next(m for m in CATALOGUE if m.id == "dropout_without_rescaling")
    for trial in trials_for(rubric, task, ("public", "hidden")):
        expected = expected_values(task, trial)
        found = run_mutant(
            without,
            task.kind,
            trial.x,
            trial.y,
            trial.params,
            reduction=task.reduction,
            masks=trial.masks,
            p=task.p,
            lr=task.lr,
        )
        worst = []
        for name in task.quantities():
            verdict, value = excess(task, rubric, name, found[name], expected[name], trial)
            assert verdict == Verdict.failed, (trial.name, name, value)
            worst.append(value)
        record(f"{rubric.id}/{task.id}: no 1/(1-p) scaling, update error/allowed (must be > 1)", min(worst), min)


def test_the_measured_margins_are_written_down():
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "tolerance-margins.json").write_text(json.dumps(MARGINS, indent=1, sort_keys=True))
    print(json.dumps(MARGINS, indent=1, sort_keys=True))
    assert MARGINS  # the tests above ran in this session and measured something
