"""What a label says: weight or bias, gradient or not, loss, prediction, and which layer.

Labels are free text ('First hidden layer weights gradient:', 'dLdw1', 'Input_layer w_gradient:',
'W1.grad', 'fc1.weight', '0.weight', 'Output layer bias gradient:'). They are split into lower-case
tokens at every non-alphanumeric character; long words are matched as substrings ('Input_layer',
'outputlayer'), short ones by pattern ('dw1', 'dldb3', 'w', 'b2', 'gradw1').

Layer references are kept symbolic (`refs`) and resolved against the number of layers L only when it is
known: 'input' → 1, 'output'/'last'/'final' → L, 'first hidden'/'hidden 1'/'h1' → ('hidden', 1),
'fc2'/'layer 2'/'w2'/'dLdb2'/'2.weight' → ('n', 2), a bare 'hidden' → ('hidden', None). A label naming
two layers ('from hidden layer 2 to the output layer') means the later one, the layer the weights feed.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
_ORDINAL_RE = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
_SHORT_RE = re.compile(r"^(d[lje]?d|d|grad)?([wb])(\d*)(grads?)?$")
_NUMBERED_RE = re.compile(r"^(fc|linear|lin|layer|dense|l|h|hidden|hiddenlayer)(\d+)$")
_LINEAR_RE = re.compile(r"Linear\(\s*in_features\s*=\s*(\d+)\s*,\s*out_features\s*=\s*(\d+)")
_PARAM_WORDS = {
    "initial",
    "init",
    "param",
    "params",
    "parameter",
    "parameters",
    "value",
    "values",
    "updated",
    "new",
    "old",
    "current",
    "containing",
}
_LOSS_WORDS = ("loss", "cost", "mse", "objective")
_GRAD_TOKENS = {"dl", "dj", "de", "dloss", "partial", "jacobian"}


@dataclass(frozen=True)
class Words:
    """The meaning of one label (or context line)."""

    kind: str | None = None  # 'w' (weight) | 'b' (bias) | None
    grad: bool = False
    loss: bool = False
    prediction: bool = False
    param: bool = False
    refs: tuple = ()
    layout: str | None = None  # 'in_out' | 'out_in' when the label says so

    @property
    def layer_named(self) -> bool:
        return bool(self.refs)


_SPLIT_RE = re.compile(r"[^a-z0-9]+")
_WRT_RE = re.compile(r"\bw\.?\s?r\.?\s?t\b\.?", re.IGNORECASE)  # 'w.r.t.' names no weight
_CALL_RE = re.compile(r"(?<!\w)\w+\([^()]*\)")  # starts only where a word does: linear on a long word
_IN_OUT_RE = re.compile(r"(?<![a-z])in[x×*,_]out(?![a-z])")
_OUT_IN_RE = re.compile(r"(?<![a-z])out[x×*,_]in(?![a-z])")


def tokens_of(text: str) -> list[str]:
    return [t for t in _SPLIT_RE.split(text.lower()) if t]


@lru_cache(maxsize=4096)
def read_words(text: str) -> Words:
    """What `text` says about the array it labels."""
    text = _WRT_RE.sub(" ", text)
    tokens = tokens_of(text)
    lowered = text.lower().replace(" ", "")
    kinds: set[str] = set()
    grad = "∂" in text or "d/d" in lowered
    for token in tokens:
        short = _SHORT_RE.match(token)
        if "bias" in token:
            kinds.add("b")
        if "weight" in token:
            kinds.add("w")
        if short:
            kinds.add(short.group(2))
            grad = grad or bool(short.group(1) or short.group(4))
        if "grad" in token or "deriv" in token or token in _GRAD_TOKENS:
            grad = True
    kind = kinds.pop() if len(kinds) == 1 else None
    loss = any(word in token for token in tokens for word in _LOSS_WORDS) or tokens == ["l"]
    prediction = (
        any("pred" in t or t in ("yhat", "forward") for t in tokens)
        or "y_hat" in lowered
        or ("ŷ" in text)
        or ("output" in tokens and not kind and not grad and "layer" not in tokens)
    )
    layout = "in_out" if _IN_OUT_RE.search(lowered) else "out_in" if _OUT_IN_RE.search(lowered) else None
    return Words(
        kind,
        grad,
        loss and not grad,
        prediction and not grad and not loss,
        any(t in _PARAM_WORDS for t in tokens),
        _layer_refs(tokens),
        layout,
    )


def _layer_refs(tokens: list[str]) -> tuple:
    """Layer references in label order (see the module docstring)."""
    refs: list[tuple] = []
    for k, token in enumerate(tokens):
        before = tokens[k - 1] if k else ""
        after = tokens[k + 1] if k + 1 < len(tokens) else ""
        after2 = tokens[k + 2] if k + 2 < len(tokens) else ""
        numbered = _NUMBERED_RE.match(token)
        short = _SHORT_RE.match(token)
        if "input" in token:
            refs.append(("input",))
        elif "output" in token or token in ("last", "final"):
            refs.append(("output",))
        elif numbered and numbered.group(1) in ("h", "hidden", "hiddenlayer"):
            refs.append(("hidden", int(numbered.group(2))))
        elif "hidden" in token:
            if after == "layer":
                after = after2
            elif re.fullmatch(r"layer\d+", after):  # 'Hidden_layer1'
                after = after[5:]
            number = _ordinal(before) or (int(after) if after.isdigit() else None) or _ordinal(after)
            refs.append(("hidden", number))
        elif numbered and "hidden" in before:
            continue  # the number was read with 'hidden'
        elif numbered:
            refs.append(("n", int(numbered.group(2))))
        elif short and short.group(3):
            refs.append(("n", int(short.group(3))))
        elif token in ("layer", "fc", "linear", "dense") and after.isdigit() and "hidden" not in before:
            refs.append(("n", int(after)))
        elif token == "layer" and _ordinal(before) and "hidden" not in tokens:
            refs.append(("n", _ordinal(before)))
        elif (
            token.isdigit() and ("weight" in after or "bias" in after) and before != "layer" and "hidden" not in before
        ):
            refs.append(("n", int(token)))
    return tuple(refs)


def _ordinal(token: str) -> int | None:
    if token in _ORDINALS:
        return _ORDINALS[token]
    match = _ORDINAL_RE.match(token)
    return int(match.group(1)) if match else None


def context_words(context: str) -> Words:
    """What a context says, without the `Linear(in_features=…, …, bias=True)` repr in it (its 'bias' and
    its numbers name no layer)."""
    return read_words(_CALL_RE.sub(" ", context))


def linear_shape(text: str) -> tuple[int, int] | None:
    """(in_features, out_features) of a `Linear(...)` repr in `text`, if any."""
    match = _LINEAR_RE.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class Scheme:
    """How numbers in labels map to layers. 'plain': hidden k and layer k are layer k; 'zero_based':
    'layer 0' is the first layer; 'ranked': the distinct numbers in order are layers 1, 2, … (the
    `nn.Sequential` names 0, 2, 4); 'from_layer': 'hidden layer k' names the weights leaving it (k + 1)."""

    name: str
    ranks: tuple[int, ...] = ()


def resolve(refs: tuple, n_layers: int, scheme: Scheme, input_named: bool) -> int | None:
    """The 1-based layer that `refs` name, for a net of `n_layers` weight layers; None if they name none.

    A bare 'hidden' is layer 1 of a one-hidden-layer net, and the middle layer of a three-layer net whose
    labels also use 'input' ('Input_layer', 'Hidden_layer', 'Output_layer')."""
    layers = []
    for ref in refs:
        if ref[0] == "input":
            layers.append(1)
        elif ref[0] == "output":
            layers.append(n_layers)
        elif ref[0] == "hidden" and ref[1] is None:
            if n_layers == 2:
                layers.append(1)
            elif n_layers == 3 and input_named:
                layers.append(2)
        elif ref[0] == "hidden":
            layers.append(ref[1] + 1 if scheme.name == "from_layer" else ref[1])
        elif scheme.name == "zero_based":
            layers.append(ref[1] + 1)
        elif scheme.name == "ranked":
            layers.append(scheme.ranks.index(ref[1]) + 1 if ref[1] in scheme.ranks else None)
        else:
            layers.append(ref[1])
    layers = [layer for layer in layers if layer is not None and layer >= 1]
    return max(layers) if layers else None
