"""Every error the grader raises on purpose.

    GraderError                      base: caught by the CLI, printed without a traceback
    ├── RubricError                  a rubric file cannot be used
    │   ├── RubricNotFound           no bundled rubric has that id and no such file exists
    │   └── RubricInvalid            TOML syntax, unknown key or impossible value (file, field, allowed)
    ├── SubmissionError              a submission file cannot be loaded at all
    ├── SandboxError                 the sandbox itself failed (never the student's fault)
    └── UsageError                   a command-line argument that cannot work (names the option)

Student mistakes are not exceptions: they become statuses and messages in the report. These are the
grader's own conditions: each message says where, what was expected, what was found and what to do.
"""


class GraderError(Exception):
    """Base of every error the grader raises on purpose."""


class RubricError(GraderError):
    """A rubric cannot be used."""


class RubricNotFound(RubricError):
    """No bundled rubric has the id and no file exists at the path."""


class RubricInvalid(RubricError):
    """A rubric file fails to parse or validate; the message names the file and each field."""


class SubmissionError(GraderError):
    """A submission file cannot be loaded at all (not readable, unknown type)."""


class SandboxError(GraderError):
    """The sandbox machinery failed; the submission is not to blame."""


class UsageError(GraderError):
    """A command-line argument that cannot work."""
