"""autograd_graph in a free-form notebook: the node names the student listed, against their own graph.

Seed 002's second question asks for the nodes of `loss.grad_fn`'s graph. Students walk `next_functions`
and print the names (`type(fn).__name__`, `fn.name()`, or `<AddmmBackward0 object at 0x…>` from printing
the nodes themselves), or write them to a file, or type them from a picture of the graph. What they list is
judged against the graph of their own net's loss as it ran: the first backward pass's graph, which the
sandbox records node by node (RunResult.backward). Names are compared without torch's overload suffix, so a
list typed from torch 1.x (`AddmmBackward`) and one printed by torch 2.x (`AddmmBackward0`) both count;
`torch::autograd::AccumulateGrad` (what `fn.name()` says) is AccumulateGrad. Listing every node, or every
kind of node once, passes.
"""

import re
from collections import Counter

from grader.notebook.kinds.common import KindResult, NotebookRun, all_missing, missing
from grader.report import CheckResult, CheckStatus, TrialResult
from grader.rubric.tasks import AutogradGraphTask
from grader.trials import NOTEBOOK_TRIAL

NODE = re.compile(r"(?<!\w)(?:torch::autograd::)?(AccumulateGrad|[A-Z][A-Za-z]*Backward\d*)\b")
GRAD_FN = re.compile(r"grad_fn=<\w+>")  # a tensor's repr names the node that made it: not a listed node
TRIAL = NOTEBOOK_TRIAL


def stem(name: str) -> str:
    """A node name without namespace and overload suffix: 'AddmmBackward' for AddmmBackward0 and AddmmBackward."""
    return re.sub(r"\d+$", "", name.rsplit("::", 1)[-1])


def listed_nodes(text: str) -> list[str]:
    """Every node name in `text` in order, tensors' `grad_fn=<…>` left out."""
    return [match.group(1) for match in NODE.finditer(GRAD_FN.sub(" ", text))]


def check(nb: NotebookRun, task: AutogradGraphTask) -> KindResult:
    """The node list the notebook printed or wrote, against the graph of its first backward pass."""
    run = nb.run
    if not run.backward or not run.backward[0].nodes:
        why = (
            "the notebook never called backward(), so there is no graph to compare with"
            if not run.backward
            else "the graph of the first backward pass was too large to record"
        )
        return all_missing(task, why)
    record = run.backward[0]
    expected = [node.name for node in record.nodes]
    found, where = _listing(nb)
    results, notes = [], []
    for item in task.checks:
        if item.quantity != "torch.nodes":
            results.append(
                missing(task.id, item, f"{item.quantity} is not observed in a free-form notebook for this task")
            )
            continue
        if not found:
            reason = (
                "no list of node names (AccumulateGrad, AddmmBackward0, …) was printed or written; print the "
                "name of every node you reach from loss.grad_fn through next_functions"
            )
            results.append(missing(task.id, item, reason))
            continue
        passed, message = _compare(found, expected)
        message = f"{item.quantity}: {message} (the graph of the loss's backward pass in cell {nb.cell(record.cell)})"
        status = CheckStatus.passed if passed else CheckStatus.failed
        points = item.points if passed else 0.0
        results.append(
            CheckResult(
                task=task.id,
                quantity=item.quantity,
                status=status,
                points=points,
                max_points=item.points,
                group_points={"notebook": points},
                group_max_points={"notebook": item.points},
                visibility=item.visibility,
                message=message,
                provenance=where,
                trials=[TrialResult(trial=TRIAL, status=status, message=message)],
            )
        )
    return KindResult(results, notes, [])


def _listing(nb: NotebookRun) -> tuple[list[str], str]:
    """The longest list of node names a cell printed or a written file holds, and where it is."""
    best: tuple[list[str], str] = ([], "")
    for record in nb.run.cells:
        names = listed_nodes(record.stdout)
        if len(names) > len(best[0]):
            best = (names, f"cell {nb.cell(record.cell)}: printed")
    for name, text in nb.texts.items():
        if name in nb.run.files:
            names = listed_nodes(text)
            if len(names) > len(best[0]):
                best = (names, f"{name}")
    return best


def _compare(found: list[str], expected: list[str]) -> tuple[bool, str]:
    """Every node (as many as the graph has of each), or every kind of node once, named; else what is
    missing and what is not in the graph."""
    want, got = Counter(map(stem, expected)), Counter(map(stem, found))
    spelled = {stem(name): name for name in expected}
    if got == want:
        return True, f"all {len(expected)} nodes named"
    if set(got) == set(want) and all(count == 1 for count in got.values()):
        return True, f"every kind of node named ({len(want)} kinds, {len(expected)} nodes)"
    lacking = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    counts = sorted(name for name in set(want) & set(got) if got[name] not in (1, want[name]))
    said = [f"expected the {len(expected)} nodes of the graph ({_kinds(want, spelled)})"]
    if lacking:
        said.append(f"missing {', '.join(spelled[n] for n in lacking)}")
    if extra:
        said.append(f"not in the graph: {', '.join(extra)}")
    if counts:
        said.append(", ".join(f"{spelled[n]} listed {got[n]} times where the graph has {want[n]}" for n in counts))
    return False, "; ".join(said)


def _kinds(counts: Counter, spelled: dict[str, str]) -> str:
    return ", ".join(
        f"{count} {spelled[name]}" for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
