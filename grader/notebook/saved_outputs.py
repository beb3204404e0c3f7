"""Saved outputs of a notebook against a fresh run: compared number by number, never as text.

A seeded, correct notebook prints other last digits on another CPU or torch version (float32 sums in
another order), `grad_fn=<MmBackward>` under torch 1.x where today's prints `<MmBackward0>`, and
`np.float64(0.5)` under numpy 2 where numpy 1 printed `0.5`. None of that is evidence of anything, and
a false "edited after running" flag on a correct student is the worst outcome; so the printed text is
cut into numbers and words (punctuation and whitespace, hence line wrapping, are ignored), version
spellings are removed first, and two numbers are equal when they differ by no more than

    half a unit in the last printed place of each   (both were rounded when printed)
  + REL × the larger of the two                       (float32 noise of the value itself)
  + REL × the notebook's scale                        (noise near 0: a float32 difference printed as
                                                       2.98e-08 here and 0.0 there, when the notebook's
                                                       numbers are ~0.1, is noise)

where the scale is the largest non-integer number in the compared outputs, and at least MIN_SCALE.
Integers (no point, no exponent: counts, sizes, step numbers) must be equal. A cell differs when a number
differs beyond that, or its words or count of numbers differ. A fresh output that stopped early (the
grader keeps the first 16,000 characters of a cell's stdout; a cell that raised here) is compared as a
prefix, and a saved output is read no further than the fresh one reaches, so the work is bounded by the
grader's own capture whatever the notebook holds.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

REL = 1e-5  # float32 results differ between machines by ~1e-7 relative; 1e-5 leaves room for accumulation
MIN_SCALE = 0.1  # inputs, weights and gradients of these nets are O(0.1-1): noise below 1e-6 is never evidence
SHOWN_COUNTS = 8  # execution counts a flag lists
SHOWN_CHARS = 40  # of a differing word or number a flag shows
TRUNCATED = re.compile(r"\n\[… \d+ more characters\]\Z")  # the tail the sandbox adds to a cut-off stdout
_SCAN = re.compile(  # one pass, atomic groups, no leading \s*: linear in the text, whatever a student printed
    r"(?P<skip>grad_fn=<\w+>"  # torch 1.x MmBackward, torch 2.x MmBackward0; ops may differ between versions
    r"|requires_grad=True|dtype=[\w.]+|device='[^']*'"
    r"|\bnp\.(?:float|int|uint|complex|bool|str|bytes)\w*(?=\()"  # numpy 2 scalar reprs: np.float64(0.5)
    r"|\b0x[0-9a-fA-F]++\b"  # object addresses
    r"|\b\d++\.\d++\.\d++[\w.+]*+"  # version strings: torch 2.1.0+cu121
    r"|(?<![\w.])[-+]?(?>\d+(?:\.\d*)?|\.\d+)(?>[eE][-+]?\d+)?\s*+(?=(?:s|sec|secs|seconds|ms|us|µs|ns|min|mins|minutes)\b))"
    r"|(?P<device>\b(?:cuda|mps)(?::\d+)?\b)"  # a Colab GPU's name: here the same code runs on the CPU
    r"|(?P<number>(?<![\w.])[-+]?(?>\d+\.\d*|\.\d+|\d+)(?>[eE][-+]?\d+)?(?!\w|\.\d))"
    r"|(?P<word>np\.(?:True|False)_|\w+)"
)
_RENAMED = {"np.True_": "True", "np.False_": "False"}  # numpy 2's repr of numpy bools


@dataclass(frozen=True)
class Token:
    """A number (with its printed text) or a word, as printed."""

    text: str
    value: float | None  # None for a word

    @property
    def integer(self) -> bool:
        return self.value is not None and not any(c in self.text for c in ".eE")


@dataclass(frozen=True)
class Difference:
    """The first thing a cell printed differently: `cell` is its 1-based position among the code cells,
    `expected` what it printed when handed in (saved), `found` what it prints here ("nothing more" when
    one of the two outputs ended first)."""

    cell: int
    expected: str
    found: str


def tokens(text: str) -> Iterator[Token]:
    """Numbers and words of printed text, in order, version-specific spellings left out."""
    for match in _SCAN.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "number":
            yield Token(token, float(token))
        elif kind == "word":
            yield Token(_RENAMED.get(token, token), None)
        elif kind == "device":
            yield Token("cpu", None)


def half_unit(text: str) -> float:
    """Half a unit in the last printed place of a number's text: 0.0825 -> 5e-05, 3.27e-10 -> 5e-13."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def scale_of(printed: Iterable[Sequence[Token]]) -> float:
    """The magnitude noise near 0 is judged against: the largest non-integer number printed, ≥ MIN_SCALE."""
    return max(
        [MIN_SCALE, *(abs(t.value) for group in printed for t in group if t.value is not None and not t.integer)]
    )


def same_number(saved: Token, fresh: Token, scale: float) -> bool:
    """Equal within print rounding and float32 noise (module docstring); integers exactly."""
    if saved.integer and fresh.integer:
        return saved.value == fresh.value
    allowed = (
        half_unit(saved.text) + half_unit(fresh.text) + REL * max(abs(saved.value), abs(fresh.value)) + REL * scale
    )
    return abs(saved.value - fresh.value) <= allowed


def first_difference(saved: str, fresh: str, scale: float | None = None) -> tuple[str, str] | None:
    """(expected, found) texts of the first token that differs, or None when the outputs agree. A `fresh`
    ending in the sandbox's truncation marker is compared as a prefix. `scale` defaults to the two texts'."""
    ours, theirs = _aligned(saved, fresh, True)
    return _first(ours, theirs, scale if scale is not None else scale_of([ours, theirs]))


def _aligned(saved: str, fresh: str, complete: bool) -> tuple[list[Token], list[Token]]:
    """The tokens to compare: all of the fresh output's (but a last one cut short), and as many of the saved
    output's as can matter (one more when the fresh output is complete, to see that the saved one goes on);
    a saved output of megabytes is read no further than that."""
    cut = TRUNCATED.search(fresh)
    theirs = list(tokens(fresh[: cut.start()] if cut else fresh))
    if cut:
        theirs = theirs[:-1]  # the last token may be cut short (0.27096 of 0.2709643)
    return list(islice(tokens(saved), len(theirs) + (0 if cut or not complete else 1))), theirs


def _first(ours: Sequence[Token], theirs: Sequence[Token], scale: float) -> tuple[str, str] | None:
    for a, b in zip(ours, theirs):
        if (a.value is None) != (b.value is None) or (a.value is None and a.text != b.text):
            return a.text, b.text
        if a.value is not None and not same_number(a, b, scale):
            return a.text, b.text
    if len(ours) != len(theirs):
        rest = ours[len(theirs)] if len(ours) > len(theirs) else theirs[len(ours)]
        return (rest.text, "nothing more") if len(ours) > len(theirs) else ("nothing more", rest.text)
    return None


def compare_cells(
    saved: Sequence[str],
    fresh: Sequence[str],
    complete: Sequence[bool] | None = None,
    skip: Sequence[bool] | None = None,
) -> list[Difference]:
    """Per code cell (same positions in all sequences), the first difference between what it printed when
    handed in and here. A cell with no saved output (never run, or cleared) or marked in `skip` (shell or
    magic lines dropped, so its saved output shows what never runs here) is not compared; one not
    `complete` here (it raised, or the run stopped before it) is compared as a prefix."""
    compared = {}
    for index, (ours, theirs) in enumerate(zip(saved, fresh)):
        if ours.strip() and not (skip is not None and skip[index]):
            compared[index] = _aligned(ours, theirs, True if complete is None else complete[index])
    scale = scale_of(group for pair in compared.values() for group in pair)
    found = []
    for index, (ours, theirs) in compared.items():
        difference = _first(ours, theirs, scale)
        if difference is not None:
            found.append(Difference(index + 1, *difference))
    return found


def out_of_order(counts: Sequence[int | None], upto: int) -> bool:
    """Whether the saved execution counts of the code cells up to position `upto` (1-based) cannot come
    from one top-to-bottom run: a count not above the one before it (run out of order, or in two
    kernel sessions), or a gap wider than the cells between (cells re-run, or run and then deleted).
    A cell with no count (never run, or its output cleared) may have run once."""
    previous_count, previous_position = 0, 0
    for position, count in enumerate(counts[:upto], start=1):
        if count is None:
            continue
        if count <= previous_count or count - previous_count > position - previous_position:
            return True
        previous_count, previous_position = count, position
    return False


def flag(differences: Sequence[Difference], counts: Sequence[int | None], number: Callable[[int], int]) -> str:
    """The instructor's flag for differing saved outputs, naming the first differing number (cell,
    expected, found); `number` maps a code cell's position to the notebook's own cell number. When
    the saved execution counts show the cells were not run top to bottom up to that cell, it says so
    instead of suspecting an edit."""
    first = differences[0]
    expected, found = (
        t if len(t) <= SHOWN_CHARS else t[: SHOWN_CHARS - 1] + "…" for t in (first.expected, first.found)
    )
    text = f"saved outputs differ from a fresh run: cell {number(first.cell)} printed {expected} when handed in, {found} here"
    others = [str(number(d.cell)) for d in differences[1:]]
    if others:
        text += f"; {'cells' if len(others) > 1 else 'cell'} {', '.join(others)} {'differ' if len(others) > 1 else 'differs'} too"
    if out_of_order(counts, first.cell):
        shown = [str(c) for c in counts if c is not None]
        listed = ", ".join(shown[:SHOWN_COUNTS]) + (", …" if len(shown) > SHOWN_COUNTS else "")
        return (
            text
            + f"; the saved execution counts ({listed}) show the cells were run out of order, so a top-to-bottom run prints other values"
        )
    return text + " (edited after running, or not seeded)"
