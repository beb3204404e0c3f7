"""What a submission produced for each (task, source, trial) — the one input the check stage reads.

Contract submissions fill it from the sandbox's call results; free-form notebooks from what was observed
while they ran (.dat files, variables, parameter gradients). Either way the check stage and the
diagnosis see the same shape: values to compare, or the student-facing reason there are none, plus the
printed precision of values read from text and where each value came from.
"""

from dataclasses import dataclass, field

import numpy as np

from grader.sandbox import RunResult
from grader.sandbox.models import CallStatus, Rerun, RunStatus


@dataclass(frozen=True)
class Found:
    """The values one contract source produced on one trial, or why it produced none.

    `layouts` names, for a value the check stage re-read to take its source's layout (a square weight
    gradient of an (in, out) source, `grader.source_layout`), the layout it was read in. `status` is how
    the call ended (an observed notebook's values: ok); `sandbox_failed`, that the grader's sandbox failed
    and nothing of the student's ran (then the call is not_run, and the reason is not the student's)."""

    status: CallStatus = CallStatus.ok
    sandbox_failed: bool = False
    message: str = ""
    values: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    uncertainty: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, str] = field(default_factory=dict)
    rerun: Rerun | None = None  # a contract scratch call made again under scaled autograd (scratch_effect.py)


def from_run(run: RunResult, functions: dict[str, str]) -> dict[str, Found]:
    """Call id → Found for a contract run; `functions` maps call id → the function it called. A call of a
    run the grader's sandbox failed is not run, and `sandbox_failed`: not the student's doing."""
    found = {}
    for call, result in run.calls.items():
        where = f"{functions.get(call, '?')}()"
        found[call] = Found(
            status=result.status,
            sandbox_failed=run.status == RunStatus.sandbox_error,
            message=result.message,
            values=result.values,
            texts=result.texts,
            problems=result.problems,
            provenance={name: f"{where} returned {name!r}" for name in [*result.values, *result.texts]},
            rerun=result.rerun,
        )
    return found
