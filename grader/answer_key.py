"""The instructor's answer key: every input and expected quantity of one trial, as text or JSON.

`backprop-grader solve` prints it. Public trials are safe to show; hidden ones need the hidden seed.
Numbers are printed with 17 significant digits in JSON (exact float64 round trip) and 10 in text.
"""

import json
from typing import Any

import numpy as np

from grader.expected import expected_values
from grader.rubric.model import Rubric
from grader.trials import Group, make_trial, trial_name


def answer_key(
    rubric: Rubric, group: Group = "public", index: int = 0, hidden_seed: str | None = None
) -> dict[str, Any]:
    """Inputs and expected values of trial (`group`, `index`) for every task, as plain Python data."""
    tasks = {}
    for task in rubric.tasks:
        trial = make_trial(rubric, task, group, index, hidden_seed)
        inputs: dict[str, Any] = {name: _plain(array) for name, array in trial.arrays().items() if name != "masks"}
        if trial.masks is not None:
            inputs["masks"] = f"array{trial.masks.shape} of 0/1 keep indicators (one (N, hidden) mask per epoch)"
        inputs.update(trial.scalars)
        tasks[task.id] = {
            "kind": task.kind,
            "given_instance": trial.given,
            "inputs": inputs,
            "expected": {name: _plain(value) for name, value in expected_values(task, trial).items()},
        }
    return {"rubric": rubric.id, "trial": trial_name(group, index), "layout": "torch (out, in)", "tasks": tasks}


def render_json(key: dict[str, Any]) -> str:
    """The answer key as JSON (floats round-trip exactly)."""
    return json.dumps(key, indent=1)


def render_text(key: dict[str, Any]) -> str:
    """The answer key as aligned text for a terminal."""
    lines = [f"answer key: rubric {key['rubric']}, trial {key['trial']}, weights in {key['layout']} layout"]
    for task_id, task in key["tasks"].items():
        given = " (the handout's given instance)" if task["given_instance"] else ""
        lines += ["", f"== task {task_id} [{task['kind']}]{given}", "-- inputs"]
        lines += [_format(name, value) for name, value in task["inputs"].items()]
        lines.append("-- expected")
        lines += [_format(name, value) for name, value in task["expected"].items()]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _format(name: str, value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return f"{name} = {', '.join(value)}"
    if isinstance(value, (list, float, int)):
        array = np.asarray(value, dtype=np.float64)
        body = np.array2string(array, precision=10, max_line_width=110, threshold=10_000)
        if array.ndim == 0:
            return f"{name} = {body}"
        return f"{name} {array.shape} =\n    " + body.replace("\n", "\n    ")
    return f"{name} = {value}"
