"""The vLLM offline engine as an agent: batched generation on local GPUs, for maximum throughput.

The engine is asked exactly what :class:`~oddoneout.agents.openai_chat.OpenAIChatAgent` would send
to a vLLM server (the same chat messages, captions or frames as data URLs, sampling settings and
constraint), and its outputs are read by the same code (both use
:class:`~oddoneout.agents.chat_codec.ChatCodec`), so a study can move between a server and the
engine without changing a single judgment's prompt or parsing. Needs ``pip install vllm`` and a
GPU; nothing here is imported before the engine is first used. Like the server agent, an engine
agent answers the kind of trial it was built for (``trial_type``), anchor and ranked trials with
that kind's :class:`~oddoneout.agents.reference_prompts.ReferencePrompt`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Sequence

from oddoneout.agents.base import Answer, TrialKey, check_own_trial_type
from oddoneout.agents.chat_codec import ANCHOR_OPTIONS, OPTIONS, TOP_LOGPROBS, ChatCodec, images_in
from oddoneout.agents.prompts import PromptTemplate
from oddoneout.agents.reference_prompts import ReferencePrompt
from oddoneout.errors import InputError
from oddoneout.media.frames import FrameSpec
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, TrialType


def completion_payload(output: Any) -> dict[str, Any]:
    """An OpenAI-style chat completion built from one vLLM ``RequestOutput``.

    Parameters
    ----------
    output : vllm.RequestOutput
        One conversation's result; ``output.outputs[0]`` holds ``text``, ``token_ids``,
        ``finish_reason`` and, when asked, ``logprobs`` (per generated token, a mapping of token
        id to an object with ``logprob`` and ``decoded_token``).

    Returns
    -------
    dict
        ``{"choices": [{"message": {"content": ...}, "finish_reason": ..., "logprobs": {"content":
        [{"token", "logprob", "top_logprobs": [...]}, ...]}}], "usage": {...}}``.
    """
    completion = output.outputs[0]
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": completion.text},
        "finish_reason": completion.finish_reason,
    }
    if completion.logprobs:
        entries = []
        for token_id, alternatives in zip(completion.token_ids, completion.logprobs):
            chosen = alternatives[token_id]
            top = sorted(alternatives.values(), key=lambda alt: -alt.logprob)
            entries.append(
                {
                    "token": chosen.decoded_token,
                    "logprob": chosen.logprob,
                    "top_logprobs": [{"token": alt.decoded_token, "logprob": alt.logprob} for alt in top],
                }
            )
        choice["logprobs"] = {"content": entries}
    prompt_tokens = len(output.prompt_token_ids or [])
    completion_tokens = len(completion.token_ids)
    return {
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class VLLMEngineAgent:
    """Odd-one-out judgments from a model run by vLLM's offline engine (a synchronous :class:`Agent`).

    Parameters
    ----------
    name : str
        The system (``"llm"``, ``"mllm"``).
    model : str
        A Hugging Face model id or local folder, loaded by ``vllm.LLM``.
    prompt, captions, videos, frames, constrained, logprobs, temperature, max_tokens, seed
        As for :class:`~oddoneout.agents.openai_chat.OpenAIChatAgent`; ``constrained`` may be
        ``"none"`` or ``"choice"`` (the engine's own constrained decoding over "1", "2", "3";
        over "A", "B" for anchor trials; ranked trials are never constrained).
    engine_options : dict, optional
        Keyword arguments for ``vllm.LLM`` (``tensor_parallel_size``, ``max_model_len``,
        ``gpu_memory_utilization``...). In video mode ``limit_mm_per_prompt`` defaults to the
        frames of the clips one trial shows.
    trial_type, reference_prompt
        The kind of trial the agent answers and, for anchor and ranked trials, its prompt, as
        for :class:`~oddoneout.agents.openai_chat.OpenAIChatAgent`.
    """

    def __init__(
        self,
        name: str,
        model: str,
        *,
        prompt: PromptTemplate,
        captions: Mapping[str, str] | None = None,
        videos: Mapping[str, Any] | None = None,
        frames: FrameSpec = FrameSpec(),
        constrained: str = "none",
        logprobs: bool = True,
        temperature: float = 0.01,
        max_tokens: int = 512,
        seed: int = 0,
        engine_options: dict[str, Any] | None = None,
        trial_type: TrialType = ODD_ONE_OUT,
        reference_prompt: ReferencePrompt | None = None,
    ) -> None:
        if constrained not in ("none", "choice"):
            raise InputError(f"VLLMEngineAgent: constrained must be 'none' or 'choice', not {constrained!r}")
        # the engine's own constrained decoding is set in sampling_params; the chat messages carry none
        self.codec = ChatCodec(
            name,
            prompt=prompt,
            captions=captions,
            videos=videos,
            frames=frames,
            constrained="none",
            logprobs=logprobs,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            source=f"the vLLM engine ({model})",
            reference_prompts={trial_type.name: reference_prompt} if reference_prompt is not None else None,
        )
        self.trial_type = trial_type
        #: The kinds of trial this agent answers (:func:`~oddoneout.agents.base.answers_trial_type`).
        self.trial_types = (trial_type.name,)
        self.name, self.model = name, model
        #: The engine runs the model on the GPU: the cost accounting counts its wall time as GPU seconds.
        self.uses_gpu = True
        self.prompt_hash = self.codec.prompt_for(trial_type).hash
        self.constrained = constrained
        self.engine_options = dict(engine_options or {})
        if prompt.mode == "video":
            self.engine_options.setdefault("limit_mm_per_prompt", {"image": trial_type.n_shown * frames.n_frames})
        self._llm: Any = None

    @property
    def describe(self) -> dict[str, Any]:
        """What goes into provenance: the request settings and the engine options."""
        codec = self.codec
        return {
            "agent": "vllm_engine",
            "name": self.name,
            "model": self.model,
            "mode": codec.mode,
            "prompt": codec.prompt_for(self.trial_type).name,
            "prompt_hash": self.prompt_hash,
            "trial_type": self.trial_type.spec,
            "frames": codec.frames.as_dict() if codec.mode == "video" else None,
            "constrained": self.constrained,
            "logprobs": codec.logprobs,
            "temperature": codec.temperature,
            "max_tokens": codec.max_tokens,
            "seed": codec.seed,
            "engine": "vllm",
            "engine_options": json.loads(json.dumps(self.engine_options, default=str)),
        }

    def _engine(self) -> Any:
        if self._llm is None:
            try:
                import vllm
            except ImportError as exc:
                raise InputError("the vLLM engine agent needs vLLM and a GPU: pip install vllm") from exc
            self._llm = vllm.LLM(model=self.model, seed=self.codec.seed, **self.engine_options)
        return self._llm

    def sampling_params(self, trial_type: TrialType = ODD_ONE_OUT) -> Any:
        """The ``vllm.SamplingParams`` of every request (the same settings a server request carries)."""
        from vllm import SamplingParams

        settings: dict[str, Any] = {
            "temperature": self.codec.temperature,
            "max_tokens": self.codec.max_tokens,
            "seed": self.codec.seed,
        }
        if self.codec.logprobs:
            settings["logprobs"] = TOP_LOGPROBS
        if self.constrained == "choice" and trial_type in (ODD_ONE_OUT, ANCHOR):
            options = list(ANCHOR_OPTIONS if trial_type == ANCHOR else OPTIONS)
            try:  # vLLM >= 0.10.2
                from vllm.sampling_params import StructuredOutputsParams

                settings["structured_outputs"] = StructuredOutputsParams(choice=options)
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                settings["guided_decoding"] = GuidedDecodingParams(choice=options)
        return SamplingParams(**settings)

    def conversations(
        self, shown: Sequence[tuple[str, ...]], trial_type: TrialType = ODD_ONE_OUT
    ) -> list[list[dict[str, Any]]]:
        """The chat messages of each trial, exactly as a server request would carry them."""
        return [self.codec.messages(tuple(trial), trial_type) for trial in shown]

    def judge(
        self,
        shown: Sequence[tuple[str, ...]],
        keys: Sequence[TrialKey] | None = None,
        trial_type: TrialType = ODD_ONE_OUT,
    ) -> list[Answer]:
        """Answer a batch of trials in one engine call (``keys`` unused: each request carries the seed).

        Raises
        ------
        InputError
            When ``trial_type`` is not the agent's (its prompt_hash names another prompt).
        """
        check_own_trial_type(self, trial_type)
        conversations = self.conversations(shown, trial_type)
        engine = self._engine()  # first: a missing vLLM is named before SamplingParams is imported
        outputs = engine.chat(conversations, sampling_params=self.sampling_params(trial_type), use_tqdm=False)
        if len(outputs) != len(conversations):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(conversations)} conversations")
        return [
            dataclasses.replace(
                self.codec.read_completion(json.dumps(completion_payload(output)), trial_type),
                images=images_in(conversation),
            )
            for output, conversation in zip(outputs, conversations)
        ]
