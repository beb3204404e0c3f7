"""`python -m grader` is the same program as the `backprop-grader` console script."""

from grader.cli.main import run

run()
