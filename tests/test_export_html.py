"""report.html: what the student sees, what they never see, and that nothing they wrote becomes markup."""

import re

from grader.export.html import render_report_html, write_report_html
from grader.report import CheckResult, Diagnosis, GradeReport, RunRecord, TrialResult
from grader.rubric.checkspec import Tolerance, Visibility
from grader.rubric.files import load_rubric

RUBRIC = load_rubric("bs6207-a1")
EVIL = "<script>alert('x')</script>"


def trial(name, status="passed", message="matches", excess=None, where=None):
    return TrialResult(
        trial=name,
        status=status,
        message=message,
        excess=excess,
        where=where,
        layout="as expected",
        max_abs_error=0.5 if status != "passed" else 0.0,
        max_rel_error=2.0 if status != "passed" else 0.0,
        tolerance=Tolerance(),
        atol_eff=1e-7,
    )


def check(
    quantity,
    status="passed",
    trials=None,
    points=1.0,
    visibility=Visibility.visible,
    diagnosis=None,
    message=None,
    group_points=None,
):
    trials = [trial("public-0"), trial("public-1"), trial("hidden-0")] if trials is None else trials
    group_points = group_points or {
        "public": 0.5 if status == "passed" else 0.0,
        "hidden": 0.5 if status == "passed" else 0.0,
    }
    return CheckResult(
        task="backprop",
        quantity=quantity,
        status=status,
        points=sum(group_points.values()),
        max_points=points,
        group_points=group_points,
        group_max_points={"public": 0.5, "hidden": 0.5},
        visibility=visibility,
        message=message or f"{quantity}: {status}",
        provenance="scratch_gradients()",
        diagnosis=diagnosis,
        trials=trials,
    )


def report(checks, run=None, **fields):
    base = dict(
        grader_version="0.1.0",
        rubric_id="bs6207-a1",
        rubric_hash="ab" * 32,
        student="ann",
        submission="ann.py",
        submission_hash="cd" * 32,
        trials=["public-0", "public-1", "hidden-0"],
        seeds={"public": 6207, "hidden": "set"},
        environment={"python": "3.11.7", "numpy": "2.4.6", "torch": "2.13.0+cpu"},
        status="graded",
        score=sum(c.points for c in checks),
        max_score=sum(c.max_points for c in checks),
        checks=checks,
        run=run or RunRecord(status="ok", message=""),
        timing={"load": 0.1},
    )
    base.update(fields)
    return GradeReport(**base)


EXCESS = [[0.1, 3.0, 0.2], [50.0, 0.0, 1e5]]
DIAGNOSIS = Diagnosis(
    mistake="missing_factor_2",
    title="missing factor 2",
    explanation="found = 0.5 × expected everywhere",
    hint="d/dŷ (ŷ − y)² = 2(ŷ − y)",
    factor=0.5,
    layer=2,
    trials=["public-0", "public-1"],
)


def failing_dw2():
    return check(
        "scratch.dW2",
        "failed",
        diagnosis=DIAGNOSIS,
        message="scratch.dW2: off [trial public-0; fails on 3 of 3 trials]",
        trials=[
            trial("public-0", "failed", "scratch.dW2: expected 1 at (1, 2), found 0.5", EXCESS, [1, 2]),
            trial("public-1", "failed", "scratch.dW2: expected 2 at (0, 1), found 1"),
            trial("hidden-0", "failed", "scratch.dW2: HIDDEN-TRIAL-VALUES", EXCESS, [0, 0]),
        ],
    )


def test_the_page_is_self_contained_and_forbids_every_request():
    page = render_report_html(report([check("scratch.dW1"), failing_dw2()]), RUBRIC, "backprop-grader grade ann.py")
    assert (
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'" in page
    )
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {
        "http://www.w3.org/2000/svg"
    }  # an XML namespace, never fetched
    for fetching in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "url(", "@import", " src=", " href="):
        assert fetching not in page, fetching


def test_everything_the_student_controls_is_escaped():
    run = RunRecord(
        status="import_error", message=f"NameError: {EVIL}", stdout=f"{EVIL}\n", stderr="<b>bold</b>", cell=3, line=2
    )
    page = render_report_html(
        report(
            [check("scratch.dW1", "failed", message=f"scratch.dW1: {EVIL}")],
            run=run,
            student="ann",
            submission=f"{EVIL}.ipynb",
            notes=[EVIL],
        ),
        RUBRIC,
        f"grade '{EVIL}.ipynb'",
    )
    assert "<script" not in page and "<b>bold" not in page
    assert page.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 6
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


def test_instructor_only_fields_never_reach_the_student():
    run = RunRecord(
        status="import_error",
        message="your code raised",
        detail="SECRET-DETAIL traceback of the grader",
        protections={"bubblewrap": True},
        wall_seconds=0.123456,
    )
    page = render_report_html(
        report(
            [check("scratch.dW1")], run=run, flags=["SECRET-FLAG autograd in scratch code"], timing={"load": 9.87654}
        ),
        RUBRIC,
        "cmd",
    )
    for secret in ("SECRET-DETAIL", "SECRET-FLAG", "bubblewrap", "0.123456", "9.87654"):
        assert secret not in page


def test_hidden_checks_and_hidden_trials_are_shown_only_as_visibility_allows():
    checks = [
        check("scratch.dW1"),
        failing_dw2(),
        check("scratch.db1", visibility=Visibility.hidden, message="HIDDEN-CHECK"),
    ]
    page = render_report_html(report(checks), RUBRIC, "cmd")  # the bundled rubric: hidden trials after_due_date
    assert "HIDDEN-CHECK" not in page and "scratch.db1" not in page and "1 more check will be shown later" in page
    assert "HIDDEN-TRIAL-VALUES" not in page and "hidden-0" not in page.split("Reproduce this grade")[0]
    assert "fails on 2 of 2 trials shown" in page and "1 hidden trial also count" in page
    assert '<div class="big">0.5 <span>/ 1</span></div>' in page  # public halves of the two visible checks
    visible = RUBRIC.model_copy(
        update={"trials": RUBRIC.trials.model_copy(update={"hidden_visibility": Visibility.visible})}
    )
    page = render_report_html(report(checks), visible, "cmd")
    assert "HIDDEN-TRIAL-VALUES" in page and "HIDDEN-CHECK" not in page
    assert '<div class="big">1 <span>/ 2</span></div>' in page


def test_a_failing_matrix_gets_a_heat_map_and_its_diagnosis_a_callout():
    page = render_report_html(report([failing_dw2()]), RUBRIC, "cmd")
    figure = page[page.index('<figure class="heat">') : page.index("</figure>")]
    assert figure.count("<path fill=") == 4  # ok, ≤10×, ≤10²×, ≤10⁶× levels
    assert 'stroke="#111"' in figure  # the worst element outlined
    assert "3 of 6 values outside the tolerance (shape 2 × 3" in figure
    assert "Likely mistake: missing factor 2" in page and "first at layer 2 · found ≈ 0.5 × expected" in page
    assert "d/dŷ (ŷ − y)² = 2(ŷ − y)" in page and "found = 0.5 × expected everywhere" in page
    assert "<dt>worst element</dt><dd>(1, 2)</dd>" in page


def test_the_failing_cell_and_line_output_environment_and_command_are_shown():
    run = RunRecord(
        status="import_error", message="NameError: name 'np' is not defined", cell=4, line=7, stdout="x" * 10000
    )
    page = render_report_html(
        report([check("scratch.dW1")], run=run, submission="ann.ipynb"),
        RUBRIC,
        "backprop-grader grade ann.ipynb --rubric bs6207-a1 --out regraded",
    )
    assert "Your code stopped in cell 4, line 7" in page and "name &#39;np&#39; is not defined" in page
    assert "… (4000 more characters not shown)" in page and "(10000 characters)" in page
    assert "backprop-grader grade ann.ipynb --rubric bs6207-a1 --out regraded" in page
    assert "backprop-grader check ann.ipynb --rubric bs6207-a1" in page
    assert "<dt>torch</dt><dd>2.13.0+cpu</dd>" in page and "public 6207, hidden set" in page
    script = render_report_html(
        report([check("scratch.dW1")], run=RunRecord(status="timeout", message="too slow", line=12)), RUBRIC, "c"
    )
    assert "Your code stopped at line 12 of ann.py" in script


def test_a_submission_that_could_not_be_loaded_says_why():
    checks = [
        check(
            "scratch.dW1",
            "missing",
            message="scratch.dW1: not checked — ann.py: the file is empty",
            trials=[],
            group_points={},
        )
    ]
    page = render_report_html(
        report(checks, run=None, status="empty", message="ann.py: the file is empty; hand in the file"), RUBRIC, "cmd"
    )
    assert "Your submission could not be graded" in page and "the file is empty; hand in the file" in page


def unchecked(quantity, reason, status="missing"):
    """A check the code never reached: its own message is '<quantity>: <reason>', nothing else to show."""
    return CheckResult(
        task="backprop",
        quantity=quantity,
        status=status,
        points=0.0,
        max_points=1.0,
        visibility=Visibility.visible,
        message=f"{quantity}: {reason}",
    )


QUANTITIES = [c.quantity for c in RUBRIC.tasks[0].checks]


def test_checks_that_all_fail_for_one_reason_show_it_once_above_one_line_rows():
    reason = "not checked — ann.py, line 1: syntax error: invalid syntax; the code did not run"
    page = render_report_html(report([unchecked(q, reason) for q in QUANTITIES]), RUBRIC, "cmd")
    checks = page[page.index("<h2>Checks</h2>") : page.index("<h2>Reproduce")]
    assert (
        page.count("the code did not run") == 1
        and f"One reason for all {len(QUANTITIES)} checks that did not pass" in checks
    )
    assert checks.count('<div class="check"><div class="row"><span class="pill missing">missing</span>') == len(
        QUANTITIES
    )
    assert "<details" not in checks and '<span class="why' not in checks
    assert all(f'<span class="q">{q}</span>' in checks for q in QUANTITIES)


def test_reasons_several_checks_share_get_letters_and_a_check_with_its_own_story_keeps_its_row():
    scratch, torch_ = (
        [q for q in QUANTITIES if q.startswith("scratch.")],
        [q for q in QUANTITIES if q.startswith("torch.")],
    )
    checks = [unchecked(q, "not run — scratch_gradients() was never called") for q in scratch if q != "scratch.dW2"]
    checks += [unchecked(q, "not run — torch_gradients() was never called") for q in torch_]
    checks += [failing_dw2(), unchecked("architecture", "no parameter-shaped values were returned")]
    page = render_report_html(report(checks), RUBRIC, "cmd")
    head = page[page.index("<h2>Checks</h2>") : page.index('<div class="checks">')]
    assert f"<b>(a)</b> {len(scratch) - 1} checks: not run — scratch_gradients() was never called" in head
    assert f"<b>(b)</b> {len(torch_)} checks: not run — torch_gradients() was never called" in head
    assert page.count("was never called") == 2
    assert '<span class="q">torch.dW1 <span class="why muted small">(b)</span></span>' in page
    assert page.count('<details class="check"') == 2  # the diagnosed dW2 and the architecture: each says its own
    assert (
        "architecture: no parameter-shaped values were returned" in page
        and "Likely mistake: <b>missing factor 2</b>" in page
    )


def test_failures_with_messages_of_their_own_are_not_grouped():
    checks = [
        unchecked("scratch.dW1", "expected (10, 2), found (3,)", "failed"),
        unchecked("scratch.db1", "expected (10,), found (2,)", "failed"),
    ]
    page = render_report_html(report(checks), RUBRIC, "cmd")
    assert 'class="callout reasons"' not in page and page.count('<details class="check"') == 2


def test_the_page_is_written_atomically_and_is_deterministic(tmp_path):
    first = write_report_html(report([failing_dw2()]), tmp_path / "ann", RUBRIC, "cmd")
    assert first == tmp_path / "ann" / "report.html"
    assert first.read_text(encoding="utf-8") == render_report_html(report([failing_dw2()]), RUBRIC, "cmd")
    assert [p.name for p in (tmp_path / "ann").iterdir()] == ["report.html"]


def test_a_large_matrix_is_drawn_by_blocks_and_a_vector_as_one_row():
    from grader.export.svg import LEVEL_COLOURS, heat_map, pooled

    big = [[2.0 if (i, j) == (99, 99) else 0.5 for j in range(100)] for i in range(100)]
    levels, step_r, step_c = pooled(big)
    assert (len(levels), len(levels[0]), step_r, step_c) == (34, 34, 3, 3)
    assert levels[33][33] == 1 and sum(map(sum, levels)) == 1  # a block shows its worst element
    svg = heat_map(big, [99, 99], "big")
    assert len(svg) < 12_000 and f'fill="{LEVEL_COLOURS[1]}"' in svg
    vector = heat_map([0.5, None, float("nan"), 5.0], [2], "db1")
    assert f'fill="{LEVEL_COLOURS[-1]}"' in vector  # nan (null in JSON) is drawn as the furthest off
    assert 'viewBox="0 0 272 ' in vector  # four cells of 26 px would be narrower than the legend


def test_heat_map_levels_include_each_bound_and_draw_nan_and_none_darkest():
    from grader.export.svg import LEVEL_LIMITS, levels_of

    values = [0.0, 1.0, 1.0000001, 2.0, 10.0, 1e6, 1e6 * 1.0001, float("inf"), float("nan"), None]
    darkest = len(LEVEL_LIMITS)
    assert levels_of(values).tolist() == [0, 0, 1, 1, 2, 6, darkest, darkest, darkest, darkest]
    assert levels_of([[0.5, 3.0], [None, 0.1]]).tolist() == [[0, 2], [darkest, 0]]
