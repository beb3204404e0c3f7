"""The starter file students fill in: the rubric's contract functions with signatures and docstrings.

Docstrings state every shape and the layout, so a student who follows them returns what the grader
compares. The file imports cleanly and every function raises NotImplementedError until written.
"""

from grader.rubric import Rubric
from grader.tasks import Task

_LOSS = {
    "mlp_regression": {
        "sum": "Σ (prediction − y)² over the batch",
        "mean": "the mean of (prediction − y)² over all elements",
    },
    "softmax_classifier": {"sum": "−Σ y·log(probs) over the batch", "mean": "−Σ y·log(probs) divided by N"},
}
_HOW = {
    "scratch": "by hand: numpy (or torch tensor operations) and the chain rule; autograd is switched off "
    "while this runs and `.backward()` raises",
    "torch": "with torch autograd: make tensors with requires_grad=True, compute the loss, call .backward()",
}


def render_handout(rubric: Rubric) -> str:
    """Python source of the starter file for `rubric` (contract submissions)."""
    parts = [
        f'"""{rubric.title}\n\nStarter file for rubric `{rubric.id}`. Fill in every function below, then check your work:\n\n'
        f"    backprop-grader check THIS_FILE.py --rubric {rubric.id}\n\n"
        "Every function receives numpy float64 arrays. Weights are in torch's layout: W_l has shape (out, in)\n"
        'and z_l = a_(l-1) @ W_l.T + b_l. Return numpy arrays or torch tensors; both are accepted.\n"""',
        "import numpy as np\nimport torch",
    ]
    for task in rubric.tasks:
        for source, function in task.contract.functions().items():
            parts.append(_function(task, source, function))
    return "\n\n\n".join(parts) + "\n"


def _function(task: Task, source: str, function: str) -> str:
    params = ", ".join(f"{name} {shape}" for name, shape in task.param_shapes().items())
    x, y = task.input_shapes()["x"], task.input_shapes()["y"]
    if task.kind == "dropout_training":
        signature = f"def {function}(x, y, params, masks, p, lr):"
        body = (
            f"Train the softmax classifier with inverted dropout after the hidden ReLU, full-batch SGD.\n\n"
            f"x: array {x}, one sample per row. y: one-hot array {y}.\n"
            f"params: dict of initial weights, torch layout: {params}. Do not modify them in place.\n"
            f"masks: array ({task.epochs}, {task.batch_size}, {task.hidden}) of 0/1 keep indicators; use masks[e] in "
            "epoch e: h = relu(x @ W1.T) * masks[e] / (1 - p).\n"
            f"p: drop probability ({task.p}). lr: learning rate ({task.lr}). Epochs: masks.shape[0] ({task.epochs}).\n"
            f"Loss per epoch: {_LOSS['softmax_classifier'][task.reduction]}; update every parameter P -= lr * dP.\n\n"
            f"Return a dict with the trained weights: {', '.join(f'{n} {s}' for n, s in task.param_shapes().items())}."
        )
    elif task.kind == "autograd_graph":
        signature = f"def {function}(x, y, params):"
        body = (
            f"Build the {'-'.join(map(str, task.layers))} net in torch ({task.activation} hidden layers, identity "
            "output), compute the loss, and walk loss.grad_fn.\n\n"
            f"x: array {x}. y: array {y}. params: dict, torch layout: {params}.\n\n"
            "Return a list with the name of every node of the graph (e.g. 'AddmmBackward0', 'AccumulateGrad'), "
            "each node once."
        )
    else:
        signature = f"def {function}(x, y, params):"
        first = "prediction" if task.kind == "mlp_regression" else "probs"
        net = (
            f"the {'-'.join(map(str, task.layers))} network ({task.activation} hidden layers, identity output)"
            if task.kind == "mlp_regression"
            else f"the classifier (ReLU hidden layer of {task.hidden}, softmax over {task.classes} classes)"
        )
        grads = ", ".join(f"d{n} {s}" for n, s in task.param_shapes().items())
        body = (
            f"Forward and backward pass of {net}, {_HOW[source]}.\n\n"
            f"x: array {x}, one sample per row. y: array {y}.\n"
            f"params: dict, torch layout: {params}. Do not modify them in place.\n\n"
            f'Return a dict with "{first}" {y} (the shape of y), '
            f'"loss" (a number: {_LOSS["mlp_regression" if task.kind == "mlp_regression" else "softmax_classifier"][task.reduction]}) '
            f"and the gradient of the loss for every parameter, each in its parameter's layout: {grads}."
        )
    docstring = "\n".join(f"    {line}" if line else "" for line in _wrap(body)).lstrip()
    return f'{signature}\n    """{docstring}\n    """\n    raise NotImplementedError("{function}: not written yet")'


def _wrap(text: str, width: int = 100) -> list[str]:
    """Wrap each paragraph line of `text` to `width` columns (docstring indentation included)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        words, line = paragraph.split(" "), ""
        for word in words:
            if line and len(line) + 1 + len(word) > width - 4:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines
