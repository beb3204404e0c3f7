"""Run untrusted student code in isolation and bring back its results as validated data only.

    Sandbox(jobs, hide).run(Job, Limits) -> RunResult

    Sandbox(...).run(Job(..., observe=True, files={...}), Limits) -> RunResult with cells, forward_calls,
    grads, namespace, arrays, files and notes (notebook mode, see child/notebook.py and records.py)

See DESIGN.md §5 "Sandbox" for the properties this package guarantees and isolation.py for the
protections of each mode. The modules here are the grader's side; child/ holds the standalone scripts
shipped into the sandbox as sources (the worker and everything a job's child runs), never imported by the
grader (child/__init__.py maps them).
"""

import importlib

# Names are imported on first use (PEP 562), so that `check` can launch its worker through
# grader.sandbox.sandbox before numpy and pydantic are imported (see Sandbox.launch).
_HOMES = {
    "Call": "models",
    "CallResult": "models",
    "CallStatus": "models",
    "Job": "models",
    "RunResult": "models",
    "RunStatus": "models",
    "CellRecord": "records",
    "CellStatus": "records",
    "ForwardCall": "records",
    "GradSnapshot": "records",
    "NamespaceEntry": "records",
    "Sandbox": "sandbox",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'grader.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"grader.sandbox.{_HOMES[name]}"), name)
