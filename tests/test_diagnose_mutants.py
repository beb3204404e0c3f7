"""Which catalogued mistake or pair explains a source's failing quantities: matched on every failing trial,
ruled out by a quantity the student got right, one mutant run per trial for a whole class."""

import numpy as np

from grader.diagnose.mutants import best_mutant
from grader.expected import expected_values
from grader.rubric.files import load_rubric
from grader.trials import trials_for
from reference.mistakes import mistakes_for, pairs_for, run_mutant


def setting(mistake_id, names=("dW1",), kinds=mistakes_for):
    """The bs6207-a1 task, its trials and the student's values of `names` under the mistake, every check failing."""
    rubric = load_rubric("bs6207-a1")
    task = rubric.tasks[0]
    trials = trials_for(rubric, task, ("public", "hidden"))
    expected = {t.name: expected_values(task, t) for t in trials}
    mistake = next(m for m in kinds(task.kind) if m.id == mistake_id)
    found = {
        t.name: {
            name: run_mutant(
                mistake, task.kind, t.x, t.y, t.params, activation=task.activation, reduction=task.reduction, lr=0.01
            )[name]
            for name in names
        }
        for t in trials
    }
    tolerance = rubric.tolerance_for(next(c for c in task.checks if c.quantity.endswith(".dW1")))
    arguments = dict(
        names=list(names),
        failed_on={name: {t.name for t in trials} for name in names},
        prints={t.name: t.fingerprint for t in trials},
        tolerances=dict.fromkeys(names, tolerance),
    )
    return task, trials, expected, found, arguments


def test_a_mistake_explains_a_quantity_only_if_it_matches_on_every_trial_where_the_check_failed():
    task, trials, expected, found, arguments = setting("sign_flip")
    best = best_mutant(task, trials, expected, found, **arguments, mistakes=mistakes_for(task.kind), passed_on={})
    assert best is not None and best[0].id == "sign_flip" and best[1] == {"dW1"}
    found[trials[-1].name]["dW1"] = found[trials[-1].name]["dW1"] * 1.01  # off on the last failing trial only
    assert (
        best_mutant(task, trials, expected, found, **arguments, mistakes=mistakes_for(task.kind), passed_on={}) is None
    )
    arguments["failed_on"]["dW1"].discard(trials[-1].name)  # ... unless the check passed there
    assert (
        best_mutant(task, trials, expected, found, **arguments, mistakes=mistakes_for(task.kind), passed_on={})[0].id
        == "sign_flip"
    )


def test_a_mistake_that_would_have_failed_a_check_the_student_passed_is_ruled_out():
    """sign_flip also negates dW2: a student whose dW2 passed did not make it, whatever dW1 shows."""
    task, trials, expected, found, arguments = setting("sign_flip")
    arguments["tolerances"]["dW2"] = arguments["tolerances"]["dW1"]
    passed = {"dW2": {t.name for t in trials}}
    assert (
        best_mutant(task, trials, expected, found, **arguments, mistakes=mistakes_for(task.kind), passed_on=passed)
        is None
    )
    arguments["tolerances"]["prediction"] = arguments["tolerances"]["dW1"]
    right = {"prediction": {t.name for t in trials}}  # sign_flip leaves the prediction alone: no contradiction
    assert (
        best_mutant(task, trials, expected, found, **arguments, mistakes=mistakes_for(task.kind), passed_on=right)[0].id
        == "sign_flip"
    )


def test_a_pair_is_matched_where_no_single_mistake_is():
    task, trials, expected, found, arguments = setting(
        "missing_factor_2+sign_flip", names=("dW1", "db1", "dW3"), kinds=pairs_for
    )
    assert (
        best_mutant(task, trials, expected, found, **arguments, mistakes=mistakes_for(task.kind), passed_on={}) is None
    )
    best = best_mutant(
        task, trials, expected, found, **arguments, mistakes=pairs_for(task.kind), passed_on={}, group="pairs"
    )
    assert best[0].id == "missing_factor_2+sign_flip" and best[1] == {"dW1", "db1", "dW3"}
    assert np.allclose(found[trials[0].name]["dW3"], -0.5 * expected[trials[0].name]["dW3"])
