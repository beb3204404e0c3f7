"""Provenance of a notebook's reported values, proven by the counterfactual run (grader/sandbox/child/provenance.py).

In the counterfactual run every gradient autograd produced was `factor` times the true one, from the
notebook's first autograd call on. For a value the notebook reported (a variable after a cell, or a number
in a file it wrote), compare what it held in the real run (`found`) with what it held there (`again`):

- `again` ≈ factor × `found`: the value was copied from autograd (a `.grad`, or computed from one);
- `again` ≈ `found`: the value does not depend on autograd's answers (computed by hand, or before the
  first autograd call);
- anything else (training with autograd's gradients, a mix): nothing is claimed.

Values that are (nearly) zero are never judged: factor × 0 = 0. Printed values carry their printed precision
as an allowance, so a value printed to 4 decimals is judged only as far as 4 decimals can tell.
"""

import hashlib
from enum import Enum

import numpy as np

from grader.notebook.datfile import read_dat
from grader.report import CheckResult, CheckStatus, Diagnosis
from grader.sandbox import RunResult

PROVENANCE_SWITCH = (
    "BACKPROP_GRADER_PROVENANCE"  # "off" in the grader's environment: no counterfactual run (benchmarks)
)
RELATIVE = 1e-4  # float32 arithmetic on other operands is far below this; the factor moves values by ≥ 30 %
FACTORS = (1.3, 1.9)


class Follows(str, Enum):
    """What the counterfactual run says about one reported value."""

    autograd = "autograd"  # moved with autograd's answers: copied from autograd
    independent = "independent"  # did not move: does not depend on autograd
    unknown = "unknown"  # no counterfactual value, too small to tell, or moved otherwise


def counterfactual_factor(submission_sha256: str, seed: int) -> float:
    """The factor for one submission: fixed by the submission and the rubric (a re-grade reproduces it), in
    FACTORS, so that neither 1 nor a small integer ratio such as 2 (a missing factor 2) can be mistaken for it."""
    digest = hashlib.sha256(f"backprop-grader counterfactual {seed} {submission_sha256}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return round(FACTORS[0] + (FACTORS[1] - FACTORS[0]) * fraction, 6)


def follows(
    found: np.ndarray, again: np.ndarray | None, factor: float, uncertainty: np.ndarray | None = None
) -> Follows:
    """Whether `again` (the counterfactual run's value) is `factor` × `found`, equal to it, or neither."""
    if again is None:
        return Follows.unknown
    found, again = np.asarray(found, dtype=np.float64), np.asarray(again, dtype=np.float64)
    if found.shape != again.shape or found.size == 0 or not (np.all(np.isfinite(found)) and np.all(np.isfinite(again))):
        return Follows.unknown
    allowance = (
        np.zeros_like(found)
        if uncertainty is None
        else np.broadcast_to(np.asarray(uncertainty, dtype=np.float64), found.shape)
    )
    scale = float(np.max(np.abs(found)))
    if scale == 0.0 or scale <= 4 * float(np.max(allowance)):  # too small, or too coarsely printed, to tell
        return Follows.unknown
    slack = RELATIVE * factor * scale + (1 + factor) * allowance
    if np.all(np.abs(again - factor * found) <= slack):
        return Follows.autograd
    if np.all(np.abs(again - found) <= RELATIVE * scale + 2 * allowance):
        return Follows.independent
    return Follows.unknown


def entry_again(run: RunResult, name: str, cell: int) -> np.ndarray | None:
    """The value variable `name` held after `cell` in the counterfactual run, when known."""
    counterfactual = run.counterfactual
    if counterfactual is None or cell < counterfactual.cell:
        return None
    again = counterfactual.value(name, cell)
    if again is None:  # unchanged there since before the fork point's cell: the real run's value then
        before = [e for e in run.namespace if e.name == name and e.cell < counterfactual.cell]
        again = run.arrays[before[-1].array] if before else None
    return again


def file_again(run: RunResult, file_name: str, layers: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Values (torch layout) and printed uncertainty of the counterfactual run's copy of a written file."""
    counterfactual = run.counterfactual
    if counterfactual is None:
        return {}
    text = next(
        (data for name, data in counterfactual.files.items() if name.rsplit("/", 1)[-1].lower() == file_name.lower()),
        None,
    )
    written = next(
        (data for name, data in run.files.items() if name.rsplit("/", 1)[-1].lower() == file_name.lower()), None
    )
    if text is None or written is None or text == written:
        return {}  # not written by this run (handed in beside the notebook), or the same bytes: nothing moved
    assignment = read_dat(text.decode("utf-8", errors="replace"), layers)
    return {key: assignment.in_torch_layout(key) for key in assignment.values}


def copied_from_autograd(result: CheckResult, copied: dict[str, str]) -> CheckResult:
    """A scratch check whose reported values the counterfactual run showed copied from autograd: 0 points,
    with the evidence, whatever the comparison said (the values are right because they are autograd's)."""
    source, _, key = result.quantity.partition(".")
    if source != "scratch" or key not in copied:
        return result
    where = copied[key]
    message = (
        f"{result.quantity}: not computed by hand — the value reported in {where} moved with autograd's "
        f"answers when the notebook was run again with autograd's gradients changed, so it was copied from "
        f"autograd (a .grad), not computed by your own backward pass"
    )
    diagnosis = Diagnosis(
        mistake="copied_from_autograd",
        title="gradients copied from autograd",
        explanation=f"The {key} you report as your own ({where}) is autograd's: when the grader re-ran your "
        "notebook with autograd's gradients scaled by a factor only it knew, this value was scaled too.",
        hint="Compute this gradient with your own backward pass (the chain rule, numpy or tensor operations) "
        "from the weights and the input, and report that value, not a parameter's .grad.",
        trials=[t.trial for t in result.trials],
    )
    return no_points(result, message, diagnosis)


def no_points(result: CheckResult, message: str, diagnosis: Diagnosis) -> CheckResult:
    """`result` failed with 0 points on every trial and group, saying why: what autograd's perturbation
    showed (here for notebooks, in grader/scratch_effect.py for a contract's scratch calls)."""
    group = dict.fromkeys(result.group_points, 0.0)
    return result.model_copy(
        update={
            "status": CheckStatus.failed,
            "points": 0.0,
            "message": message,
            "diagnosis": diagnosis,
            "group_points": group,
            "trials": [t.model_copy(update={"status": CheckStatus.failed, "message": message}) for t in result.trials],
        }
    )


def copied_flag(copied: dict[str, str]) -> list[str]:
    """The instructor's flag for a notebook whose scratch values were copied from autograd."""
    if not copied:
        return []
    where = sorted({place.split(" line ")[0] for place in copied.values()})
    return [
        f"scratch gradients copied from autograd ({', '.join(sorted(copied))}, reported in {'; '.join(where)}): "
        f"they moved with autograd's answers in the provenance run"
    ]
