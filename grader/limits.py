"""Resource limits for one submission run, set by the rubric and overridable on the command line."""

from pydantic import BaseModel, ConfigDict, Field


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
