"""What the job tells the child each contract call must return: every quantity, with the reference's shape."""

import numpy as np
import pytest
from conftest import REPO

from grader.expected import expected_values
from grader.returns import expected_returns
from grader.rubric.files import load_rubric
from grader.trials import make_trial

RUBRICS = sorted(path.stem for path in (REPO / "rubrics").glob("*.toml"))


@pytest.mark.parametrize("rubric_id", RUBRICS)
def test_every_quantity_is_asked_for_with_the_shape_the_reference_gives_it(rubric_id):
    rubric = load_rubric(rubric_id)
    for task in rubric.tasks:
        trial = make_trial(rubric, task, "public", 0)
        returns, expected = expected_returns(task, trial), expected_values(task, trial)
        assert list(returns) == task.quantities()
        for name, shape in returns.items():
            if isinstance(expected[name], list):
                assert shape is None, name  # node names: a list of strings
            else:
                assert tuple(shape) == np.shape(expected[name]), name


def test_a_task_kind_without_a_known_shape_for_a_quantity_is_a_grader_fault_said_plainly():
    rubric = load_rubric("bs6207-a1")
    task = rubric.tasks[0]
    trial = make_trial(rubric, task, "public", 0)

    class Unknown(type(task)):
        def quantities(self):
            return ["weirdness"]

    with pytest.raises(ValueError, match="no expected shape for the quantity 'weirdness'"):
        expected_returns(Unknown.model_construct(**dict(task)), trial)
