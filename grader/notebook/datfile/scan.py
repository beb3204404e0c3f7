"""Find every printed numeric array in a .dat file's text, whatever printed it.

Recognised (each becomes a Block with its span in the text):
- bracketed arrays: numpy str/repr rows with or without commas, `np.array2string` with separators,
  Python lists, the data inside torch reprs — possibly spanning many lines;
- `tensor(...)`, `array(...)`, `np.float64(...)` wrappers, whose keyword arguments (`dtype=…`,
  `grad_fn=<…>`, `requires_grad=True`, `device=…`) are skipped, and their 0-d form `tensor(0.3307)`;
- lines that hold nothing but numbers (`np.savetxt`, a bare scalar, comma-separated values);
- numbers after a label on the same line (`loss: 0.33`, `Epoch 3, loss=0.12`, CSV `2,loss,0.33`).
Lists and tuples of arrays (`[array(…), array(…)]`, a ragged list of lists) are recorded as groups so
that their members can share the list's label. Integers inside calls such as
`Linear(in_features=2, out_features=10, bias=True)` and digits inside names (`dLdw1`, `MmBackward0`)
never become numbers.
"""

import re
from dataclasses import dataclass, field

from grader.notebook.datfile.numbers import (
    NUMBER,
    NUMBER_RE,
    BlockError,
    Node,
    closing_brackets,
    flatten,
    read_brackets,
    shape_of,
)

_WRAPPER_RE = re.compile(r"(?<![\w.])(?:(?:np|numpy|torch)\.)?(?:tensor|array|float(?:16|32|64|128)?)\(\s*")
_NUMBERS = rf"[ \t]*(?:{NUMBER})(?:[ \t]*[,;][ \t]*(?:{NUMBER})|[ \t]+(?:{NUMBER}))*+"
_NUMBERS_RE = re.compile(_NUMBERS, re.IGNORECASE)  # numbers and separators, as far as they go
_LINE_END_RE = re.compile(r"[ \t]*[,;]?[ \t]*\r?(?=\n|$)")
_NUMLINE_RE = re.compile(_NUMBERS + _LINE_END_RE.pattern, re.IGNORECASE)
_CANDIDATE_RE = re.compile(
    r"\n|\[|\(|(?<![\w.])(?:(?:np|numpy|torch)\.)?(?:tensor|array|float)|(?<![\w.])(?:[-+.\d]|nan|inf)", re.IGNORECASE
)
_LETTER_RE = re.compile(r"[A-Za-z]")
MAX_ARRAYS = 10_000  # a .dat of gradients holds tens; a long training log a few thousand
MAX_PROBLEMS = 20  # unreadable blocks listed one by one; the rest are counted
_CALL_ARGUMENTS_LIMIT = 400  # characters of `dtype=…, grad_fn=<…>` allowed after a wrapper's data


@dataclass
class Block:
    """One numeric array found in the text: its span, its number strings and the shape they form."""

    start: int
    end: int
    tokens: list[str]
    shape: tuple[int, ...]


@dataclass
class Scan:
    """All blocks in text order, the spans of lists/tuples of arrays, and blocks that could not be read."""

    blocks: list[Block] = field(default_factory=list)
    groups: list[tuple[int, int]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    closes: dict[int, int] = field(default_factory=dict, repr=False)
    line: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)  # (start, end, first letter) of a line
    unread_until: int = field(default=0, repr=False)  # numbers up to here are known not to end their line
    not_arrays: set[int] = field(default_factory=set, repr=False)  # '[' known to hold no array (read_brackets)


def scan(text: str) -> Scan:
    """Every numeric array in `text`, in order: at most MAX_ARRAYS of them, and at most MAX_PROBLEMS blocks
    that cannot be read listed one by one (the rest counted). Linear in the length of `text`."""
    found = Scan(closes=closing_brackets(text))
    i, n = 0, len(text)
    while i < n and len(found.blocks) <= MAX_ARRAYS:
        if i == 0 or text[i - 1] == "\n":
            end = _numeric_lines(text, i, found)
            if end is not None:
                i = end
                continue
        match = _CANDIDATE_RE.search(text, i)
        if match is None:
            break
        i = match.start()
        if text[i] == "\n":
            i += 1
            continue
        i = _read_at(text, i, found)
    found.blocks.sort(key=lambda block: block.start)
    if len(found.problems) > MAX_PROBLEMS:
        more = len(found.problems) - MAX_PROBLEMS
        found.problems[MAX_PROBLEMS:] = [
            (found.problems[MAX_PROBLEMS][0], f"and {more:,} more blocks that could not be read from here on")
        ]
    if len(found.blocks) > MAX_ARRAYS:
        found.problems.append(
            (
                found.blocks[MAX_ARRAYS].start,
                f"the file holds more than {MAX_ARRAYS:,} arrays; "
                f"the grader reads the first {MAX_ARRAYS:,} and no further",
            )
        )
        del found.blocks[MAX_ARRAYS:]
    return found


def _read_at(text: str, i: int, found: Scan) -> int:
    """Read whatever array starts at `i`; returns where scanning goes on."""
    char = text[i]
    if char == "[" and text.endswith("Size(", 0, i):  # torch.Size([10, 2]): a shape, not values
        return found.closes.get(i, i + 1)
    if char == "[" and i not in found.not_arrays:
        try:
            read = read_brackets(text, i, found.closes, found.not_arrays)
        except BlockError as error:
            found.problems.append((i, str(error)))
            return max(error.end, i + 1)
        if read is not None:
            _add_node(read[1], i, read[0], found)
            return read[0]
    if char in "[(":
        if _WRAPPER_RE.match(text, _skip_space(text, i + 1)):
            found.groups.append((i, found.closes.get(i, len(text))))
        return i + 1
    wrapper = _WRAPPER_RE.match(text, i)
    if wrapper is not None:
        return _read_wrapper(text, i, wrapper.end(), found)
    if i >= found.unread_until and _after_label(text, i, found):
        numbers = _NUMBERS_RE.match(text, i)
        rest = _LINE_END_RE.match(text, numbers.end()) if numbers is not None else None
        if rest is not None:
            tokens = NUMBER_RE.findall(numbers.group())
            found.blocks.append(Block(i, rest.end(), tokens, () if len(tokens) == 1 else (len(tokens),)))
            return rest.end()
        if numbers is not None:  # read from any later number among them, they stop at the same place
            found.unread_until = numbers.end()
    number = NUMBER_RE.match(text, i)
    return number.end() if number is not None else i + 1


def _read_wrapper(text: str, start: int, data: int, found: Scan) -> int:
    """`tensor(` / `array(` at `start`, its data at `data`: read the data, skip the keyword arguments."""
    if data < len(text) and text[data] == "[":
        if data in found.not_arrays:
            return data
        try:
            read = read_brackets(text, data, found.closes, found.not_arrays)
        except BlockError as error:
            found.problems.append((start, str(error)))
            return max(error.end, data + 1)
        if read is None:
            return data
        end, node = read
    else:
        number = NUMBER_RE.match(text, data)
        if number is None:
            return data
        end, node = number.end(), number.group()
    close = _close_call(text, end)
    _add_node(node, start, close, found)
    return close


def _close_call(text: str, i: int) -> int:
    """Offset past the ')' that closes a wrapper whose data ended at `i` (or `i` if it never does)."""
    depth = 1
    for j in range(i, min(len(text), i + _CALL_ARGUMENTS_LIMIT)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        elif text[j] in "[":
            return i
    return i


def _add_node(node, start: int, end: int, found: Scan) -> None:
    """Record a read array; a ragged list whose items are arrays becomes a group of those arrays."""
    if isinstance(node, str):
        found.blocks.append(Block(start, end, [node], ()))
        return
    shape = shape_of(node)
    if shape is not None:
        found.blocks.append(Block(start, end, flatten(node), shape))
        return
    items = [child for child in node if isinstance(child, Node)]
    if len(items) != len(node) or any(shape_of(item) is None for item in items):
        found.problems.append((start, "the rows of this array have different lengths, so it is not one array"))
        return
    found.groups.append((start, end))
    for item, following in zip(items, [item.start for item in items[1:]] + [end]):
        found.blocks.append(Block(item.start, following, flatten(item), shape_of(item)))


def _numeric_lines(text: str, i: int, found: Scan) -> int | None:
    """Lines from `i` holding nothing but numbers, as one array (rows × columns); None if there are none."""
    rows: list[list[str]] = []
    j, end = i, i
    while j <= len(text):
        match = _NUMLINE_RE.match(text, j)
        if match is None:
            break
        tokens = NUMBER_RE.findall(match.group())
        if rows and len(tokens) != len(rows[0]):
            break
        rows.append(tokens)
        end, j = match.end(), match.end() + 1
    if not rows:
        return None
    if len(rows) == 1:
        shape = () if len(rows[0]) == 1 else (len(rows[0]),)
    else:
        shape = (len(rows), len(rows[0]))
    found.blocks.append(Block(_skip_space(text, i), end, [t for row in rows for t in row], shape))
    return end


def _after_label(text: str, i: int, found: Scan) -> bool:
    """Whether the number at `i` follows a label and a ':', '=' or ',' on its line (`loss: 0.33`).

    Where its line starts and its first letter are found once per line (`found.line`), so that a long
    line of numbers costs time in its length, not in its length squared."""
    start, end, letter = found.line
    if not start <= i < end:
        start = text.rfind("\n", 0, i) + 1
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        first = _LETTER_RE.search(text, start, end)
        letter = first.start() if first is not None else end
        found.line = (start, end, letter)
    j = i - 1
    while j >= start and text[j].isspace():
        j -= 1
    return letter < j and text[j] in ":=,"


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i
