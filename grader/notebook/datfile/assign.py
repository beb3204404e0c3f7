"""Assign the arrays of one .dat file to dW1, db1, …, dWL, dbL (plus prediction and loss).

In this order, each step only for what the steps before left open:
1. label: an array whose label says weight or bias gradient and names a layer ('Output layer bias
   gradient:', 'dLdb3', 'fc1.weight') is that gradient — wherever it stands in the file;
2. context: a weight/bias label without a layer ('Weight gradient of network:') takes the layer of its
   section ('Network Structure of first hidden layer:'), or of the `Linear(in_features=…, out_features=…)`
   line above it when that shape belongs to exactly one layer;
3. list order: the items of a list printed as one (`[array(…), array(…), …]`) are read in parameter order
   (W1, b1, W2, …, or all weights then all biases; forward or backward) when their shapes agree with it;
4. shape: an array whose shape fits exactly one open gradient, which no other open array fits.
Position alone never decides. Predictions, losses, parameter values and other labelled non-gradients are
never gradients. How layer numbers in labels count (from 1, from 0, `nn.Sequential`'s 0, 2, 4, or
'hidden layer k' for the weights leaving it) is chosen so that the most labelled shapes fit.

Layouts: a weight gradient printed (out, in) is 'out_in', printed (in, out) is 'in_out'. A square one
cannot tell: it follows its label if the label says ('in x out', 'out x in'), else the layout of the other weight
gradients in the same file when they all agree (the file is one source: DESIGN §5, `grader.source_layout`),
else 'out_in'; the note says it is ambiguous. Only matrices vote: a gradient printed as a vector (the
output layer's (10,) of a student who works with 1-D vectors) shows no layout.
"""

from grader.notebook.datfile.copies import last_copy
from grader.notebook.datfile.labels import Scheme, context_words, linear_shape, read_words, resolve
from grader.notebook.datfile.model import Assignment, DatArray

_PLACES = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def assign_gradients(arrays: list[DatArray], layers: list[int]) -> Assignment:
    """dW1, db1, …, dWL, dbL (and prediction, loss) from the arrays of one file, with notes and problems."""
    result = Assignment(problems=list(getattr(arrays, "problems", [])))
    try:
        layers = [int(n) for n in layers]
    except (TypeError, ValueError):
        layers = []
    if len(layers) < 2 or min(layers) < 1:
        result.problems.append(f"cannot assign gradients: layer sizes {layers} are not a network")
        return result
    if not arrays:
        result.problems.append("no numeric arrays found in the file")
    arrays, copies = last_copy(arrays)  # a file opened in append mode and written more than once
    result.problems += [copies] if copies else []
    state = _State(list(arrays), layers)
    state.by_label()
    state.by_context()
    state.by_list_order()
    state.by_shape()
    state.report(result)
    return result


class _State:
    def __init__(self, arrays: list[DatArray], layers: list[int]):
        self.arrays, self.layers, self.n = arrays, layers, len(layers) - 1
        self.words = [read_words(a.label) for a in arrays]
        self.context = [context_words(a.context) for a in arrays]
        self.input_named = any(("input",) in w.refs for w in self.words + self.context)
        self.taken: dict[str, tuple[int, str]] = {}  # key -> (array index, how it was found)
        self.used: set[int] = set()
        self.notes: list[str] = []
        self.scheme = self._choose_scheme()
        self.candidates = [k for k, a in enumerate(arrays) if self._is_candidate(k)]

    # --- what fits what -------------------------------------------------------------------------
    def expected(self, key: str) -> tuple[int, ...]:
        layer = int(key[2:])
        return (self.layers[layer], self.layers[layer - 1]) if key[1] == "W" else (self.layers[layer],)

    def fits(self, k: int, key: str) -> bool:
        shape = self.arrays[k].values.shape
        if key[1] == "W":
            out, into = self.expected(key)
            vector = (out == 1 or into == 1) and shape == (out * into,)
            return shape in ((out, into), (into, out)) or vector
        (size,) = self.expected(key)
        return len(shape) <= 2 and self.arrays[k].values.size == size and (len(shape) < 2 or 1 in shape)

    def kind(self, k: int) -> str | None:
        return {"weight_grad": "W", "bias_grad": "b"}.get(self.arrays[k].role)

    def keys(self) -> list[str]:
        return [f"d{p}{l}" for l in range(1, self.n + 1) for p in "Wb"]

    def _is_candidate(self, k: int) -> bool:
        array, words = self.arrays[k], self.words[k]
        if array.role in ("weight_grad", "bias_grad"):
            return True
        return array.role == "unknown" and (not array.label or words.grad or words.layer_named or self.context[k].grad)

    def _label_layer(self, k: int, scheme: Scheme) -> int | None:
        """The layer the label names (possibly beyond the net's last layer), or None."""
        return resolve(self.words[k].refs, self.n, scheme, self.input_named)

    def _choose_scheme(self) -> Scheme:
        numbers = sorted({r[1] for w in self.words for r in w.refs if r[0] == "n"})
        schemes = [Scheme("plain")]
        if 0 in numbers:
            schemes += [Scheme("zero_based"), Scheme("ranked", tuple(numbers))]
        if any(r[0] == "hidden" and r[1] for w in self.words for r in w.refs):
            schemes.append(Scheme("from_layer"))
        labelled = [k for k in range(len(self.arrays)) if self.kind(k)]

        def score(scheme: Scheme) -> int:
            hits = 0
            for k in labelled:
                layer = self._label_layer(k, scheme)
                hits += layer is not None and layer <= self.n and self.fits(k, f"d{self.kind(k)}{layer}")
            return hits

        best = max(schemes, key=score)  # max keeps the first of equal scores: 'plain' unless another fits more
        if best.name != "plain":
            self.notes.append(
                {
                    "zero_based": "layer numbers in the labels are read as counting from 0 (layer 0 is the first layer)",
                    "ranked": f"layer numbers in the labels ({', '.join(map(str, best.ranks))}) are read in order as "
                    "layers 1, 2, … (nn.Sequential numbering)",
                    "from_layer": "'hidden layer k' in the labels is read as the weights leaving hidden layer k "
                    "(layer k + 1), the only reading under which the shapes fit",
                }[best.name]
            )
        return best

    # --- the four steps ---------------------------------------------------------------------------
    def claim(self, k: int, key: str, how: str) -> None:
        if key in self.taken:
            first = self.arrays[self.taken[key][0]]
            self.notes.append(
                f"{key} is printed again at line {self.arrays[k].line} ({_quote(self.arrays[k].label)}); "
                f"the value from line {first.line} was used"
            )
            self.used.add(k)
            return
        self.taken[key] = (k, how)
        self.used.add(k)

    def by_label(self) -> None:
        for k in self.candidates:
            layer = self._label_layer(k, self.scheme)
            if self.kind(k) and layer is not None and layer <= self.n:
                self.claim(k, f"d{self.kind(k)}{layer}", "by its label")

    def by_context(self) -> None:
        for k in self.candidates:
            if k in self.used or not self.kind(k):
                continue
            array = self.arrays[k]
            layer = resolve(self.context[k].refs, self.n, self.scheme, self.input_named)
            if layer is not None and layer <= self.n:
                section = array.context.split(" | ")[0]
                self.claim(k, f"d{self.kind(k)}{layer}", f"by the section it is printed in ({_quote(section)})")
                continue
            shape = linear_shape(array.context)
            matches = [l for l in range(1, self.n + 1) if shape == (self.layers[l - 1], self.layers[l])]
            if len(matches) == 1:
                self.claim(
                    k,
                    f"d{self.kind(k)}{matches[0]}",
                    f"by the Linear(in_features={shape[0]}, out_features={shape[1]}) line above it",
                )

    def by_list_order(self) -> None:
        groups: dict[int, list[int]] = {}
        for k in self.candidates:
            member = self.arrays[k].member
            if member is not None:
                groups.setdefault(member[0], []).append(k)
        weights = [f"dW{l}" for l in range(1, self.n + 1)]
        biases = [f"db{l}" for l in range(1, self.n + 1)]
        interleaved = [key for pair in zip(weights, biases) for key in pair]
        orders = [
            weights,
            weights[::-1],
            biases,
            biases[::-1],
            interleaved,
            [key for pair in zip(weights[::-1], biases[::-1]) for key in pair],
            weights + biases,
            weights[::-1] + biases[::-1],
        ]
        for items in groups.values():
            if any(k in self.used for k in items) or len(items) != self.arrays[items[0]].member[2]:
                continue
            for order in orders:
                if len(order) == len(items) and all(
                    key not in self.taken and self.fits(k, key) and self.kind(k) in (None, key[1])
                    for k, key in zip(items, order)
                ):
                    for place, (k, key) in enumerate(zip(items, order), start=1):
                        self.claim(
                            k,
                            key,
                            f"by its place in the list at line {self.arrays[items[0]].line} "
                            f"(item {place} of {len(items)}; the shapes agree with that order)",
                        )
                    break

    def by_shape(self) -> None:
        possible = {k: [key for key in self.keys() if self._may_be(k, key)] for k in self.candidates}
        progress = True
        while progress:
            progress = False
            open_keys = [key for key in self.keys() if key not in self.taken]
            fitting = {
                k: [key for key in keys if key not in self.taken] for k, keys in possible.items() if k not in self.used
            }
            for key in open_keys:
                arrays = [k for k, keys in fitting.items() if key in keys]
                if len(arrays) == 1 and fitting[arrays[0]] == [key]:
                    shape = self.arrays[arrays[0]].values.shape
                    self.claim(arrays[0], key, f"by its shape {shape}: the only unassigned array that fits {key}")
                    progress = True
                    break

    def _may_be(self, k: int, key: str) -> bool:
        if not self.fits(k, key) or self.kind(k) not in (None, key[1]):
            return False
        layer = self._label_layer(k, self.scheme)
        if layer is None:
            layer = resolve(self.context[k].refs, self.n, self.scheme, self.input_named)
        return layer is None or layer == int(key[2:])

    # --- the result -------------------------------------------------------------------------------
    def report(self, result: Assignment) -> None:
        result.shapes.update({key: self.expected(key) for key in self.keys()})
        for key in self.keys():
            if key in self.taken:
                k, how = self.taken[key]
                array = self.arrays[k]
                result.values[key] = array
                text = f"{key} read from line {array.line} ({_quote(array.label)}) {how}"
                if key[1] == "W":
                    layout, phrase = self._layout(k, key)
                    result.layouts[key] = layout
                    text += phrase
                elif not self.fits(k, key):
                    text += f"; its shape {array.values.shape} does not fit {self.expected(key)}"
                elif array.values.ndim == 2:
                    text += f", printed as a {array.values.shape} matrix"
                result.notes.append(text)
            else:
                result.problems.append(self._missing(key))
        for role in ("prediction", "loss"):
            found = [k for k, a in enumerate(self.arrays) if a.role == role]
            if found:
                array = self.arrays[found[0]]
                result.values[role] = array
                where = _quote(array.label) if array.label else "the unlabelled last array"
                result.notes.append(f"{role} read from line {array.line} ({where})")
                for k in found[1:]:
                    result.notes.append(f"line {self.arrays[k].line}: another {role}, not used")
        result.notes.extend(self.notes)
        candidates = set(self.candidates)
        for k, array in enumerate(self.arrays):
            if k in self.used or array.role in ("prediction", "loss"):
                continue
            if k in candidates:
                open_keys = [key for key in self.keys() if key not in self.taken and self._may_be(k, key)]
                net = "-".join(map(str, self.layers))
                named = self._label_layer(k, self.scheme)
                if named is not None and named > self.n:
                    why = f"its label names layer {named}, but a {net} net has {self.n} layers"
                elif open_keys:
                    why = f"it could be any of {', '.join(open_keys)} and its label does not say which"
                else:
                    why = f"its shape fits no open gradient of a {net} net"
                result.problems.append(
                    f"line {array.line}: array of shape {array.values.shape} "
                    f"({_quote(array.label)}) was not assigned: {why}"
                )
            elif array.role == "weight":
                result.notes.append(f"line {array.line} ({_quote(array.label)}): parameter values, not a gradient")
            else:
                result.notes.append(f"line {array.line} ({_quote(array.label)}): not a gradient, not used")

    def _layout(self, k: int, key: str) -> tuple[str, str]:
        shape = self.arrays[k].values.shape
        out, into = self.expected(key)
        if len(shape) == 1:
            return "out_in", f", printed as a vector of {shape[0]}"
        if shape not in ((out, into), (into, out)):
            return "unknown", (
                f"; its shape {shape} fits neither ({out}, {into}) nor ({into}, {out}) for layers {self.layers}"
            )
        if out != into:
            return (
                ("out_in", " in torch's (out, in) layout")
                if shape == (out, into)
                else ("in_out", " in the (in, out) layout, the transpose of torch's (out, in)")
            )
        said = self.words[k].layout or self.context[k].layout
        others = {
            self._layout(j, f"dW{l}")[0]
            for l in range(1, self.n + 1)
            if f"dW{l}" in self.taken
            for j in [self.taken[f"dW{l}"][0]]
            if self.layers[l] != self.layers[l - 1] and self.arrays[j].values.ndim == 2
        } - {"unknown"}
        if said:
            layout, why = said, "as its label says"
        elif len(others) == 1:
            layout, why = others.pop(), "like the other weight gradients in this file"
        else:
            layout, why = "out_in", "torch's layout, the default"
        name = "(in, out)" if layout == "in_out" else "(out, in)"
        return layout, f"; its shape {shape} cannot tell the layout (ambiguous), read as {name} {why}"

    def _missing(self, key: str) -> str:
        layer = int(key[2:])
        place = "output" if layer == self.n else f"{_PLACES.get(layer, str(layer) + 'th')} hidden"
        what = "weight" if key[1] == "W" else "bias"
        shape = self.expected(key)
        shapes = f"{shape} or {shape[::-1]}" if key[1] == "W" and shape[0] != shape[1] else str(shape)
        return (
            f"{key} not found: no array is labelled as the {place} layer's {what} gradient and no "
            f"unassigned array has the shape {shapes}"
        )


def _quote(label: str) -> str:
    return repr(label) if label else "no label"
