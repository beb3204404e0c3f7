"""Bundled rubrics (TOML), found by id after a normal install; see `grader.rubric.files.find_rubric`."""
