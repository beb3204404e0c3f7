"""The mutation suite's free-form notebooks: real notebooks that print the mutated gradients, run in the sandbox.

Each is the bundled correct notebook (submissions/bs6207-a1-notebooks/correct.ipynb) with its net's weights and
its input set from literal float32 numbers, and its own backward pass replaced by the gradients a student with
the mistake computed on exactly that net, written to my_autograd.dat by the notebook's own cell (8 decimals,
as the sample prints them). The grader runs the notebook, observes the net and the input, and diagnoses what
the .dat file says — the whole free-form path, sandbox included.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from benchmarks.mutation_verdicts import classify
from benchmarks.mutations import Outcome, combos, local_combos
from grader.grade import grade_submission
from grader.rubric.files import load_rubric, rubric_hash
from grader.sandbox import Sandbox
from grader.trials import Trial
from reference.mistakes import Mistake
from reference.mistakes_mutants import Instance, reference_values
from reference.mlp_regression import target

RUBRIC = "bs6207-a1-notebook"
CORRECT = Path(__file__).resolve().parents[1] / "submissions" / "bs6207-a1-notebooks" / "correct.ipynb"
LAYERS = [2, 10, 10, 1]
LABELS = ["dW1", "db1", "dW2", "db2", "dW3", "db3"]


def net_trial(seed: int = 6207) -> Trial:
    """The notebook's net and input: torch-range weights and x ~ U[0,1]², float32 numbers (as the net holds them)."""
    rng = np.random.default_rng(seed)
    params = {}
    for l, (n_in, n_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:]), start=1):
        k = 1 / n_in**0.5
        params[f"W{l}"] = rng.uniform(-k, k, size=(n_out, n_in)).astype(np.float32).astype(np.float64)
        params[f"b{l}"] = rng.uniform(-k, k, size=n_out).astype(np.float32).astype(np.float64)
    x = rng.uniform(size=(1, 2)).astype(np.float32).astype(np.float64)
    return Trial("backprop", "public", 0, x, target(x), params)


def _literal(array: np.ndarray) -> str:
    return json.dumps(np.asarray(array, dtype=np.float64).tolist())


def notebook(trial: Trial, gradients: dict[str, np.ndarray]) -> str:
    """The correct notebook on `trial`'s net and input, its own gradients replaced by `gradients`."""
    nb = json.loads(CORRECT.read_text(encoding="utf-8"))
    weights = "\n".join(
        f"    net.fc{l}.{kind}.copy_(torch.tensor({_literal(trial.params[f'{p}{l}'])}))"
        for l in (1, 2, 3)
        for p, kind in (("W", "weight"), ("b", "bias"))
    )
    mine = "\n".join(f"{name} = np.array({_literal(gradients[name])})" for name in LABELS)
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if "net = Net()" in source:
            source = source.replace("net = Net()\n", f"net = Net()\nwith torch.no_grad():\n{weights}\n")
        elif source.startswith("x = torch.rand(1, 2)"):
            source = source.replace("x = torch.rand(1, 2)", f"x = torch.tensor({_literal(trial.x)})")
        elif source.startswith("# forward\n"):
            source = f'# my backward pass, as I worked it out\n{mine}\nprint("my gradients are ready")\n'
        cell["source"] = source.splitlines(keepends=True)
        if cell["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
    nb["metadata"].pop("backprop_grader_sample", None)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def notebook_outcomes(sandbox: Sandbox, jobs: int = 1, local: bool = False, local_pairs: bool = True) -> list[Outcome]:
    """Every combination on the free-form notebook rubric (with `local`: also each mistake at one layer, and
    with `local_pairs` each of those with each other mistake), graded `jobs` at a time."""
    rubric = load_rubric(RUBRIC)
    task = rubric.tasks[0]
    trial = net_trial()
    inst = Instance(task.kind, trial.x, trial.y, trial.params, task.activation, task.reduction, lr=0.01)
    chosen = [(c, False) for c in combos(task.kind)] + [
        (c, True) for c in (local_combos(task) if local else []) if local_pairs or "+" not in c.id
    ]
    applied = [
        (combo, at_one_layer, values) for combo, at_one_layer in chosen if (values := combo.compute(inst)) is not None
    ]
    tolerances = {check.quantity: rubric.tolerance_for(check) for check in task.checks}

    with TemporaryDirectory(prefix="bpg-mutations-") as folder:

        def grade(item: tuple[Mistake, bool, dict]) -> Outcome:
            combo, at_one_layer, values = item
            path = Path(folder) / f"{combo.id.replace('+', '_and_').replace('@', '_at_')}.ipynb"
            path.write_text(notebook(trial, values), encoding="utf-8")
            report = grade_submission(rubric, rubric_hash(RUBRIC), path, sandbox)
            mine = [c for c in report.checks if c.task == task.id]
            result, detail = classify(
                task,
                [trial],
                combo,
                mine,
                {trial.name: values},
                lambda r: tolerances[r.quantity],
                rubric.submission.allow_in_out,
            )
            label = "notebook, float64 printed to 8 decimals" + (", at one layer" if at_one_layer else "")
            return Outcome(RUBRIC, label, task.id, combo.id, result, detail)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(grade, applied))


def reference_notebook() -> str:
    """The correct notebook on the suite's net, printing the reference's gradients: graded, it must pass."""
    trial = net_trial()
    values = reference_values(Instance("mlp_regression", trial.x, trial.y, trial.params, "sigmoid", "sum"))
    return notebook(trial, values)
