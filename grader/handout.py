"""The starter file students fill in: the rubric's contract functions with signatures and docstrings.

Docstrings state every shape and the layout, so a student who follows them returns what the grader
compares. The file imports cleanly and every function raises NotImplementedError until written.
"""

from grader.kinds import kind_of
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task


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
    """The stub of `function` (contract source `source`): the kind's parameters and docstring, raising until written."""
    arguments, body = kind_of(task).stub(task, source)
    docstring = "\n".join(f"    {line}" if line else "" for line in _wrap(body)).lstrip()
    return f'def {function}({arguments}):\n    """{docstring}\n    """\n    raise NotImplementedError("{function}: not written yet")'


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
