"""Command line of the Gradescope stage: `gradescope build` and `gradescope run`.

    backprop-grader gradescope build --rubric my-a1.toml -o autograder.zip [--torch-version 2.13.0]
        [--torch-build cpu|cuda | --torch-index-url URL] [--allow-public-hidden-seed]
    backprop-grader gradescope run --rubric PATH [--root /autograder] [--timeout SECONDS]

`run` exits 0 when the submission was graded (whatever its score) and 1 when the grader itself failed;
in both cases <root>/results/results.json has been written.
"""

import argparse
from pathlib import Path


def add_gradescope_command(commands: argparse._SubParsersAction) -> None:
    """Register `gradescope build|run` on the main parser's subcommands."""
    gradescope = commands.add_parser(
        "gradescope", help="Gradescope autograder: build the zip, run inside the container"
    )
    actions = gradescope.add_subparsers(title="gradescope commands", metavar="ACTION", required=True)

    build = actions.add_parser("build", help="write the autograder zip to upload to Gradescope")
    build.add_argument("--rubric", required=True, help="bundled rubric id or path (the copy with your hidden seed)")
    build.add_argument(
        "-o", "--output", type=Path, default=Path("autograder.zip"), help="zip to write (default: %(default)s)"
    )
    build.add_argument("--torch-version", help="torch release setup.sh installs (default: the installed torch's)")
    build.add_argument(
        "--torch-build",
        choices=("cpu", "cuda"),
        default="cpu",
        help="torch build setup.sh installs: cpu (default; the PyTorch CPU wheel index) or cuda "
        "(pip's default index; 2.74 GB of wheels)",
    )
    build.add_argument("--torch-index-url", help="package index setup.sh installs torch from (overrides --torch-build)")
    build.add_argument(
        "--allow-public-hidden-seed",
        action="store_true",
        help="build even though the rubric's hidden seed is a bundled (public) one",
    )
    build.add_argument(
        "--wheel", type=Path, help="a built backprop-grader wheel to bundle (default: build one from this source tree)"
    )
    build.set_defaults(run=_build)

    run = actions.add_parser(
        "run", help="inside the container: grade <root>/submission, write <root>/results/results.json"
    )
    run.add_argument(
        "--rubric", required=True, help="bundled rubric id or path (run_autograder passes the bundled copy)"
    )
    run.add_argument(
        "--root", type=Path, default=Path("/autograder"), help="the autograder directory (default: %(default)s)"
    )
    run.add_argument("--timeout", type=_seconds, help="wall and CPU seconds allowed (default: the rubric's)")
    run.set_defaults(run=_run)


def _build(args: argparse.Namespace) -> int:
    from grader.gradescope.build import MEMORY_ADVICE, build_autograder, torch_download

    path = build_autograder(
        args.rubric,
        args.output,
        args.torch_version,
        args.torch_index_url,
        args.wheel,
        torch_build=args.torch_build,
        allow_public_hidden_seed=args.allow_public_hidden_seed,
    )
    print(f"wrote {path}: upload it as the assignment's autograder (Configure Autograder → Zip file upload)")
    print(torch_download(args.torch_version, args.torch_index_url, args.torch_build))
    print(MEMORY_ADVICE)
    return 0


def _run(args: argparse.Namespace) -> int:
    from grader.gradescope.autograde import run_gradescope

    return run_gradescope(args.rubric, args.root, args.timeout)


def _seconds(text: str) -> float:
    """--timeout, refused before anything runs (as `check` and `grade` refuse it) when Limits would refuse it:
    results.json is then not written, as for any other usage error."""
    from grader.errors import UsageError
    from grader.limits import Limits

    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds") from None
    try:
        return Limits().with_timeout(seconds).wall_seconds
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
