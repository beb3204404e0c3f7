"""The HTML page shell shared by report.html and summary.html: one self-contained file, no requests.

Every page carries a Content-Security-Policy that forbids fetching anything (no scripts, images, fonts or
styles from anywhere; only the inline <style>), so even a renderer bug could not make a page phone home
or run a student's script. All text goes through `esc`: anything a student controls is data, never markup.
"""

import html
import math
from importlib import resources

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def esc(value: object) -> str:
    """Text made safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


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


def stylesheet() -> str:
    """The one stylesheet of every page (package data, inlined)."""
    return resources.files("grader.export").joinpath("templates/page.css").read_text(encoding="utf-8")


def render_page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>\n{stylesheet()}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n</body>\n</html>\n"
    )
