"""Inline SVG figures: the heat map of where a matrix differs, and the class's score histogram.

Figures are plain SVG markup inside the page (no scripts, no images to fetch). A heat map draws one path
per colour level rather than one <rect> per element, so a 21×21 gradient costs a few KB; matrices larger
than MAX_CELLS per side are shown by blocks (each block the worst of its elements).

This module computes the geometry; the markup is the macros of templates/figures.svg, whose text is
escaped like every template's, so a figure is safe to embed in a page as it is (Markup).
"""

import functools
import math

import numpy as np
from markupsafe import Markup

from grader.export.page import figure

MAX_CELLS = 48
# Level 0: within tolerance. Levels 1-7: over tolerance by up to 2×, 10×, 10², 10³, 10⁴, 10⁶, beyond (or nan).
LEVEL_LIMITS = (1.0, 2.0, 10.0, 1e2, 1e3, 1e4, 1e6)
LEVEL_COLOURS = ("#cfe9d6", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59", "#e34a33", "#b30000", "#5c0000")
LEVEL_LABELS = ("ok", "≤2×", "≤10×", "≤10²×", "≤10³×", "≤10⁴×", "≤10⁶×", "more")
SWATCH = 30  # the legend's swatch width


def levels_of(excess: list) -> np.ndarray:
    """Colour level of each element's |found − expected| / allowed: 0 within tolerance (≤ 1), then the
    first LEVEL_LIMITS bound it stays under; None, nan or beyond every bound: the darkest."""
    values = np.array(excess, dtype=np.float64)  # None becomes nan
    return np.searchsorted(np.array(LEVEL_LIMITS), values, side="left")  # nan sorts last: the darkest


def as_grid(excess: list) -> list[list[float | None]]:
    """A vector becomes one row; a matrix stays as it is."""
    if excess and isinstance(excess[0], list):
        return [list(row) for row in excess]
    return [list(excess)]


def pooled(grid: list[list[float | None]]) -> tuple[list[list[int]], int, int]:
    """Levels per cell, pooled by the worst element into at most MAX_CELLS per side; and the block sizes."""
    rows, cols = len(grid), max((len(r) for r in grid), default=0)
    step_r, step_c = max(1, math.ceil(rows / MAX_CELLS)), max(1, math.ceil(cols / MAX_CELLS))
    if not rows or not cols or any(len(row) != cols for row in grid):
        return [], step_r, step_c
    levels = levels_of(grid)
    padded = np.zeros((-(-rows // step_r) * step_r, -(-cols // step_c) * step_c), dtype=levels.dtype)
    padded[:rows, :cols] = levels
    blocks = padded.reshape(padded.shape[0] // step_r, step_r, padded.shape[1] // step_c, step_c).max(axis=(1, 3))
    return blocks.tolist(), step_r, step_c


def heat_map(excess: list, where: list[int] | None, label: str) -> Markup:
    """SVG heat map of one trial's excess map, the worst element outlined, with a legend (figures.svg)."""
    grid = as_grid(excess)
    levels, step_r, step_c = pooled(grid)
    rows, cols = len(levels), len(levels[0]) if levels else 0
    if not rows or not cols:
        return Markup("")
    cell = max(5, min(26, 340 // cols))
    width, height = cols * cell, rows * cell
    paths: dict[int, list[str]] = {}
    for r, line in enumerate(levels):
        c = 0
        while c < cols:  # one rectangle per run of equal levels along the row
            run = 1
            while c + run < cols and line[c + run] == line[c]:
                run += 1
            paths.setdefault(line[c], []).append(f"M{c * cell} {r * cell}h{run * cell}v{cell}h-{run * cell}z")
            c += run
    grid_lines = "".join(f"M{c * cell} 0v{height}" for c in range(1, cols)) + "".join(
        f"M0 {r * cell}h{width}" for r in range(1, rows)
    )
    outline = None
    if where and len(where) in (1, 2):
        r, c = (0, where[0]) if len(where) == 1 else (where[0], where[1])
        outline = {"x": (c // step_c) * cell + 1, "y": (r // step_r) * cell + 1, "size": cell - 2}
    legend_y = height + 14
    return figure(
        "heat_map",
        label=label,
        width=max(width, len(LEVEL_COLOURS) * (SWATCH + 4)),
        height=legend_y + 26,
        levels=[(LEVEL_COLOURS[value], "".join(parts)) for value, parts in sorted(paths.items())],
        grid_lines=grid_lines if cell >= 8 else "",
        outline=outline,
        legend=_legend(legend_y),
    )


@functools.lru_cache(maxsize=64)
def _legend(y: int) -> Markup:
    """The colour levels' legend at height `y`: the same markup for every heat map of that height, so drawn
    once (a report draws a heat map per failing check, a class thousands)."""
    items = [
        {"x": index * (SWATCH + 4), "middle": index * (SWATCH + 4) + SWATCH / 2, "colour": colour, "text": text}
        for index, (colour, text) in enumerate(zip(LEVEL_COLOURS, LEVEL_LABELS))
    ]
    return figure("heat_legend", legend=items, legend_y=y, swatch=SWATCH)


def histogram(counts: list[int], labels: list[str], label: str) -> Markup:
    """SVG bar chart of how many students fall in each score bin (figures.svg)."""
    width, height, top, bottom = 640, 220, 22, 34
    slot = width / max(len(counts), 1)
    tallest = max(counts, default=0) or 1
    bars = []
    for index, (count, text) in enumerate(zip(counts, labels)):
        bar = (height - top - bottom) * count / tallest
        x = index * slot + 4
        y = height - bottom - bar
        bars.append(
            {
                "x": f"{x:.1f}",
                "y": f"{y:.1f}",
                "width": f"{slot - 8:.1f}",
                "height": f"{bar:.1f}",
                "middle": f"{x + (slot - 8) / 2:.1f}",
                "count_y": f"{y - 5:.1f}",
                "count": count,
                "text": text,
            }
        )
    return figure("histogram", label=label, width=width, height=height, baseline=height - bottom, bars=bars)
