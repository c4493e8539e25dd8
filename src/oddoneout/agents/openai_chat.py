"""An agent asking any OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, hosted APIs).

One triplet is one ``POST {base_url}/chat/completions`` request. In text mode the prompt carries
the three clips' captions; in video mode one user message carries the prompt, then for each clip
a label ("Video 1:") and its frames as JPEG data URLs. The messages are built and the answers
read by :class:`~oddoneout.agents.chat_codec.ChatCodec`; this module sends them over HTTP and maps
HTTP failures with :mod:`oddoneout.agents.http_errors`.

Failures follow :class:`~oddoneout.agents.base.AsyncAgent`: transient ones (HTTP 408/429/5xx,
dropped connections, timeouts) are raised as :class:`~oddoneout.agents.base.RetryableError`
for the runner to retry; permanent ones come back as an :class:`~oddoneout.agents.base.Answer`
with status ``error``, ``refused``, ``unparseable`` or ``ambiguous``, keeping the raw text.

The API key is read from an environment variable and sent only in the ``Authorization`` header;
it never appears in :attr:`OpenAIChatAgent.describe`, ``repr``, answers or error messages.

An agent answers the kind of trial it was built for (``trial_type``): odd-one-out trials with
its ``prompt``, anchor and ranked trials with that kind's
:class:`~oddoneout.agents.reference_prompts.ReferencePrompt` (a built-in one unless given), whose
hash is the agent's ``prompt_hash``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping
from urllib.parse import urlsplit

import httpx

from oddoneout.agents.base import Answer, check_own_trial_type
from oddoneout.agents.chat_codec import FRAME_CACHE_SIZE, ChatCodec, images_in
from oddoneout.agents.http_errors import public_url, request_failure, status_failure
from oddoneout.agents.http_transport import AiohttpClient, fast_client
from oddoneout.agents.prompts import PromptTemplate
from oddoneout.agents.reference_prompts import ReferencePrompt
from oddoneout.errors import InputError
from oddoneout.media.frames import FrameSpec
from oddoneout.triplets import ODD_ONE_OUT, TrialType


class OpenAIChatAgent:
    """Judgments (odd-one-out, anchor or ranked) from a model behind an OpenAI-compatible ``/chat/completions`` API.

    Satisfies :class:`~oddoneout.agents.base.AsyncAgent`.

    Parameters
    ----------
    name : str
        The system this agent stands for (``"llm"``, ``"mllm"``).
    model : str
        Model name sent to the server and recorded with each judgment.
    base_url : str
        The API root, e.g. ``"http://127.0.0.1:8000/v1"``; requests go to ``{base_url}/chat/completions``.
    prompt, captions, videos, frames
        The prompt and what it shows, as for :class:`~oddoneout.agents.chat_codec.ChatCodec`.
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
    trial_type : TrialType
        The kind of trial the agent answers (odd-one-out by default); an anchor or ranked agent
        asks with ``reference_prompt`` and constrains only anchor answers (to ``"A"``/``"B"``).
    reference_prompt : ReferencePrompt, optional
        The prompt of an anchor or ranked agent, in the mode of ``prompt`` (which then only
        decides the mode); default the built-in one
        (:data:`~oddoneout.agents.reference_prompts.BUILTIN_REFERENCE_PROMPTS`).

    Raises
    ------
    InputError
        When the prompt's mode lacks its captions or videos, a video file is missing, or a
        setting is out of range.
    """

    #: Videos whose frames are kept in memory (least recently used are dropped first); read when an agent is built.
    frame_cache_size = FRAME_CACHE_SIZE

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
        trial_type: TrialType = ODD_ONE_OUT,
        reference_prompt: ReferencePrompt | None = None,
    ) -> None:
        if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
            raise InputError(f"agent {name!r}: base_url must be an http(s) URL like http://127.0.0.1:8000/v1")
        if not (math.isfinite(timeout) and timeout > 0):
            raise InputError(f"agent {name!r}: timeout must be > 0 seconds, got {timeout!r}")
        self.name = name
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.api_key_env = api_key_env
        self._url = f"{self.base_url}/chat/completions"
        self._shown_url = public_url(self._url)
        self.codec = ChatCodec(
            name,
            prompt=prompt,
            captions=captions,
            videos=videos,
            frames=frames,
            constrained=constrained,
            logprobs=logprobs,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            source=self._shown_url,
            frame_cache_size=self.frame_cache_size,
            reference_prompts={trial_type.name: reference_prompt} if reference_prompt is not None else None,
        )
        self.trial_type = trial_type
        #: The kinds of trial this agent answers (:func:`~oddoneout.agents.base.answers_trial_type`).
        self.trial_types = (trial_type.name,)
        self.prompt_hash = self.codec.prompt_for(trial_type).hash
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._secret = key.strip()
        self._headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
        self._client = client
        self._owns_client = client is None

    # -- records -------------------------------------------------------------------------------

    @property
    def prompt(self) -> PromptTemplate | ReferencePrompt:
        """The prompt the agent asks with (that of its trial type)."""
        return self.codec.prompt_for(self.trial_type)

    @property
    def frames(self) -> FrameSpec:
        """How frames are taken from each video."""
        return self.codec.frames

    @property
    def constrained(self) -> str:
        """The ``constrained`` setting as given."""
        return self.codec.constrained

    @property
    def applied_constraint(self) -> str:
        """The constraint actually sent (``"auto"`` resolved)."""
        return self.codec.applied_constraint

    @property
    def mode(self) -> str:
        """``"text"`` or ``"video"`` (the prompt's mode)."""
        return self.codec.mode

    @property
    def logprobs(self) -> bool:
        """Whether token log-probabilities are asked for."""
        return self.codec.logprobs

    @property
    def temperature(self) -> float:
        """Sampling temperature of every request."""
        return self.codec.temperature

    @property
    def max_tokens(self) -> int:
        """Tokens allowed for each answer."""
        return self.codec.max_tokens

    @property
    def seed(self) -> int | None:
        """Sampling seed sent with every request, if any."""
        return self.codec.seed

    @property
    def describe(self) -> dict[str, Any]:
        """How this agent asks, for provenance records (never the API key, only its variable's name)."""
        return {
            "agent": "openai_chat",
            "name": self.name,
            "model": self.model,
            "base_url": public_url(self.base_url),
            "mode": self.mode,
            "prompt": self.prompt.name,
            "prompt_hash": self.prompt_hash,
            "trial_type": self.trial_type.spec,
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
            f"OpenAIChatAgent(name={self.name!r}, model={self.model!r}, base_url={public_url(self.base_url)!r}, "
            f"mode={self.mode!r}, constrained={self.constrained!r})"
        )

    # -- requests ------------------------------------------------------------------------------

    def build_request(self, shown: tuple[str, ...], trial_type: TrialType = ODD_ONE_OUT) -> dict[str, Any]:
        """The JSON body (a dict) of the chat-completion request for the trial ``shown`` (ids in the order shown).

        Raises
        ------
        InputError
            When an item id has no caption (text mode) or video (video mode), a video does not
            decode, or ``trial_type`` is not the agent's.
        """
        check_own_trial_type(self, trial_type)
        return self.codec.request_body(self.model, shown, trial_type)

    def _get_client(self) -> httpx.AsyncClient | AiohttpClient:
        if self._client is None:
            # aiohttp's connection pool behind httpx's API; the runner's concurrency bounds the connections
            self._client = fast_client(self.timeout)
        return self._client

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    async def ajudge(self, shown: tuple[str, ...], trial_type: TrialType = ODD_ONE_OUT) -> Answer:
        """Ask the server about one trial.

        Parameters
        ----------
        shown : tuple of str
            Item ids in the order shown (for an anchor or ranked trial, the reference first).
        trial_type : TrialType
            The trial's kind: the agent's own (odd-one-out by default).

        Returns
        -------
        Answer
            ``ok`` with the position named (and ``probs`` when log-probabilities of an
            odd-one-out answer came back; ``ranking`` for a ranked trial ranking several);
            ``unparseable``/``ambiguous`` with the raw text; ``refused``; or ``error`` for a
            client error (HTTP 4xx) or a malformed response.

        Raises
        ------
        RetryableError
            On HTTP 408, 429 or 5xx (with ``retry_after`` from ``Retry-After``), a failed
            connection (status ``"error"``), or a timeout (status ``"timeout"``).
        InputError
            When an item id has no caption or video, a video does not decode, or the trial is of
            another kind than the agent's (caller bugs, not trial failures).
        """
        check_own_trial_type(self, trial_type)
        await self.codec.warm(shown, trial_type)
        body = self.build_request(shown, trial_type)
        try:
            response = await self._get_client().post(self._url, json=body, headers=self._headers, timeout=self.timeout)
        except httpx.RequestError as exc:
            return request_failure(exc, self._shown_url, self.timeout, self._redact)
        text = self._redact(response.text)
        failure = status_failure(response, text, self._shown_url)
        answer = failure if failure is not None else self.codec.read_completion(text, trial_type)
        return dataclasses.replace(answer, images=images_in(body["messages"]))

    def read_completion(self, text: str, trial_type: TrialType = ODD_ONE_OUT) -> Answer:
        """The :class:`Answer` in a chat-completion response body (JSON text), secrets removed."""
        return self.codec.read_completion(self._redact(text), trial_type)

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
