"""What one check compares, how many points it is worth, how exact it must be, and who sees it.

Kept apart from the rubric model (`grader.rubric.model`) because task specifications (`grader.rubric.tasks`)
carry their own checks.
"""

import functools
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Quantity:
    """A checked quantity's two parts: the source that produced it (a contract function's role: `scratch`,
    `torch`, `trained`; "" for `architecture`, which is every source's) and its name (`dW1`, `loss`). Read
    from the rubric's and the report's text (`scratch.dW1`) with `Quantity.of`, never by splitting it."""

    source: str
    name: str

    @classmethod
    def of(cls, text: str) -> "Quantity":
        return _parsed(text)

    def __str__(self) -> str:
        return f"{self.source}.{self.name}" if self.source else self.name


@functools.lru_cache(maxsize=1024)  # a rubric has a few dozen; the checks read each on every trial
def _parsed(text: str) -> Quantity:
    source, dot, name = text.partition(".")
    return Quantity(source, name) if dot else Quantity("", text)


class Visibility(StrEnum):
    """Who sees a check's result, and when (Gradescope's vocabulary)."""

    visible = "visible"
    hidden = "hidden"
    after_due_date = "after_due_date"
    after_published = "after_published"


class Tolerance(BaseModel):
    """Element-wise |found − expected| ≤ max(atol, atol_rel·max|expected|) + rtol·|expected| (DESIGN §6)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rtol: float = Field(1e-4, ge=0, le=1, description="Relative tolerance, times |expected| element-wise.")
    atol: float = Field(1e-8, ge=0, description="Absolute floor of the tolerance.")
    atol_rel: float = Field(
        1e-5, ge=0, le=1, description="Absolute tolerance relative to the largest |expected| of the quantity."
    )
    precision_rel: float = Field(
        1e-2,
        gt=0,
        le=1,
        description="Values read from text count as verified only if their printed precision (half a unit in the "
        "last digit) is at most this fraction of the largest |expected|; coarser ones are 'not verifiable'.",
    )


class Check(BaseModel):
    """One scored comparison: a quantity observed from the submission against the reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantity: str = Field(
        description="What is compared: `<source>.<name>` such as `scratch.dW1`, `torch.loss`, `trained.W1`, "
        "or `architecture`."
    )
    points: float = Field(ge=0, le=1000, description="Points for passing on every trial of the run.")
    visibility: Visibility = Field(Visibility.visible, description="Who sees this check's result.")
    tolerance: Tolerance | None = Field(None, description="Overrides the rubric's default tolerance.")
