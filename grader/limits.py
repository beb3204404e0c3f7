"""Resource limits for one submission run, set by the rubric and overridable on the command line."""

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.errors import UsageError


class Limits(BaseModel):
    """Hard limits on one run of one submission; exceeding any ends the run with its own status."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wall_seconds: float = Field(30.0, gt=0, le=3600, description="Wall-clock time for the whole run, in seconds.")
    cpu_seconds: float = Field(30.0, gt=0, le=3600, description="CPU time (RLIMIT_CPU) of the run, in seconds.")
    memory_mb: int = Field(
        2048, ge=64, le=65536, description="Address-space limit (RLIMIT_AS) in MiB; torch needs about 1 GiB of it."
    )
    processes: int = Field(64, ge=1, le=4096, description="Most processes and threads the submission may have at once.")
    output_kb: int = Field(
        1024, ge=1, le=1048576, description="Stdout plus stderr kept, in KiB; the rest is dropped and noted."
    )
    file_mb: int = Field(64, ge=1, le=4096, description="Largest file the submission may write (RLIMIT_FSIZE), in MiB.")
    result_mb: int = Field(
        256, ge=1, le=4096, description="Largest result (arrays returned by the submission) accepted, in MiB."
    )

    def with_timeout(self, seconds: float | None) -> "Limits":
        """These limits with wall and CPU time both set to `seconds` (None: unchanged), validated like a rubric's.

        `model_copy(update=...)` does not validate, so it let `--timeout 7200` past the 3600 s bound; every
        command sets its timeout here instead. Raises UsageError naming --timeout and the allowed range."""
        if seconds is None:
            return self
        try:
            return Limits.model_validate({**self.model_dump(), "wall_seconds": seconds, "cpu_seconds": seconds})
        except ValidationError:
            raise UsageError(_timeout_problem(f"{seconds:g}")) from None


def _timeout_problem(found: str) -> str:
    """The message of a --timeout outside the bounds of wall_seconds (cpu_seconds has the same)."""
    wall = Limits.model_fields["wall_seconds"].metadata
    low = next(m.gt for m in wall if hasattr(m, "gt"))
    high = next(m.le for m in wall if hasattr(m, "le"))
    return (
        f"--timeout {found}: expected seconds in ({low:g}, {high:g}] (wall and CPU time of one run); "
        "pass a number in that range, or leave --timeout out to use the rubric's limits"
    )
