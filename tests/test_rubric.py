"""The rubric models: totals, tolerances, and what the bundled rubrics declare."""

from grader.rubric.checkspec import Quantity
from grader.rubric.files import load_rubric
from grader.rubric.tasks import quantities_of


def test_bs6207_a1_checks_every_quantity_of_both_implementations_and_the_architecture():
    rubric = load_rubric("bs6207-a1")
    (task,) = rubric.tasks
    assert task.layers == [2, 10, 10, 1] and task.activation == "sigmoid" and task.batch_size == 1
    checked = {check.quantity for check in task.checks}
    assert checked == set(quantities_of(task))
    assert {"scratch.dW1", "torch.db3", "scratch.prediction", "torch.loss", "architecture"} <= checked


def test_deep_relu_has_ten_hidden_relu_layers_of_width_21():
    (task,) = load_rubric("deep-relu").tasks
    assert task.layers == [10] + [21] * 10 + [1] and task.activation == "relu"
    assert "scratch.dW11" in {check.quantity for check in task.checks}


def test_softmax_dropout_checks_probs_loss_gradients_and_the_trained_weights():
    rubric = load_rubric("softmax-dropout")
    classifier, dropout = rubric.tasks
    assert {c.quantity for c in classifier.checks} >= {"scratch.probs", "scratch.loss", "torch.dW1", "torch.dW2"}
    assert {c.quantity for c in dropout.checks} >= {"trained.W1", "trained.W2"}
    assert (dropout.p, dropout.lr, dropout.epochs) == (0.4, 0.01, 100)


def test_given_weights_in_the_x_at_W_layout_are_turned_into_torch_layout():
    classifier = load_rubric("softmax-dropout").task("classifier")
    arrays = classifier.given.arrays()
    assert arrays["W1"].shape == (4, 3) and arrays["W1"][0].tolist() == [0.1, 0.5, 0.9]
    assert arrays["W2"].shape == (2, 4) and arrays["W2"][1].tolist() == [0.3, 0.5, 0.7, 0.9]


def test_a_check_without_its_own_tolerance_uses_the_rubrics():
    rubric = load_rubric("bs6207-a1")
    check = rubric.tasks[0].checks[0]
    assert rubric.tolerance_for(check) == rubric.tolerance


def test_max_points_adds_every_check():
    rubric = load_rubric("softmax-dropout")
    assert rubric.max_points() == sum(c.points for t in rubric.tasks for c in t.checks) > 0


def test_a_training_task_may_grade_each_implementation_as_a_source_of_its_own():
    """softmax-dropout-notebook trains in torch and in numpy: torch.W1 and scratch.W1, no trained.W1."""
    task = load_rubric("softmax-dropout-notebook").task("dropout")
    assert task.contract.functions() == {"torch": "train_with_dropout_torch", "scratch": "train_with_dropout_numpy"}
    assert quantities_of(task) == ["torch.W1", "torch.W2", "scratch.W1", "scratch.W2", "architecture"]
    assert load_rubric("softmax-dropout").task("dropout").contract.functions() == {"trained": "train_with_dropout"}


def test_a_quantity_reads_as_its_source_and_name_and_architecture_has_no_source():
    assert Quantity.of("scratch.dW1") == Quantity("scratch", "dW1")
    assert Quantity.of("trained.W1").source == "trained" and Quantity.of("torch.nodes").name == "nodes"
    assert Quantity.of("architecture") == Quantity("", "architecture")
    assert [str(Quantity.of(text)) for text in ("torch.loss", "architecture")] == ["torch.loss", "architecture"]
