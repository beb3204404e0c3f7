"""Correct submissions computed in float32, as most students compute (torch's default dtype): the values a
right answer returns on a trial, with float32's rounding in every operation, for the mutation suite's
"no correct float32 submission gets a diagnosis". Gradients by torch autograd in float32, training by a
float32 numpy loop with the trial's masks.
"""

import numpy as np
import torch

from grader.diagnose.mutants import activation
from grader.rubric.tasks import Task
from grader.trials import Trial
from reference.twins import torch_activation


def float32_values(task: Task, trial: Trial) -> dict[str, np.ndarray]:
    """Every quantity a correct float32 submission returns on the trial (float64 arrays of float32 numbers)."""
    if task.kind == "mlp_regression":
        return _mlp(task, trial)
    if task.kind == "softmax_classifier":
        return _classifier(trial, task.reduction)
    return _training(task, trial)


def _tensors(trial: Trial) -> dict[str, torch.Tensor]:
    return {
        name: torch.tensor(np.asarray(value, dtype=np.float32), requires_grad=True)
        for name, value in trial.params.items()
    }


def _numpy(values: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: value.detach().numpy().astype(np.float64) for name, value in values.items()}


def _mlp(task: Task, trial: Trial) -> dict[str, np.ndarray]:
    params = _tensors(trial)
    L = sum(1 for name in params if name.startswith("W"))
    names = activation(task)
    names = [names] * (L - 1) if isinstance(names, str) else list(names)
    a = torch.tensor(np.asarray(trial.x, dtype=np.float32))
    for l in range(1, L + 1):
        a = torch.nn.functional.linear(a, params[f"W{l}"], params.get(f"b{l}"))
        if l < L:
            a = torch_activation(names[l - 1])(a)
    squared = (a - torch.tensor(np.asarray(trial.y, dtype=np.float32))) ** 2
    loss = squared.sum() if task.reduction == "sum" else squared.mean()
    loss.backward()
    return _numpy({"prediction": a, "loss": loss, **{f"d{name}": p.grad for name, p in params.items()}})


def _classifier(trial: Trial, reduction: str) -> dict[str, np.ndarray]:
    params = _tensors(trial)
    x = torch.tensor(np.asarray(trial.x, dtype=np.float32))
    y = torch.tensor(np.asarray(trial.y, dtype=np.float32))
    h = torch.relu(torch.nn.functional.linear(x, params["W1"], params.get("b1")))
    log_probs = torch.log_softmax(torch.nn.functional.linear(h, params["W2"], params.get("b2")), dim=1)
    loss = -(y * log_probs).sum()
    if reduction == "mean":
        loss = loss / x.shape[0]
    loss.backward()
    return _numpy({"probs": log_probs.exp(), "loss": loss, **{f"d{name}": p.grad for name, p in params.items()}})


def _training(task: Task, trial: Trial) -> dict[str, np.ndarray]:
    """Full-batch SGD with inverted dropout through the trial's masks, every array float32."""
    f32 = np.float32
    x, y = np.asarray(trial.x, dtype=f32), np.asarray(trial.y, dtype=f32)
    W1, W2 = (np.array(trial.params[name], dtype=f32) for name in ("W1", "W2"))
    b1 = np.array(trial.params["b1"], dtype=f32) if "b1" in trial.params else None
    b2 = np.array(trial.params["b2"], dtype=f32) if "b2" in trial.params else None
    keep_scale, lr = f32(1.0 / (1.0 - task.p)), f32(task.lr)
    for mask in np.asarray(trial.masks, dtype=f32):
        z1 = x @ W1.T + (b1 if b1 is not None else 0)
        h = np.maximum(z1, 0) * mask * keep_scale
        z2 = h @ W2.T + (b2 if b2 is not None else 0)
        e = np.exp(z2 - z2.max(axis=1, keepdims=True))
        delta2 = e / e.sum(axis=1, keepdims=True) - y
        if task.reduction == "mean":
            delta2 = delta2 / f32(x.shape[0])
        delta1 = (delta2 @ W2) * mask * keep_scale * (z1 > 0)
        W2, W1 = W2 - lr * (delta2.T @ h), W1 - lr * (delta1.T @ x)
        if b1 is not None:
            b2, b1 = b2 - lr * delta2.sum(axis=0), b1 - lr * delta1.sum(axis=0)
    trained = {"W1": W1, "W2": W2, **({"b1": b1, "b2": b2} if b1 is not None else {})}
    return {name: value.astype(np.float64) for name, value in trained.items()}
