"""Resource limits: a --timeout replaces wall and CPU time only within the bounds a rubric's limits have."""

import pytest

from grader.errors import UsageError
from grader.limits import Limits
from grader.rubric.files import load_rubric


def test_a_timeout_sets_wall_and_cpu_time_and_keeps_every_other_limit():
    limits = load_rubric("bs6207-a1").limits
    changed = limits.with_timeout(20.0)
    assert (changed.wall_seconds, changed.cpu_seconds) == (20.0, 20.0)
    others = {name for name in Limits.model_fields if name not in ("wall_seconds", "cpu_seconds")}
    assert changed.model_dump(include=others) == limits.model_dump(include=others)


def test_no_timeout_keeps_the_rubric_limits():
    limits = load_rubric("bs6207-a1").limits
    assert limits.with_timeout(None) == limits


@pytest.mark.parametrize("seconds", [7200.0, 0.0, -5.0, float("nan"), float("inf")])
def test_a_timeout_outside_the_bounds_a_rubric_may_set_is_a_usage_error_naming_the_range(seconds):
    high = next(m.le for m in Limits.model_fields["wall_seconds"].metadata if hasattr(m, "le"))
    with pytest.raises(UsageError) as raised:
        Limits().with_timeout(seconds)
    assert f"--timeout {seconds:g}" in str(raised.value) and f"{high:g}]" in str(raised.value)
    with pytest.raises(ValueError):  # the same bounds as a rubric's [limits] table
        Limits(wall_seconds=seconds, cpu_seconds=seconds)
