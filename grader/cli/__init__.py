"""The command line (`backprop-grader`, `python -m grader`): wires arguments to stage functions and nothing more.

    main.py         the parser, the small commands (rubric, solve, check, schema, handout), exit codes, and
                    `run`, the console script's entry point
    grade.py        `grade`: a class of submissions into a folder of reports
    gradescope.py   `gradescope build|run`: the autograder zip, and grading inside Gradescope's container

Stage modules are imported inside the commands that use them (see main.py), so this package imports nothing.
"""
