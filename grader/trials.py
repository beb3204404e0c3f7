"""Trials: concrete instances of a task, generated from (seed, trial index) — DESIGN §4.

Everything random comes from `numpy.random.default_rng`, never from torch's RNG (its streams differ across
versions, OSes and devices), so the same rubric gives bit-identical trials on every machine and every run.
Public trials: `default_rng([seed, index, task position])` from the rubric's public seed. Hidden trials:
`default_rng(HMAC-SHA256(secret, task id, index))` from the secret hidden seed (`grader.secret`), so their
inputs reveal nothing of it and nothing about them follows from the public seed. Parameters follow torch's
default `nn.Linear` range U(−1/√fan_in, 1/√fan_in); dropout keep-masks are drawn here and handed to the
student.
"""

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from grader.kinds import kind_of
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task
from grader.secret import secret_problem, trial_entropy

Group = Literal["public", "hidden"]


def trial_name(group: str, index: int) -> str:
    """`public-0`, `hidden-2`: how reports and the answer key name a trial."""
    return f"{group}-{index}"


def group_of(name: str) -> str:
    """The group of the trial named `name` (`trial_name`): public, hidden, or notebook."""
    return name.split("-", 1)[0]


NOTEBOOK_TRIAL = trial_name("notebook", 0)  # a free-form notebook's one trial: the student's own run, on its weights


@dataclass(frozen=True)
class Trial:
    """One instance of one task: inputs, targets, initial parameters and, for dropout, keep-masks."""

    task_id: str
    group: Group
    index: int
    x: np.ndarray
    y: np.ndarray
    params: dict[str, np.ndarray]
    masks: np.ndarray | None = None
    given: bool = False
    scalars: dict[str, float] = field(default_factory=dict)

    @functools.cached_property
    def name(self) -> str:
        """`trial_name(group, index)`, made once (read in hot loops)."""
        return trial_name(self.group, self.index)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of every array (names, shapes, bytes): equal digests, equal values computed from them."""
        digest = hashlib.blake2b(digest_size=16)
        for name, value in sorted(self.arrays().items()):
            value = np.ascontiguousarray(value, dtype=np.float64)
            digest.update(f"{name}{value.shape}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the trial by name (`x`, `y`, `W1`, …, `masks`), for handing to a submission."""
        arrays = {"x": self.x, "y": self.y, **self.params}
        if self.masks is not None:
            arrays["masks"] = self.masks
        return arrays


def make_trial(rubric: Rubric, task: Task, group: Group, index: int, hidden_seed: str | None = None) -> Trial:
    """Trial `index` of `group` for `task`; public trial 0 is the task's given instance when it has one.
    `hidden_seed` overrides the rubric's secret (`grade --hidden-seed`)."""
    if group == "public":
        position = [t.id for t in rubric.tasks].index(task.id)
        rng = np.random.default_rng([rubric.seed, index, position])
    else:
        rng = np.random.default_rng(trial_entropy(_hidden_seed(rubric, hidden_seed), task.id, index))
    x, y, params = _random_instance(task, rng)
    is_given = group == "public" and index == 0 and task.given is not None
    if is_given:
        given = task.given.arrays()  # type: ignore[union-attr]
        x = given["x"]
        y = given["y"] if "y" in given else kind_of(task).target(task, x, None)
        params = {name: given[name] for name in task.param_shapes()}
    masks, scalars = kind_of(task).extras(task, rng)  # drawn after the weights so they never shift
    if not is_given and getattr(task, "dead_units", 0):
        # Zero incoming weights and bias: z = 0 exactly, where ReLU's derivative is a choice (torch: 0).
        dead = rng.choice(params["W1"].shape[0], task.dead_units, replace=False)
        params["W1"][dead] = 0.0
        if "b1" in params:
            params["b1"][dead] = 0.0
    trial = Trial(task.id, group, index, x, y, params, masks, is_given, scalars)
    for array in trial.arrays().values():
        array.flags.writeable = False  # shared by every student of a class (see run.plan)
    return trial


def trials_for(rubric: Rubric, task: Task, groups: tuple[Group, ...], hidden_seed: str | None = None) -> list[Trial]:
    """Every trial of the given groups, public first, in index order (made once per class by run.plan)."""
    counts = {"public": rubric.trials.public, "hidden": rubric.trials.hidden}
    return [make_trial(rubric, task, group, i, hidden_seed) for group in groups for i in range(counts[group])]


def _hidden_seed(rubric: Rubric, override: str | None) -> str:
    """The secret of the hidden trials; an override is held to the rubric's rule (`secret_problem`)."""
    seed = override if override is not None else rubric.trials.hidden_seed
    if seed is None:
        raise ValueError(f"rubric {rubric.id} has no trials.hidden_seed; pass one to run hidden trials")
    problem = secret_problem(seed)
    if problem is not None:
        raise ValueError(f"hidden seed of rubric {rubric.id}: {problem}")
    return seed


def _random_instance(task: Task, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """x and y as the task's kind draws them, then torch-default initial parameters, all float64."""
    kind = kind_of(task)
    x = kind.inputs(task, rng)
    y = kind.target(task, x, rng)
    params = {}
    for name, shape in task.param_shapes().items():
        fan_in = shape[1] if name.startswith("W") else task.param_shapes()["W" + name[1:]][1]
        bound = 1.0 / np.sqrt(fan_in)  # torch's nn.Linear default: U(−1/√fan_in, 1/√fan_in)
        params[name] = rng.uniform(-bound, bound, shape)
    return x, y, params
