"""Rubric files: found by id or path, validated, and explained when invalid."""

import re
from pathlib import Path

import pytest
from conftest import BUNDLED_RUBRICS, CONTRACT_RUBRICS

from grader.errors import RubricInvalid, RubricNotFound
from grader.rubric.files import bundled_rubrics, find_rubric, load_rubric, parse_rubric, rubric_hash
from grader.rubric.model import Rubric
from grader.secret import PATTERN, new_secret, secret_problem


def invalid(text: str, path: Path = Path("course/a1.toml")) -> str:
    with pytest.raises(RubricInvalid) as caught:
        parse_rubric(text.encode(), path)
    return str(caught.value)


def test_every_bundled_rubric_is_found_by_id_and_validates():
    assert sorted(bundled_rubrics()) == sorted(BUNDLED_RUBRICS)
    for rubric_id in BUNDLED_RUBRICS:
        assert load_rubric(rubric_id).id == rubric_id


def test_a_rubric_is_also_found_by_path(tmp_path, rubric_source):
    path = tmp_path / "mine.toml"
    path.write_text(rubric_source("bs6207-a1").replace('id = "bs6207-a1"', 'id = "mine"'))
    assert load_rubric(str(path)).id == "mine"
    assert find_rubric(str(path)) == path


def test_an_unknown_rubric_names_the_bundled_ids():
    with pytest.raises(RubricNotFound) as caught:
        find_rubric("bs6207-a9")
    message = str(caught.value)
    assert "bs6207-a9" in message and "bs6207-a1" in message and "what to do" in message


def test_an_unknown_key_names_the_file_the_field_and_the_allowed_keys(rubric_source):
    text = rubric_source("bs6207-a1").replace('activation = "sigmoid"', 'activation = "sigmoid"\nwidth = 3')
    message = invalid(text)
    assert "course/a1.toml" in message
    assert "tasks[0].width: unknown key" in message
    assert "layers" in message and "activation" in message  # what is allowed there


def test_an_unknown_top_level_key_is_rejected(rubric_source):
    message = invalid("colour = 'red'\n" + rubric_source("deep-relu"))
    assert "colour: unknown key" in message and "tasks" in message


def test_a_negative_tolerance_names_the_field_and_the_value(rubric_source):
    message = invalid(rubric_source("bs6207-a1").replace("rtol = 1e-4", "rtol = -1e-4"))
    assert "tolerance.rtol" in message and "greater than or equal to 0" in message and "-0.0001" in message


def test_a_layer_of_size_zero_names_the_layer(rubric_source):
    message = invalid(rubric_source("bs6207-a1").replace("layers = [2, 10, 10, 1]", "layers = [2, 0, 10, 1]"))
    assert "tasks[0].layers[1]" in message and "found 0" in message


def test_a_check_of_a_gradient_the_net_does_not_have_lists_the_real_ones(rubric_source):
    text = rubric_source("bs6207-a1").replace('quantity = "torch.db3"', 'quantity = "torch.db4"')
    message = invalid(text)
    assert "torch.db4" in message and "does not exist" in message and "torch.db3" in message


def test_a_drop_probability_of_one_is_impossible(rubric_source):
    message = invalid(rubric_source("softmax-dropout").replace("p = 0.4", "p = 1.0"))
    assert "tasks[1].p" in message and "less than 1" in message


def test_given_weights_of_the_wrong_shape_are_rejected(rubric_source):
    text = rubric_source("softmax-dropout").replace(
        "W2 = [[0.2, 0.3], [0.4, 0.5], [0.6, 0.7], [0.8, 0.9]]", "W2 = [[0.2, 0.3], [0.4, 0.5], [0.6, 0.7]]", 1
    )
    message = invalid(text)
    assert "given.W2" in message and "(2, 4)" in message and "(2, 3)" in message


def test_two_tasks_naming_the_same_function_are_rejected(rubric_source):
    text = rubric_source("softmax-dropout").replace('trained = "train_with_dropout"', 'trained = "scratch_gradients"')
    assert "scratch_gradients" in invalid(text)


def test_broken_toml_and_non_utf8_bytes_say_so():
    assert "not valid TOML" in invalid("id = [")
    with pytest.raises(RubricInvalid, match="not UTF-8"):
        parse_rubric(b"id = '\xff'", Path("x.toml"))


def test_every_problem_is_reported_at_once(rubric_source):
    text = rubric_source("bs6207-a1").replace("rtol = 1e-4", "rtol = -1").replace("atol = 1e-8", "atol = -1")
    message = invalid(text)
    assert "2 problems" in message and "tolerance.rtol" in message and "tolerance.atol" in message


def test_the_rubric_hash_changes_with_the_file(tmp_path, rubric_source):
    path = tmp_path / "r.toml"
    path.write_text(rubric_source("bs6207-a1"))
    first = rubric_hash(str(path))
    path.write_text(rubric_source("bs6207-a1") + "\n# edited\n")
    assert rubric_hash(str(path)) != first and len(first) == 64


def with_hidden_seed(text: str, value: str) -> str:
    """The rubric text with its `hidden_seed = …` line's value replaced by `value` (TOML source)."""
    return re.sub(r"(?m)^hidden_seed = .*$", lambda _: f"hidden_seed = {value}", text, count=1)


@pytest.mark.parametrize(
    "value, words",
    [
        ("620701", "found an integer"),  # what every bundled rubric held: found by brute force in 7 s
        ('"620701"', "found 6 character(s)"),
        ('"' + "ab12" * 7 + '"', "found 28 character(s)"),  # 112 bits: under 128
        ('"my-secret-for-bs6207-2026-and-nobody-else"', "non-hexadecimal"),
        ('"' + "0" * 32 + '"', "only 1 distinct digits"),
        ('"' + "deadbeef" * 4 + '"', "only 5 distinct digits"),
    ],
)
def test_a_hidden_seed_that_is_not_a_128_bit_secret_is_refused_with_how_to_make_one(rubric_source, value, words):
    message = invalid(with_hidden_seed(rubric_source("bs6207-a1"), value))
    assert "course/a1.toml" in message and "trials.hidden_seed: expected" in message and words in message, message
    assert "backprop-grader rubric secret" in message and "32 hexadecimal digits" in message


def test_a_secret_hidden_seed_of_32_or_more_hex_digits_is_accepted_and_published_in_the_schema(rubric_source):
    for secret in (new_secret(), new_secret().upper(), new_secret() + new_secret()):
        text = with_hidden_seed(rubric_source("deep-relu"), f'"{secret}"')
        assert parse_rubric(text.encode(), Path("mine.toml")).trials.hidden_seed == secret
    field = Rubric.model_json_schema()["$defs"]["TrialsSpec"]["properties"]["hidden_seed"]
    assert {"type": "string", "pattern": PATTERN} in field["anyOf"] and "rubric secret" in field["description"]
    assert all(secret_problem(load_rubric(r).trials.hidden_seed) is None for r in CONTRACT_RUBRICS)
