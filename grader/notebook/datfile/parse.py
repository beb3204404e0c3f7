"""Reading one .dat file: every numeric array in it with its label, context, role and layer (see the
package docstring for what is read and how labels are found)."""

import bisect
import re

from grader.memo import remember
from grader.notebook.datfile.assign import assign_gradients
from grader.notebook.datfile.csv import csv_label, csv_layout, drop_index_column
from grader.notebook.datfile.labels import Scheme, context_words, linear_shape, read_words, resolve
from grader.notebook.datfile.model import Assignment, DatArray, ParsedDat
from grader.notebook.datfile.numbers import NUMBER_RE, measure
from grader.notebook.datfile.scan import Block, scan

MAX_DAT_BYTES = 1 << 20  # the sandbox collects a written file of at most 1 MiB, too
MAX_LABEL_CHARS = 400  # of a label or context line (see _shorten)
_LETTER_RE = re.compile(r"[A-Za-z]")
_NOISE_RE = re.compile(
    r"^\s*(?:\(\w+\):\s*)?[A-Z]\w*\(.*\)\s*,?\s*$"  # module reprs: Linear(...), Sigmoid(), (fc1): Linear(...)
    r"|^\s*(?:grad_fn|dtype|requires_grad|device)\s*="  # keyword arguments of a wrapped repr
    r"|\(\s*$|^\s*\)\s*$"  # first and last line of a multi-line module repr
)


def read_dat(text: str, layers: list[int]) -> Assignment:
    """parse_dat, then assign_gradients."""
    return assign_gradients(parse_dat(text), layers)


def parse_dat(text: str | bytes) -> ParsedDat:
    """Every numeric array in the file, in order, with its label, context, role and layer.

    One notebook's files are read several times while it is graded (its net is chosen on them, they are
    read, and unread ones are explained), so the last few files' parses are kept: each caller gets its own
    list of the same (frozen) arrays.

    Never raises on bad input: blocks that look numeric but cannot be read are listed in `.problems`.
    A file larger than MAX_DAT_BYTES is not read at all (one problem says so): its size is checked before
    it is decoded, and every pass below is linear in the size, so reading a file costs at most a second
    or so whatever it holds (DESIGN §5, sandbox property 9)."""
    if len(text) > MAX_DAT_BYTES:
        return ParsedDat(
            [],
            [
                f"the file is {len(text) / 2**20:.1f} MiB, more than the {MAX_DAT_BYTES >> 20} MiB "
                "the grader reads, so none of it was read; write only the gradients (and the "
                "prediction and loss) to it, not a training log"
            ],
        )
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    parsed = remember(_PARSED, (text,), lambda: _read_only(_parse(text)), size=8)
    return ParsedDat(parsed, parsed.problems)


def _read_only(parsed: ParsedDat) -> ParsedDat:
    """The kept parse, its arrays made read-only so that no caller can change what the next one gets."""
    for array in parsed:
        array.values.flags.writeable = False
        array.uncertainty.flags.writeable = False
    return parsed


_PARSED: dict = {}


def _parse(text: str) -> ParsedDat:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    found = scan(text)
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(offset: int) -> int:
        return bisect.bisect_left(newlines, offset) + 1

    table = csv_layout(text)
    header_start = table.header_start if table else -1
    found.blocks = [drop_index_column(table, text, block) for block in found.blocks]
    linear_lines = [m.start() for m in re.finditer(r"Linear\(", text)]
    section: tuple[str, str, int | None] = ("", "", None)  # (layer text, Linear line, index of that Linear)
    labels, contexts, linear_index = [], [], []
    previous_end = 0
    for block in found.blocks:
        gap = text[previous_end : block.start]
        parts = gap.split("\n")
        lines = parts[:-1] if previous_end == 0 else parts[1:-1]
        offsets = _line_offsets(previous_end, parts, previous_end == 0)
        candidates = [
            (_shorten(ln.strip().lstrip("#").strip()), off)
            for ln, off in zip(lines, offsets)
            if _is_label_line(ln) and off != header_start
        ]
        label = _shorten(csv_label(table, text, block.start)) if table else ""
        if not label:
            label = _shorten(_clean_inline(parts[-1]))
            if block.shape == () and re.search(r"[,;]", label):  # 'Epoch 3, loss=0.12': the last clause
                label = next((p.strip() for p in re.split(r"[,;]", label)[::-1] if _LETTER_RE.search(p)), "")
        if not _LETTER_RE.search(label):
            label = ""
        if not label and candidates:
            label = candidates.pop()[0]
        layered = [ln for ln, _ in candidates if read_words(ln).refs]
        linears = [(_shorten(ln.strip()), off) for ln, off in zip(lines, offsets) if linear_shape(ln)]
        if len(linears) > 1:
            linears = []  # a whole module repr lists the architecture; it heads no section
        if layered or linears:
            index = bisect.bisect_left(linear_lines, linears[-1][1]) if linears else None
            section = (layered[-1] if layered else "", linears[-1][0] if linears else "", index)
        others = [ln for ln, _ in candidates if ln not in section]
        labels.append(label)
        contexts.append(" | ".join(dict.fromkeys(x for x in (*others, section[0], section[1]) if x)))
        linear_index.append(section[2])
        previous_end = block.end
    members = _members(found.blocks, found.groups)
    for k, member in enumerate(members):
        if member and member[1] > 0 and not labels[k]:
            labels[k] = labels[k - member[1]]
    arrays = _arrays(found.blocks, labels, contexts, members, linear_index, len(linear_lines), line_of)
    problems = [f"line {line_of(offset)}: {message}" for offset, message in found.problems]
    return ParsedDat(arrays, problems)


def _arrays(blocks: list[Block], labels, contexts, members, linear_index, n_linear, line_of) -> list[DatArray]:
    """DatArrays with roles (from labels, context and the rest of the file) and layers as far as the file
    alone can tell (the number of layers L guessed from its `Linear` lines or its weight labels)."""
    words = [read_words(label) for label in labels]
    in_context = [context_words(context) for context in contexts]
    file_names_gradients = any(w.grad and w.kind for w in words)
    roles = []
    for k, (w, c) in enumerate(zip(words, in_context)):
        kind = w.kind or (c.kind if not (w.loss or w.prediction) else None)
        if kind and (w.grad or not (w.param or (file_names_gradients and not c.grad))):
            role = "weight_grad" if kind == "w" else "bias_grad"
        elif kind:
            role = "weight"
        elif w.loss:
            role = "loss"
        elif w.prediction:
            role = "prediction"
        elif k == len(blocks) - 1 and k > 0 and not labels[k] and words[k - 1].kind and not members[k]:
            role = "prediction"  # a final unlabelled line after a labelled gradient: the network's output
        else:
            role = "unknown"
        roles.append(role)
    numbers = sorted({ref[1] for w in words for ref in w.refs if ref[0] == "n"})
    scheme = Scheme("ranked", tuple(numbers)) if 0 in numbers else Scheme("plain")
    n_weights = sum(role == "weight_grad" for role in roles)
    n_layers = n_linear or max([n_weights, *(r for r in numbers if scheme.name == "plain")], default=0) or 0
    input_named = any(("input",) in w.refs for w in words)
    arrays = []
    for k, block in enumerate(blocks):
        layer = None
        if roles[k] not in ("loss", "prediction"):
            layer = resolve(words[k].refs, n_layers, scheme, input_named)
        if layer is None and roles[k] not in ("loss", "prediction"):
            layer = resolve(in_context[k].refs, n_layers, scheme, input_named)
            if layer is None and linear_index[k] is not None:
                layer = linear_index[k] + 1
        values, uncertainty = measure(block.tokens)
        arrays.append(
            DatArray(
                label=labels[k],
                values=values.reshape(block.shape),
                uncertainty=uncertainty.reshape(block.shape),
                line=line_of(block.start),
                role=roles[k],
                layer=layer,
                context=contexts[k],
                member=members[k],
            )
        )
    return arrays


def _members(blocks: list[Block], groups: list[tuple[int, int]]) -> list[tuple[int, int, int] | None]:
    """(group id, index, count) of each block printed inside a list or tuple of arrays, else None.

    Groups come from matched brackets, so they nest: one sweep with a stack finds the innermost."""
    owner: list[int | None] = []
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    stack: list[int] = []
    next_group = 0
    for block in blocks:
        while next_group < len(order) and groups[order[next_group]][0] < block.start:
            stack.append(order[next_group])
            next_group += 1
        while stack and groups[stack[-1]][1] <= block.start:
            stack.pop()
        owner.append(stack[-1] if stack else None)
    counts: dict[int, int] = {}
    for group in owner:
        if group is not None:
            counts[group] = counts.get(group, 0) + 1
    seen: dict[int, int] = {}
    members: list[tuple[int, int, int] | None] = []
    for group in owner:
        if group is None:
            members.append(None)
            continue
        members.append((group, seen.get(group, 0), counts[group]))
        seen[group] = seen.get(group, 0) + 1
    return members


def _line_offsets(start: int, parts: list[str], first: bool) -> list[int]:
    """Offsets of the full lines of a gap (parts of gap.split('\\n'))."""
    offsets, offset = [], start
    for k, part in enumerate(parts[:-1]):
        if first or k > 0:
            offsets.append(offset)
        offset += len(part) + 1
    return offsets


def _shorten(line: str) -> str:
    """A label or context line of at most MAX_LABEL_CHARS: a longer one keeps its head and its tail (what
    names the array is at either end: 'dW1 = …' or '… gradient of dW1:'), so that a line of a megabyte
    is not copied into the label and context of every array below it."""
    if len(line) <= MAX_LABEL_CHARS:
        return line
    half = MAX_LABEL_CHARS // 2
    return f"{line[:half]} … {line[-half:]}"


def _is_label_line(line: str) -> bool:
    return bool(_LETTER_RE.search(line)) and not _NOISE_RE.search(line)


def _clean_inline(inline: str) -> str:
    """The label text before an array on its own line, without CSV index cells, quotes and '=' / '['."""
    text = inline.strip()
    if re.match(r"^\d+\s*,", text) or text.endswith((",", ',"')):
        cells = [cell.strip().strip("\"'") for cell in text.split(",")]
        return " ".join(cell for cell in cells if cell and not NUMBER_RE.fullmatch(cell))
    text = text.replace('"', "").replace("'", "")
    return text.lstrip(",;{[( \t").rstrip("=[({ \t").strip()
