"""dropout_training in a free-form notebook: the weights each implementation trained, replayed exactly.

Seed 003 trains the handout's classifier twice with dropout p = 0.4, lr = 0.01 for 100 epochs: in torch
(`F.dropout(F.relu(z1), p=0.4, training=True)`, `loss.backward()`, an update under `torch.no_grad()`) and in
numpy (`np.random.binomial(1, 1 - rate, size=a1.shape)`, a backward pass of its own), then prints the
trained weights. Each source is found in the run:
- the cell that trained: a cell that drew dropout masks with the source's means (torch: F.dropout,
  nn.Dropout, torch.dropout; scratch: numpy's binomial, rand, random, random_sample, uniform; recorded by
  grader/sandbox/child/draws.py), and after it the weights that moved from the handout's (tensors for torch,
  numpy arrays for scratch; either layout);
- the masks: that cell's draws, one per epoch, read as the masks they are (F.dropout's kept units, a
  binomial's 0/1) or as a uniform draw compared with p, each way students write it (`rand(…) > p`,
  `rand(…) < 1 - p`, and the same with p taken as the keep probability).
The reference is replayed with exactly those masks (`grader.checks.check_task` with the trial's masks, so a
failing update is diagnosed by the catalogue's mutants on the same masks); of several readings of a
uniform draw, the one that explains the student's update is taken. Where no masks can be read, the update
is checked against the spread of many runs instead (grader/dropout_spread.py), and the check says so.
"""

from dataclasses import dataclass, field

import numpy as np

from grader.checks import check_task
from grader.dropout_spread import check_by_spread
from grader.found import Found
from grader.notebook.kinds.classifier import handout_trial
from grader.notebook.kinds.common import KindResult, NotebookRun, all_missing, missing
from grader.notebook.variables import gradient_name, where
from grader.report import CheckStatus
from grader.rubric.tasks import DropoutTrainingTask
from grader.run import call_id
from grader.sandbox.records import MaskDraw
from grader.trials import Trial

TORCH = {"torch.nn.functional.dropout": "F.dropout", "torch.dropout": "torch.dropout"}
BINOMIAL = {"numpy.random.binomial": "np.random.binomial"}
UNIFORM = {
    "numpy.random.rand": "np.random.rand",
    "numpy.random.random": "np.random.random",
    "numpy.random.random_sample": "np.random.random_sample",
    "numpy.random.uniform": "np.random.uniform",
}
MEANS = {"torch": TORCH, "scratch": {**BINOMIAL, **UNIFORM}, "trained": {**TORCH, **BINOMIAL, **UNIFORM}}
KINDS = {"torch": {"tensor"}, "scratch": {"ndarray"}, "trained": {"tensor", "ndarray"}}


@dataclass
class Training:
    """One implementation's training as the run shows it."""

    cell: int
    values: dict[str, np.ndarray] = field(default_factory=dict)  # trained W1, W2 in torch's layout
    provenance: dict[str, str] = field(default_factory=dict)
    masks: list[tuple[np.ndarray, str]] = field(default_factory=list)  # readings (E, N, H) of the draws, and how
    why_not: str = ""  # why no masks could be read


def check(nb: NotebookRun, task: DropoutTrainingTask) -> KindResult:
    """The trained weights of each implementation, against the reference replayed with its own masks."""
    trial = handout_trial(nb, task)
    if trial is None:
        return all_missing(task, f"task {task.id}: the rubric gives no instance ([tasks.given]) to grade a notebook on")
    results, notes, found = [], [], {}
    for source in task.contract.functions():
        mine = [c for c in task.checks if c.quantity.startswith(f"{source}.")]
        training = find_training(nb, task, trial, source)
        if training is None:
            means = {"torch": "torch training", "scratch": "numpy training"}.get(source, "training")
            reason = f"no {means} was seen: no weights moved from the handout's W1 and W2 after a cell that trained"
            results += [missing(task.id, c, reason) for c in mine]
            continue
        found[call_id(task, source, trial)] = Found(values=training.values, provenance=training.provenance)
        if training.masks:
            chosen = _replayed(nb, task, trial, source, training)
        else:
            chosen = check_by_spread(
                nb.rubric, task, trial, source, training.values, training.provenance, training.why_not
            )
            notes.append(
                f"{source} training (cell {nb.cell(training.cell)}): {training.why_not}; its update is compared "
                f"with the spread of many reference runs instead of the exact one"
            )
        results += [r for r in chosen if r.quantity.startswith(f"{source}.")]
    others = {c.quantity for c in task.checks if "." not in c.quantity}
    if others:  # architecture: the shapes of what was trained
        results += [r for r in check_task(nb.rubric, task, [trial], found) if r.quantity in others]
    order = [c.quantity for c in task.checks]
    return KindResult(sorted(results, key=lambda r: order.index(r.quantity)), notes, [])


def find_training(nb: NotebookRun, task: DropoutTrainingTask, trial: Trial, source: str) -> Training | None:
    """The first cell after which this implementation's weights moved, with the masks it drew there: the
    cells that drew masks its way first, then the others (masks it drew some other way)."""
    run, means = nb.run, MEANS[source]
    drew = {cell.cell: [d for d in cell.draws if d.function in means] for cell in run.cells}
    cells = [c for c, draws in drew.items() if draws]
    cells += [c for c in sorted({e.cell for e in run.namespace} | {s.cell for s in run.grads}) if c not in cells]
    for cell in cells:
        values, provenance = _trained(nb, cell, KINDS[source], trial.params)
        if len(values) != len(trial.params):
            continue
        training = Training(cell, values, provenance)
        training.masks, training.why_not = _readings(nb, task, trial.x.shape[0], cell, drew.get(cell, []))
        return training
    return None


def _trained(nb: NotebookRun, cell: int, kinds: set[str], initial: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """The arrays seen after `cell` that are each weight trained (variables, attributes, an nn.Module's
    parameters): its shape (either layout), not a gradient by name, moved from the initial value by less
    than the weight's own size; the least moved of each."""
    run, values, provenance = nb.run, {}, {}
    seen = [(e.name, e.kind, e.array) for e in run.namespace if e.cell == cell]
    seen += [
        (f"{s.variable}.{name}", "tensor", key) for s in run.grads if s.cell == cell for name, key in s.params.items()
    ]
    for name, start in initial.items():
        best = None
        for entry_name, kind, key in seen:
            value = run.arrays[key]
            if kind not in kinds or gradient_name(entry_name) or value.size != start.size:
                continue
            oriented = (
                value
                if value.shape == start.shape
                else value.T
                if value.ndim == 2 and value.T.shape == start.shape
                else None
            )
            if oriented is None:
                continue
            moved = float(np.max(np.abs(oriented - start)))
            if 0.0 < moved <= float(np.max(np.abs(start))) and (best is None or moved < best[0]):
                layout = "" if value.shape == start.shape else ", read transposed (in, out)"
                best = (moved, oriented, f"cell {nb.cell(cell)}: {where(entry_name)} after training{layout}")
        if best is not None:
            values[name], provenance[name] = best[1], best[2]
    return values, provenance


def _readings(nb: NotebookRun, task: DropoutTrainingTask, N: int, cell: int, draws: list[MaskDraw]) -> tuple[list, str]:
    """Every reading of the cell's draws as one keep-mask per epoch (E, N, H), and why there is none."""
    H, E, p = task.hidden, task.epochs, task.p
    fits = [d for d in draws if tuple(d.shape) in {(N, H), (H,), (1, H)}]
    if not fits:
        return [], (
            f"cell {nb.cell(cell)} drew no dropout mask of the hidden layer's shape ({N}, {H})"
            if draws
            else f"the masks of cell {nb.cell(cell)} were not drawn with F.dropout, nn.Dropout, np.random.binomial "
            f"or np.random.rand, so they could not be recorded"
        )
    readings, counts = [], []
    for function in dict.fromkeys(d.function for d in fits):
        stacked = np.concatenate(
            [nb.run.arrays[d.array].reshape(d.count, -1, H) for d in fits if d.function == function]
        )
        counts.append(f"{stacked.shape[0]} with {_named(function)}")
        if function in TORCH and not all(d.training for d in fits if d.function == function):
            return [], (
                f"{_named(function)} ran with training=False in cell {nb.cell(cell)}: it applied no dropout "
                f"and drew no masks"
            )
        if stacked.shape[0] != E:
            continue
        masks = np.broadcast_to(stacked, (E, N, H)).astype(np.float64)
        where_ = f"the {E} masks {_named(function)} drew in cell {nb.cell(cell)}"
        if function in TORCH:
            readings.append((masks, where_))
        elif function in BINOMIAL and np.isin(masks, (0.0, 1.0)).all():
            readings.append((masks, where_))
        elif function in UNIFORM:
            for rule, keep in (
                (f"> {p}", masks > p),
                (f"< {1 - p:.3g}", masks < 1 - p),
                (f"< {p}", masks < p),
                (f"> {1 - p:.3g}", masks > 1 - p),
            ):
                readings.append((keep.astype(np.float64), f"{where_}, read as {_named(function)}(…) {rule}"))
    why = "" if readings else f"cell {nb.cell(cell)} drew {', '.join(counts)} masks where {E} epochs were asked"
    return readings, why


def _named(function: str) -> str:
    return {**TORCH, **BINOMIAL, **UNIFORM}.get(function, function)


def _replayed(nb: NotebookRun, task: DropoutTrainingTask, trial: Trial, source: str, training: Training) -> list:
    """The source's checks with the reference replayed on each reading of its masks: the reading whose
    replay passes the most checks, then explains the most failures, is kept; its provenance says which."""
    best, best_score = [], None
    for masks, how in training.masks:
        replay = Trial(
            trial.task_id, "notebook", 0, trial.x, trial.y, trial.params, masks, True, {"p": task.p, "lr": task.lr}
        )
        provenance = {name: f"{text}; the reference replayed with {how}" for name, text in training.provenance.items()}
        found = {call_id(task, source, replay): Found(values=training.values, provenance=provenance)}
        results = [r for r in check_task(nb.rubric, task, [replay], found) if r.quantity.startswith(f"{source}.")]
        score = (sum(r.status == CheckStatus.passed for r in results), sum(r.diagnosis is not None for r in results))
        if best_score is None or score > best_score:
            best, best_score = results, score
    return best
