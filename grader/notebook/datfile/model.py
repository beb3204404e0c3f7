"""What the .dat parser hands on: printed arrays with their labels, and gradients assigned to layers.

Kept apart from the parsing code so that every module of this package can share these types without import
cycles; `grader.notebook.datfile` re-exports them.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: numpy arrays have no truth value
class DatArray:
    """One numeric array as printed in a .dat file.

    `values` keeps the printed shape (1-D stays 1-D, (1, 10) stays (1, 10), a scalar is 0-d).
    `uncertainty` is half a unit in the last printed digit of each number (see `datfile.numbers`).
    `role` is 'weight_grad' | 'bias_grad' | 'prediction' | 'loss' | 'weight' (parameter values, not a
    gradient) | 'unknown'. `layer` is 1-based (first hidden = 1, output = L) as far as the file alone can
    tell; `assign_gradients` re-reads label and context against the real layer sizes.
    `context` is the section text the file gives around the label (e.g. 'Network Structure of first hidden
    layer: | Linear(in_features=2, out_features=10, bias=True)'); `member` is (list id, index, count) when
    the array was printed inside a list or tuple of arrays.
    """

    label: str
    values: np.ndarray
    uncertainty: np.ndarray
    line: int
    role: str
    layer: int | None
    context: str = ""
    member: tuple[int, int, int] | None = None


class ParsedDat(list):
    """The arrays of one file, in order (a plain list of DatArray), plus `problems`: blocks that looked
    numeric but could not be read (ragged, summarized with '...', broken numbers), with line numbers."""

    def __init__(self, arrays=(), problems=()):
        super().__init__(arrays)
        self.problems: list[str] = list(problems)


@dataclass
class Assignment:
    """Gradients of one file assigned to `dW1, db1, …, dWL, dbL` (plus `prediction`, `loss`).

    `layouts[dWl]` is 'out_in' (torch's layout) or 'in_out' (transposed), or 'unknown' when the shape fits
    neither. `shapes` are the torch-layout shapes the layer sizes call for. `notes` tell the student how
    each value was read; `problems` list what could not be assigned.
    """

    values: dict[str, DatArray] = field(default_factory=dict)
    layouts: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def in_torch_layout(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, uncertainty) of `key` in torch's layout: weights (out, in), biases 1-D.

        A weight gradient read in the (in, out) layout is transposed; then a value with as many numbers as
        the layer sizes call for takes that shape (a bias printed (1, n) or (n, 1), the output layer's
        weights printed as a vector). Other quantities, and values of the wrong size, come back as printed.
        """
        found = self.values[key]
        values, uncertainty = found.values, found.uncertainty
        if key.startswith("dW") and self.layouts.get(key) == "in_out":
            values, uncertainty = values.T, uncertainty.T
        shape = self.shapes.get(key)
        if shape is not None and values.size == int(np.prod(shape)):
            values, uncertainty = values.reshape(shape), uncertainty.reshape(shape)
        return values.copy(), uncertainty.copy()
