"""What a localization says to the student: the relation that breaks and the change that repairs it, in
the notation of the course ("layer 1: your δ1 equals W2ᵀδ2 without σ'(z1)").

Paper notation, one example per column: δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l), dW_l = δ_l a_{l−1}ᵀ, with
a0 = x (and h for the classifier's hidden layer). `ids` turns a break into the catalogue ids of the
mistakes it is (a factor of ½ at the squared loss's output is the missing 2, −1 a sign ...), so a mistake
made at one layer only is named with its layer.
"""

from grader.diagnose.chain import SYMBOL, Chain
from grader.diagnose.localize import Break, Localization, Repair


def ids(chain: Chain, brk: Break) -> list[str] | None:
    """The catalogue mistakes this break is, in the order of its relations; None when a part of it has no
    catalogue name (no repair, or a factor that is none of the known ones, or one inside the net)."""
    if brk.repair is None:
        return None
    named = []
    for relation, used in brk.repair.broken():
        if used == "unknown":
            return None
        if used != "factor":
            named += used.split("+")
            continue
        if relation != "delta" or brk.layer != chain.depth:
            return None
        factor = _factor_ids(chain, brk.repair.factor)
        if factor is None:
            return None
        named += factor
    return named


def _factor_ids(chain: Chain, k: float) -> list[str] | None:
    """A factor of the whole backward pass as catalogued mistakes: a sign, then the size (½, 2, 1/N, N)."""
    named = ["sign_flip"] if k < 0 else []
    size = abs(k)
    known = dict(chain.notation.factors)
    if chain.divisor > 1:
        known[1.0 / chain.divisor if chain.reduction == "sum" else float(chain.divisor)] = (
            "mean_instead_of_sum" if chain.reduction == "sum" else "sum_instead_of_mean"
        )
    if abs(size - 1.0) <= 1e-3:
        return named or None
    for value, mistake in known.items():
        if abs(size - value) <= 1e-3 * value:
            return [*named, mistake]
    return None


def describe(chain: Chain, localization: Localization) -> tuple[str, str]:
    """(the relation that first breaks, every break as the student reads it: "layer 1: your δ1 …; layer …")."""
    first = localization.breaks[0]
    relation = "; ".join(_relation(chain, first.layer, r) for r in _relations(first))
    return relation, "; ".join(f"layer {b.layer}: {_what(chain, b)}" for b in localization.breaks)


def _relations(brk: Break) -> list[str]:
    return ["delta", "dW", "db"] if brk.repair is None else [relation for relation, _ in brk.repair.broken()]


def _prime(chain: Chain, l: int, name: str | None = None) -> str:
    return f"{SYMBOL[name or chain.layers[l].activation]}'(z{l})"


def _input(chain: Chain, l: int) -> str:
    """What enters layer l: x, h (the classifier's hidden layer) or a_{l−1}."""
    if l == 1:
        return "x"
    return chain.notation.hidden or f"a{l - 1}"


def _delta(chain: Chain, l: int) -> str:
    """The right-hand side of δ_l's relation."""
    if l == chain.depth:
        return chain.notation.output
    back = f"W{l + 1}ᵀδ{l + 1}"
    return back if chain.layers[l].activation == "identity" else f"({back}) ⊙ {_prime(chain, l)}"


def _relation(chain: Chain, l: int, relation: str) -> str:
    if relation == "delta":
        return f"δ{l} = {'dL/dŷ = ' if chain.notation.loss_named and l == chain.depth else ''}{_delta(chain, l)}"
    if relation == "dW":
        return f"dW{l} = δ{l} {_input(chain, l)}ᵀ"
    return f"db{l} = δ{l}" if chain.batch == 1 else f"db{l} = Σ_batch δ{l}"


def _times(k: float, what: str) -> str:
    """k × what, in words for a sign."""
    if abs(k + 1.0) <= 1e-3:
        return f"−({what}), the wrong sign"
    return f"{k:.4g}".replace("-", "−") + f" × {what}"


def _what(chain: Chain, brk: Break) -> str:
    """One break, after "layer l: "."""
    l = brk.layer
    if brk.repair is None:
        source = chain.notation.source if l == chain.depth else f"your δ{l + 1}"
        names = f"dW{l} and db{l}" if chain.bias else f"dW{l}"
        rules = ", ".join(_relation(chain, l, r) for r in ("delta", "dW", "db") if r != "db" or chain.bias)
        return f"your {names} do not follow from {source} by {rules}, and no single known change explains them"
    return " and ".join(_part(chain, l, relation, used, brk.repair) for relation, used in brk.repair.broken())


def _part(chain: Chain, l: int, relation: str, used: str, repair: Repair) -> str:
    if used == "unknown":
        rule = _relation(chain, l, relation)
        return (
            f"your {rule.split(' = ')[0]} does not follow from δ{l} by {rule}, and no single known change explains it"
        )
    if relation == "delta":
        return " and ".join(_delta_part(chain, l, one, repair.factor) for one in used.split("+"))
    a = _input(chain, l)
    if relation == "dW":
        if used == "factor":
            return f"your dW{l} is {_times(repair.factor, f'δ{l} {a}ᵀ')}"
        if used == "transposed_gradient":
            return f"your dW{l} is (δ{l} {a}ᵀ)ᵀ, transposed"
        named = chain.notation.top if l == chain.depth else chain.notation.hidden
        wrong = {
            "preactivation_in_weight_gradient": f"z{l - 1}",
            "next_activation_in_weight_gradient": named or f"a{l}",
            "input_in_weight_gradient": "x",
        }[used]
        return f"your dW{l} is δ{l} {wrong}ᵀ where δ{l} {a}ᵀ belongs"
    if used == "factor":
        return f"your db{l} is {_times(repair.factor, _relation(chain, l, 'db').split(' = ')[1])}"
    return f"your db{l} keeps one row per example (δ{l} itself, shape ({chain.batch}, n)) where Σ_batch δ{l} belongs"


def _delta_part(chain: Chain, l: int, used: str, factor: float | None) -> str:
    f = SYMBOL.get(chain.layers[l].activation, "")
    rhs = _delta(chain, l)
    texts = {
        "factor": f"your δ{l} is {_times(factor or 1.0, rhs)}",
        "hidden_derivative_omitted": f"your δ{l} equals W{l + 1}ᵀδ{l + 1} without {f}'(z{l})",
        "derivative_at_activation": f"your δ{l} uses {f}'(a{l}) = {f}'({f}(z{l})) where {f}'(z{l}) belongs",
        "derivative_formula_on_preactivation": (
            f"your δ{l} uses z{l}(1 − z{l}) where {f}'(z{l}) = a{l}(1 − a{l}) belongs"
            if f == "σ"
            else f"your δ{l} uses 1 − z{l}² where {f}'(z{l}) = 1 − a{l}² belongs"
        ),
        "relu_derivative_at_zero": f"your δ{l} takes ReLU'(0) as 1 where z{l} is exactly 0 (the derivative there is 0)",
        "backprop_through_w_instead_of_wt": f"your δ{l} sends δ{l + 1} back through W{l + 1} instead of W{l + 1}ᵀ",
        "derivative_without_activation": (
            f"your δ{l} multiplies by {SYMBOL.get(chain.main, chain.main)}'(z{l}), but layer {l} has no activation: "
            f"δ{l} = W{l + 1}ᵀδ{l + 1}"
        ),
        "loss_derivative_omitted": f"your δ{l} is 1 where dL/dŷ = {rhs} belongs: that backpropagates ŷ, not the loss",
        "output_activation_derivative": (
            f"your δ{l} is multiplied by {SYMBOL.get(chain.main, chain.main)}'(z{l}), but the output layer has no "
            f"activation: δ{l} = {rhs}"
        ),
        "logits_instead_of_probs": f"your δ{l} is z{l} − y, from the logits, where probs − y belongs",
    }
    return texts[used]
