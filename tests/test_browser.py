"""The reports in a real headless Chromium: no console errors, no request, a student's script stays text.

Screenshots are saved under test-artifacts/ (gitignored) for people to look at. Chromium comes from the
Debian package (`scripts/dev test` installs it as root); Playwright drives it and never downloads a browser.
"""

import os
from pathlib import Path

import pytest

from conftest import REPO, SCRIPT_LINE

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency: pip install -e '.[test]'")

CHROMIUM = Path(os.environ.get("BACKPROP_GRADER_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One Chromium with a fresh profile (--user-data-dir) for this module."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install the Debian package chromium (scripts/dev test does, as root)")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield context
        context.close()


def visit(browser, path: Path, width: int = 1000):
    """Open a page; return it with every console message, page error, request and dialog it caused."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    events = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda message: events["console"].append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: events["console"].append(f"pageerror: {error}"))
    page.on("request", lambda request: events["requests"].append(request.url))
    page.on("dialog", lambda dialog: (events["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    return page, events


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_a_report_opens_without_console_errors_or_any_request(browser, graded_class):
    path = graded_class.out / "transposed_gradient" / "report.html"
    page, events = visit(browser, path)
    assert events["console"] == [] and events["requests"] == [path.as_uri()]
    assert page.title().startswith("transposed_gradient — BS6207 Assignment 1")
    assert page.locator("details.check[open] figure.heat svg").count() >= 1  # the failing dW2 and its heat map
    assert page.locator("div.check .pill.passed").count() >= 10
    screenshot(page, "report-transposed_gradient.png")
    page.close()


def test_the_summary_opens_without_console_errors_and_links_every_report(browser, graded_class):
    path = graded_class.out / "summary.html"
    page, events = visit(browser, path)
    assert events["console"] == [] and events["requests"] == [path.as_uri()]
    links = page.locator("table a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert set(links) >= {f"{s}/report.html" for s in ("correct.py", "zoe", "ben_1002", "printer")}
    assert page.locator(".chart svg rect").count() == 10
    screenshot(page, "summary.png")
    page.close()


def test_a_script_printed_by_a_student_is_shown_as_text_and_never_runs(browser, graded_class):
    path = graded_class.out / "printer" / "report.html"
    page, events = visit(browser, path)
    page.locator("details.box summary").first.click()
    assert SCRIPT_LINE in page.locator("pre.out").first.inner_text()
    assert events["dialogs"] == [] and events["console"] == [] and events["requests"] == [path.as_uri()]
    page.close()


def test_the_report_fits_a_phone_screen(browser, graded_class):
    page, events = visit(browser, graded_class.out / "missing_factor_2" / "report.html", width=390)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert events["console"] == []
    screenshot(page, "report-phone.png")
    page.close()
