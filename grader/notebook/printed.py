"""Gradients a notebook only printed: read from each cell's output, autograd's told from the student's.

A student who computes everything inside a function (`def main(): …; main()`) and prints the results
leaves no variable and no file behind; what was printed is all there is. Each cell's output is read as
a .dat file is (grader.notebook.datfile), and whose each printed array is, is decided by the counterfactual run
(grader/sandbox/child/provenance.py), which re-ran the rest of the notebook with every gradient autograd gave
scaled by a factor only the grader knows: an array printed again times that factor is autograd's (the
torch source), one printed again unchanged, or printed before the first autograd call, is not (the
scratch source). An array that moved otherwise, or is too small or too coarsely printed to tell, is
neither. Without a counterfactual run only what was printed before the first autograd call can be told.

Printed parameters, the input, the loss and the net's output are never gradients: an array equal to one
of them (within its printed precision) is left out, so that a printed weight matrix is not read as its
gradient.
"""

from dataclasses import dataclass

import numpy as np

from grader.notebook.datfile import Assignment, DatArray, ParsedDat, assign_gradients, parse_dat
from grader.notebook.datfile.copies import last_copy
from grader.notebook.provenance import Follows, follows
from grader.sandbox import RunResult


@dataclass(frozen=True)
class Printed:
    """The gradients one source printed, assigned to dW1, db1, …; `cells[key]` is the cell that printed each."""

    assignment: Assignment
    cells: dict[str, int]
    copies: int = 1  # how many times the same set of arrays was printed one after another

    def where(self, key: str, cell_number) -> str:
        """Where a value was read, for the report: 'printed in cell 3 (line 5 of its output, 'dW1')'."""
        item = self.assignment.values[key]
        label = f", {item.label.strip()!r}" if item.label.strip() else ""
        return f"printed in cell {cell_number(self.cells[key])} (line {item.line} of its output{label})"


def printed_gradients(run: RunResult, layers: list[int], not_gradients: list[np.ndarray]) -> dict[str, Printed]:
    """{"torch": …, "scratch": …}: the printed arrays each source's gradients may be read from; a source with
    no such array is absent."""
    sources: dict[str, list[tuple[DatArray, int]]] = {"torch": [], "scratch": []}
    first_call = run.backward[0].cell if run.backward else None
    counterfactual = run.counterfactual
    for record in run.cells:
        if not record.stdout.strip():
            continue
        arrays = [a for a in parse_dat(record.stdout) if not _is_one_of(a, not_gradients)]
        if first_call is None or record.cell < first_call:  # before any autograd: nothing is autograd's
            sources["scratch"] += [(a, record.cell) for a in arrays]
            continue
        if counterfactual is None or record.cell < counterfactual.cell or record.cell not in counterfactual.stdout:
            continue
        again = [a for a in parse_dat(counterfactual.stdout[record.cell]) if not _is_one_of(a, not_gradients)]
        if [a.values.shape for a in again] != [a.values.shape for a in arrays]:
            continue  # printed otherwise in the counterfactual run: the arrays cannot be paired
        for array, other in zip(arrays, again):
            verdict = follows(array.values, other.values, counterfactual.factor, array.uncertainty)
            if verdict == Follows.autograd:
                sources["torch"].append((array, record.cell))
            elif verdict == Follows.independent:
                sources["scratch"].append((array, record.cell))
    out = {}
    for source, found in sources.items():
        if not found:
            continue
        arrays = ParsedDat([array for array, _ in found])
        assignment = assign_gradients(arrays, layers)
        cell_of = {id(array): cell for array, cell in found}
        cells = {key: cell_of[id(item)] for key, item in assignment.values.items()}
        out[source] = Printed(assignment, cells, len(arrays) // max(1, len(last_copy(arrays)[0])))
    return out


def _is_one_of(array: DatArray, values: list[np.ndarray]) -> bool:
    """Whether the printed array is one of `values` (a parameter, the input, the loss, the prediction) to
    within its printed precision, in either layout."""
    printed = np.asarray(array.values, dtype=np.float64)
    allowance = np.asarray(array.uncertainty, dtype=np.float64)
    for value in values:
        value = np.asarray(value, dtype=np.float64)
        for candidate in (value, value.T):
            if candidate.size != printed.size or candidate.size == 0:
                continue
            candidate = candidate.reshape(printed.shape)
            slack = allowance + 1e-6 * max(float(np.max(np.abs(candidate))), 1e-12)
            if np.all(np.abs(printed - candidate) <= slack):
                return True
    return False
