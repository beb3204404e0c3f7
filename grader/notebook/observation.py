"""Observe stage for free-form notebooks: find what the student computed in what their notebook did.

The net is the module of the first top-level forward call whose parameters chain into a fully connected
net; the reference then runs on exactly the weights and input that call saw, so an unseeded notebook is
graded as exactly as a seeded one. `torch.*` values come from the autograd file (torch_autograd.dat) or
the parameters' `.grad`; `scratch.*` from the student's own file (my_autograd.dat) or their variables,
by name first and by value second. Each value keeps where it came from and its printed precision.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.found import Found
from grader.notebook.datfile import read_dat
from grader.notebook.graph import grad_name, identify_raw_net, raw_grads
from grader.notebook.network import Net, module_grads, module_nets
from grader.notebook.precision import rounded_uncertainties, sharpen
from grader.notebook.printed import printed_gradients
from grader.notebook.provenance import Follows, entry_again, file_again, follows
from grader.notebook.variables import same_size, scratch_variable, where
from grader.rubric.checkspec import Tolerance
from grader.rubric.tasks import Task
from grader.run import call_id
from grader.sandbox import RunResult
from grader.trials import Trial
from reference import mlp_regression

PRECISION_REL = Tolerance().precision_rel  # the default rule for values read from text (grader.compare)


@dataclass
class Observed:
    """Everything the check stage needs from one notebook run."""

    net: Net | None
    trial: Trial | None
    found: dict[str, Found] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    copied: dict[str, str] = field(
        default_factory=dict
    )  # scratch quantity -> where a value copied from autograd was reported
    scratch_trial: Trial | None = None  # the trial of a second net the scratch values were computed on, if any


def observe(
    task: Task,
    run: RunResult,
    files: dict[str, str],
    *,
    scratch_file: str,
    torch_file: str,
    cell_number: Callable[[int], int] = lambda position: position,
) -> Observed:
    """The trial the student's own net defines, and what each source (torch, scratch) produced on it.

    `cell_number` turns the sandbox's position among code cells into the notebook's own cell number."""
    from grader.notebook.nets import choose_net, other_net_for_scratch  # here: nets.py imports written_file

    nets = module_nets(run)
    net, chosen = choose_net(nets, run, files, torch_file, task.activation, cell_number) if nets else (None, [])
    net = net or identify_raw_net(run)  # raw-tensor nets: the first backward's graph
    if net is None:
        return Observed(
            None,
            None,
            notes=[
                "no forward call of a torch.nn.Module with linear layers was seen; "
                "build the net as an nn.Module (or nn.Sequential) and call it on x"
            ],
        )
    x = net.x
    y = mlp_regression.target(x)
    trial = Trial(task.id, "notebook", 0, x, y, net.params)  # type: ignore[arg-type]
    observed = Observed(net, trial, notes=chosen)
    grads = raw_grads(run, net) or module_grads(run, net)  # a raw net's are read from the graph by its role
    autograd_copies = [v for k, v in grads.items() if k != "cell"]
    reference = mlp_regression.scratch(x, y, net.params, net.activation or task.activation)
    weights = list(net.params.values())

    def printed_from(source: str, key: str) -> list[tuple[np.ndarray, str, Any]]:
        """What a printed value may have been printed from: autograd's .grad; the student's arrays of its size."""
        if source == "torch":
            return (
                [(grads[key], f"cell {cell_number(grads['cell'])}: {grad_name(net, key[1:])}", None)]
                if key in grads
                else []
            )
        entries = same_size(run, key, reference[key], [*autograd_copies, *weights])
        return [(run.arrays[e.array], f"cell {cell_number(e.cell)}: {where(e.name)}", e) for e in entries]

    def mark_copied(key: str, entry) -> None:
        """A scratch value taken from a variable the counterfactual run shows copied from autograd."""
        again = entry_again(run, entry.name, entry.cell)
        if (
            run.counterfactual is not None
            and follows(run.arrays[entry.array], again, run.counterfactual.factor) == Follows.autograd
        ):
            observed.copied[key] = f"{where(entry.name)} (cell {cell_number(entry.cell)})"

    printed = None
    for source, file_name in (("torch", torch_file), ("scratch", scratch_file)):
        values, uncertainty, provenance = {}, {}, {}
        text = written_file(files, file_name)
        if text is not None:
            assignment = read_dat(text, net.layers)
            again = file_again(run, file_name, net.layers)
            printed = {key: assignment.in_torch_layout(key) for key in assignment.values}
            uncertainty = rounded_uncertainties(printed)  # np.round(…, 5), then printed
            for key in assignment.values:
                values[key] = printed[key][0]
                item = assignment.values[key]
                label = f" ({item.label.strip()!r})" if item.label.strip() else ""
                layout = ", read in the transposed (in, out) layout" if assignment.layouts.get(key) == "in_out" else ""
                provenance[key] = f"{file_name} line {item.line}{label}{layout}"
                if source == "scratch" and key in again:
                    verdict = follows(values[key], again[key][0], run.counterfactual.factor, uncertainty[key])
                    if verdict == Follows.autograd:
                        observed.copied[key] = f"{file_name} line {item.line}{label}"
            observed.notes += [f"{file_name}: {note}" for note in assignment.problems]
            in_out = {key for key, layout in assignment.layouts.items() if layout == "in_out"}
            taken = sharpen(
                values,
                uncertainty,
                provenance,
                reference,
                PRECISION_REL,
                lambda key, source=source: printed_from(source, key),
                in_out,
            )
            for key, entry in taken.items():
                if entry is not None:
                    mark_copied(key, entry)
        else:
            observed.notes.append(
                f"{file_name} was not written; looking for the {source} gradients in the notebook instead"
            )
        wanted = [f"d{p}" for p in net.params]
        for key in wanted:
            if key in values:
                continue
            if source == "torch" and key in grads:
                values[key], provenance[key] = (
                    grads[key],
                    f"cell {cell_number(grads['cell'])}: {grad_name(net, key[1:])}",
                )
            elif source == "scratch":
                hit = scratch_variable(run, key, net.params[key[1:]].shape, reference[key], autograd_copies, weights)
                if hit is not None:
                    entry, how, copied = hit
                    values[key] = run.arrays[entry.array]
                    provenance[key] = f"cell {cell_number(entry.cell)}: {where(entry.name)}{how}"
                    if copied:
                        observed.copied[key] = f"{where(entry.name)} (cell {cell_number(entry.cell)})"
        missing = [key for key in wanted if key not in values]
        if missing:  # last: what the notebook only printed (grader.notebook.printed), read once for both sources
            printed = printed if printed is not None else printed_gradients(run, net.layers, _not_gradients(run, net))
            for key in missing:
                if source in printed and key in printed[source].assignment.values:
                    values[key], uncertainty[key] = printed[source].assignment.in_torch_layout(key)
                    provenance[key] = printed[source].where(key, cell_number)
            if source == "scratch" and "torch" in printed and printed["torch"].copies > 1:
                observed.notes.append(
                    f"autograd's gradients were printed {printed['torch'].copies} times; every copy moved with "
                    "autograd when the grader scaled its gradients, so none of them is counted as your own"
                )
        observed.found[call_id(task, source, trial)] = Found(
            values=values,
            uncertainty=uncertainty,
            provenance=provenance,
            problems={
                k: f"{source}.{k}: not found — not in {file_name}, no variable holds it and nothing printed "
                "could be read as it; "
                f"write every gradient to {file_name} with a label such as 'dW1'"
                for k in wanted
                if k not in values
            },
        )
    scratch = call_id(task, "scratch", trial)
    other = other_net_for_scratch(nets, net, observed.found[scratch], task.activation)
    if other is not None:  # graded on the weights they used, and flagged
        observed.scratch_trial = Trial(task.id, "notebook", 1, other.x, mlp_regression.target(other.x), other.params)  # type: ignore[arg-type]
        observed.found[call_id(task, "scratch", observed.scratch_trial)] = observed.found.pop(scratch)
        observed.flags.append(
            f"scratch gradients computed on other weights than the autograd net (a second net, "
            f"`{other.variable}`, first called in cell {cell_number(other.cell)})"
        )
        observed.notes.append(
            f"your own gradients match the net `{other.variable}` (cell {cell_number(other.cell)}), "
            f"not `{net.variable}` whose autograd gradients you report; they are checked on "
            f"`{other.variable}`'s weights — compute both on the same net"
        )
    return observed


def _not_gradients(run: RunResult, net: Net) -> list[np.ndarray]:
    """What a notebook prints that is no gradient: the net's parameters, its input and outputs, the loss."""
    values = [*net.params.values(), net.x]
    values += [run.arrays[call.output] for call in run.forward_calls if call.output in run.arrays]
    if run.backward and run.backward[0].loss in run.arrays:
        values.append(run.arrays[run.backward[0].loss])
    return values


def written_file(files: dict[str, str], name: str) -> str | None:
    """A written file by name, ignoring case and folders (Colab paths were redirected by name)."""
    for written, text in files.items():
        if written.rsplit("/", 1)[-1].lower() == name.lower():
            return text
    return None
