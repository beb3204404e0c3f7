"""The mutation suite (DESIGN §7): every catalogued mistake and every pair of them, applied to each bundled
task, graded, and counted: named right, named wrong, indistinguishable, not named.

    .venv/bin/python -m benchmarks.mutations [--notebooks]     # exits 1 if any name is wrong

Contract rubrics (bs6207-a1, deep-relu, softmax-dropout) are graded in-process from the values a
submission with the mistake returns from its mutated function (scratch_gradients, or train_with_dropout
for training; the other functions return the right values): the check stage and the diagnosis exactly as
they run on what the sandbox hands back, on the public and hidden trials. Variants (`VARIANTS`): float64;
rounded to float32; with the (out, in) layout required — where a transposed dW is a mistake to name, not
a layout to accept —; and bs6207-a1's net as a 3-3-3-1 tanh net on batches of 4 with a mean loss, where
the mistakes the bundled shapes hide show. Besides the catalogue's whole-pass mistakes, each mistake about
one layer's relations is made at one layer only (`local_combos`), alone and with each other mistake: only
the chain rule's relations can name those, with their layer. Free-form notebooks are real notebooks that
print the mutated gradients, run in the sandbox (`benchmarks.mutation_notebooks`). Correct submissions
computed in float32 (`float32_correct`) must pass every check and get no diagnosis.

What counts as named right, indistinguishable, not named or wrong: `benchmarks.mutation_verdicts`. A
combination is right when every failing check is; it is wrong when any check is; it is *invisible* when it
fails no check, and *diverged* when the values it makes are not finite (training that blows up: every such
mistake looks alike).
"""

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from benchmarks.mutation_verdicts import arguments, classify, instance, mutated_source
from grader.checks import check_task
from grader.found import Found
from grader.report import CheckStatus
from grader.rubric.files import load_rubric
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task
from grader.run import call_id
from grader.trials import Trial, trials_for
from reference.mistakes import Mistake, at_layer, mistakes_for, pair, pairs_for, run_mutant
from reference.mistakes_mutants import reference_values

CONTRACT_RUBRICS = ("bs6207-a1", "deep-relu", "softmax-dropout")
RESULTS = ("right", "indistinguishable", "unnamed", "wrong")


@dataclass(frozen=True)
class Outcome:
    """One combination graded on one task: what the diagnosis made of it."""

    rubric: str
    variant: str  # "float64", "float32", "float64, (out, in) only", …
    task: str
    combo: str
    result: str  # one of RESULTS, "invisible" (no check fails) or "diverged" (non-finite values)
    detail: str = ""


def required_layout(rubric: Rubric) -> Rubric:
    """The rubric with the (out, in) layout required: a transposed dW fails instead of being read as (in, out)."""
    return rubric.model_copy(update={"submission": rubric.submission.model_copy(update={"allow_in_out": False})})


def combos(kind: str) -> list[Mistake]:
    """Every catalogued mistake of the kind, then every pair."""
    return [*mistakes_for(kind), *pairs_for(kind)]


def local_combos(task: Task, layers: Iterable[int] | None = None) -> list[Mistake]:
    """Each mistake about one layer's relations made at one layer only ("id@l": the catalogue's mutant
    makes it at every layer), alone and with each other catalogued mistake: only the chain rule's
    relations can name these, with their layer. mlp_regression only (the classifier has one hidden layer);
    `layers`: the layers to make them at (default: every layer)."""
    if task.kind != "mlp_regression":
        return []
    chosen = range(1, len(task.layers)) if layers is None else [l for l in layers if 1 <= l < len(task.layers)]
    local = [m for mistake in mistakes_for(task.kind) for l in chosen if (m := at_layer(mistake, l)) is not None]
    both = [
        p for m in local for other in mistakes_for(task.kind) if other.id != m.parts[0] and (p := _local_pair(m, other))
    ]
    return [*local, *both]


def _local_pair(local: Mistake, other: Mistake) -> Mistake | None:
    made = pair(local, other)
    if made is None:
        return None
    return Mistake(
        f"{local.id}+{other.id}",
        made.title,
        made.explanation,
        made.hint,
        made.kinds,
        made.edit,
        (local.parts[0], other.id),
    )


def contract_found(
    task: Task, trials: list[Trial], values: dict[str, dict[str, np.ndarray]], dtype: type
) -> dict[str, Found]:
    """What the sandbox would hand back: the mutated source's values (by trial), the others the reference's."""
    found = {}
    for trial in trials:
        for source in task.contract.functions():
            returned = values[trial.name] if source == mutated_source(task) else reference_values(instance(task, trial))
            found[call_id(task, source, trial)] = Found(
                values={k: np.asarray(np.asarray(v, dtype=dtype), dtype=np.float64) for k, v in returned.items()}
            )
    return found


def batched(rubric: Rubric) -> Rubric:
    """An mlp rubric's task as a 3-3-3-1 tanh net on batches of 4 with a mean loss: where the mistakes the
    bundled shapes hide show (an unsummed bias gradient, x in a deeper dW, a sum where a mean was asked)."""
    tasks = [
        task.model_copy(update={"layers": [3, 3, 3, 1], "batch_size": 4, "reduction": "mean", "activation": "tanh"})
        if task.kind == "mlp_regression"
        else task
        for task in rubric.tasks
    ]
    return rubric.model_copy(update={"tasks": tasks})


VARIANTS = ("float64", "float32", "float64, (out, in) only", "float64, 3-3-3-1 tanh, batch of 4, mean loss")
_RUBRIC_OF = {VARIANTS[2]: required_layout, VARIANTS[3]: batched}


def contract_outcomes(
    rubric_ids: Iterable[str] = CONTRACT_RUBRICS,
    variants: Iterable[str] = VARIANTS,
    local_variants: Iterable[str] = VARIANTS[:2],
    layers: Iterable[int] | None = None,
    select: Callable[[str], bool] = lambda combo_id: True,
) -> list[Outcome]:
    """Every catalogued combination (whose id `select` takes) on every task of the contract rubrics in each
    of `variants`, and each mistake at one layer (alone and with each other mistake; at each of `layers`,
    default all) in each of `local_variants`. The batched variant is bs6207-a1's only."""
    outcomes = []
    for rubric_id in rubric_ids:
        bundled = load_rubric(rubric_id)
        for label in dict.fromkeys([*variants, *local_variants]):
            if label == VARIANTS[3] and rubric_id != "bs6207-a1":
                continue  # the variant's net has bs6207-a1's three layers, whose checks it keeps
            rubric = _RUBRIC_OF.get(label, lambda r: r)(bundled)
            dtype = np.float32 if label.startswith("float32") else np.float64
            for task in rubric.tasks:
                trials = trials_for(rubric, task, ("public", "hidden"))
                chosen = [
                    *((c, False) for c in (combos(task.kind) if label in variants else []) if select(c.id)),
                    *((c, True) for c in (local_combos(task, layers) if label in local_variants else [])),
                ]
                for combo, at_one_layer in chosen:
                    result, detail = _graded(rubric, task, trials, combo, dtype)
                    outcomes.append(
                        Outcome(
                            rubric_id,
                            f"{label}, at one layer" if at_one_layer else label,
                            task.id,
                            combo.id,
                            result,
                            detail,
                        )
                    )
    return outcomes


def _graded(rubric: Rubric, task: Task, trials: list[Trial], combo: Mistake, dtype: type) -> tuple[str, str]:
    """Grade what a submission with `combo` returns, in `dtype`, and classify its diagnosis."""
    with np.errstate(over="ignore", invalid="ignore"):  # a mistake may make training blow up: that is an outcome too
        return _graded_quietly(rubric, task, trials, combo, dtype)


def _graded_quietly(rubric: Rubric, task: Task, trials: list[Trial], combo: Mistake, dtype: type) -> tuple[str, str]:
    values, changed = {}, False
    for trial in trials:
        reference = reference_values(instance(task, trial))
        computed = run_mutant(combo, **arguments(instance(task, trial)))
        values[trial.name] = computed if computed is not None else reference
        changed = (
            changed
            or computed is not None
            and any(
                np.shape(computed[k]) != np.shape(v) or not np.array_equal(computed[k], v) for k, v in reference.items()
            )
        )
    if not changed:
        return "invisible", ""  # the reference's own values on every trial: nothing to grade
    stored = {
        t: {k: np.asarray(np.asarray(v, dtype=dtype), dtype=np.float64) for k, v in vals.items()}
        for t, vals in values.items()
    }
    if any(not np.isfinite(v).all() for vals in stored.values() for v in vals.values()):
        return "diverged", "non-finite values: no mistake can be told from another that also diverges"
    results = check_task(rubric, task, trials, contract_found(task, trials, values, dtype))
    return classify(task, trials, combo, results, stored, _tolerance_of(rubric, task), rubric.submission.allow_in_out)


def _tolerance_of(rubric: Rubric, task: Task):
    by_quantity = {check.quantity: rubric.tolerance_for(check) for check in task.checks}
    return lambda result: by_quantity[result.quantity]


def float32_correct(rubric_ids: Iterable[str] = CONTRACT_RUBRICS) -> list[str]:
    """Problems of correct float32 submissions: any check that fails or any diagnosis (none expected)."""
    from benchmarks.mutation_float32 import float32_values

    problems = []
    for rubric_id in rubric_ids:
        rubric = load_rubric(rubric_id)
        for task in rubric.tasks:
            trials = trials_for(rubric, task, ("public", "hidden"))
            found = {
                call_id(task, source, trial): Found(values=float32_values(task, trial))
                for trial in trials
                for source in task.contract.functions()
            }
            for result in check_task(rubric, task, trials, found):
                if result.status != CheckStatus.passed or result.diagnosis is not None:
                    problems.append(
                        f"{rubric_id} {result.quantity}: {result.status.value}, diagnosis {result.diagnosis}"
                    )
    return problems


def table(outcomes: list[Outcome]) -> str:
    """Counts by rubric and variant: combinations that apply (are visible), and how each was named."""
    rows = [
        "| rubric | variant | visible | right | indistinguishable | not named | wrong | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(o.rubric, o.variant) for o in outcomes}, key=lambda k: (k[0], k[1]))
    for rubric, variant in keys:
        counts = Counter(o.result for o in outcomes if (o.rubric, o.variant) == (rubric, variant))
        visible = sum(counts[r] for r in RESULTS)
        rows.append(
            f"| {rubric} | {variant} | {visible} | {counts['right']} | {counts['indistinguishable']} | "
            f"{counts['unnamed']} | {counts['wrong']} | {counts['diverged']} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutations", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--notebooks", action="store_true", help="also run the free-form notebook part (sandbox, slower)"
    )
    args = parser.parse_args(argv)
    outcomes = contract_outcomes()
    if args.notebooks:
        from benchmarks.mutation_notebooks import notebook_outcomes
        from grader.sandbox import Sandbox

        with Sandbox(jobs=2) as sandbox:
            outcomes += notebook_outcomes(sandbox, jobs=2, local=True)
    print(table(outcomes))
    for outcome in outcomes:
        if outcome.result in ("wrong", "unnamed", "indistinguishable", "diverged"):
            print(
                f"{outcome.result:>17}: {outcome.rubric} [{outcome.variant}] {outcome.task} {outcome.combo}: {outcome.detail[:200]}"
            )
    problems = float32_correct()
    print(f"correct float32 submissions: {'no check failed, no diagnosis' if not problems else problems}")
    return 1 if problems or any(o.result == "wrong" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
