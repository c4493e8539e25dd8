"""What a chat model is asked about a triplet, and how its reply (a chat completion) becomes an :class:`Answer`.

Shared by :class:`~oddoneout.agents.openai_chat.OpenAIChatAgent` (a server over HTTP) and
:class:`~oddoneout.agents.vllm_engine.VLLMEngineAgent` (vLLM's engine in this process), so a study
can move between the two without changing a single judgment's prompt or parsing. In text mode the
one user message is the prompt with the three clips' captions; in video mode it holds the prompt,
then for each clip a label ("Video 1:") and its frames as JPEG data URLs
(:class:`~oddoneout.media.frames.FrameCache`).

Anchor and ranked trials (a reference, then the options) are asked with a
:class:`~oddoneout.agents.reference_prompts.ReferencePrompt`: in text mode its rendering holds the
reference's caption and the lettered options' captions; in video mode the message holds the
prompt, then "Reference:" and the reference's frames, then "Option A:", "Option B:"... each with
its option's frames. Their answers are read by
:func:`~oddoneout.agents.reference_prompts.read_anchor_answer` and
:func:`~oddoneout.agents.reference_prompts.read_ranked_answer`; a constraint on an anchor trial
limits the answer to ``"A"``/``"B"`` (JSON: ``{"more_similar": "A"|"B"}``), a ranked trial's
answer is always free text.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Mapping, Sequence

from oddoneout.agents.base import MAX_RAW_CHARS, Answer
from oddoneout.agents.parsing import choice_from_logprobs, parse_answer
from oddoneout.agents.prompts import PromptTemplate
from oddoneout.agents.reference_prompts import (
    BUILTIN_REFERENCE_PROMPTS,
    LETTERS,
    ReferencePrompt,
    ReferenceReading,
    read_anchor_answer,
    read_ranked_answer,
)
from oddoneout.errors import InputError
from oddoneout.media.frames import FrameCache, FrameSpec
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, TrialType

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
#: The answers a constrained decoder may produce for an anchor trial: the options' letters.
ANCHOR_OPTIONS = ("A", "B")
#: JSON schema of the ``constrained="json"`` answer to an anchor trial.
ANCHOR_SCHEMA = {
    "type": "object",
    "properties": {"more_similar": {"type": "string", "enum": list(ANCHOR_OPTIONS)}},
    "required": ["more_similar"],
    "additionalProperties": False,
}
TOP_LOGPROBS = 20  # the most OpenAI and vLLM (default --max-logprobs) return
#: Videos whose frames are kept in memory by default.
FRAME_CACHE_SIZE = 512

# the requested answer form in free text, to find which token carries the answer digit
_ANSWER_DIGIT = re.compile(r"(?i)\b(?:video|clip)\s*#?\s*([123])\b(?=[\s*_\"']+(?:is|was)\s+(?:\w+\s+){0,2}different)")


class ChatCodec:
    """The chat messages of a triplet and the reading of a chat completion, for one prompt and constraint.

    Parameters
    ----------
    name : str
        The system (named in error messages).
    prompt : PromptTemplate
        A ``"text"`` prompt (captions) or a ``"video"`` prompt (frames).
    captions : mapping of str to str, optional
        Item id -> caption; required by a text prompt.
    videos : mapping of str to path, optional
        Item id -> video file; required by a video prompt (files are checked to exist).
    frames : FrameSpec
        How frames are taken from each video.
    constrained : {"auto", "none", "guided_choice", "structured_outputs", "json", "json_object"}
        The constraint on the answer (see :class:`~oddoneout.agents.openai_chat.OpenAIChatAgent`);
        it decides the request's constraint field and how the answer is read.
    logprobs : bool
        Ask for token log-probabilities and read the options' probabilities from them.
    temperature, max_tokens, seed
        Sampling settings of every request (``seed`` only when given); ``max_tokens`` is named
        when an answer was cut.
    source : str
        Where completions come from, for error messages (a URL without credentials, or the engine).
    frame_cache_size : int
        Videos whose frames are kept in memory.
    reference_prompts : mapping of str to ReferencePrompt, optional
        The prompt of each kind of reference trial (``"anchor"``, ``"ranked"``) in the prompt's
        mode; a kind left out is asked with its built-in prompt
        (:data:`~oddoneout.agents.reference_prompts.BUILTIN_REFERENCE_PROMPTS`).

    Raises
    ------
    InputError
        When the prompt's mode lacks its captions or videos, a video file is missing, a
        reference prompt is of another mode, or a setting is out of range.
    """

    def __init__(
        self,
        name: str,
        *,
        prompt: PromptTemplate,
        captions: Mapping[str, str] | None = None,
        videos: Mapping[str, str | os.PathLike] | None = None,
        frames: FrameSpec = FrameSpec(),
        constrained: str = "auto",
        logprobs: bool = True,
        temperature: float = 0.0,
        max_tokens: int = 32,
        seed: int | None = None,
        source: str = "the model",
        frame_cache_size: int = FRAME_CACHE_SIZE,
        reference_prompts: Mapping[str, ReferencePrompt] | None = None,
    ) -> None:
        if not isinstance(prompt, PromptTemplate):
            raise InputError(f"agent {name!r}: prompt must be a PromptTemplate, got {type(prompt).__name__}")
        if constrained not in CONSTRAINED:
            raise InputError(f"agent {name!r}: constrained must be one of {CONSTRAINED}, got {constrained!r}")
        if not isinstance(frames, FrameSpec):
            raise InputError(f"agent {name!r}: frames must be a FrameSpec, got {type(frames).__name__}")
        if not (isinstance(max_tokens, int) and max_tokens >= 1):
            raise InputError(f"agent {name!r}: max_tokens must be a positive integer, got {max_tokens!r}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise InputError(f"agent {name!r}: temperature must be >= 0, got {temperature!r}")
        self.name = name
        self.prompt = prompt
        self.frames = frames
        self.constrained = constrained
        self.logprobs = bool(logprobs)
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.seed = seed
        self.source = source
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
        self.frame_cache = FrameCache(frames, frame_cache_size)
        self.reference_prompts = {kind: BUILTIN_REFERENCE_PROMPTS[(kind, prompt.mode)] for kind in ("anchor", "ranked")}
        for kind, given in (reference_prompts or {}).items():
            if kind not in self.reference_prompts:
                raise InputError(f"agent {name!r}: no reference prompt for {kind!r} trials (anchor or ranked)")
            if not isinstance(given, ReferencePrompt) or given.mode != prompt.mode:
                raise InputError(f"agent {name!r}: the {kind} prompt must be a {prompt.mode} ReferencePrompt")
            self.reference_prompts[kind] = given

    def prompt_for(self, trial_type: TrialType = ODD_ONE_OUT) -> PromptTemplate | ReferencePrompt:
        """The prompt trials of ``trial_type`` are asked with."""
        if trial_type == ODD_ONE_OUT:
            return self.prompt
        if trial_type.name not in self.reference_prompts:
            raise InputError(f"agent {self.name!r}: no prompt for {trial_type.spec} trials")
        return self.reference_prompts[trial_type.name]

    @property
    def mode(self) -> str:
        """``"text"`` or ``"video"`` (the prompt's mode)."""
        return self.prompt.mode

    @property
    def applied_constraint(self) -> str:
        """The constraint actually sent (``"auto"`` resolved to ``"none"``)."""
        return "none" if self.constrained == "auto" else self.constrained

    # -- requests ------------------------------------------------------------------------------

    def check_shown(self, shown: tuple[str, ...], trial_type: TrialType = ODD_ONE_OUT) -> tuple[str, ...]:
        """``shown`` as str item ids (as many as ``trial_type`` shows) that have a caption or a video.

        Raises
        ------
        InputError
            When ``shown`` is not ``trial_type.n_shown`` ids or one of them is unknown.
        """
        if isinstance(shown, (str, bytes)) or len(shown) != trial_type.n_shown:
            what = "a triplet" if trial_type == ODD_ONE_OUT else f"a {trial_type.spec} trial"
            raise InputError(f"agent {self.name!r}: {what} is {trial_type.n_shown} item ids, got {shown!r}")
        shown = tuple(str(item) for item in shown)
        table = self._captions if self.mode == "text" else self._videos
        unknown = [item for item in shown if item not in table]
        if unknown:
            what = "caption" if self.mode == "text" else "video"
            raise InputError(f"agent {self.name!r}: no {what} for item id(s) {unknown}")
        return shown

    async def warm(self, shown: tuple[str, ...], trial_type: TrialType = ODD_ONE_OUT) -> None:
        """Decode the trial's frames in worker threads (video mode; nothing to do in text mode)."""
        if self.mode == "video":
            await self.frame_cache.warm(self._videos[item] for item in self.check_shown(shown, trial_type))

    def messages(self, shown: tuple[str, ...], trial_type: TrialType = ODD_ONE_OUT) -> list[dict[str, Any]]:
        """The chat messages for the trial ``shown`` (item ids in the order shown) of ``trial_type``.

        Raises
        ------
        InputError
            When an item id has no caption (text mode) or video (video mode), or a video does
            not decode.
        """
        shown = self.check_shown(shown, trial_type)
        if trial_type != ODD_ONE_OUT:
            return self._reference_messages(shown, trial_type)
        if self.mode == "text":
            content: str | list[dict[str, Any]] = self.prompt.render([self._captions[item] for item in shown])
        else:
            content = [{"type": "text", "text": self.prompt.render()}]
            for position, item in enumerate(shown, start=1):
                content.append({"type": "text", "text": f"Video {position}:"})
                urls = self.frame_cache.data_urls(self._videos[item])
                content.extend({"type": "image_url", "image_url": {"url": url}} for url in urls)
        return [{"role": "user", "content": content}]

    def _reference_messages(self, shown: tuple[str, ...], trial_type: TrialType) -> list[dict[str, Any]]:
        prompt = self.prompt_for(trial_type)
        n_options, n_ranked = trial_type.n_shown - 1, trial_type.n_ranked
        if self.mode == "text":
            captions = [self._captions[item] for item in shown]
            return [{"role": "user", "content": prompt.render(captions[0], captions[1:], n_options, n_ranked)}]
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt.render(None, None, n_options, n_ranked)}]
        for position, item in enumerate(shown):
            label = "Reference:" if position == 0 else f"Option {LETTERS[position - 1]}:"
            content.append({"type": "text", "text": label})
            urls = self.frame_cache.data_urls(self._videos[item])
            content.extend({"type": "image_url", "image_url": {"url": url}} for url in urls)
        return [{"role": "user", "content": content}]

    def constrains(self, trial_type: TrialType = ODD_ONE_OUT) -> bool:
        """Whether answers to ``trial_type`` trials are constrained (a ranked trial's never are)."""
        return self.applied_constraint != "none" and trial_type in (ODD_ONE_OUT, ANCHOR)

    def request_body(self, model: str, shown: tuple[str, ...], trial_type: TrialType = ODD_ONE_OUT) -> dict[str, Any]:
        """The JSON body (a dict) of the chat-completion request for ``model`` and the trial ``shown``.

        Raises
        ------
        InputError
            As :meth:`messages`.
        """
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages(shown, trial_type),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = TOP_LOGPROBS
        if not self.constrains(trial_type):
            return body
        anchor = trial_type == ANCHOR
        options, schema = (ANCHOR_OPTIONS, ANCHOR_SCHEMA) if anchor else (OPTIONS, ANSWER_SCHEMA)
        constraint = self.applied_constraint
        if constraint == "guided_choice":
            body["guided_choice"] = list(options)
        elif constraint == "structured_outputs":
            body["structured_outputs"] = {"choice": list(options)}
        elif constraint == "json":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "anchor" if anchor else "odd_one_out", "schema": schema, "strict": True},
            }
        elif constraint == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        return body

    # -- responses -----------------------------------------------------------------------------

    def read_completion(self, text: str, trial_type: TrialType = ODD_ONE_OUT) -> Answer:
        """The :class:`Answer` in a chat-completion response body (JSON text) to a trial of ``trial_type``.

        Returns
        -------
        Answer
            ``ok`` with the position named (and ``probs`` when the log-probabilities of an
            odd-one-out answer digit came back; an anchor or ranked answer carries the shown
            positions of the options chosen, ``ranking`` when several are ranked, and no
            ``probs``); ``unparseable``/``ambiguous`` with the raw text; ``refused``; or
            ``error`` for a malformed body.
        """

        def malformed(why: str) -> Answer:
            error = f"malformed response from {self.source}: {why}"
            return Answer(None, "error", raw=text[:MAX_RAW_CHARS], error=error)

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
        usage = usage_counts(payload.get("usage"))
        content = _message_text(message.get("content"))
        refusal = message.get("refusal")
        finish = first.get("finish_reason")
        if refusal or finish == "content_filter":
            why = f"the model refused: {refusal}" if refusal else "the server's content filter stopped the answer"
            return Answer(None, "refused", raw=str(refusal or content or "")[:MAX_RAW_CHARS],
                          error=why[:500], **usage)  # fmt: skip
        if trial_type != ODD_ONE_OUT:
            answer = self._parse_reference(content, trial_type)
        else:
            answer = self._parse_content(content)
        if answer.status != "ok":
            error = answer.error or ""
            if finish == "length":
                error += f" (the answer was cut at max_tokens={self.max_tokens})"
            return Answer(None, answer.status, probs=answer.probs, raw=answer.raw, error=error, **usage)
        if trial_type != ODD_ONE_OUT:
            return Answer(answer.choice, raw=content, ranking=answer.ranking, **usage)
        probs = self._answer_probs(content, answer.choice, first.get("logprobs")) if self.logprobs else None
        return Answer(answer.choice, probs=probs, raw=content, **usage)

    def _parse_reference(self, content: str | None, trial_type: TrialType) -> Answer:
        """The answer to an anchor or ranked trial (a constrained anchor answer is a letter or JSON)."""
        n_options = trial_type.n_shown - 1
        text = content
        if trial_type == ANCHOR and self.constrains(trial_type) and content:
            try:
                value = json.loads(content)
            except ValueError:
                value = None  # a plain letter, or a server ignoring response_format: read the text
            if isinstance(value, dict):
                letter = value.get("more_similar")
                if letter not in ANCHOR_OPTIONS:
                    return Answer(None, "unparseable", raw=content, error=f"more_similar is {letter!r}, not 'A' or 'B'")
                text = letter
        if trial_type == ANCHOR:
            reading = read_anchor_answer(text, n_options)
        else:
            reading = read_ranked_answer(text, n_options, trial_type.n_ranked)
        return reading_answer(reading, content, trial_type.n_ranked)

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


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage_counts(usage: Any) -> dict[str, int | None]:
    """The token counts of a completion's ``usage`` object, as :class:`Answer` fields.

    Returns
    -------
    dict
        ``tokens`` (``total_tokens``; prompt plus completion when the server sent only those),
        ``tokens_in`` (``prompt_tokens``) and ``tokens_out`` (``completion_tokens``), each
        ``None`` when the server did not count it (a missing or malformed field).
    """
    usage = usage if isinstance(usage, dict) else {}
    tokens_in, tokens_out = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    total = _count(usage.get("total_tokens"))
    if total is None and tokens_in is not None and tokens_out is not None:
        total = tokens_in + tokens_out
    return {"tokens": total, "tokens_in": tokens_in, "tokens_out": tokens_out}


def images_in(messages: Sequence[Mapping[str, Any]]) -> int:
    """The images (video frames as ``image_url`` parts) chat ``messages`` carry."""
    return sum(
        1
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


def reading_answer(reading: ReferenceReading, raw: str | None, n_ranked: int) -> Answer:
    """The :class:`Answer` of a read answer to an anchor or ranked trial (a ranking when several are ranked)."""
    raw = raw[:MAX_RAW_CHARS] if raw is not None else None
    if reading.status != "ok" or not reading.positions:
        return Answer(None, reading.status, raw=raw, error=reading.error)
    ranking = tuple(reading.positions) if n_ranked > 1 else None
    return Answer(reading.positions[0], raw=raw, ranking=ranking)


def _message_text(content: Any) -> str | None:
    """The text of a message's content (a string, or a list of parts with ``text``)."""
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return "".join(texts) if texts else None
    return None
