"""Run untrusted student code in isolation and bring back its results as validated data only.

    Sandbox(jobs, hide).run(Job, Limits) -> RunResult

    Sandbox(...).run(Job(..., observe=True, files={...}), Limits) -> RunResult with cells, forward_calls,
    grads, namespace, arrays, files and notes (notebook mode, see notebook.py and records.py)

See DESIGN.md §5 "Sandbox" for the properties this package guarantees and isolation.py for the
protections of each mode. worker.py, jail.py, runner.py, convert.py, notebook.py, observe.py and shims.py
are standalone scripts shipped into the sandbox; they are never imported by the grader.
"""

from grader.sandbox.models import Call, CallResult, CallStatus, Job, RunResult, RunStatus
from grader.sandbox.records import CellRecord, CellStatus, ForwardCall, GradSnapshot, NamespaceEntry
from grader.sandbox.sandbox import Sandbox

__all__ = ["Call", "CallResult", "CallStatus", "CellRecord", "CellStatus", "ForwardCall", "GradSnapshot", "Job",
           "NamespaceEntry", "RunResult", "RunStatus", "Sandbox"]
