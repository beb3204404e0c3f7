"""Job and Call validation: a grader bug in building a job fails loudly at construction, not in the child."""

import numpy as np
import pytest

from grader.sandbox import Call, Job


def test_jobs_must_name_only_arrays_they_provide_and_use_unique_ids():
    with pytest.raises(ValueError, match="not in Job.arrays"):
        Job(filename="a.py", cells=[""], calls=[Call(id="c", function="f", args=["nope"])])
    with pytest.raises(ValueError, match="ids must be unique"):
        Job(filename="a.py", cells=[""], calls=[Call(id="c", function="f"), Call(id="c", function="g")])
    with pytest.raises(ValueError, match="expected real numbers"):
        Job(filename="a.py", cells=[""], arrays={"z": np.ones(2) * 1j})
    with pytest.raises(ValueError):
        Call(id="c", function="f", args=[True])
    with pytest.raises(ValueError):
        Call(id="c", function="not a name")
    assert Job(filename="a.py", cells=[""], arrays={"i": np.arange(3)}).arrays["i"].dtype == np.float64


def test_arguments_keep_their_json_types():
    call = Call(id="c", function="f", args=["x", {"W1": "t0.W1"}, 3, 0.5])
    assert call.args == ["x", {"W1": "t0.W1"}, 3, 0.5]
    assert isinstance(call.args[2], int) and isinstance(call.args[3], float)
    with pytest.raises(ValueError):
        Call(id="c", function="f", extra=1)
