"""Run stage: turn (rubric, submission, trials) into one sandbox job, and run it.

One job per submission: the cells run once, then every contract function is called on every trial with
that trial's shared weights. Arrays are named `<task>.<trial>.<name>`, calls `<task>/<source>/<trial>`,
so the check stage can find each result. Expected values never enter the job.
"""

from dataclasses import dataclass

from grader.limits import Limits
from grader.load import Submission
from grader.memo import remember_for
from grader.rubric import Rubric
from grader.sandbox import Call, Job, RunResult, Sandbox
from grader.tasks import Task
from grader.trials import Group, Trial, trials_for


@dataclass(frozen=True)
class Planned:
    """The trials of each task, and the job that calls the submission on them."""

    trials: dict[str, list[Trial]]
    job: Job


def call_id(task: Task, source: str, trial: Trial) -> str:
    """Id of the call of `task`'s `source` function on `trial`."""
    return f"{task.id}/{source}/{trial.name}"


def plan(rubric: Rubric, submission: Submission, groups: tuple[Group, ...], hidden_seed: int | None = None) -> Planned:
    """Trials per task and the sandbox job that runs the submission on all of them."""
    trials, arrays, calls = remember_for(_PLANS, (rubric,), (groups, hidden_seed), lambda: _calls(rubric, groups, hidden_seed))
    job = Job(filename=submission.path.name, cells=submission.cells, arrays=arrays, calls=calls)
    return Planned(trials, job)


_PLANS: dict[tuple, tuple] = {}


def _calls(rubric: Rubric, groups: tuple[Group, ...], hidden_seed: int | None) -> tuple[dict, dict, list[Call]]:
    """Trials, named arrays and calls: the same for every submission graded against `rubric` (shared, so
    never modified)."""
    trials: dict[str, list[Trial]] = {}
    arrays, calls = {}, []
    for task in rubric.tasks:
        trials[task.id] = trials_for(rubric, task, groups, hidden_seed)
        for trial in trials[task.id]:
            names = {}
            for name, array in trial.arrays().items():
                names[name] = f"{task.id}.{trial.name}.{name}"
                arrays[names[name]] = array
            args: list = [names["x"], names["y"], {p: names[p] for p in trial.params}]
            if trial.masks is not None:
                args += [names["masks"], trial.scalars["p"], trial.scalars["lr"]]
            for source, function in task.contract.functions().items():
                calls.append(Call(id=call_id(task, source, trial), function=function, args=args, scratch=source == "scratch"))
    return trials, arrays, calls


def run_planned(sandbox: Sandbox, planned: Planned, limits: Limits) -> RunResult:
    """Run the job in the sandbox (student code never runs in this process)."""
    return sandbox.run(planned.job, limits)
