"""gradebook.csv: stable columns, one row per student, sorted, nothing a spreadsheet would execute."""

import csv
import io

from grader.export.gradebook import gradebook_columns, render_gradebook, write_gradebook
from grader.rubric.files import load_rubric


def record(student, tasks, score, status="graded"):
    return {"student": student, "tasks": tasks, "score": score, "status": status}


def test_columns_are_student_each_task_in_rubric_order_total_and_status():
    rubric = load_rubric("softmax-dropout")
    assert gradebook_columns(rubric) == ["student", *[task.id for task in rubric.tasks], "total", "status"]
    assert len(rubric.tasks) == 2


def test_rows_are_sorted_and_a_task_missing_from_a_record_counts_zero():
    rubric = load_rubric("softmax-dropout")
    first, second = (task.id for task in rubric.tasks)
    rows = list(
        csv.reader(
            io.StringIO(
                render_gradebook(
                    rubric,
                    [
                        record("zed", {first: 4.5, second: 2.0}, 6.5),
                        record("amy", {first: 0.25}, 0.25, "timeout"),
                        record("Bea", {}, 0.0, "empty"),
                    ],
                )
            )
        )
    )
    assert rows == [
        ["student", first, second, "total", "status"],
        ["Bea", "0", "0", "0", "empty"],
        ["amy", "0.25", "0", "0.25", "timeout"],
        ["zed", "4.5", "2", "6.5", "graded"],
    ]


def test_points_are_written_without_float_noise(tmp_path):
    rubric = load_rubric("bs6207-a1")
    path = write_gradebook(rubric, [record("ann", {"backprop": 0.1 + 0.2}, 0.1 + 0.2)], tmp_path)
    assert path.read_text(encoding="utf-8").splitlines() == ["student,backprop,total,status", "ann,0.3,0.3,graded"]
