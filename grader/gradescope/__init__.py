"""Gradescope: the autograder zip (`build`), grading inside the container (`autograde`: the `gradescope run`
command), results.json (`results`).

    build_autograder(rubric, output, ...) -> Path        the zip instructors upload
    run_gradescope(rubric, root, ...) -> int             what run_autograder calls for every submission
    results_from_report(report, rubric, ...) -> dict     a GradeReport as Gradescope's results.json

Gradescope runs `setup.sh` once (as root) when it builds the image, then `run_autograder` (as root, in
/autograder) for every submission; /autograder/submission holds the hand-in, /autograder/source the
unzipped autograder, and /autograder/results/results.json is what Gradescope shows.
"""
