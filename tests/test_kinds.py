"""Task kinds as behaviour (grader/kinds): every kind the rubric admits has one Kind, registered by name."""

import typing

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from grader.kinds import KINDS, kind_of
from grader.rubric.files import load_rubric
from grader.rubric.tasks import Task
from grader.trials import make_trial
from reference import mlp_regression
from reference.mistakes import CATALOGUE
from reference.mistakes_mutants import MATHS


def union_members() -> dict[str, type]:
    """Kind name → task model, as the rubric's `Task` union admits them."""
    models = typing.get_args(typing.get_args(Task)[0])
    return {typing.get_args(model.model_fields["kind"].annotation)[0]: model for model in models}


def test_every_kind_the_rubric_admits_has_its_behaviour_registered_under_its_name_with_its_own_model():
    members = union_members()
    assert set(KINDS) == set(members)
    for name, kind in KINDS.items():
        assert kind.name == name and kind.model is members[name]


def test_every_diagnosed_kind_has_mutants_and_every_catalogued_mistake_names_only_kinds_that_have():
    diagnosed = {name for name, kind in KINDS.items() if kind.diagnosed}
    assert diagnosed == set(MATHS)
    assert all(set(mistake.kinds) <= diagnosed for mistake in CATALOGUE)


@pytest.mark.parametrize(("rubric_id", "position"), [("softmax-dropout", 0), ("softmax-dropout", 1), ("bs6207-a1", 0)])
def test_a_kind_that_trains_compares_a_weights_update_and_the_others_the_value_itself(rubric_id, position):
    rubric = load_rubric(rubric_id)
    task = rubric.tasks[position]
    trial = make_trial(rubric, task, "public", 1)
    kind = kind_of(task)
    value = trial.params["W1"] + 0.5
    compared = kind.compared(trial, "W1", value)
    if kind.trains:
        np.testing.assert_allclose(compared, np.full_like(value, 0.5))
        assert set(kind.returned_parameters(task)) == set(task.param_shapes())
    else:
        assert compared is value
        assert set(kind.returned_parameters(task)) == {f"d{name}" for name in task.param_shapes()}


def test_only_a_kind_whose_target_follows_from_x_may_give_an_instance_without_y():
    given = {"x": [[0.5, 0.25]], "params": {"W1": [[0.1, 0.2]], "b1": [0.0]}}
    check = {"quantity": "architecture", "points": 1}
    regression = {"kind": "mlp_regression", "id": "a", "layers": [2, 1], "checks": [check], "given": given}
    task = TypeAdapter(Task).validate_python(regression)
    trial = make_trial(rubric_with(task), task, "public", 0)
    np.testing.assert_array_equal(trial.y, mlp_regression.target(np.array(given["x"])))
    graph = {**regression, "kind": "autograd_graph"}
    with pytest.raises(ValidationError, match="given.y is required"):
        TypeAdapter(Task).validate_python(graph)


def rubric_with(task):
    """bs6207-a1 with its task replaced by `task` (for making its trials)."""
    return load_rubric("bs6207-a1").model_copy(update={"tasks": [task]})
