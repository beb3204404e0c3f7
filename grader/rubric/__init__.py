"""The rubric: the TOML file an instructor writes, read into models that say what is graded and how.

    model.py       `Rubric` and its parts (submission, trials, limits, tolerance): every model forbids unknown keys
    tasks.py       the `Task` union of the task kinds' specifications (each lives in `grader.kinds.<kind>`)
    checkspec.py   one check: its quantity, points, tolerance and visibility
    files.py       finding a rubric by id or path, reading it, and saying why an invalid one is invalid

`grader.limits` (a run's resource limits) is not here: the rubric only sets them, and the sandbox and the
command line's --timeout use them without a rubric.
"""
