"""Run stage: turn (rubric, submission, trials) into a sandbox job, and run it.

One job, one child, in two phases (DESIGN §5 property 8; Job.hidden_calls, grader/sandbox/drive.py): the
cells run, then every contract function is called on every public trial with that trial's shared weights;
then, when hidden trials are asked for and every public call was answered and accepted, the grader reads
the child's output so far and only then sends the hidden trials' calls and arrays. So no public call can
reach a hidden input (none exists in the child while it runs), and nothing shown to the student before
the due date (the public calls' messages, the run's status, stdout and stderr) comes from after the first
hidden input was sent: what the child does from then on, whoever in it does it (a hidden call, or a hook
a public call left behind: a patched numpy, a thread), is the hidden phase's RunResult, kept from the
report. Its calls' results become hidden-trial results, shown only per `trials.hidden_visibility`; how
it ended is an instructor flag. A hidden phase that is not reached (the public run did not end normally)
leaves every hidden call not run, as the same code would have stopped the same way.

Arrays are named `<task>.<trial>.<name>`, calls `<task>/<source>/<trial>`, so the check stage can find
each result. Expected values never enter a job.
"""

from dataclasses import dataclass

from grader.found import Found, from_run
from grader.limits import Limits
from grader.load import Submission
from grader.memo import remember_for
from grader.returns import expected_returns
from grader.rubric.model import Rubric
from grader.rubric.tasks import Task
from grader.sandbox import Call, Job, RunResult, RunStatus, Sandbox
from grader.sandbox.models import CallStatus
from grader.trials import Group, Trial, trials_for


@dataclass(frozen=True)
class Planned:
    """The trials of each task of one group, and the job that calls the submission on them."""

    trials: dict[str, list[Trial]]
    job: Job


@dataclass(frozen=True)
class Ran:
    """What the job of one submission produced.

    `trials`: per task, public then hidden; `found`: call id → what the call produced, for both groups;
    `run`: the run the report keeps and the student may see (the public phase's; the hidden phase's only
    when the sandbox itself failed there, since then nothing was graded); `hidden`: the hidden phase's
    run, for instructors only, None when it did not run."""

    trials: dict[str, list[Trial]]
    found: dict[str, Found]
    run: RunResult
    hidden: RunResult | None


def call_id(task: Task, source: str, trial: Trial) -> str:
    """Id of the call of `task`'s `source` function on `trial`."""
    return f"{task.id}/{source}/{trial.name}"


def plan(rubric: Rubric, submission: Submission, group: Group, hidden_seed: str | None = None) -> Planned:
    """Trials per task of `group` and the sandbox job that runs the submission on them."""
    secret = hidden_seed if group == "hidden" else None  # public trials never depend on it
    trials, arrays, calls = remember_for(_PLANS, (rubric,), (group, secret), lambda: _calls(rubric, group, secret))
    job = Job(filename=submission.path.name, cells=submission.cells, arrays=arrays, calls=calls)
    return Planned(trials, job)


def run_trials(
    sandbox: Sandbox,
    rubric: Rubric,
    submission: Submission,
    groups: tuple[Group, ...],
    limits: Limits,
    hidden_seed: str | None = None,
) -> Ran:
    """Run the public trials, then in the same child the hidden ones if `groups` asks for them (see the
    module docstring; student code never runs here). `limits` hold for each phase as for a job of its own."""
    public = plan(rubric, submission, "public", hidden_seed)
    trials = {task_id: list(group) for task_id, group in public.trials.items()}
    if "hidden" not in groups:
        run = sandbox.run(public.job, limits)
        return Ran(trials, from_run(run, _functions(public.job)), run, None)
    hidden = _HiddenPlan(
        *remember_for(_PLANS, (rubric,), ("hidden", hidden_seed), lambda: _calls(rubric, "hidden", hidden_seed))
    )
    for task_id, group in hidden.trials.items():
        trials[task_id] += group
    job = Job(
        filename=submission.path.name,
        cells=submission.cells,
        arrays={**public.job.arrays, **hidden.arrays},
        calls=[*public.job.calls, *hidden.calls],
        hidden_calls=len(hidden.calls),
    )
    run, hidden_run = sandbox.run_phases(job, limits)
    found = from_run(run, _functions(job))
    if hidden_run is None:  # the same code would stop the same way: the hidden calls were never asked for
        reason = f"the run of the public trials did not end normally ({run.status.value})"
        found.update(
            {
                call.id: Found(
                    status=CallStatus.not_run, message=f"{call.function}() was not called on this trial: {reason}."
                )
                for call in hidden.calls
            }
        )
        return Ran(trials, found, run, None)
    found.update(from_run(hidden_run, _functions(job)))
    if hidden_run.status == RunStatus.sandbox_error:  # the grader's fault: the report says nothing was graded
        run = hidden_run.model_copy(update={"stdout": "", "stderr": ""})
    return Ran(trials, found, run, hidden_run)


def hidden_run_flags(ran: Ran) -> list[str]:
    """Instructor-only review flags about the hidden phase: it ended otherwise than the public one did."""
    hidden = ran.hidden
    if hidden is None or hidden.status == RunStatus.ok or hidden.status == RunStatus.sandbox_error:
        return []
    return [
        f"hidden trials: their phase of the run ended with {hidden.status.value} although the public phase "
        f"ended normally: {hidden.message}"
    ]


_PLANS: dict[tuple, tuple] = {}


@dataclass(frozen=True)
class _HiddenPlan:
    """The hidden trials per task, their named arrays and their calls (shared: never modified)."""

    trials: dict[str, list[Trial]]
    arrays: dict
    calls: list[Call]


def _functions(job: Job) -> dict[str, str]:
    return {call.id: call.function for call in job.calls}


def _calls(rubric: Rubric, group: Group, hidden_seed: str | None) -> tuple[dict, dict, list[Call]]:
    """Trials, named arrays and calls of one group: the same for every submission graded against `rubric`
    (shared, so never modified)."""
    trials: dict[str, list[Trial]] = {}
    arrays, calls = {}, []
    for task in rubric.tasks:
        trials[task.id] = trials_for(rubric, task, (group,), hidden_seed)
        for trial in trials[task.id]:
            names = {}
            for name, array in trial.arrays().items():
                names[name] = f"{task.id}.{trial.name}.{name}"
                arrays[names[name]] = array
            args: list = [names["x"], names["y"], {p: names[p] for p in trial.params}]
            if trial.masks is not None:
                args += [names["masks"], trial.scalars["p"], trial.scalars["lr"]]
            for source, function in task.contract.functions().items():
                calls.append(
                    Call(
                        id=call_id(task, source, trial),
                        function=function,
                        args=args,
                        scratch=source == "scratch",
                        returns=expected_returns(task, trial),
                    )
                )
    return trials, arrays, calls
