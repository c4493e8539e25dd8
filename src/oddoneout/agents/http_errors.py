"""What a failed chat-completion request means: retry it (:class:`RetryableError`) or record it as a failed answer.

Transient failures (HTTP 408/429/5xx, dropped or refused connections, timeouts) are raised as
:class:`~oddoneout.agents.base.RetryableError` for the runner to retry, with the server's
``Retry-After`` when it sent one; permanent ones (other HTTP 4xx, bodies that do not decode)
come back as an :class:`~oddoneout.agents.base.Answer` with status ``error``.
"""

from __future__ import annotations

import email.utils
import math
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from oddoneout.agents.base import MAX_RAW_CHARS, Answer, RetryableError


def _unchanged(text: str) -> str:
    return text


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header (delay in seconds, or an HTTP date).

    Parameters
    ----------
    value : str or None
        The header value.
    now : datetime, optional
        The current time (UTC) for HTTP dates; defaults to now.

    Returns
    -------
    float or None
        Non-negative seconds, or ``None`` when the header is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def public_url(url: str) -> str:
    """``url`` without any user:password part (for records and messages)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def request_failure(
    exc: httpx.RequestError, url: str, timeout: float, redact: Callable[[str], str] = _unchanged
) -> Answer:
    """The answer for a request that got no usable response; raises when it is worth retrying.

    Parameters
    ----------
    exc : httpx.RequestError
        What the client raised.
    url : str
        The URL as shown in messages (no credentials).
    timeout : float
        Seconds the request was allowed.
    redact : callable, optional
        Removes secrets from a message.

    Returns
    -------
    Answer
        Status ``error`` for a body the client could not decode.

    Raises
    ------
    RetryableError
        Status ``"timeout"`` for a timeout, ``"error"`` for a refused or dropped connection.
    """
    if isinstance(exc, httpx.TimeoutException):
        message = f"{url}: no answer within {timeout:g} s ({type(exc).__name__})"
        raise RetryableError(redact(message), status="timeout") from None
    if isinstance(exc, httpx.DecodingError):  # a body the transport could not decompress or decode
        message = f"malformed response from {url}: {type(exc).__name__}: {exc}"
        return Answer(None, "error", error=redact(message)[:500])
    message = f"{url}: request failed ({type(exc).__name__}: {exc})"  # connection refused or dropped, protocol errors
    raise RetryableError(redact(message), status="error") from None


def status_failure(response: httpx.Response, text: str, url: str) -> Answer | None:
    """The answer for a response whose HTTP status is not a success; raises when it is worth retrying.

    Parameters
    ----------
    response : httpx.Response
        The server's response.
    text : str
        Its body as text, secrets already removed.
    url : str
        The URL as shown in messages (no credentials).

    Returns
    -------
    Answer or None
        ``None`` for a 2xx status; status ``error`` with the body for another client error (4xx).

    Raises
    ------
    RetryableError
        On HTTP 408 (status ``"timeout"``), 429 or 5xx, with ``retry_after`` from ``Retry-After``.
    """
    code = response.status_code
    if code in (408, 429) or code >= 500:
        raise RetryableError(
            f"{url}: HTTP {code} {text[:200]}".rstrip(),
            status="timeout" if code == 408 else "error",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if 200 <= code < 300:
        return None
    hint = " (is the API key set?)" if code in (401, 403) else ""
    return Answer(None, "error", raw=text[:MAX_RAW_CHARS], error=f"{url}: HTTP {code}{hint} {text[:300]}".rstrip())
