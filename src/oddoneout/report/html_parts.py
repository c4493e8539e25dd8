"""Small HTML building blocks shared by the report's sections (escaping, tables, figures, numbers)."""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oddoneout.report.outputs import StudyOutputs


class Markup(str):
    """A string that is already HTML and must not be escaped again."""


def escape(value: Any) -> str:
    """Escape any value for HTML text or attribute use (``Markup`` passes through)."""
    if isinstance(value, Markup):
        return value
    return html.escape(str(value), quote=True)


def finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def pct(value: Any, ci: Any = None) -> str:
    value = finite(value)
    if value is None:
        return "n/a"
    text = f"{value:.1%}"
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = finite(ci[0]), finite(ci[1])
        if lo is not None and hi is not None:
            text += f" [{lo:.1%}, {hi:.1%}]"
    return text


def num(value: Any, digits: int = 3) -> str:
    value = finite(value)
    return "n/a" if value is None else f"{value:.{digits}f}"


def integer(value: Any) -> str:
    value = finite(value)
    return "n/a" if value is None else f"{int(value):,}"


def table(header: list[str], rows: list[list[Any]], css_class: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{escape(css_class)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def image(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def notes(outputs: StudyOutputs, section: str) -> str:
    """The notes the report keeps for one section, as note paragraphs."""
    return "".join(f'<p class="note">{escape(text)}</p>' for text in outputs.notes.get(section, []))
