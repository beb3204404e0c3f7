"""Numbers as students' files print them: their values, their printed precision, and bracketed arrays.

Precision rule (one rule for every format). A number printed with D digits after the decimal point of
its mantissa and exponent E ('0.0123': D=4, E=0; '1.2345e-04': D=4, E=-4) is known to half a unit in
its last digit: uncertainty = 0.5 · 10^(E − D). numpy (floatmode 'maxprec', the default, also used by
`np.array2string`) drops trailing zeros of single elements ('-0.30313' in an array printed with
precision 7) and pads them with spaces, so within one array D is the largest number of digits any
element of the same notation (fixed or scientific) shows: the precision the array evidently has. torch
and Python lists print every element with the digits they need, and the same rule gives their own
precision. Integers ('1', '10') have D = 0; nan and inf have an uncertainty of nan. The rule can only
see what is printed: a one-element array whose value ends in zeros ('[0.447]' for 0.4470 at precision 4)
shows fewer digits than it was printed with, so its uncertainty is larger than it need be — never smaller.
"""

import re

import numpy as np

NUMBER = r"[-+]?(?:(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|(?:nan|inf)(?![a-z]))"
NUMBER_RE = re.compile(NUMBER, re.IGNORECASE)
# One token of a bracketed array and the blanks before it, told apart by group: 1 '[', 2 ']', 3 '...', 4 a
# number (a comma is only a separator): one match per token, the blanks never a token of their own.
_TOKEN_RE = re.compile(r"[\s,]*(?:(\[)|(\])|(\.\.\.)|(" + NUMBER + "))", re.IGNORECASE)
_BLANKS_RE = re.compile(r"[\s,]*")
_BRACKET_RE = re.compile(r"[\[\]()]")


class BlockError(ValueError):
    """A block that starts like a numeric array but cannot be read; `end` is where the block stops."""

    def __init__(self, message: str, end: int):
        super().__init__(message)
        self.end = end


def measure(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Values and uncertainties (flat, float64) of numbers printed together in one array.

    One pass over the tokens (a file may print half a million) that keeps only small ints and flags per
    number, and an exponent of any length read without int()'s 4300-digit limit."""
    n = len(tokens)
    values = np.fromiter(map(float, tokens), np.float64, n)
    digits, exponents, scientific, special = [0] * n, [0] * n, [False] * n, [False] * n
    for k, token in enumerate(tokens):
        if token[-1] in "nNfF":  # nan, inf: a number ends in a digit or '.' otherwise
            special[k] = True
            continue
        mantissa, _, exponent = token.lower().partition("e")
        point = mantissa.find(".")
        digits[k] = len(mantissa) - point - 1 if point >= 0 else 0
        if exponent:
            exponents[k], scientific[k] = _exponent(exponent), True
    digits, exponents = np.array(digits, np.int64), np.array(exponents, np.int64)
    scientific, special = np.array(scientific, bool), np.array(special, bool)
    digits_fixed = digits[~scientific & ~special].max(initial=0)
    digits_sci = digits[scientific].max(initial=0)
    powers, where = np.unique(exponents - np.where(scientific, digits_sci, digits_fixed), return_inverse=True)
    uncertainty = np.array([_half_unit(int(power)) for power in powers], dtype=np.float64)[where.reshape(-1)]
    uncertainty[special] = np.nan
    return values, uncertainty


def _exponent(text: str) -> int:
    """The exponent written after 'e' ('' → 0); one of more than six digits is ±10^6 (the value is 0 or inf)."""
    digits = text.lstrip("+-")
    if len(digits) <= 6:
        return int(text or 0)
    return -(10**6) if text.startswith("-") else 10**6


def _half_unit(power: int) -> float:
    """0.5 · 10^power, read as a literal so that it is the float nearest to it (inf or 0 at the extremes)."""
    return float(f"5e{power - 1}")


class Node(list):
    """A bracketed list as printed; `start` is the offset of its '['."""

    def __init__(self, start: int):
        super().__init__()
        self.start = start


MAX_DEPTH = 32  # numpy prints at most 32 dimensions; deeper brackets are not an array


def closing_brackets(text: str) -> dict[int, int]:
    """For every '(' or '[' in `text`, the offset just past the bracket that closes it (both kinds counted
    together, as a reader would); an opener that never closes maps to the end of the text. One pass."""
    closes: dict[int, int] = {}
    stack: list[int] = []
    for bracket in _BRACKET_RE.finditer(text):  # the brackets only: most of a text is none
        j = bracket.start()
        if text[j] in "([":
            stack.append(j)
        elif stack:
            closes[stack.pop()] = j + 1
    closes.update({j: len(text) for j in stack})
    return closes


def read_brackets(
    text: str,
    i: int,
    closes: dict[int, int],
    not_arrays: set[int] | None = None,
) -> tuple[int, Node] | None:
    """Read the bracketed numeric array opening at text[i] == '['.

    Returns (end offset, nested Nodes of number strings), or None when the brackets do not hold numbers
    (a list of `array(...)`, words in brackets). Raises BlockError for numeric blocks that cannot be read:
    numpy's summarized form with '...', or an unexpected character among the numbers.
    On None, the '[' inside it still open where the read stopped are added to `not_arrays`: a read from
    any of them would pass over the same tokens and stop there too, so the caller need not try them
    (which keeps `[[[[…` linear in its length rather than in its length times its depth).
    """
    stack: list[Node] = []
    root: Node | None = None
    summarized = False
    count = 0  # numbers read so far
    empty: list[int] = []  # every '[' opened before the first number
    j, n, token_at = i, len(text), _TOKEN_RE.match
    while True:
        match = token_at(text, j)
        if match is None:
            j = _BLANKS_RE.match(text, j).end()
            if j >= n:
                break
            if count < 2:  # '[1/100]', '[see 2]': brackets in prose, not an array
                _still_open(stack, not_arrays)
                return None
            raise BlockError(f"unexpected {text[j]!r} among the numbers", closes.get(i, n))
        kind = match.lastindex
        if kind == 4:  # a number
            if not stack:
                return None
            stack[-1].append(match.group(4))
            count += 1
        elif kind == 1:  # '['
            if len(stack) >= MAX_DEPTH:
                message = f"brackets nested more than {MAX_DEPTH} deep are not an array"
                raise BlockError(message, closes.get(i, n))
            node = Node(match.start(1))
            if not count:
                empty.append(node.start)
            if stack:
                stack[-1].append(node)
            else:
                root = node
            stack.append(node)
        elif kind == 2:  # ']'
            if not stack:
                break
            stack.pop()
            if not stack:
                if not count:  # '[[], []]': nothing inside holds a number either
                    if not_arrays is not None:
                        not_arrays.update(empty[1:])
                    return None
                if summarized:
                    raise BlockError(
                        "the array is printed in numpy's summarized form ('...'), so some of its "
                        "values are not in the file",
                        match.end(),
                    )
                return match.end(), root
        else:  # '...'
            summarized = True
        j = match.end()
    if count:
        raise BlockError("the array never closes (missing ']')", n)
    _still_open(stack, not_arrays)
    return None


def _still_open(stack: list[Node], not_arrays: set[int] | None) -> None:
    if not_arrays is not None:
        not_arrays.update(node.start for node in stack[1:])


def shape_of(node) -> tuple[int, ...] | None:
    """Shape of a nested Node, or None when it is ragged (rows of different lengths or depths)."""
    if isinstance(node, str):
        return ()
    if node and all(type(child) is str for child in node):  # a row of numbers: most nodes, read in one go
        return (len(node),)
    shapes = {shape_of(child) for child in node}
    if not shapes:
        return (0,)
    if len(shapes) != 1 or None in shapes:
        return None
    return (len(node),) + shapes.pop()


def flatten(node) -> list[str]:
    """Number strings of a nested Node in row-major order."""
    if isinstance(node, str):
        return [node]
    if all(type(child) is str for child in node):  # a row of numbers
        return list(node)
    return [token for child in node for token in flatten(child)]
