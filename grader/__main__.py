"""`python -m grader` is the same program as the `backprop-grader` console script."""

from grader.cli import main

raise SystemExit(main())
