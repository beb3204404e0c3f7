"""The baseline: one notebook executed by a fresh Python process, the way kernel-per-submission autograders run.

    python benchmarks/baseline.py NOTEBOOK.ipynb      (run in an empty working directory)

Imports torch, then runs every code cell top to bottom in one namespace, like a fresh kernel would: shell
lines (`!pip …`) and magics (`%matplotlib …`, whole `%%…` cells) are stripped, a cell that raises is
reported on stderr and execution goes on. No sandbox, no observation, no grading: this is only what
every notebook costs when each one gets its own interpreter (a real Jupyter kernel costs more still).
Exit status: 0, or 1 when any cell raised. Standalone: imports only the standard library and torch.
"""

import json
import sys
import traceback


def code_cells(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        notebook = json.load(handle)
    cells = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if source.lstrip().startswith("%%"):
            continue  # a cell magic: the whole cell is not Python
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("!", "%"))]
        cells.append("\n".join(lines))
    return cells


def main(path: str) -> int:
    import torch  # noqa: F401 - what every kernel of a torch notebook pays first

    namespace: dict = {"__name__": "__main__"}
    failed = 0
    for number, source in enumerate(code_cells(path), start=1):
        try:
            exec(compile(source, f"<cell {number}>", "exec"), namespace)
        except (Exception, SystemExit):
            failed += 1
            print(f"cell {number} raised:\n{traceback.format_exc(limit=2)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
