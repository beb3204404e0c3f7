"""The reports in a real headless Chromium: no console errors, no request, a student's script stays text.

Screenshots are saved under test-artifacts/ (gitignored) for people to look at. Chromium comes from the
Debian package (`scripts/dev test` installs it as root); Playwright drives it and never downloads a browser.
"""

import json
import os
import re
from pathlib import Path

import pytest
from conftest import REPO, SCRIPT_LINE

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is a test dependency: pip install -e '.[test]'"
)

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
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
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
    path = graded_class.out / "missing_factor_2" / "report.html"
    page, events = visit(browser, path)
    assert events["console"] == [] and events["requests"] == [path.as_uri()]
    assert page.title().startswith("missing_factor_2 — BS6207 Assignment 1")
    assert page.locator("details.check[open] figure.heat svg").count() >= 1  # a failing gradient and its heat map
    assert page.locator("div.check .pill.passed").count() >= 10
    screenshot(page, "report-missing_factor_2.png")
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


def test_the_review_list_shows_as_many_entries_as_grade_printed_notes_to_review(browser, graded_notebook_class):
    done, path = graded_notebook_class.done, graded_notebook_class.out / "summary.html"
    printed = int(re.search(r"; (\d+) notes? to review; ", done.stdout.strip().splitlines()[-1]).group(1))
    page, events = visit(browser, path)
    entries = page.locator("ul.review > li").all_inner_texts()
    assert events["console"] == [] and len(entries) == printed >= 4, entries
    assert sum(entry.startswith("never_closed: most cells failed: ") for entry in entries) == 1
    screenshot(page, "summary-notebooks.png")
    page.close()


def test_a_report_whose_checks_all_fail_for_one_reason_shows_it_once_above_one_line_rows(
    browser, graded_notebook_class
):
    folder = graded_notebook_class.out / "never_closed"
    checks = len(json.loads((folder / "report.json").read_text(encoding="utf-8"))["checks"])
    page, events = visit(browser, folder / "report.html")
    rows = page.locator(".checks div.check > .row")
    reasons = page.locator(".callout.reasons").all_inner_texts()
    assert events["console"] == [] and rows.count() == checks > 10 and page.locator(".checks details").count() == 0
    assert len(reasons) == 1 and reasons[0].startswith(f"One reason for all {checks} checks that did not pass")
    assert "not checked — no forward call of a torch.nn.Module" in reasons[0]
    assert "not checked" not in page.locator(".checks").inner_text()
    assert rows.first.inner_text().split() == ["MISSING", "architecture", "0", "/", "1"]
    screenshot(page, "report-one-reason.png")
    page.close()
