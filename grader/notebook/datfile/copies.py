"""A .dat file written more than once: keep the last complete copy of its gradients.

Students open their .dat files in append mode (`open('torch_autograd.dat', 'a')`, seed 002): each run of the
cell adds another copy after the first, and a file handed in beside the notebook gets the grader's run
appended to it. The arrays then form one sequence of printed arrays repeated: the same labels with the same
shapes, over and over, the last copy perhaps cut short (a cell stopped while writing). The values of the
copies may differ (the gradients of an earlier run, on other weights): the last complete copy is the one
the notebook's last run wrote, and the only one read.

A sequence counts as repeated only when its period holds at least two arrays and every array equals, in
label and shape, the one a period before it; a file that prints one label for every layer ('grad:') has a
period of one array and is left alone, as is one whose layers differ in shape.
"""

from grader.notebook.datfile.model import DatArray, ParsedDat


def last_copy(arrays: ParsedDat) -> tuple[ParsedDat, str | None]:
    """The arrays of the last complete copy, and a note saying what was left out; `arrays` and None when
    the file holds one copy."""
    keys = [_key(array) for array in arrays]
    period = _period(keys)
    if period is None:
        return arrays, None
    copies, rest = divmod(len(arrays), period)
    start = (copies - 1) * period
    kept = ParsedDat(arrays[start : start + period], getattr(arrays, "problems", []))
    partial = f", and the start of another (from line {arrays[copies * period].line}) cut short" if rest else ""
    note = (
        f"the file holds {copies} copies of its {period} arrays one after another{partial}: it was opened in "
        f"append mode ('a') and written more than once; only the last complete copy (from line "
        f"{arrays[start].line}) was read. Open it with 'w' to write each gradient once"
    )
    return kept, note


def _key(array: DatArray) -> tuple:
    return array.label.strip().lower(), tuple(array.values.shape)


def _period(keys: list[tuple]) -> int | None:
    """The shortest period p of `keys` (every key equals the one p before it), when p ≥ 2 and at least two
    whole copies fit; else None. Linear: the prefix function's last value is n − p."""
    n = len(keys)
    if n < 4:
        return None
    prefix = [0] * n
    for i in range(1, n):
        k = prefix[i - 1]
        while k and keys[i] != keys[k]:
            k = prefix[k - 1]
        prefix[i] = k + 1 if keys[i] == keys[k] else 0
    period = n - prefix[-1]
    return period if period >= 2 and n >= 2 * period else None
