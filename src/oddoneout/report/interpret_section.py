"""The report's interpretation section and the paper-vs-ours reproduction table."""

from __future__ import annotations

from typing import Any


def render(outputs: Any, colors: dict[str, str]) -> str:
    """The interpretation section (``outputs``: a :class:`~oddoneout.report.html.StudyOutputs`)."""
    return '<h2 id="interpretation">Interpretation</h2>'


def render_reproduction(outputs: Any) -> str:
    """The table of the paper's numbers beside this run's."""
    return '<h2 id="reproduction">Paper vs ours</h2>'
