"""Student-facing sentences for every way a run or a call can end.

Each says where (file, cell, line, function), what was expected, what was found, and what to do next.
Tracebacks never appear here; they go to the instructor-only fields.
"""

import signal

from grader.limits import Limits
from grader.sandbox.models import Call, Job
from grader.sandbox.wire import CallFrame, CellsFrame


def place(job: Job, cell: int | None, line: int | None) -> str:
    """'a1.py, line 3' for a single .py file, 'nb.ipynb, cell 2, line 3' for a notebook."""
    single = len(job.cells) == 1 and job.filename.endswith(".py")
    parts = [job.filename]
    if cell is not None and not single:
        parts.append(f"cell {cell}")
    if line is not None:
        parts.append(f"line {line}")
    return ", ".join(parts)


def signature(call: Call) -> str:
    shown = [
        a if isinstance(a, str) else "{" + ", ".join(a) + "}" if isinstance(a, dict) else repr(a) for a in call.args
    ]
    return f"{call.function}({', '.join(shown)})"


def run_it_yourself(job: Job) -> str:
    if job.filename.endswith(".ipynb"):
        return "restart the kernel and run all cells of your notebook yourself"
    return f"run your file yourself from a fresh terminal (python {job.filename})"


def cells_failed(job: Job, cells: CellsFrame) -> str:
    where = place(job, cells.cell, cells.line)
    if cells.status == "syntax_error":
        return (
            f"{where}: syntax error: {cells.error}. The grader could not even start your code. "
            f"Fix the syntax, then {run_it_yourself(job)} before submitting."
        )
    if cells.status == "exited":
        argument = "" if cells.error in ("", "None") else cells.error
        return (
            f"{where}: your code called sys.exit({argument}) while it was being run "
            f"top to bottom, so nothing after it ran and no function could be graded. Remove sys.exit(), "
            f"exit() and quit() from top-level code."
        )
    if cells.error_type == "ModuleNotFoundError":
        return (
            f"{where}: {cells.error}. That module is not available in the grader (numpy and torch are). "
            f"Remove the import if you do not need it, or use numpy/torch instead."
        )
    return (
        f"{where}: {cells.error_type}: {cells.error}. Expected the whole file to run without errors before "
        f"any function is graded; found this exception, so nothing was graded. To reproduce it, "
        f"{run_it_yourself(job)}, then fix the error."
    )


def os_exit(job: Job, code: int | None, during: str | None) -> str:
    where = f"during {during}" if during else f"while {job.filename} was being run top to bottom"
    return (
        f"{job.filename}: the process ended with exit code {code} {where} (os._exit() or a similar "
        f"hard exit), so nothing after it could be graded. Remove os._exit()/sys.exit() calls."
    )


def limit_hit(status: str, job: Job, limits: Limits, during: str | None, signal_number: int | None = None) -> str:
    where = f"while running {during}" if during else f"while running {job.filename} top to bottom"
    if status == "timeout":
        return (
            f"{job.filename}: stopped after the {limits.wall_seconds:g} s time limit {where}. Expected "
            f"everything to finish well within it; look for an infinite loop, a loop with far too many "
            f"iterations or epochs, or input() waiting for a keyboard that is not there."
        )
    if status == "cpu_limit":
        return (
            f"{job.filename}: stopped after using {limits.cpu_seconds:g} s of CPU time {where}. Look for an "
            f"infinite loop or far more computation than the assignment needs."
        )
    if status == "memory_limit":
        return (
            f"{job.filename}: ran out of memory (limit {limits.memory_mb} MiB) {where}. Look for a huge "
            f"array (e.g. np.zeros((100000, 100000))) or a list that grows without end."
        )
    name = signal.Signals(signal_number).name if signal_number in set(signal.Signals) else f"signal {signal_number}"
    return (
        f"{job.filename}: the process was killed by {name} {where}. This happens when a C extension "
        f"crashes, when memory runs out, or when more than {limits.processes} processes or threads are "
        f"started. Check for code that starts processes or threads, or very large computations."
    )


def result_invalid(job: Job, limits: Limits) -> str:
    return (
        f"{job.filename}: the results of your code could not be read back. Expected the values your "
        f"functions return; found output that is damaged or larger than {limits.result_mb} MiB. This "
        f"happens when code writes to file descriptors it did not open, replaces functions of numpy, "
        f"json or the grader, or returns enormous arrays. Remove such code; if you did nothing like that, "
        f"tell your instructor."
    )


SANDBOX_ERROR = (
    "The grader failed to run your submission; this is not your fault and nothing was graded. "
    "Your instructor has the details and will re-run it."
)


def call_message(job: Job, call: Call, frame: CallFrame) -> str:
    name = call.function
    if frame.status == "missing_function":
        hint = f" Did you mean {' or '.join(frame.suggestions)}?" if frame.suggestions else ""
        return (
            f"{job.filename}: no function named {name}. The grader calls {signature(call)}; found no "
            f"top-level definition of that name.{hint} Define it with exactly this name at the top level "
            f"(not inside a class, another function or an if block)."
        )
    if frame.status == "not_callable":
        return (
            f"{job.filename}: {name} is {frame.found}, not a function. Expected def {name}(...): ...; "
            f"check that no later line assigns something else to the name {name}."
        )
    if frame.status == "raised":
        if frame.memory:
            return (
                f"{signature(call)} ran out of memory (MemoryError). Look for a huge array or a list that "
                f"grows without end inside {name}."
            )
        return (
            f"{signature(call)} raised {frame.error_type}: {frame.error}. Expected it to return its "
            f"results; the traceback shows the line in your code where it failed."
        )
    if frame.status == "bad_return":
        return (
            f"{signature(call)} returned {frame.found}. Expected a dict of numpy arrays or torch tensors "
            f"(e.g. {{'dW1': ..., 'db1': ...}}) or a single array or number; return the computed values."
        )
    if frame.values == {} and frame.texts == {} and frame.problems:
        return f"{signature(call)} returned nothing the grader can use: {'; '.join(frame.problems.values())[:500]}"
    return ""


def not_run(job: Job, call: Call, reason: str) -> str:
    return f"{signature(call)} was not called: {reason}."


def cell_message(frame, limits: Limits) -> str:
    """What went wrong in one notebook-mode cell (observed.CellFrame), without the place: the grader
    says which cell and line around it. Empty for a cell that ran."""
    if frame.status == "ok":
        return ""
    if frame.status == "syntax_error":
        return f"syntax error: {frame.error}; nothing in this cell ran. Fix the syntax, then run the notebook again."
    if frame.status == "exited" and frame.error_type == "os._exit":
        return (
            f"os._exit({frame.exit_code}) ended the whole run here, so the cells after it did not run; "
            f"everything observed up to here was kept. Remove os._exit() from the notebook."
        )
    if frame.status == "exited":
        argument = "" if frame.error in ("", "None") else frame.error
        return f"sys.exit({argument}) ended this cell early. Remove sys.exit(), exit() and quit() from notebook cells."
    if frame.missing_module:
        return (
            f"module {frame.missing_module!r} is not installed in the grader (numpy and torch are), so this "
            f"cell stopped where it needed it. Remove the import if you do not need it, or use numpy/torch instead."
        )
    if frame.memory:
        return (
            f"{frame.error_type}: ran out of memory (limit {limits.memory_mb} MiB). Look for a huge array "
            f"(e.g. np.zeros((100000, 100000))) or a list that grows without end."
        )
    return f"{frame.error_type}: {frame.error}"


def notebook_stopped(job: Job, code: int | None, cell: int | None) -> str:
    """A notebook-mode run that ended by a hard exit: what was kept, what did not run."""
    where = f" in cell {cell}" if cell is not None else ""
    return (
        f"{job.filename}: the process ended with exit code {code}{where} (os._exit() or a similar hard exit), "
        f"so the cells after it did not run; everything observed before it was kept. Remove os._exit()."
    )
