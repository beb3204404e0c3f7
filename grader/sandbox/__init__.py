"""Run untrusted student code in isolation and bring back its results as validated data only.

    Sandbox(jobs, hide).run(Job, Limits) -> RunResult

See DESIGN.md §5 "Sandbox" for the properties this package guarantees and isolation.py for the
protections of each mode. worker.py and runner.py are standalone scripts shipped into the sandbox;
they are never imported by the grader.
"""

from grader.sandbox.models import Call, CallResult, CallStatus, Job, RunResult, RunStatus
from grader.sandbox.sandbox import Sandbox

__all__ = ["Call", "CallResult", "CallStatus", "Job", "RunResult", "RunStatus", "Sandbox"]
