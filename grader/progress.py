"""Progress of a batch on stderr: a redrawn bar with ETA on a terminal, sparse lines in a log.

A log (CI, `> file`, a pipe) gets one line per tenth of the batch and at most one every LOG_SECONDS
otherwise, so a class of 1,000 students does not write 1,000 lines.
"""

import shutil
import time
from collections.abc import Callable
from typing import TextIO

LOG_SECONDS = 30.0


class Progress:
    """Counts finished students and reports the rate and time left."""

    def __init__(
        self, total: int, stream: TextIO, tty: bool | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.total, self.stream, self.clock = total, stream, clock
        self.tty = stream.isatty() if tty is None else tty
        self.done = 0
        self.started = clock()
        self.last_line = self.started
        self.last_tenth = 0

    def advance(self, student: str) -> None:
        """One more student finished (`student` is a sanitised id: safe to print)."""
        self.done += 1
        if self.tty:
            self._draw(student)
            return
        tenth = self.done * 10 // max(self.total, 1)
        now = self.clock()
        if tenth > self.last_tenth or now - self.last_line >= LOG_SECONDS or self.done == self.total:
            self.last_tenth, self.last_line = tenth, now
            self.stream.write(
                f"grading: {self.done}/{self.total} ({self.done / max(self.total, 1):.0%}){self._eta(', about {} left')}\n"
            )
            self.stream.flush()

    def finish(self) -> None:
        """Leave the terminal on a clean line."""
        if self.tty and self.total:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _eta(self, template: str) -> str:
        if not self.done or self.done >= self.total:
            return ""
        rate = (self.clock() - self.started) / self.done
        return template.format(clock_time(rate * (self.total - self.done)))

    def _draw(self, student: str) -> None:
        columns = shutil.get_terminal_size((80, 24)).columns
        width = max(10, min(30, columns - 50))
        filled = width * self.done // max(self.total, 1)
        bar = "█" * filled + "░" * (width - filled)
        line = f"grading {bar} {self.done}/{self.total} {self.done / max(self.total, 1):4.0%}{self._eta(' · ETA {}')}  {student}"
        self.stream.write("\r\x1b[K" + line[: columns - 1])
        self.stream.flush()


def clock_time(seconds: float) -> str:
    """0:07, 12:30, 1:02:03."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
