"""Command line: wires arguments to stage functions and nothing more.

Exit codes: 0 success (for `check`: every visible check passed); 1 the work was done and something
failed (a check, an invalid rubric); 2 the command could not run as asked (usage, missing rubric).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from grader import __version__
from grader.cli.grade import add_grade_command
from grader.cli.gradescope import add_gradescope_command
from grader.doctor import add_doctor_command
from grader.errors import GraderError, RubricInvalid, UsageError
from grader.secret import add_secret_command, hidden_seed_option

if TYPE_CHECKING:
    from grader.rubric.model import Rubric

# Stage modules (numpy, pydantic, torch-free but ~0.4 s to import) are imported inside the commands that use
# them: `check` launches its sandbox worker first, so the worker's ~2 s start overlaps the grader's imports.

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run() -> NoReturn:
    """The `backprop-grader` console script and `python -m grader`: main(), then `exit_now` with its code.
    A reader that stopped reading (`| head`) ends it quietly with EXIT_FAILED; any other exception main()
    does not handle still ends the process the usual way (with its traceback)."""
    try:
        code = main()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more can be said there
        code = EXIT_FAILED
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """End the process with `code` once stdout and stderr are flushed, without the interpreter's teardown.

    Every command has closed its files, joined its threads and closed its sandbox before it returns, so
    the teardown (freeing every object of numpy, pydantic and the stages, ~0.2 s on our 2-core machines)
    only delays the end a student or an LMS waits for; a `check` spends about a tenth of its time there."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or a closed stream: nothing more to say
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the command named in `argv` (default: sys.argv) and return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except RubricInvalid as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except GraderError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backprop-grader", description="Grade backpropagation assignments.")
    parser.add_argument("--version", action="version", version=f"backprop-grader {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    rubric = commands.add_parser("rubric", help="list, show, validate rubrics, or print their JSON Schema")
    rubric_commands = rubric.add_subparsers(title="rubric commands", metavar="ACTION", required=True)
    listing = rubric_commands.add_parser("list", help="bundled rubrics")
    listing.add_argument("--ids", action="store_true", help="print the ids only, one per line")
    listing.set_defaults(run=_rubric_list)
    show = rubric_commands.add_parser("show", help="tasks, checks, points, trials and limits of a rubric")
    show.add_argument("rubric", help="bundled rubric id or path of a .toml file")
    show.set_defaults(run=_rubric_show)
    validate = rubric_commands.add_parser("validate", help="validate rubric files; exit 1 if any is invalid")
    validate.add_argument("rubrics", nargs="+", help="ids or paths")
    validate.set_defaults(run=_rubric_validate)
    schema = rubric_commands.add_parser("schema", help="JSON Schema of rubric files")
    schema.set_defaults(run=_rubric_schema)
    add_secret_command(rubric_commands)

    solve = commands.add_parser("solve", help="the answer key: every expected quantity of a trial")
    solve.add_argument("--rubric", required=True, help="bundled rubric id or path")
    solve.add_argument("--trial", type=int, default=0, help="trial index (default 0)")
    solve.add_argument("--hidden", action="store_true", help="a hidden trial instead of a public one")
    solve.add_argument("--hidden-seed", metavar="SECRET", help="secret of the hidden trials (default: the rubric's)")
    solve.add_argument("--json", action="store_true", help="print JSON instead of text")
    solve.set_defaults(run=_solve)

    check = commands.add_parser("check", help="check a submission on the public trials (students: before handing in)")
    check.add_argument("file", type=Path, help="your .py file or .ipynb notebook")
    check.add_argument("--rubric", required=True, help="bundled rubric id or path")
    check.add_argument(
        "--out", type=Path, default=Path("backprop-grader-report"), help="folder for report.json (default: %(default)s)"
    )
    check.add_argument("--timeout", type=float, help="wall and CPU seconds allowed (default: the rubric's)")
    check.set_defaults(run=_check)

    schema = commands.add_parser("schema", help="JSON Schema of report.json (of rubric files: `rubric schema`)")
    schema.add_argument("what", choices=["report"])
    schema.set_defaults(run=_schema)

    handout = commands.add_parser("handout", help="write the starter file students fill in")
    handout.add_argument("--rubric", required=True, help="bundled rubric id or path")
    handout.add_argument("-o", "--output", type=Path, help="file to write (default: <rubric id>.py; - for stdout)")
    handout.add_argument("--force", action="store_true", help="overwrite an existing file")
    handout.set_defaults(run=_handout)

    # Commands whose wiring lives beside their stage register here, one line each.
    add_grade_command(commands)
    add_gradescope_command(commands)
    add_doctor_command(commands)
    return parser


def _rubric_list(args: argparse.Namespace) -> int:
    from grader.rubric.files import bundled_rubrics, load_rubric

    for rubric_id in bundled_rubrics():
        if args.ids:
            print(rubric_id)
            continue
        rubric = load_rubric(rubric_id)
        tasks = ", ".join(f"{task.id} ({task.kind})" for task in rubric.tasks)
        print(f"{rubric.id:<18} {rubric.max_points():>5g} pts  {rubric.title}\n{'':<18} tasks: {tasks}")
    return EXIT_OK


def _rubric_show(args: argparse.Namespace) -> int:
    from grader.rubric.files import find_rubric, load_rubric

    rubric = load_rubric(args.rubric)
    print(_describe(rubric, find_rubric(args.rubric)))
    return EXIT_OK


def _rubric_validate(args: argparse.Namespace) -> int:
    from grader.rubric.files import find_rubric, load_rubric

    failed = 0
    for name in args.rubrics:
        try:
            rubric = load_rubric(name)
        except GraderError as error:
            failed += 1
            print(f"INVALID {error}", file=sys.stderr)
        else:
            print(
                f"ok      {find_rubric(name)}: {rubric.id}, {len(rubric.tasks)} task(s), {rubric.max_points():g} points"
            )
    return EXIT_FAILED if failed else EXIT_OK


def _rubric_schema(args: argparse.Namespace) -> int:
    from grader.rubric.model import Rubric

    print(json.dumps(Rubric.model_json_schema(), indent=1))
    return EXIT_OK


def _solve(args: argparse.Namespace) -> int:
    from grader.answer_key import answer_key, render_json, render_text
    from grader.rubric.files import load_rubric

    rubric = load_rubric(args.rubric)
    group = "hidden" if args.hidden else "public"
    count = rubric.trials.hidden if args.hidden else rubric.trials.public
    if not 0 <= args.trial < count:
        raise UsageError(
            f"--trial {args.trial}: rubric {rubric.id} has {count} {group} trial(s), numbered 0 to {count - 1}"
        )
    if args.hidden and hidden_seed_option(args.hidden_seed) is None and rubric.trials.hidden_seed is None:
        raise UsageError(f"--hidden: rubric {rubric.id} has no trials.hidden_seed; pass --hidden-seed SECRET")
    key = answer_key(rubric, group, args.trial, args.hidden_seed)
    print(render_json(key) if args.json else render_text(key))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from grader.sandbox.sandbox import Sandbox  # light: the worker is launched before the stages are imported

    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file; pass the path of your .py file or .ipynb notebook")
    args.out.mkdir(parents=True, exist_ok=True)  # hidden from the submission, so it must exist first
    sandbox = Sandbox(jobs=1, hide=[args.out.resolve()]).launch()
    try:
        from grader.export.html import write_report_html
        from grader.export.report_json import write_report_json
        from grader.export.table import render_table
        from grader.grader import Grader
        from grader.report import CheckStatus
        from grader.rubric.checkspec import Visibility

        with Grader.load(args.rubric, groups=("public",), timeout=args.timeout, sandbox=sandbox) as grader:
            report = grader.grade(args.file)
    finally:
        sandbox.close()
    path = write_report_json(report, args.out)
    html = write_report_html(
        report, args.out, grader.rubric, f"backprop-grader check {args.file} --rubric {args.rubric}"
    )
    print(render_table(report))
    print(f"report: {path} and {html}")
    for flag in report.flags if report.status == "grader_error" else ():
        print(flag, file=sys.stderr)  # the grader's own failure: its traceback, for whoever runs check
    visible = [c for c in report.checks if c.visibility == Visibility.visible]
    return (
        EXIT_OK if report.status == "graded" and all(c.status == CheckStatus.passed for c in visible) else EXIT_FAILED
    )


def _schema(args: argparse.Namespace) -> int:
    from grader.export.report_json import report_schema

    print(report_schema())
    return EXIT_OK


def _handout(args: argparse.Namespace) -> int:
    from grader.handout import render_handout
    from grader.rubric.files import load_rubric

    rubric = load_rubric(args.rubric)
    if rubric.submission.kind != "contract":
        raise UsageError(f"--rubric {rubric.id}: a handout is for contract rubrics; this one takes free-form notebooks")
    source = render_handout(rubric)
    if str(args.output) == "-":
        sys.stdout.write(source)
        return EXIT_OK
    output = args.output or Path(f"{rubric.id}.py")
    if output.exists() and not args.force:
        raise UsageError(f"-o {output}: the file exists; pass --force to overwrite it or choose another name")
    output.write_text(source, encoding="utf-8")
    print(f"wrote {output}: fill in every function, then run: backprop-grader check {output} --rubric {rubric.id}")
    return EXIT_OK


def _describe(rubric: Rubric, path: Path) -> str:
    trials = rubric.trials
    lines = [
        f"{rubric.id}: {rubric.title}",
        f"  file: {path}",
        f"  submission: {rubric.submission.kind}; weight gradients in (in, out) layout "
        + ("accepted" if rubric.submission.allow_in_out else "rejected"),
        f"  trials: {trials.public} public (seed {rubric.seed}), {trials.hidden} hidden "
        f"(seed {'set' if trials.hidden_seed is not None else 'not set'}, {trials.hidden_weight:.0%} of points, "
        f"{trials.hidden_visibility})",
        f"  tolerance: rtol {rubric.tolerance.rtol:g}, atol {rubric.tolerance.atol:g}, atol_rel {rubric.tolerance.atol_rel:g}",
        "  limits: " + ", ".join(f"{name} {value:g}" for name, value in rubric.limits.model_dump().items()),
    ]
    for task in rubric.tasks:
        functions = ", ".join(f"{source}: {name}()" for source, name in task.contract.functions().items())
        lines += ["", f"  task {task.id} [{task.kind}] {task.title}", f"    functions: {functions}"]
        lines += [f"    {check.quantity:<22} {check.points:>5g} pts  {check.visibility}" for check in task.checks]
    lines.append(f"\n  total: {rubric.max_points():g} points")
    return "\n".join(lines)
