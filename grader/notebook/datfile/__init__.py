"""The .dat files students hand in (`torch_autograd.dat`, `my_autograd.dat`), read by label, not position.

`parse_dat(text)` finds every printed numeric array (torch and numpy reprs, `np.array2string`, Python
lists, lists of arrays, pandas CSV with quoted multi-line arrays, `np.savetxt` lines, `label: number`)
and gives each the label written before it, the section context around it, a role and a layer.
`assign_gradients(arrays, layers)` turns them into dW1, db1, …, dWL, dbL (see `datfile.assign`).
The printed precision of every number is kept (rule in `datfile.numbers`).

Labels: the text before the array on its own line ('Predicted y: tensor(…)', 'dLdw1 = […]', a CSV
row's name cells); else the nearest line of text above it that no earlier array used and that is not
module or keyword noise (`Linear(…)`, `grad_fn=…`, `dtype=…`); else the column name of a CSV header;
else ''. Lines of text above the label that name a layer ('Network Structure of first hidden layer:'),
and `Linear(in_features=…, out_features=…)` lines, open a section that holds for the arrays below them
until the next such line; that is the array's `context`.
"""

from grader.notebook.datfile.assign import assign_gradients
from grader.notebook.datfile.model import Assignment, DatArray, ParsedDat
from grader.notebook.datfile.parse import MAX_DAT_BYTES, parse_dat, read_dat

__all__ = ["MAX_DAT_BYTES", "Assignment", "DatArray", "ParsedDat", "assign_gradients", "parse_dat", "read_dat"]
