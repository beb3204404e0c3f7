"""The `grade` command: grade a class (files, folders, .zip archives) into a folder of reports.

Exit codes: 0 the batch ran (students failing checks is not an error), 2 the command could not run as
asked (a PATH that does not exist or cannot hold submissions, --jobs below 1, a bad --timeout), 130 when
interrupted (finished students are kept; run again with --resume).
"""

import argparse
import os
import sys
from pathlib import Path

from grader.errors import UsageError

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def add_grade_command(commands: argparse._SubParsersAction) -> None:
    """Register `grade` on the CLI's subcommands."""
    grade = commands.add_parser(
        "grade", help="grade a class: .py/.ipynb files, a folder per student, .zip archives",
        description="Grade every submission under PATH... on the rubric's public and hidden trials. Writes "
                    "OUT/<student>/report.json and report.html, and OUT/summary.html, gradebook.csv, results.jsonl.",
    )
    grade.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a .py or .ipynb file, a folder of submissions, or a .zip of them")
    grade.add_argument("--rubric", required=True, help="bundled rubric id or path")
    grade.add_argument("--out", type=Path, help="folder for the reports (default: out/<rubric id>)")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (default: the core count, %(default)s)")
    grade.add_argument("--resume", action="store_true", help="skip students whose report is up to date (same file, rubric and settings)")
    grade.add_argument("--timeout", type=float, help="wall and CPU seconds per submission (default: the rubric's)")
    grade.add_argument("--hidden-seed", type=int, help="seed of the hidden trials (default: the rubric's trials.hidden_seed)")
    grade.set_defaults(run=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    from grader.batch import BatchOptions, run_batch  # the sandbox is imported only by commands that run code
    from grader.rubric_files import load_rubric

    rubric = load_rubric(args.rubric)
    out = args.out or Path("out") / rubric.id
    _validate(args, out)
    options = BatchOptions(paths=tuple(args.paths), rubric=args.rubric, out=out, jobs=args.jobs, resume=args.resume,
                           timeout=args.timeout, hidden_seed=args.hidden_seed)
    try:
        result = run_batch(options)
    except KeyboardInterrupt:
        print("\ninterrupted: finished students are kept; run the same command with --resume to go on", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(result.closing_line())
    return EXIT_OK


def _validate(args: argparse.Namespace, out: Path) -> None:
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: expected at least 1 submission at a time")
    if args.timeout is not None and not 0 < args.timeout <= 3600:
        raise UsageError(f"--timeout {args.timeout:g}: expected seconds in (0, 3600]")
    if args.hidden_seed is not None and args.hidden_seed < 0:
        raise UsageError(f"--hidden-seed {args.hidden_seed}: expected a seed ≥ 0")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"{', '.join(missing)}: no such file or folder; pass .py/.ipynb files, folders or .zip archives")
    wrong = [str(p) for p in args.paths if p.is_file() and p.suffix.lower() not in (".py", ".ipynb", ".zip")]
    if wrong:
        raise UsageError(f"{', '.join(wrong)}: expected a .py or .ipynb file, a folder or a .zip archive")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file is in the way; pass a folder")
    if any(p.resolve() == out.resolve() for p in args.paths):
        raise UsageError(f"--out {out}: the output folder is also an input; write the reports somewhere else")
