"""HTTP clients that stay fast with hundreds of concurrent requests, with httpx's API and exceptions.

httpx's own connection pool slows down sharply as concurrent connections grow
(https://github.com/encode/httpx/issues/3215): over loopback, 64-256 concurrent chat requests
got a tenth to a thirtieth of what the same server served to aiohttp. Two ways around it, both
sending through aiohttp's connection pool:

- :class:`AiohttpClient`, the remote agents' default (:func:`fast_client`): ``post`` only, with
  httpx's request arguments, :class:`httpx.Response` answers and httpx exceptions, and none of
  httpx's per-request machinery (the most requests per second per core);
- :class:`AiohttpTransport`, for an ``httpx.AsyncClient`` with everything httpx offers
  (:func:`async_client`).

Behaviour kept from httpx's own transport: redirects and cookies are left to the httpx client
(aiohttp follows none and stores none), compressed bodies are decoded by httpx (a bad one raises
:class:`httpx.DecodingError`), TLS uses httpx's certificate settings, proxies come from the
environment (``HTTP(S)_PROXY``, ``NO_PROXY``), and failures are raised as the httpx exceptions
that name them: :class:`httpx.ConnectTimeout`, :class:`httpx.ReadTimeout`,
:class:`httpx.ConnectError`, :class:`httpx.ReadError`, :class:`httpx.RemoteProtocolError`.
"""

from __future__ import annotations

import asyncio
import codecs
import urllib.request
from json import dumps as json_dumps
from typing import Any, Mapping
from urllib.parse import urlsplit

import httpx

from oddoneout import __version__

try:
    import aiohttp
except ImportError:  # the "remote" extra installs it; without it, httpx's own pool is used
    aiohttp = None

# request headers aiohttp sets itself from the URL and the body
_HOP_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding"})
# the headers httpx adds itself (AiohttpClient sends the same); aiohttp must not add its own
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_DEFAULT_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "User-Agent": f"oddoneout/{__version__}"}
# waiting for a connection or connecting took too long (aiohttp >= 3.10 tells it apart from reading)
_CONNECT_TIMEOUTS = getattr(aiohttp, "ConnectionTimeoutError", ()) if aiohttp is not None else ()


class _AiohttpPool:
    """One aiohttp session made lazily in the running event loop; sends a request, maps its failures."""

    def __init__(self, max_connections: int | None, trust_env: bool) -> None:
        if aiohttp is None:
            raise ImportError("sending through aiohttp needs aiohttp: pip install 'oddoneout[remote]'")
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"max_connections must be >= 1 or None, got {max_connections!r}")
        self.max_connections = max_connections
        self.trust_env = trust_env
        # aiohttp's own trust_env reads ~/.netrc in a worker thread for every request: read proxies once
        self._proxies = urllib.request.getproxies_environment() if trust_env else {}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections or 0, limit_per_host=0, ssl=httpx.create_ssl_context()
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes, so a bad body is an httpx.DecodingError
                cookie_jar=aiohttp.DummyCookieJar(),  # cookies are the httpx client's business
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    async def send(
        self,
        method: str,
        url: str,
        host: str,
        scheme: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeouts: Mapping[str, float | None],
        request: httpx.Request | None = None,
    ) -> httpx.Response:
        """Send one request and read its whole body; failures raised as httpx exceptions."""
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),  # waiting for a free connection
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        try:
            async with self.session().request(
                method,
                url,
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
                proxy=self._proxy_for(host, scheme) if self._proxies else None,
                skip_auto_headers=_SKIP_AUTO_HEADERS,
            ) as response:
                content = await response.read()
        except _CONNECT_TIMEOUTS as exc:
            raise httpx.ConnectTimeout(_describe(exc), request=request) from exc
        except (asyncio.TimeoutError, TimeoutError) as exc:  # aiohttp's socket-read and other timeouts
            raise httpx.ReadTimeout(_describe(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS
            raise httpx.ConnectError(_describe(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(_describe(exc), request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:  # dropped connections, truncated bodies
            raise httpx.ReadError(_describe(exc), request=request) from exc
        version = response.version
        answer = httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={
                "http_version": f"HTTP/{version.major}.{version.minor}".encode() if version else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )
        # the charset aiohttp already parsed, as httpx would choose it (a tenth of httpx's parsing time)
        answer.encoding = _known_encoding(response.charset) or "utf-8"
        return answer

    def _proxy_for(self, host: str, scheme: str) -> str | None:
        if urllib.request.proxy_bypass_environment(host, self._proxies):
            return None
        return self._proxies.get(scheme) or self._proxies.get("all")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends every request through one aiohttp session.

    Parameters
    ----------
    max_connections : int or None
        Most connections open at once (requests beyond wait for one, within the request's pool
        timeout); ``None`` for no limit (the caller bounds concurrency).
    trust_env : bool
        Send through the proxies of the environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
        ``ALL_PROXY``, ``NO_PROXY``; read once, here), as httpx does by default.

    Notes
    -----
    The aiohttp session is made on the first request, in the event loop that sends it; a
    transport serves one event loop at a time and is closed with :meth:`aclose` (closing the
    httpx client closes it), after which it may serve another loop.
    """

    def __init__(self, max_connections: int | None = None, trust_env: bool = True) -> None:
        self._pool = _AiohttpPool(max_connections, trust_env)

    @property
    def is_open(self) -> bool:
        """Whether an aiohttp session is open."""
        return self._pool.is_open

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole response body."""
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() not in _HOP_HEADERS
        ]
        body = await request.aread()
        url = request.url
        timeouts = request.extensions.get("timeout", {})
        return await self._pool.send(request.method, str(url), url.host, url.scheme, headers, body, timeouts, request)

    async def aclose(self) -> None:
        """Close the aiohttp session and its connections (idempotent)."""
        await self._pool.aclose()


class AiohttpClient:
    """A lean asynchronous HTTP client: httpx's ``post`` and exceptions over aiohttp's pool.

    Sends the headers httpx sends by default (``Accept``, ``Accept-Encoding``; ``User-Agent`` names oddoneout),
    returns :class:`httpx.Response` objects (compressed bodies decoded; their ``request`` is not
    set) and raises what httpx raises: :class:`httpx.TimeoutException` subclasses,
    :class:`httpx.ConnectError`, :class:`httpx.ReadError`, :class:`httpx.RemoteProtocolError`,
    :class:`httpx.DecodingError`. No redirects are followed and no cookies kept.

    Parameters
    ----------
    timeout : float
        Default seconds per request (waiting for a connection, connecting, and between reads).
    max_connections : int or None
        Most connections open at once; ``None`` for no limit (the caller bounds concurrency).
    trust_env : bool
        Send through the environment's proxies (read once, here).
    """

    def __init__(self, timeout: float = 60.0, max_connections: int | None = None, trust_env: bool = True) -> None:
        self.timeout = float(timeout)
        self._pool = _AiohttpPool(max_connections, trust_env)
        self._closed = False

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called (a closed client opens a new session on its next request)."""
        return self._closed

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """POST ``json`` (encoded as httpx does) or ``content`` to ``url`` and read the answer."""
        sent = dict(_DEFAULT_HEADERS)
        if json is not None:
            body = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        else:
            body = content.encode() if isinstance(content, str) else content
        if headers:
            sent.update(headers)
        seconds = self.timeout if timeout is None else float(timeout)
        parts = urlsplit(url)
        timeouts = {"pool": seconds, "connect": seconds, "read": seconds}
        self._closed = False
        host = parts.hostname or ""
        response = await self._pool.send("POST", url, host, parts.scheme, list(sent.items()), body, timeouts)
        response.read()  # decodes the body: a corrupt compressed one raises httpx.DecodingError here
        return response

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""
        await self._pool.aclose()
        self._closed = True

    async def __aenter__(self) -> AiohttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _known_encoding(name: str | None) -> str | None:
    if not name:
        return None
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fast_client(timeout: float, max_connections: int | None = None) -> AiohttpClient | httpx.AsyncClient:
    """The client remote agents make by default: :class:`AiohttpClient`, or httpx's when aiohttp is missing.

    Parameters
    ----------
    timeout : float
        Default seconds per request.
    max_connections : int or None
        Most connections open at once; ``None`` for no limit.
    """
    if aiohttp is not None:
        return AiohttpClient(timeout, max_connections)
    return _httpx_pool_client(timeout, max_connections)


def async_client(timeout: float, max_connections: int | None = None) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over :class:`AiohttpTransport` (httpx's own pool when aiohttp is missing).

    Parameters
    ----------
    timeout : float
        Default seconds per request (connect, read, write and pool alike).
    max_connections : int or None
        Most connections open at once; ``None`` for no limit.
    """
    if aiohttp is not None:
        return httpx.AsyncClient(transport=AiohttpTransport(max_connections), timeout=timeout)
    return _httpx_pool_client(timeout, max_connections)


def _httpx_pool_client(timeout: float, max_connections: int | None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(limits=limits, timeout=timeout)
