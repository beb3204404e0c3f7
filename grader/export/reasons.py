"""Checks that did not pass for one reason, said once (report.html and the table `check` prints).

A report whose code did not run has every check missing with the same message after its quantity name
("scratch.dW1: not checked — the file is empty"): thirteen identical long rows hide what little differs.
A reason that two or more checks share is said once above the rows, which then show only quantity,
status and points, plus a letter when there are several such reasons (or checks with reasons of their
own). Only checks with nothing else to show are grouped (no diagnosis, measured error, heat map or
provenance), so grouping never hides a fact. report.json keeps every check's own message.
"""

from dataclasses import dataclass, field

from grader.report import CheckResult, CheckStatus


def reason(quantity: str, message: str) -> str:
    """A check's message without the quantity name it starts with."""
    prefix = f"{quantity}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def plain(check: CheckResult) -> bool:
    """Whether a check that did not pass has nothing to show but its message."""
    return (
        check.status != CheckStatus.passed
        and check.diagnosis is None
        and not check.provenance
        and not any(t.excess or t.max_abs_error is not None or t.where for t in check.trials)
    )


Row = tuple[str, str, CheckStatus, bool]  # quantity, message shown, status shown, plain(check)


@dataclass(frozen=True)
class Group:
    """One reason and how many checks give it; `label` tells its rows from another group's."""

    label: str  # '' when the group is the only reason of every check that did not pass
    reason: str
    count: int


@dataclass(frozen=True)
class SharedReasons:
    """The reasons two or more checks share, in order of first appearance."""

    groups: list[Group] = field(default_factory=list)
    _by_reason: dict[str, Group] = field(default_factory=dict)

    def group_of(self, row: Row) -> Group | None:
        """The group a row is shown in, or None when it is shown with its own message."""
        quantity, message, status, is_plain = row
        return self._by_reason.get(reason(quantity, message)) if status != CheckStatus.passed and is_plain else None

    def headline(self, group: Group) -> str:
        """One line about a group, e.g. 'all 13 checks that did not pass: not checked — …'."""
        if not group.label:
            return f"all {group.count} checks that did not pass: {group.reason}"
        return f"({group.label}) {group.count} checks: {group.reason}"


def shared_reasons(rows: list[Row]) -> SharedReasons:
    """Group rows (quantity, message shown, status shown, plain) by the reason their message gives; only
    plain rows that did not pass are grouped, and only reasons at least two of them share."""
    counts: dict[str, int] = {}
    for quantity, message, status, is_plain in rows:
        if status != CheckStatus.passed and is_plain:
            counts[reason(quantity, message)] = counts.get(reason(quantity, message), 0) + 1
    shared = [key for key, count in counts.items() if count >= 2]
    failing = sum(1 for _, _, status, _ in rows if status != CheckStatus.passed)
    single = len(shared) == 1 and counts[shared[0]] == failing
    groups = [Group("" if single else _letter(i), key, counts[key]) for i, key in enumerate(shared)]
    return SharedReasons(groups, {g.reason: g for g in groups})


def _letter(index: int) -> str:
    return chr(ord("a") + index) if index < 26 else str(index + 1)
