"""Progress display for long stages (rich): a stage banner and a progress bar with rate and ETA."""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

#: Progress and logs go to stderr so stdout stays clean for machine-readable output (``--json``).
console = Console(stderr=True)


def progress_enabled() -> bool:
    """False when ``ODDONEOUT_PROGRESS=0`` is set (e.g. in tests)."""
    return os.environ.get("ODDONEOUT_PROGRESS", "1") != "0"


def make_progress() -> Progress:
    """A rich progress bar showing done/total, rate-derived ETA and elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not progress_enabled(),
        transient=False,
    )


def metrics_text(metrics: dict[str, Any] | None) -> str:
    """``key=value`` pairs for display beside a bar (NaN values, e.g. no held-out loss, left out)."""
    shown = {k: v for k, v in (metrics or {}).items() if not (isinstance(v, float) and math.isnan(v))}
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())


@contextmanager
def progress_callback(description: str, total: int, unit: str = "") -> Iterator[Callable[..., None]]:
    """A callback ``report(done, total=None, metrics=None)`` that drives a progress bar.

    ``metrics`` (a dict of floats) is shown beside the bar, e.g. the validation loss of an epoch.
    """
    with make_progress() as bar:
        task = bar.add_task(description, total=total, unit=unit, info="")

        def report(done: int, total: int | None = None, metrics: dict[str, Any] | None = None) -> None:
            total = total if total is not None else bar.tasks[task].total
            bar.update(task, completed=done, total=total, info=metrics_text(metrics))

        yield report


@contextmanager
def stage(label: str) -> Iterator[None]:
    """Announce a stage and how long it took."""
    start = time.perf_counter()
    if progress_enabled():
        console.print(f"[bold cyan]>[/] {label}")
    yield
    if progress_enabled():
        console.print(f"  [dim]{label}: {time.perf_counter() - start:.1f} s[/]")
