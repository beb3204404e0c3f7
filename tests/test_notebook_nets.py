"""Which net a notebook's values belong to (grader/notebook/nets.py): a decoy called first, a second net
built for the hand-written part, a net called only in a cell the handed-in notebook never ran."""

import numpy as np
import pytest
from conftest import REPO, init_params

from grader.grade import grade_submission
from grader.notebook.nets import matches, never_run, reference_of
from grader.notebook.network import Net
from grader.report import CheckStatus
from grader.rubric.files import load_rubric, rubric_hash

RUBRIC = "bs6207-a1-notebook"
SAMPLES = REPO / "submissions" / "bs6207-a1-notebooks"


def a_net(seed: int, cell: int = 2, variable: str = "net") -> Net:
    rng = np.random.default_rng(seed)
    params = init_params(rng, [2, 10, 10, 1])
    return Net([2, 10, 10, 1], "sigmoid", rng.uniform(size=(1, 2)), params, {k: k for k in params}, variable, cell)


@pytest.fixture(scope="module")
def reports(grading_sandbox):
    rubric = load_rubric(RUBRIC)
    return {
        stem: grade_submission(rubric, rubric_hash(RUBRIC), SAMPLES / f"{stem}.ipynb", grading_sandbox)
        for stem in ("decoy_net_first", "second_net_for_scratch", "net_in_unrun_cell")
    }


def test_gradients_match_their_own_net_and_not_another_one():
    net, other = a_net(0), a_net(1)
    own = reference_of(net, "sigmoid")
    values = {k: v.astype(np.float32) for k, v in own.items() if k.startswith("d")}
    assert matches(values, {}, own) == 6
    assert matches(values, {}, reference_of(other, "sigmoid")) == 0
    assert matches({"dW1": values["dW1"].T}, {}, own) == 1  # either layout


def test_a_decoy_called_first_is_not_the_graded_net(reports):
    report = reports["decoy_net_first"]
    assert report.score == report.max_score and not report.flags
    assert any("called `test_net` first" in note and "`net`" in note for note in report.notes)
    assert next(c for c in report.checks if c.quantity == "architecture").provenance.endswith(": net")


def test_scratch_gradients_of_a_second_net_are_graded_on_its_weights_and_flagged(reports):
    report = reports["second_net_for_scratch"]
    scratch = [c for c in report.checks if c.quantity.startswith("scratch.")]
    assert len(scratch) == 6 and all(c.status == CheckStatus.passed for c in scratch)
    assert all(t.trial == "notebook-1" for c in scratch for t in c.trials)
    assert any(
        f.startswith("scratch gradients computed on other weights than the autograd net") and "`model2`" in f
        for f in report.flags
    )


def test_a_net_called_only_in_a_cell_never_run_is_named(reports):
    report = reports["net_in_unrun_cell"]
    assert any("shows as never run" in f and "cell 3" in f for f in report.flags)


def test_a_notebook_without_saved_counts_is_never_said_to_be_unrun():
    net = a_net(0, cell=2)
    assert never_run(net, [None, None, None], lambda c: c) == []
    assert never_run(net, [], lambda c: c) == []
    assert never_run(net, [1, 2, 3], lambda c: c) == []
    assert never_run(net, [1, None, 2], lambda c: c + 1)[0].startswith("the graded net `net` is first called in cell 3")
