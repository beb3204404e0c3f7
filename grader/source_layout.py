"""One layout per source (DESIGN §5, §6): a square weight gradient takes the layout of its siblings.

A source is what one producer handed over at once: one contract function's returned dict, one .dat file,
one notebook's variables of one kind (scratch or torch) — each is one `Found`. Where the rubric accepts
the (in, out) layout, a non-square weight gradient shows by its shape which layout its author wrote
((out, in) as torch stores W, or (in, out) as in `x @ W`), but a square one cannot. A student who gives
dW1 (2, 10) and dW3 (10, 1) writes dW2 (10, 10) in that `x @ W` layout too, so the source's layout is
decided from its non-square weight gradients and the square ones are read in it:

- every non-square one (in, out) → the source is (in, out): its square ones are transposed before they
  are compared, and the report says so;
- every non-square one (out, in) → the source is (out, in): square ones are compared as they are;
- mixed, or no non-square one (a net of square layers only) → no single layout: each matrix as before
  (square ones as they are, torch's layout).
A vector, or a shape that fits neither layout, is no evidence either way. When the rubric does not accept
(in, out), nothing is re-read. Values a reader already brought to torch's layout (a .dat file, whose own
reader decides its square ones the same way, `datfile.assign`) show as (out, in) here and stay as read.

A square gradient that fails in its source's layout while its transpose would match is a student who
wrote that one gradient in the other layout from the rest. An expert TA does not quietly accept it: in the
student's own convention that dW2 is transposed (`W2 -= lr * dW2` would update with the wrong matrix), so it
is marked wrong, the diagnosis names 'weight gradient transposed', and the message says what the TA
would add — the numbers are right, the orientation is not the one the other weight gradients use
(`TRANSPOSED_NOTE`). It is not accepted on the chance that it is a correct gradient in an odd layout:
the layout the student's other weight gradients show is the better evidence.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from grader.found import Found
from grader.sandbox.models import CallStatus

IN_OUT, OUT_IN = "in_out", "out_in"
_NAMES = {IN_OUT: "(in, out)", OUT_IN: "(out, in)"}


@dataclass(frozen=True)
class SourceLayout:
    """The layout one source's non-square weight gradients show (`IN_OUT`, `OUT_IN`, or None when they
    disagree or there are none), and the shape each of them was found in."""

    layout: str | None
    evidence: dict[str, tuple[int, ...]]

    def siblings(self) -> str:
        """'dW1 (2, 10) and dW3 (10, 1)': the gradients the layout was read from, for messages."""
        shown = [f"{key} {shape}" for key, shape in self.evidence.items()]
        return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def source_layout(values: Mapping[str, object], shapes: Mapping[str, tuple[int, ...]]) -> SourceLayout:
    """The layout of a source from its values of the weight gradients in `shapes` (torch's (out, in)
    shape of each dWl): only 2-D values of a non-square layer count."""
    evidence, seen = {}, set()
    for key, (out, into) in shapes.items():
        shape = np.shape(values[key]) if key in values else None
        if out == into or shape not in ((out, into), (into, out)):
            continue
        evidence[key] = shape
        seen.add(OUT_IN if shape == (out, into) else IN_OUT)
    return SourceLayout(seen.pop() if len(seen) == 1 else None, evidence)


def weight_shapes(expected: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """dWl → its (out, in) shape, from a trial's expected values."""
    return {k: np.shape(v) for k, v in expected.items() if k.startswith("dW") and np.ndim(v) == 2}


def read_in_source_layout(found: Found, shapes: Mapping[str, tuple[int, ...]]) -> Found:
    """`found` with its square weight gradients in the source's layout: transposed (values and printed
    precision) when the source is (in, out), with the reason in `layouts` and `provenance`; the source's
    layout also named in the provenance of its other weight gradients. Unchanged otherwise."""
    if found.status != CallStatus.ok:
        return found
    decided = source_layout(found.values, shapes)
    if decided.layout != IN_OUT:
        return found
    values, uncertainty = dict(found.values), dict(found.uncertainty)
    provenance, layouts = dict(found.provenance), dict(found.layouts)
    for key, (out, into) in shapes.items():
        if key not in values:
            continue
        if out != into:
            provenance[key] = f"{provenance.get(key, key)}, in the (in, out) layout"
            continue
        if np.shape(values[key]) != (out, into):
            continue  # not a matrix of this layer's shape: compare reports it as found
        values[key] = np.asarray(values[key]).T
        if key in uncertainty:
            uncertainty[key] = np.asarray(uncertainty[key]).T
        layouts[key] = "(in, out) layout, as the other weight gradients of this source"
        provenance[key] = (
            f"{provenance.get(key, key)}, read in the (in, out) layout as the other weight "
            f"gradients of this source ({decided.siblings()})"
        )
    return replace(found, values=values, uncertainty=uncertainty, provenance=provenance, layouts=layouts)


def single_layout_square(found: Found | None, key: str, shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether `key` is a square weight gradient of a source with a single layout: the gradients for
    which `TRANSPOSED_NOTE` may speak (a source without one stays as it was)."""
    if found is None or found.status != CallStatus.ok or key not in shapes or len(set(shapes[key])) != 1:
        return False
    return source_layout(found.values, shapes).layout is not None


# What the TA adds when a square gradient fails in its source's layout and its transpose matches. It names
# no layout: values a reader already brought to torch's layout (a .dat file) no longer show the one printed.
TRANSPOSED_NOTE = (
    "; transposed, it matches: {key} is not in the layout of this source's other weight "
    "gradients — write every weight gradient in one layout"
)
