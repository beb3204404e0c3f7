"""A reason several checks share is said once: in the table `check` prints (and report.html, see test_export_html)."""

from grader.export.reasons import plain, reason, shared_reasons
from grader.export.table import render_table
from grader.report import CheckResult, CheckStatus, Diagnosis, GradeReport
from grader.rubric.checkspec import Visibility
from grader.rubric.files import load_rubric

QUANTITIES = [c.quantity for c in load_rubric("bs6207-a1").tasks[0].checks]


def unchecked(quantity, why, status=CheckStatus.missing, **fields):
    return CheckResult(
        task="backprop",
        quantity=quantity,
        status=status,
        points=0.0,
        max_points=1.0,
        visibility=Visibility.visible,
        message=f"{quantity}: {why}",
        **fields,
    )


def report(checks, **fields):
    return GradeReport(
        grader_version="0.1.0",
        rubric_id="bs6207-a1",
        rubric_hash="ab",
        student="ben",
        submission="ben.py",
        submission_hash="cd",
        trials=["public-0"],
        seeds={"public": 6207},
        environment={},
        status="graded",
        score=0.0,
        max_score=float(len(checks)),
        checks=checks,
        **fields,
    )


def test_a_check_table_whose_checks_all_fail_for_one_reason_prints_it_once_and_short_rows(cli, tmp_path):
    (tmp_path / "ben.py").write_text("")
    done = cli("check", tmp_path / "ben.py", "--rubric", "bs6207-a1", cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert (
        done.returncode == 1 and done.stdout.count("the file is empty") == 2
    )  # the file's problem, then the checks' reason
    assert f"all {len(QUANTITIES)} checks that did not pass: not checked — ben.py: the file is empty" in done.stdout
    rows = [line for line in lines if " MISSING " in line]
    assert len(rows) == len(QUANTITIES) and all(line.rstrip().endswith(("/0.5", "/1")) for line in rows), rows


def test_two_shared_reasons_get_letters_and_a_diagnosed_failure_keeps_its_detail():
    diagnosis = Diagnosis(
        mistake="sign_flip", title="sign flip", explanation="found = −expected", hint="look at the sign"
    )
    checks = [
        unchecked("scratch.dW1", "not run — scratch_gradients() was never called"),
        unchecked("scratch.db1", "not run — scratch_gradients() was never called"),
        unchecked("torch.dW1", "not run — torch_gradients() was never called"),
        unchecked("torch.db1", "not run — torch_gradients() was never called"),
        unchecked("torch.dW2", "off by a sign", CheckStatus.failed, diagnosis=diagnosis),
        unchecked("torch.db2", "off by a sign", CheckStatus.failed, diagnosis=diagnosis),
        unchecked("architecture", "expected 2-10-10-1", CheckStatus.failed),
    ]
    table = render_table(report(checks))
    assert "(a) 2 checks: not run — scratch_gradients() was never called" in table
    assert "(b) 2 checks: not run — torch_gradients() was never called" in table
    assert table.count("was never called") == 2 and table.count("→ sign flip") == 2
    row = {line.split()[0]: line for line in table.splitlines() if line.split() and line.split()[0] in QUANTITIES}
    assert row["scratch.db1"].endswith("0/1  (a)") and row["torch.dW1"].endswith("0/1  (b)")
    assert row["architecture"].endswith("architecture: expected 2-10-10-1")


def test_only_checks_with_nothing_else_to_show_are_grouped():
    assert reason("scratch.dW1", "scratch.dW1: not run") == "not run" and reason("x", "other: y") == "other: y"
    assert plain(unchecked("scratch.dW1", "not run")) and not plain(unchecked("scratch.dW1", "ok", CheckStatus.passed))
    assert not plain(unchecked("scratch.dW1", "not run", provenance="my_autograd.dat line 3"))
    rows = [
        ("a", "a: same", CheckStatus.missing, True),
        ("b", "b: same", CheckStatus.missing, False),
        ("c", "c: same", CheckStatus.passed, True),
    ]
    assert shared_reasons(rows).groups == []  # one plain failing row is no group
