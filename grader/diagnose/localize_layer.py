"""One layer's relations against one student's values: what each stand-in predicts for dW_l and db_l, and
whether the student's values match it (`grader.diagnose.localize` walks the layers with these).

At layer l, from the δ_{l+1} the layers above hand down (at the output, from dL/dŷ), δ_l is made by the
chain rule and by each stand-in (`grader.diagnose.chain`), and dW_l and db_l are predicted from it with each
stand-in for a_{l−1} and for the batch sum. A `Repair` names the stand-in each relation used; the
comparisons are the checks' own (`within`, the quantity's tolerance).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from grader.compare import within
from grader.diagnose.chain import Chain
from grader.rubric.checkspec import Tolerance

Array = np.ndarray


@dataclass(frozen=True)
class Repair:
    """The stand-in each relation of one layer used ("correct": the chain rule's own; "factor": the right
    value times `factor`), as the student's values show it."""

    delta: str = "correct"
    dW: str = "correct"
    db: str = "correct"
    factor: float | None = None

    def broken(self) -> list[tuple[str, str]]:
        """(relation, stand-in) of each relation this repair changes: "delta", "dW" or "db"."""
        return [
            (relation, used)
            for relation, used in (("delta", self.delta), ("dW", self.dW), ("db", self.db))
            if used != "correct"
        ]


CLEAN = Repair()


class Relations:
    """One trial's relations against one student's values: what each stand-in predicts, and whether it fits."""

    def __init__(self, chain: Chain, found: Mapping[str, Array], tolerances: Mapping[str, Tolerance]) -> None:
        self.chain, self.found, self.tolerances = chain, found, tolerances

    def fits(self, name: str, value: Array | None, predicted: Array) -> bool:
        """No value to contradict it, or the value matches the prediction as its check would."""
        return value is None or within(value, predicted, self.tolerances[name])

    def values(self, l: int) -> tuple[Array | None, Array | None]:
        """The student's dW_l and db_l (None where not given, or the net has no biases)."""
        return self.found.get(f"dW{l}"), self.found.get(f"db{l}") if self.chain.bias else None

    def deltas(self, l: int, up: Array | None) -> list[tuple[str, Array]]:
        """δ_l by the chain rule from δ_{l+1} (at the output: dL/dŷ) first, then by each stand-in."""
        chain = self.chain
        if l == chain.depth:
            return list(chain.outputs)
        W = chain.weights[l + 1]
        back = up @ W  # W_{l+1}ᵀ δ_{l+1} on paper
        derivatives = chain.layers[l].derivatives
        deltas = [(repair, back * derivative) for repair, derivative in derivatives]
        if W.shape[0] == W.shape[1]:  # through W instead of Wᵀ, with each derivative (a second stand-in: "a+b")
            wrong_way = up @ W.T
            deltas += [
                (
                    "backprop_through_w_instead_of_wt" + ("" if repair == "correct" else f"+{repair}"),
                    wrong_way * derivative,
                )
                for repair, derivative in derivatives
            ]
        return deltas

    def explain(self, l: int, up: Array | None) -> list[tuple[Repair, Array]] | None:
        """Every repair that makes layer l's dW_l and db_l follow from δ_{l+1} = `up`, simplest first, each
        with the δ_l it implies; [(CLEAN, δ_l)] when the chain rule holds; a repair of "unknown" for the one
        relation that breaks when no stand-in explains it; None when the student gave neither quantity."""
        dW, db = self.values(l)
        if dW is None and db is None:
            return None
        deltas = self.deltas(l, up)
        correct, a = deltas[0][1], self.chain.layers[l].inputs[0][1]
        weight, bias = correct.T @ a, correct.sum(axis=0)
        weight_ok, bias_ok = self.fits(f"dW{l}", dW, weight), self.fits(f"db{l}", db, bias)
        if weight_ok and bias_ok:
            return [(CLEAN, correct)]
        options = []
        for delta_id, delta in deltas:
            bias_ids = self._bias_fits(l, db, delta)
            if not bias_ids:  # a δ that db_l contradicts needs no dW_l tried
                continue
            for dW_id in self._weight_fits(l, dW, delta):
                options += [(Repair(delta_id, dW_id, db_id), delta) for db_id in bias_ids]
        options += self._factors(l, dW, db, correct, weight, bias)
        options.sort(key=lambda option: len(option[0].broken()))  # stable: the simplest first, in the order tried
        if not options and dW is not None and db is not None and (weight_ok or bias_ok):
            options = [(Repair(dW="unknown") if bias_ok else Repair(db="unknown"), correct)]
        return options

    def check(self, l: int, up: Array | None, repair: Repair) -> Array | None:
        """The δ_l that `repair` implies at layer l, if the student's dW_l and db_l follow from it; else None."""
        dW, db = self.values(l)
        deltas = self.deltas(l, up)
        delta = dict(deltas).get(repair.delta if repair.delta != "factor" else "correct")
        if delta is None:
            return None
        if repair.delta == "factor":
            delta = repair.factor * delta
        inputs = dict(self.chain.layers[l].inputs)
        if repair.dW == "unknown":
            weight_ok = dW is not None and not self.fits(f"dW{l}", dW, delta.T @ inputs["correct"])
        elif repair.dW in ("correct", "factor", "transposed_gradient"):
            weight = delta.T @ inputs["correct"]
            weight = (
                weight.T
                if repair.dW == "transposed_gradient"
                else repair.factor * weight
                if repair.dW == "factor"
                else weight
            )
            weight_ok = self.fits(f"dW{l}", dW, weight)
        else:
            weight_ok = repair.dW in inputs and self.fits(f"dW{l}", dW, delta.T @ inputs[repair.dW])
        if not weight_ok:
            return None
        if repair.db == "unknown":
            bias_ok = db is not None and not self.fits(f"db{l}", db, delta.sum(axis=0))
        else:
            bias = delta if repair.db == "bias_gradient_not_summed" else delta.sum(axis=0)
            bias_ok = self.fits(f"db{l}", db, repair.factor * bias if repair.db == "factor" else bias)
        return delta if bias_ok else None

    def _weight_fits(self, l: int, dW: Array | None, delta: Array) -> list[str]:
        """The stand-ins for a_{l−1} in dW_l = δ_l a_{l−1}ᵀ that reproduce the student's dW_l (and a transposed dW_l)."""
        if dW is None:
            return ["correct"]
        name, inputs = f"dW{l}", self.chain.layers[l].inputs
        matched = [used for used, a in inputs if self.fits(name, dW, delta.T @ a)]
        weight = delta.T @ inputs[0][1]
        if weight.shape[0] == weight.shape[1] and self.fits(name, dW, weight.T):
            matched.append("transposed_gradient")
        return matched

    def _bias_fits(self, l: int, db: Array | None, delta: Array) -> list[str]:
        """ "correct" if db_l = Σ_batch δ_l, "bias_gradient_not_summed" if db_l = δ_l, one row per example."""
        if db is None:
            return ["correct"]
        name = f"db{l}"
        matched = ["correct"] if self.fits(name, db, delta.sum(axis=0)) else []
        if self.chain.batch > 1 and self.fits(name, db, delta):
            matched.append("bias_gradient_not_summed")
        return matched

    def _factors(
        self, l: int, dW: Array | None, db: Array | None, delta: Array, weight: Array, bias: Array
    ) -> list[tuple[Repair, Array]]:
        """A factor k (a sign: k = −1) in δ_l — with any stand-in in dW_l or db_l besides —, in dW_l alone, or in
        db_l alone, fitted by least squares (δ_l's from db_l when there is one, summed or not, else from dW_l
        per stand-in)."""
        options = []
        if db is not None:  # summed over the batch, or one row per example
            factors = [_fitted(db, bias), _fitted(db, delta)]
        else:
            factors = [_fitted(dW, delta.T @ a) for _, a in self.chain.layers[l].inputs]
        for k in dict.fromkeys(k for k in factors if k is not None):
            scaled = k * delta
            for db_id in self._bias_fits(l, db, scaled):
                options += [(Repair("factor", dW_id, db_id, k), scaled) for dW_id in self._weight_fits(l, dW, scaled)]
        k_weight = _fitted(dW, weight) if dW is not None else None
        if k_weight is not None and self.fits(f"dW{l}", dW, k_weight * weight) and self.fits(f"db{l}", db, bias):
            options.append(
                (Repair(dW="factor", factor=k_weight), delta)
            )  # without db, the layer below tells it from δ's
        k_bias = _fitted(db, bias) if db is not None and dW is not None else None
        if k_bias is not None and self.fits(f"db{l}", db, k_bias * bias) and self.fits(f"dW{l}", dW, weight):
            options.append((Repair(db="factor", factor=k_bias), delta))
        return options


def _fitted(found: Array, predicted: Array) -> float | None:
    """k minimising |found − k·predicted|, when it is a factor at all (not ≈ 0 or 1, shapes equal)."""
    if found.shape != predicted.shape:
        return None
    norm = float((predicted * predicted).sum())
    if norm == 0.0:
        return None
    k = float((found * predicted).sum()) / norm
    return None if not np.isfinite(k) or abs(k) < 1e-9 or abs(k - 1.0) < 1e-6 else k
