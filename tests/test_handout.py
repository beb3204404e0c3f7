"""The starter file: the contract's functions, with shapes and layout stated, importable as written."""

import ast

import pytest
from conftest import CONTRACT_RUBRICS

from grader.handout import render_handout
from grader.rubric.files import load_rubric


@pytest.mark.parametrize("rubric_id", CONTRACT_RUBRICS)
def test_the_handout_defines_every_contract_function_and_each_raises_until_written(rubric_id):
    rubric = load_rubric(rubric_id)
    source = render_handout(rubric)
    tree = ast.parse(source)
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    wanted = {name for task in rubric.tasks for name in task.contract.functions().values()}
    assert set(defined) == wanted
    namespace: dict = {}
    exec(compile(source, "handout.py", "exec"), namespace)
    for name in wanted:
        with pytest.raises(NotImplementedError):
            namespace[name](*[None] * len(defined[name].args.args))
        assert ast.get_docstring(defined[name])


def test_the_a1_handout_states_every_shape_in_torch_layout():
    source = render_handout(load_rubric("bs6207-a1"))
    for text in ("W1 (10, 2)", "b1 (10,)", "W3 (1, 10)", "dW2 (10, 10)", "x: array (1, 2)", "(out, in)"):
        assert text in source, text
    assert "check THIS_FILE.py --rubric bs6207-a1" in source


def test_the_dropout_handout_explains_masks_and_scaling():
    source = render_handout(load_rubric("softmax-dropout"))
    assert "def train_with_dropout(x, y, params, masks, p, lr):" in source
    assert "masks[e] / (1 - p)" in source and "(100, 2, 4)" in source


def test_the_handout_is_written_where_asked(cli, tmp_path):
    result = cli("handout", "--rubric", "deep-relu", "-o", str(tmp_path / "a.py"))
    assert result.returncode == 0, result.stderr
    assert "def scratch_gradients(x, y, params):" in (tmp_path / "a.py").read_text()
