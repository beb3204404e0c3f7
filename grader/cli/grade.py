"""The `grade` command: grade a class (files, folders, .zip archives) into a folder of reports.

Exit codes: 0 the batch ran (students failing checks is not an error), 2 the command could not run as
asked (a PATH that does not exist or cannot hold submissions, --jobs below 1, a --timeout outside the
bounds of Limits), 130 when
interrupted (finished students are kept; run again with --resume).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import UsageError
from grader.secret import hidden_seed_option

if TYPE_CHECKING:
    from grader.rubric.model import Rubric
    from grader.sandbox.sandbox import Sandbox

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def add_grade_command(commands: argparse._SubParsersAction) -> None:
    """Register `grade` on the CLI's subcommands."""
    grade = commands.add_parser(
        "grade",
        help="grade a class: .py/.ipynb files, a folder per student, .zip archives",
        description="Grade every submission under PATH... on the rubric's public and hidden trials. Writes "
        "OUT/<student>/report.json and report.html, and OUT/summary.html, gradebook.csv, results.jsonl.",
    )
    grade.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a .py or .ipynb file, a folder of submissions, or a .zip of them",
    )
    grade.add_argument("--rubric", required=True, help="bundled rubric id or path")
    grade.add_argument("--out", type=Path, help="folder for the reports (default: out/<rubric id>)")
    grade.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="submissions graded at once (default: the core count, %(default)s)",
    )
    grade.add_argument(
        "--resume",
        action="store_true",
        help="skip students whose report is up to date (same file, rubric and settings)",
    )
    grade.add_argument("--timeout", type=float, help="wall and CPU seconds per submission (default: the rubric's)")
    grade.add_argument(
        "--hidden-seed", metavar="SECRET", help="secret of the hidden trials (default: the rubric's trials.hidden_seed)"
    )
    grade.set_defaults(run=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    _validate_arguments(args)
    out_hint = args.out or Path("out")
    made = not out_hint.exists()
    sandbox = _launch(args, out_hint)
    try:
        from grader.batch import BatchOptions, run_batch
        from grader.grader import Grader

        grader = Grader.load(args.rubric, timeout=args.timeout, hidden_seed=args.hidden_seed, sandbox=sandbox)
        _warn_of_a_public_hidden_seed(grader.rubric, args.hidden_seed)
        out = args.out or Path("out") / grader.rubric.id
        _validate(args, out)
        options = BatchOptions(
            paths=tuple(args.paths), out=out, jobs=args.jobs, resume=args.resume, timeout=args.timeout
        )
        # Everything made so far (modules, schemas, the rubric) lives as long as the command: out of the
        # collector's full passes, which otherwise walk it again and again while a class is graded.
        gc.collect()
        gc.freeze()
        try:
            result = run_batch(grader, options)
        except KeyboardInterrupt:
            print(
                "\ninterrupted: finished students are kept; run the same command with --resume to go on",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    finally:
        if sandbox is not None:
            sandbox.close()
        if made and out_hint.is_dir() and not any(out_hint.iterdir()):
            out_hint.rmdir()  # made for the early launch of a run that then stopped (e.g. an unknown rubric)
    print(result.closing_line())
    return EXIT_OK


def _launch(args: argparse.Namespace, out: Path) -> Sandbox | None:
    """Launch the sandbox workers now, so their start (torch's import, ~2 s) overlaps the grader's own
    imports and the discovery of submissions; None where the output folder cannot be made yet (the
    checks that follow say why). The default --out is out/<rubric id>: before the rubric is loaded, all of
    out/ is hidden. One worker for one file, --jobs workers otherwise (a folder's count is not known yet)."""
    if out.exists() and not out.is_dir():
        return None
    out.mkdir(parents=True, exist_ok=True)  # hidden from submissions, so it must exist before the sandbox starts
    single = len(args.paths) == 1 and args.paths[0].suffix.lower() in (".py", ".ipynb")
    hide = [out.resolve(), *(p.resolve() for p in args.paths)]
    from grader.sandbox.sandbox import Sandbox  # light: the workers start before the stages are imported

    return Sandbox(jobs=1 if single else args.jobs, hide=hide).launch()


def _warn_of_a_public_hidden_seed(rubric: Rubric, hidden_seed: str | None) -> None:
    """A bundled rubric's secret is in every student's copy: grade on, but say so (`gradescope build` refuses)."""
    from grader.gradescope.build import public_hidden_seed

    public = None if hidden_seed is not None else public_hidden_seed(rubric)
    if public:
        print(
            f"warning: rubric {rubric.id}: {public}, so students can compute the hidden trials; grade with your own "
            "copy whose [trials] hidden_seed is the output of `backprop-grader rubric secret` (or pass --hidden-seed)",
            file=sys.stderr,
        )


def _validate_arguments(args: argparse.Namespace) -> None:
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: expected at least 1 submission at a time")
    hidden_seed_option(args.hidden_seed)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(
            f"{', '.join(missing)}: no such file or folder; pass .py/.ipynb files, folders or .zip archives"
        )
    wrong = [str(p) for p in args.paths if p.is_file() and p.suffix.lower() not in (".py", ".ipynb", ".zip")]
    if wrong:
        raise UsageError(f"{', '.join(wrong)}: expected a .py or .ipynb file, a folder or a .zip archive")


def _validate(args: argparse.Namespace, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file is in the way; pass a folder")
    if any(p.resolve() == out.resolve() for p in args.paths):
        raise UsageError(f"--out {out}: the output folder is also an input; write the reports somewhere else")
