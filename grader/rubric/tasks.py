"""Task specifications: which network, which contract functions, which quantities can be checked.

One model per task kind of DESIGN §3, selected by `kind`; each lives with its kind's behaviour in
`grader.kinds.<kind>`, and the settings they share in `grader.kinds.settings`. This module gathers them
into the rubric's `Task` union and keeps the names the rest of the grader imports.
"""

from typing import Annotated

from pydantic import Field

from grader.kinds.autograd_graph import AutogradGraphTask
from grader.kinds.dropout_training import DropoutTrainingTask
from grader.kinds.mlp_regression import MlpRegressionTask
from grader.kinds.settings import (
    TASK_ID,
    Activation,
    Given,
    GradientContract,
    GraphContract,
    Matrix,
    Reduction,
    Size,
    TrainingContract,
    quantities_of,
)
from grader.kinds.softmax_classifier import SoftmaxClassifierTask

Task = Annotated[
    MlpRegressionTask | SoftmaxClassifierTask | DropoutTrainingTask | AutogradGraphTask,
    Field(discriminator="kind"),
]

__all__ = [
    "TASK_ID",
    "Activation",
    "AutogradGraphTask",
    "DropoutTrainingTask",
    "Given",
    "GradientContract",
    "GraphContract",
    "Matrix",
    "MlpRegressionTask",
    "Reduction",
    "Size",
    "SoftmaxClassifierTask",
    "Task",
    "TrainingContract",
    "quantities_of",
]
