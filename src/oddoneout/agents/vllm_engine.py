"""The vLLM offline engine as an agent: batched generation on local GPUs, for maximum throughput.

The engine is asked exactly what :class:`~oddoneout.agents.openai_chat.OpenAIChatAgent` would send
to a vLLM server (the same chat messages, captions or frames as data URLs, sampling settings and
constraint), and its outputs are read by the same code (both use
:class:`~oddoneout.agents.chat_codec.ChatCodec`), so a study can move between a server and the
engine without changing a single judgment's prompt or parsing. Needs ``pip install vllm`` and a
GPU; nothing here is imported before the engine is first used.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from oddoneout.agents.base import Answer, TrialKey
from oddoneout.agents.chat_codec import OPTIONS, TOP_LOGPROBS, ChatCodec
from oddoneout.agents.prompts import PromptTemplate
from oddoneout.errors import InputError
from oddoneout.media.frames import FrameSpec


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
        ``"none"`` or ``"choice"`` (the engine's own constrained decoding over "1", "2", "3").
    engine_options : dict, optional
        Keyword arguments for ``vllm.LLM`` (``tensor_parallel_size``, ``max_model_len``,
        ``gpu_memory_utilization``...). In video mode ``limit_mm_per_prompt`` defaults to the
        three clips' frames.
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
        )
        self.name, self.model, self.prompt_hash = name, model, prompt.hash
        self.constrained = constrained
        self.engine_options = dict(engine_options or {})
        if prompt.mode == "video":
            self.engine_options.setdefault("limit_mm_per_prompt", {"image": 3 * frames.n_frames})
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
            "prompt": codec.prompt.name,
            "prompt_hash": self.prompt_hash,
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

    def sampling_params(self) -> Any:
        """The ``vllm.SamplingParams`` of every request (the same settings a server request carries)."""
        from vllm import SamplingParams

        settings: dict[str, Any] = {
            "temperature": self.codec.temperature,
            "max_tokens": self.codec.max_tokens,
            "seed": self.codec.seed,
        }
        if self.codec.logprobs:
            settings["logprobs"] = TOP_LOGPROBS
        if self.constrained == "choice":
            try:  # vLLM >= 0.10.2
                from vllm.sampling_params import StructuredOutputsParams

                settings["structured_outputs"] = StructuredOutputsParams(choice=list(OPTIONS))
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                settings["guided_decoding"] = GuidedDecodingParams(choice=list(OPTIONS))
        return SamplingParams(**settings)

    def conversations(self, shown: Sequence[tuple[str, str, str]]) -> list[list[dict[str, Any]]]:
        """The chat messages of each triplet, exactly as a server request would carry them."""
        return [self.codec.messages(tuple(triplet)) for triplet in shown]

    def judge(self, shown: Sequence[tuple[str, str, str]], keys: Sequence[TrialKey] | None = None) -> list[Answer]:
        """Answer a batch of triplets in one engine call (``keys`` unused: each request carries the seed)."""
        conversations = self.conversations(shown)
        outputs = self._engine().chat(conversations, sampling_params=self.sampling_params(), use_tqdm=False)
        if len(outputs) != len(conversations):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(conversations)} conversations")
        return [self.codec.read_completion(json.dumps(completion_payload(output))) for output in outputs]
