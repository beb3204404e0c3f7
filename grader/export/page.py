"""The Jinja2 environment report.html, summary.html and their SVG figures are rendered with.

Templates live in grader/export/templates/ (package data): `page.html` is the shell both pages extend
(one self-contained file, inline CSS, no requests), `report.html` and `summary.html` the pages,
`figures.svg` the heat map and histogram macros. Autoescaping is on for every template, so anything a
student controls (file names, messages, printed output) is text, never markup; the only values marked
safe are the figures the grader draws itself, from `figures.svg` with their text escaped. Undefined
names raise (StrictUndefined), so a misspelt field fails a test instead of printing nothing.

Every page carries a Content-Security-Policy (in page.html) that forbids fetching anything (no scripts,
images, fonts or styles from anywhere; only the inline <style>), so even a template bug could not make a
page phone home or run a student's script.
"""

import math
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def number(value: float | None, digits: int = 3) -> str:
    """A measured number for people: 3 significant digits, `—` when absent, words for nan and inf."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return "infinite"
    return f"{value:.{digits}g}"


def points(value: float) -> str:
    """Points as written in a rubric: 0.5, 1, 14.25."""
    return format(round(value, 6), ".12g")


@cache
def environment() -> Environment:
    """The one environment (built once): autoescaping on, undefined names an error, block tags on lines
    of their own leave no blank lines (trim_blocks, lstrip_blocks), and `points`/`number` as filters."""
    env = Environment(
        loader=PackageLoader("grader.export", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # package data: never changes while the grader runs, so no stat per page
    )
    env.filters["points"] = points
    env.filters["number"] = number
    return env


def render(template: str, **context: Any) -> str:
    """A whole page from its template."""
    return environment().get_template(template).render(**context)


def figure(macro: str, **arguments: Any) -> Markup:
    """An SVG figure drawn by a macro of figures.svg: markup the page embeds as it is (its text escaped
    by the macro)."""
    return getattr(environment().get_template("figures.svg").module, macro)(**arguments)
