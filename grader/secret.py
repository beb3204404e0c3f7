"""The hidden seed: a secret of at least 128 bits, and the keyed hash that turns it into hidden trials.

DESIGN §5 property 8. Public trials come from the rubric's integer seed, which every student has. Hidden
trials come from `trials.hidden_seed`, a string of at least 32 hexadecimal digits (128 bits, what
`backprop-grader rubric secret` prints), through HMAC-SHA256 keyed with it: a hidden trial's inputs seen
by a student (after the due date, or leaked by their code) reveal nothing of the secret, and no search
over seeds can find it. An integer hidden seed is refused: the one bundled before this rule was found
from a trial's inputs by brute force in seconds.

The bundled rubrics carry secrets too, public by being bundled: they serve `check`, the demos and the
tests; `grade` warns and `gradescope build` refuses when a rubric's hidden seed is a bundled one.
"""

import argparse
import hashlib
import hmac
import re
import secrets
import sys

from grader.errors import UsageError

SECRET_BYTES = 16  # 128 bits: what `rubric secret` prints, as 32 hexadecimal digits
MIN_DIGITS, MAX_DIGITS = 2 * SECRET_BYTES, 256
PATTERN = rf"^[0-9a-fA-F]{{{MIN_DIGITS},{MAX_DIGITS}}}$"
MIN_DISTINCT = 6  # 32 random hex digits have fewer than 6 distinct ones with probability below 1e-12
HOW_TO_MAKE = (
    f"make one with `backprop-grader rubric secret` ({MIN_DIGITS} hexadecimal digits from the OS's random "
    'source) and set it in [trials] as hidden_seed = "<its output>" in the copy of the rubric you grade '
    "with; never hand that copy out"
)
_DOMAIN = b"backprop-grader hidden trial v1"


def new_secret() -> str:
    """A fresh hidden seed: SECRET_BYTES random bytes from the OS's CSPRNG, as lower-case hex."""
    return secrets.token_hex(SECRET_BYTES)


def secret_problem(value: object) -> str | None:
    """Why `value` cannot be a hidden seed (what was expected and what to do), or None when it can."""
    if isinstance(value, bool) or not isinstance(value, str):
        kind = "an integer" if isinstance(value, int) and not isinstance(value, bool) else f"a {type(value).__name__}"
        return (
            f"expected a secret string of at least {MIN_DIGITS} hexadecimal digits ({8 * SECRET_BYTES} bits), "
            f"found {kind}: an integer hidden seed can be found from one hidden trial's inputs by trying seeds "
            f"(integers are for the public `seed` only); {HOW_TO_MAKE}"
        )
    if not re.fullmatch(PATTERN, value):
        return (
            f"expected {MIN_DIGITS} to {MAX_DIGITS} hexadecimal digits (0-9, a-f; {8 * SECRET_BYTES} bits or "
            f"more), found {len(value)} character(s){_non_hex(value)}; {HOW_TO_MAKE}"
        )
    if len(set(value.lower())) < MIN_DISTINCT:
        return (
            f"expected a random secret, found one with only {len(set(value.lower()))} distinct digits (typed "
            f"by hand?); {HOW_TO_MAKE}"
        )
    return None


def hidden_seed_option(value: str | None) -> str | None:
    """A `--hidden-seed` value held to the rubric's rule; UsageError says why it cannot be one."""
    problem = None if value is None else secret_problem(value)
    if problem is not None:
        raise UsageError(f"--hidden-seed: {problem}")
    return value


def trial_entropy(secret: str, task_id: str, index: int) -> int:
    """The 256-bit seed of hidden trial `index` of task `task_id`: HMAC-SHA256 keyed with the secret.

    The task's id (not its position) and the trial index are the message, so reordering tasks keeps
    every trial; digits are read case-insensitively, so the same secret in capitals gives the same trials."""
    message = b"\0".join([_DOMAIN, task_id.encode("utf-8"), str(index).encode()])
    digest = hmac.new(secret.lower().encode("ascii"), message, hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


def add_secret_command(rubric_commands: argparse._SubParsersAction) -> None:
    """Register `rubric secret` on the `rubric` command's actions."""
    command = rubric_commands.add_parser(
        "secret",
        help="print a new hidden seed (a 128-bit secret) for your copy of a rubric",
        description="Print a new random hidden seed. Put it in the copy of the rubric you grade with, as "
        '[trials] hidden_seed = "<it>", and keep that copy (and the secret) from students.',
    )
    command.set_defaults(run=_print_secret)


def _print_secret(args: argparse.Namespace) -> int:
    print(new_secret())
    print(
        'put it in your rubric copy\'s [trials] as hidden_seed = "<the line above>"; keep that file from students',
        file=sys.stderr,
    )
    return 0


def _non_hex(value: str) -> str:
    wrong = sorted({c for c in value if c not in "0123456789abcdefABCDEF"})
    return f", among them non-hexadecimal {''.join(wrong)[:20]!r}" if wrong else ""
