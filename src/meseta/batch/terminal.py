"""What the user sees: task output on stdout/stderr, notes and a progress bar on stderr.

    Terminal.out(bytes)   a task's stdout, byte for byte (through rich's console while a bar is shown
                          on the same terminal, so the bar stays below); once the reader closed the
                          pipe (``| head``), nothing more
    Terminal.err(bytes)   a task's stderr
    Terminal.note(text)   a message of meseta submit's own, on stderr
    progress bar          only when stderr is a terminal; never on stdout

``LinePrefixer`` cuts streamed text into whole lines, each prefixed (``[7] ``) for --count > 1.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Terminal:
    def __init__(self, total: int, stdout: TextIO | None = None, stderr: TextIO | None = None,
                 bar: bool | None = None) -> None:
        self.stdout, self.stderr = stdout or sys.stdout, stderr or sys.stderr
        self.console = Console(file=self.stderr, stderr=True)
        show = self.stderr.isatty() if bar is None else bar
        self.stdout_closed = False
        self.progress: Progress | None = None
        self.task: Any = None
        if show:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=self.console, transient=True,
                                     redirect_stdout=False, redirect_stderr=False)
            self.task = self.progress.add_task("submitting", total=total)

    def __enter__(self) -> Terminal:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def out(self, data: bytes) -> None:
        if self.stdout_closed:
            return
        if self.progress is not None and self.stdout.isatty():
            self.console.out(data.decode(errors="replace"), end="", highlight=False)  # above the bar
            return
        try:
            self.stdout.flush()
            self.stdout.buffer.write(data)
            self.stdout.buffer.flush()
        except BrokenPipeError:  # `meseta submit ... | head`: the reader has had enough; the run goes on
            self.stdout_closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stdout.fileno())  # so that the interpreter's last flush finds no pipe
            os.close(devnull)

    def err(self, data: bytes) -> None:
        text = data.decode(errors="replace")
        if self.progress is not None:
            self.console.out(text, end="", highlight=False)
        else:
            self.stderr.write(text)
            self.stderr.flush()

    def note(self, text: str) -> None:
        self.err(f"meseta submit: {text}\n".encode())

    def show(self, done: int, phases: Counter[str]) -> None:
        if self.progress is not None:  # rich redraws at its own pace: an update is a few assignments
            description = (f"running {phases['running'] + phases['launched']}, waiting {phases['pending']}, "
                           f"done")
            self.progress.update(self.task, completed=done, description=description)


class LinePrefixer:
    """Whole lines of a stream, each behind ``prefix``; the unfinished tail waits for its end."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.tail = prefix, ""

    def feed(self, text: str) -> str:
        if not self.prefix:
            return text
        lines = (self.tail + text).split("\n")
        self.tail = lines.pop()
        return "".join(f"{self.prefix}{line}\n" for line in lines)

    def end(self) -> str:
        rest, self.tail = self.tail, ""
        return f"{self.prefix}{rest}\n" if rest and self.prefix else rest
