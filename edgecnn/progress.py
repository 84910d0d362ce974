"""One rich progress bar for long loops (evaluation, calibration, sensitivity). Torch-free.

    with progress_bar(enabled, "calibrating", total) as advance:
        for batch in batches:
            ...
            advance()          # or advance(n) for n items at once
"""

from __future__ import annotations


class progress_bar:
    """A transient rich progress bar, or a no-op ``advance`` when ``enabled`` is False."""

    def __init__(self, enabled: bool, description: str, total: int):
        self.enabled, self.description, self.total = enabled, description, total
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n=1: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
        self._bar.__enter__()
        task = self._bar.add_task(self.description, total=self.total)
        return lambda n=1: self._bar.advance(task, n)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
