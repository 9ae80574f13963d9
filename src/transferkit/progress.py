"""Progress bars for long work (rich), silent when disabled or when nothing is to be done."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# who else wants to know (the app's training runs): called with (description, done, total) as work advances
_observer: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("transferkit_progress_observer", default=None)


@contextmanager
def observe(callback: Callable[[str, int, int], None]) -> Iterator[None]:
    """Within this block, every progress bar also reports to ``callback(description, done, total)``, shown or not."""
    token = _observer.set(callback)
    try:
        yield
    finally:
        _observer.reset(token)


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; shows a rich bar with rate and time left when ``enabled``."""
    observer = _observer.get()
    if observer is not None:
        done = [0]
        observer(description, 0, total)

        def tell(n: int) -> None:
            done[0] += n
            observer(description, done[0], total)

        with _bar(description, total, enabled) as shown:
            yield lambda n: (tell(n), shown(n))
        return
    with _bar(description, total, enabled) as shown:
        yield shown


@contextmanager
def _bar(description: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)

