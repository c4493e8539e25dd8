"""An agent asking any OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, hosted APIs).

One triplet is one ``POST {base_url}/chat/completions`` request. In text mode the prompt carries
the three clips' captions; in video mode one user message carries the prompt, then for each clip
a label ("Video 1:") and its frames as JPEG data URLs (:mod:`oddoneout.media.frames`).

Failures follow :class:`~oddoneout.agents.base.AsyncAgent`: transient ones (HTTP 408/429/5xx,
dropped connections, timeouts) are raised as :class:`~oddoneout.agents.base.RetryableError`
for the runner to retry; permanent ones come back as an :class:`~oddoneout.agents.base.Answer`
with status ``error``, ``refused``, ``unparseable`` or ``ambiguous``, keeping the raw text.

The API key is read from an environment variable and sent only in the ``Authorization`` header;
it never appears in :attr:`OpenAIChatAgent.describe`, ``repr``, answers or error messages.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import re
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from oddoneout.agents.base import Answer, RetryableError
from oddoneout.agents.http_transport import AiohttpClient, fast_client
from oddoneout.agents.parsing import choice_from_logprobs, parse_answer
from oddoneout.agents.prompts import PromptTemplate
from oddoneout.errors import InputError
from oddoneout.media.frames import FrameSpec, frames_as_data_urls

#: Accepted values of ``constrained``.
CONSTRAINED = ("auto", "none", "guided_choice", "structured_outputs", "json", "json_object")
#: The answers a constrained decoder may produce: the shown positions, 1-based.
OPTIONS = ("1", "2", "3")
#: JSON schema of the ``constrained="json"`` answer.
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"odd_one_out": {"type": "integer", "enum": [1, 2, 3]}},
    "required": ["odd_one_out"],
    "additionalProperties": False,
}
TOP_LOGPROBS = 20  # the most OpenAI and vLLM (default --max-logprobs) return
MAX_RAW_CHARS = 2000

# the requested answer form in free text, to find which token carries the answer digit
_ANSWER_DIGIT = re.compile(r"(?i)\b(?:video|clip)\s*#?\s*([123])\b(?=[\s*_\"']+(?:is|was)\s+(?:\w+\s+){0,2}different)")


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


def _public_url(url: str) -> str:
    """``url`` without any user:password part (for records and messages)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class OpenAIChatAgent:
    """Odd-one-out judgments from a model behind an OpenAI-compatible ``/chat/completions`` API.

    Satisfies :class:`~oddoneout.agents.base.AsyncAgent`.

    Parameters
    ----------
    name : str
        The system this agent stands for (``"llm"``, ``"mllm"``).
    model : str
        Model name sent to the server and recorded with each judgment.
    base_url : str
        The API root, e.g. ``"http://127.0.0.1:8000/v1"``; requests go to ``{base_url}/chat/completions``.
    prompt : PromptTemplate
        A ``"text"`` prompt (captions) or a ``"video"`` prompt (frames).
    captions : mapping of str to str, optional
        Item id -> caption; required by a text prompt.
    videos : mapping of str to path, optional
        Item id -> video file; required by a video prompt (files are checked to exist).
    frames : FrameSpec
        How frames are taken from each video.
    api_key_env : str or None
        Name of the environment variable holding the API key, read when the agent is built. An
        unset or empty variable, or ``None``, sends no ``Authorization`` header (local servers).
    constrained : {"auto", "none", "guided_choice", "structured_outputs", "json", "json_object"}
        Constrained decoding of the answer to one of ``"1"``, ``"2"``, ``"3"``:
        ``"guided_choice"`` sends vLLM's ``guided_choice`` field (vLLM before 0.12),
        ``"structured_outputs"`` sends ``structured_outputs={"choice": [...]}`` (vLLM 0.10.2 and
        later), ``"json"`` sends ``response_format`` with a JSON schema ``{"odd_one_out": 1|2|3}``
        (OpenAI, vLLM, llama.cpp's ``llama-server``, Ollama), ``"json_object"`` sends
        ``response_format={"type": "json_object", "schema": ...}`` (llama-cpp-python's server),
        ``"none"`` lets the model answer in free text.
        ``"auto"`` is ``"none"``: a constraint changes what the model may say (no description
        before the answer), so it is never switched on behind the user's back.
    logprobs : bool
        Ask for token log-probabilities; when the server returns them for the token that carries
        the answer, :attr:`Answer.probs` holds the three options' probabilities.
    temperature, max_tokens, seed
        Sampling settings sent with every request (``seed`` only when given). The paper's prompts
        ask for a description before the answer: give them a few hundred tokens.
    timeout : float
        Seconds allowed per request.
    client : httpx.AsyncClient or AiohttpClient, optional
        A client to use (it is not closed by :meth:`aclose`); by default one is made on first use
        by :func:`~oddoneout.agents.http_transport.fast_client` (aiohttp's connection pool behind
        httpx's API and exceptions, which keeps up with hundreds of concurrent requests) and
        closed by :meth:`aclose`.

    Raises
    ------
    InputError
        When the prompt's mode lacks its captions or videos, a video file is missing, or a
        setting is out of range.
    """

    #: Videos whose frames are kept in memory (least recently used are dropped first).
    frame_cache_size = 512

    def __init__(
        self,
        name: str,
        model: str,
        base_url: str,
        *,
        prompt: PromptTemplate,
        captions: Mapping[str, str] | None = None,
        videos: Mapping[str, str | os.PathLike] | None = None,
        frames: FrameSpec = FrameSpec(),
        api_key_env: str | None = "OPENAI_API_KEY",
        constrained: str = "auto",
        logprobs: bool = True,
        temperature: float = 0.0,
        max_tokens: int = 32,
        seed: int | None = None,
        timeout: float = 60.0,
        client: httpx.AsyncClient | AiohttpClient | None = None,
    ) -> None:
        if not isinstance(prompt, PromptTemplate):
            raise InputError(f"agent {name!r}: prompt must be a PromptTemplate, got {type(prompt).__name__}")
        if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
            raise InputError(f"agent {name!r}: base_url must be an http(s) URL like http://127.0.0.1:8000/v1")
        if constrained not in CONSTRAINED:
            raise InputError(f"agent {name!r}: constrained must be one of {CONSTRAINED}, got {constrained!r}")
        if not isinstance(frames, FrameSpec):
            raise InputError(f"agent {name!r}: frames must be a FrameSpec, got {type(frames).__name__}")
        if not (isinstance(max_tokens, int) and max_tokens >= 1):
            raise InputError(f"agent {name!r}: max_tokens must be a positive integer, got {max_tokens!r}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise InputError(f"agent {name!r}: temperature must be >= 0, got {temperature!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise InputError(f"agent {name!r}: timeout must be > 0 seconds, got {timeout!r}")
        self.name = name
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.prompt = prompt
        self.prompt_hash = prompt.hash
        self.frames = frames
        self.constrained = constrained
        self.logprobs = bool(logprobs)
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.seed = seed
        self.timeout = float(timeout)
        self.api_key_env = api_key_env
        self._url = f"{self.base_url}/chat/completions"
        self._shown_url = _public_url(self._url)
        self._captions: dict[str, str] = {}
        self._videos: dict[str, os.PathLike | str] = {}
        if prompt.mode == "text":
            if not captions:
                raise InputError(f"agent {name!r}: text prompt {prompt.name!r} needs captions (item id -> text)")
            self._captions = {str(k): v for k, v in captions.items()}
            empty = [k for k, v in self._captions.items() if not isinstance(v, str) or not v.strip()]
            if empty:
                raise InputError(f"agent {name!r}: empty or non-text caption for item id(s) {empty[:5]}")
        else:
            if not videos:
                raise InputError(f"agent {name!r}: video prompt {prompt.name!r} needs videos (item id -> file)")
            self._videos = {str(k): v for k, v in videos.items()}
            missing = [f"{k}: {v}" for k, v in self._videos.items() if not os.path.isfile(v)]
            if missing:
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                raise InputError(f"agent {name!r}: video file(s) not found: {'; '.join(missing[:3])}{more}")
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._secret = key.strip()
        self._headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
        self._client = client
        self._owns_client = client is None
        self._frame_cache: OrderedDict[str, list[str]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._pending: dict[str, asyncio.Future] = {}

    # -- records -------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"text"`` or ``"video"`` (the prompt's mode)."""
        return self.prompt.mode

    @property
    def applied_constraint(self) -> str:
        """The constraint actually sent (``"auto"`` resolved)."""
        return "none" if self.constrained == "auto" else self.constrained

    @property
    def describe(self) -> dict[str, Any]:
        """How this agent asks, for provenance records (never the API key, only its variable's name)."""
        return {
            "agent": "openai_chat",
            "name": self.name,
            "model": self.model,
            "base_url": _public_url(self.base_url),
            "mode": self.mode,
            "prompt": self.prompt.name,
            "prompt_hash": self.prompt_hash,
            "frames": self.frames.as_dict() if self.mode == "video" else None,
            "constrained": self.constrained,
            "applied_constraint": self.applied_constraint,
            "logprobs": self.logprobs,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "timeout": self.timeout,
            "api_key_env": self.api_key_env,
            "authenticated": bool(self._headers),
        }

    def __repr__(self) -> str:
        return (
            f"OpenAIChatAgent(name={self.name!r}, model={self.model!r}, base_url={_public_url(self.base_url)!r}, "
            f"mode={self.mode!r}, constrained={self.constrained!r})"
        )

    # -- requests ------------------------------------------------------------------------------

    def _check_shown(self, shown: tuple[str, str, str]) -> tuple[str, str, str]:
        if isinstance(shown, (str, bytes)) or len(shown) != 3:
            raise InputError(f"agent {self.name!r}: a triplet is 3 item ids, got {shown!r}")
        shown = tuple(str(item) for item in shown)
        table = self._captions if self.mode == "text" else self._videos
        unknown = [item for item in shown if item not in table]
        if unknown:
            what = "caption" if self.mode == "text" else "video"
            raise InputError(f"agent {self.name!r}: no {what} for item id(s) {unknown}")
        return shown

    def _frame_urls(self, item: str) -> list[str]:
        """Data URLs of one item's frames, decoded once and kept in a bounded cache."""
        with self._cache_lock:
            if item in self._frame_cache:
                self._frame_cache.move_to_end(item)
                return self._frame_cache[item]
        urls = frames_as_data_urls(self._videos[item], self.frames)
        with self._cache_lock:
            self._frame_cache[item] = urls
            while len(self._frame_cache) > self.frame_cache_size:
                self._frame_cache.popitem(last=False)
        return urls

    def _content(self, shown: tuple[str, str, str]) -> str | list[dict[str, Any]]:
        if self.mode == "text":
            return self.prompt.render([self._captions[item] for item in shown])
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.prompt.render()}]
        for position, item in enumerate(shown, start=1):
            parts.append({"type": "text", "text": f"Video {position}:"})
            parts.extend({"type": "image_url", "image_url": {"url": url}} for url in self._frame_urls(item))
        return parts

    def build_request(self, shown: tuple[str, str, str]) -> dict[str, Any]:
        """The JSON body (a dict) of the chat-completion request for the triplet ``shown`` (ids in the order shown).

        Raises
        ------
        InputError
            When an item id has no caption (text mode) or video (video mode), or a video does
            not decode.
        """
        shown = self._check_shown(shown)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": self._content(shown)}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = TOP_LOGPROBS
        constraint = self.applied_constraint
        if constraint == "guided_choice":
            body["guided_choice"] = list(OPTIONS)
        elif constraint == "structured_outputs":
            body["structured_outputs"] = {"choice": list(OPTIONS)}
        elif constraint == "json":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "odd_one_out", "schema": ANSWER_SCHEMA, "strict": True},
            }
        elif constraint == "json_object":
            body["response_format"] = {"type": "json_object", "schema": ANSWER_SCHEMA}
        return body

    async def _warm_frames(self, shown: tuple[str, str, str]) -> None:
        """Decode the triplet's frames in worker threads, once per video even when asked concurrently."""
        waits = []
        for item in shown:
            with self._cache_lock:
                if item in self._frame_cache:
                    continue
            future = self._pending.get(item)
            if future is None:
                future = asyncio.ensure_future(asyncio.to_thread(self._frame_urls, item))
                self._pending[item] = future
                future.add_done_callback(lambda _, item=item: self._pending.pop(item, None))
            waits.append(asyncio.shield(future))
        for wait in waits:
            await wait

    def _get_client(self) -> httpx.AsyncClient | AiohttpClient:
        if self._client is None:
            # aiohttp's connection pool behind httpx's API; the runner's concurrency bounds the connections
            self._client = fast_client(self.timeout)
        return self._client

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    async def ajudge(self, shown: tuple[str, str, str]) -> Answer:
        """Ask the server about one triplet.

        Parameters
        ----------
        shown : tuple of 3 str
            Item ids in the order shown.

        Returns
        -------
        Answer
            ``ok`` with the position named (and ``probs`` when log-probabilities came back);
            ``unparseable``/``ambiguous`` with the raw text; ``refused``; or ``error`` for a
            client error (HTTP 4xx) or a malformed response.

        Raises
        ------
        RetryableError
            On HTTP 408, 429 or 5xx (with ``retry_after`` from ``Retry-After``), a failed
            connection (status ``"error"``), or a timeout (status ``"timeout"``).
        InputError
            When an item id has no caption or video, or a video does not decode (caller bugs,
            not trial failures).
        """
        shown = self._check_shown(shown)
        if self.mode == "video":
            await self._warm_frames(shown)
        body = self.build_request(shown)
        try:
            response = await self._get_client().post(self._url, json=body, headers=self._headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            message = f"{self._shown_url}: no answer within {self.timeout:g} s ({type(exc).__name__})"
            raise RetryableError(self._redact(message), status="timeout") from None
        except httpx.DecodingError as exc:  # a body the transport could not decompress or decode
            message = f"malformed response from {self._shown_url}: {type(exc).__name__}: {exc}"
            return Answer(None, "error", error=self._redact(message)[:500])
        except httpx.RequestError as exc:  # connection refused or dropped, protocol errors
            message = f"{self._shown_url}: request failed ({type(exc).__name__}: {exc})"
            raise RetryableError(self._redact(message), status="error") from None
        text = self._redact(response.text)
        code = response.status_code
        if code in (408, 429) or code >= 500:
            raise RetryableError(
                f"{self._shown_url}: HTTP {code} {text[:200]}".rstrip(),
                status="timeout" if code == 408 else "error",
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if not 200 <= code < 300:
            hint = " (is the API key set?)" if code in (401, 403) else ""
            return Answer(
                None,
                "error",
                raw=text[:MAX_RAW_CHARS],
                error=f"{self._shown_url}: HTTP {code}{hint} {text[:300]}".rstrip(),
            )
        return self.read_completion(text)

    # -- responses -----------------------------------------------------------------------------

    def read_completion(self, text: str) -> Answer:
        """The :class:`Answer` in a chat-completion response body (JSON text), as the server sent it."""

        def malformed(why: str) -> Answer:
            return Answer(
                None, "error", raw=text[:MAX_RAW_CHARS], error=f"malformed response from {self._shown_url}: {why}"
            )

        try:
            payload = json.loads(text)
        except ValueError as exc:
            return malformed(f"not JSON ({exc})")
        if not isinstance(payload, dict):
            return malformed("not a JSON object")
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            if isinstance(payload.get("error"), (dict, str)):
                return malformed(f"server error {json.dumps(payload['error'])[:300]}")
            return malformed("no choices")
        first = choices[0]
        message = first.get("message")
        if not isinstance(message, dict):
            return malformed("choice without a message")
        usage = payload.get("usage")
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
        content = _message_text(message.get("content"))
        refusal = message.get("refusal")
        finish = first.get("finish_reason")
        if refusal or finish == "content_filter":
            why = f"the model refused: {refusal}" if refusal else "the server's content filter stopped the answer"
            return Answer(None, "refused", raw=self._redact(str(refusal or content or ""))[:MAX_RAW_CHARS],
                          error=why[:500], tokens=tokens)  # fmt: skip
        answer = self._parse_content(content)
        if answer.status != "ok":
            error = answer.error or ""
            if finish == "length":
                error += f" (the answer was cut at max_tokens={self.max_tokens})"
            return Answer(None, answer.status, probs=answer.probs, raw=answer.raw, error=error, tokens=tokens)
        probs = self._answer_probs(content, answer.choice, first.get("logprobs")) if self.logprobs else None
        return Answer(answer.choice, probs=probs, raw=content, tokens=tokens)

    def _parse_content(self, content: str | None) -> Answer:
        if self.applied_constraint in ("json", "json_object") and content:
            try:
                value = json.loads(content)
            except ValueError:
                value = None  # a server ignoring response_format: read the text instead
            if isinstance(value, dict):
                number = value.get("odd_one_out")
                if number in (1, 2, 3) and not isinstance(number, bool):
                    return Answer(number - 1, raw=content)
                return Answer(None, "unparseable", raw=content, error=f"odd_one_out is {number!r}, not 1, 2 or 3")
        return parse_answer(content)

    def _answer_offset(self, content: str, digit: str) -> int | None:
        """Character offset of the digit that gives the answer in ``content``, if it can be found."""
        if self.applied_constraint != "none":
            match = re.search(r"[123]", content)
            return match.start() if match and match.group() == digit else None
        if content.strip().strip(".") == digit:
            return content.index(digit)
        found = [m.start(1) for m in _ANSWER_DIGIT.finditer(content) if m.group(1) == digit]
        return found[-1] if found else None

    def _answer_probs(self, content: str, choice: int, logprobs: Any) -> tuple[float, float, float] | None:
        """The three options' probabilities at the token carrying the answer digit, when available."""
        entries = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not isinstance(entries, list) or not entries:
            return None
        digit = str(choice + 1)
        offset = self._answer_offset(content, digit)
        if offset is None:
            return None
        tokens = [entry.get("token") if isinstance(entry, dict) else None for entry in entries]
        if not all(isinstance(token, str) for token in tokens) or "".join(tokens) != content:
            return None  # token texts do not spell the answer (e.g. byte tokens): no position to trust
        start = 0
        for entry, token in zip(entries, tokens):
            if start <= offset < start + len(token):
                if token.strip() != digit:
                    return None
                try:
                    table = {str(alt["token"]): float(alt["logprob"]) for alt in entry.get("top_logprobs") or []}
                    table.setdefault(token, float(entry["logprob"]))
                    options = choice_from_logprobs(table)
                except (KeyError, TypeError, ValueError):
                    return None
                return options.probs
            start += len(token)
        return None

    # -- lifecycle -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the HTTP client if the agent made it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> OpenAIChatAgent:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _message_text(content: Any) -> str | None:
    """The text of a message's content (a string, or a list of parts with ``text``)."""
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return "".join(texts) if texts else None
    return None
