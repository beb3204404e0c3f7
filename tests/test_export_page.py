"""The templates' environment: autoescaping on, undefined names an error, the templates shipped, and every
student-controlled string in report.html and summary.html text, never markup."""

import fnmatch
import tomllib
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from conftest import REPO
from jinja2 import StrictUndefined, UndefinedError

from grader.export.html import render_report_html
from grader.export.page import environment, render
from grader.export.results_jsonl import student_record
from grader.export.summary import render_summary
from grader.report import CheckResult, Diagnosis, GradeReport, RunRecord, TrialResult
from grader.rubric.checkspec import Tolerance, Visibility
from grader.rubric.files import load_rubric

RUBRIC = load_rubric("bs6207-a1")
TEMPLATES = REPO / "grader" / "export" / "templates"


def evil(field: str) -> str:
    """A string a student could write, different for each field: a script, double and single quotes, and
    an `&` that starts an entity (`&lt;` shows as `&lt;` only when the `&` is escaped)."""
    return f"<script>alert(\"{field}\" + '&lt;')</script>"


class Parsed(HTMLParser):
    """What a browser reads from a page: its tags, its text nodes and its attribute values."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.texts: list[str] = []
        self.attributes: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [value for _, value in attrs if value is not None]

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def assert_text_everywhere(page: str, fields: list[str]) -> None:
    """Each field's string is in the page whole, as text (or an attribute's value), and no tag of it is."""
    parsed = Parsed(page)
    assert "script" not in parsed.tags
    assert "style" in parsed.tags  # the parser read the page as HTML
    for field in fields:
        assert evil(field) not in page, field
        assert any(evil(field) in text for text in parsed.texts + parsed.attributes), field


def test_every_template_is_rendered_with_autoescaping_and_undefined_names_fail():
    env = environment()
    names = env.list_templates(filter_func=lambda name: not name.endswith(".css"))
    assert set(names) == {"page.html", "report.html", "summary.html", "figures.svg"}
    assert all(env.autoescape is True or (callable(env.autoescape) and env.autoescape(name)) for name in names)
    assert (
        env.from_string("{{ x }}").render(x=evil("x"))
        == "&lt;script&gt;alert(&#34;x&#34; + &#39;&amp;lt;&#39;)&lt;/script&gt;"
    )
    assert env.undefined is StrictUndefined
    with pytest.raises(UndefinedError):
        render("summary.html", rubric=RUBRIC)  # every other name the page needs is missing


def test_the_templates_are_package_data():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = setuptools["package-data"]["grader.export"]
    for path in TEMPLATES.iterdir():
        assert any(fnmatch.fnmatch(f"templates/{path.name}", p) for p in patterns), path.name


REPORT_FIELDS = [
    "student",
    "submission",
    "note",
    "run message",
    "stdout",
    "stderr",
    "check message",
    "trial message",
    "layout",
    "provenance",
    "diagnosis title",
    "explanation",
    "hint",
    "localization",
    "relation",
    "command",
    "environment",
]


def evil_report(**fields) -> GradeReport:
    """A report whose every text field is a student's script: one check diagnosed, failing on two trials."""
    trials = [
        TrialResult(
            trial=f"public-{i}",
            status="failed",
            message=evil("trial message") if i else "scratch.dW1: off",
            layout=evil("layout"),
            max_abs_error=0.5,
            max_rel_error=2.0,
            tolerance=Tolerance(),
            atol_eff=1e-7,
            excess=[[0.1, 3.0]] if not i else None,
            where=[0, 1] if not i else None,
        )
        for i in range(2)
    ]
    diagnosis = Diagnosis(
        mistake="missing_factor_2",
        title=evil("diagnosis title"),
        explanation=evil("explanation"),
        hint=evil("hint"),
        localization=evil("localization"),
        relation=evil("relation"),
        factor=0.5,
        layer=2,
    )
    check = CheckResult(
        task="backprop",
        quantity="scratch.dW1",
        status="failed",
        points=0.0,
        max_points=1.0,
        visibility=Visibility.visible,
        message=evil("check message"),
        provenance=evil("provenance"),
        diagnosis=diagnosis,
        trials=trials,
    )
    run = RunRecord(
        status="import_error", message=evil("run message"), stdout=evil("stdout"), stderr=evil("stderr"), line=2
    )
    base = dict(
        grader_version="0.1.0",
        rubric_id="bs6207-a1",
        rubric_hash="ab" * 32,
        student=evil("student"),
        submission=evil("submission") + ".py",
        submission_hash="cd" * 32,
        trials=["public-0", "public-1"],
        seeds={"public": 6207},
        environment={"numpy": evil("environment")},
        status="graded",
        score=0.0,
        max_score=1.0,
        checks=[check],
        run=run,
        notes=[evil("note")],
    )
    return GradeReport(**(base | fields))


def test_every_student_controlled_string_in_report_html_is_text():
    page = render_report_html(evil_report(), RUBRIC, f"backprop-grader grade {evil('command')}")
    assert_text_everywhere(page, REPORT_FIELDS)
    not_graded = evil_report(status="empty", message=evil("message"), run=None)
    assert_text_everywhere(render_report_html(not_graded, RUBRIC, "cmd"), ["message", "student", "submission"])


def test_a_reason_several_checks_share_is_text_in_report_html():
    def unchecked(quantity, reason):
        return CheckResult(
            task="backprop",
            quantity=quantity,
            status="missing",
            points=0.0,
            max_points=1.0,
            visibility=Visibility.visible,
            message=reason,
        )

    one = [unchecked(q, evil("reason")) for q in ("scratch.dW1", "scratch.db1")]
    two = one + [unchecked(q, evil("other reason")) for q in ("scratch.dW2", "scratch.db2")]
    for checks, fields in ((one, ["reason"]), (two, ["reason", "other reason"])):
        page = render_report_html(evil_report(checks=checks, run=None), RUBRIC, "cmd")
        assert_text_everywhere(page, fields)
        assert 'class="callout reasons"' in page


def test_every_student_controlled_string_in_summary_html_is_text():
    report = evil_report(flags=[evil("flag")]).model_dump(mode="json")
    folder = evil("folder")
    records = [
        student_record(report, folder),
        student_record(
            evil_report(status="empty", message=evil("message"), student="fay").model_dump(mode="json"), "fay"
        ),
    ]
    page = render_summary(RUBRIC, records, [evil("batch note")])
    assert_text_everywhere(page, ["student", "submission", "diagnosis title", "flag", "message", "batch note"])
    assert f'href="{quote(folder + "/report.html")}"' in page  # the link is percent-encoded, whatever the name
