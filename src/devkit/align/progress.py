"""The progress bar of ``devkit align`` (rich, on stderr, only when stderr is a terminal)."""

from __future__ import annotations

from typing import Any, Self


class Progress:
    """A rich progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        """``enabled=False`` (e.g. ``--json``) shows nothing."""
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Self:
        if self.enabled:
            from rich import progress

            self._bar = progress.Progress(
                progress.TextColumn("{task.description}"), progress.BarColumn(),
                progress.MofNCompleteColumn(), progress.TimeElapsedColumn(),
                console=self.console, transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, description: str, total: int) -> None:
        """Begin a new bar of ``total`` projects."""
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total)

    def advance(self) -> None:
        """One project done."""
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)
