"""The vLLM engine agent: its requests equal the server agent's, and engine outputs are read the same way.

The engine itself needs vLLM and a GPU; ``test_engine_on_gpu`` runs it where both exist. The other
tests feed the reader the data structure vLLM returns (``RequestOutput``: outputs[0].text,
token_ids, logprobs as token id -> (logprob, decoded_token)), built here by hand because vLLM does
not run on this CPU-only machine.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from oddoneout.agents.openai_chat import OpenAIChatAgent
from oddoneout.agents.prompts import PAPER_LLM_PROMPT, PAPER_MLLM_PROMPT
from oddoneout.agents.reference_prompts import BUILTIN_REFERENCE_PROMPTS
from oddoneout.agents.vllm_engine import VLLMEngineAgent, completion_payload
from oddoneout.errors import InputError
from oddoneout.media import FrameSpec
from oddoneout.triplets import ANCHOR, Ranked

CAPTIONS = {"a": "a child laughs at a puppy", "b": "a man cries at a funeral", "c": "a crowd cheers a goal"}


def _logprob(value: float, token: str) -> SimpleNamespace:
    return SimpleNamespace(logprob=value, decoded_token=token)


def _output(tokens: list[tuple[int, str, dict[int, tuple[float, str]]]], finish: str = "stop") -> SimpleNamespace:
    """A RequestOutput: one generated token per entry (id, text, alternatives id -> (logprob, text))."""
    completion = SimpleNamespace(
        text="".join(text for _, text, _ in tokens),
        token_ids=[token_id for token_id, _, _ in tokens],
        logprobs=[{i: _logprob(lp, t) for i, (lp, t) in alts.items()} for _, _, alts in tokens],
        finish_reason=finish,
    )
    return SimpleNamespace(outputs=[completion], prompt_token_ids=list(range(40)))


def test_conversations_equal_the_server_requests():
    engine = VLLMEngineAgent("llm", "some/model", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, seed=3)
    server = OpenAIChatAgent(
        "llm", "some/model", "http://127.0.0.1:1/v1", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS,
        api_key_env=None, temperature=0.01, max_tokens=512, seed=3,
    )  # fmt: skip
    shown = [("a", "b", "c"), ("c", "a", "b")]
    assert engine.conversations(shown) == [server.build_request(s)["messages"] for s in shown]
    assert engine.prompt_hash == server.prompt_hash
    assert "base_url" not in engine.describe and engine.describe["engine"] == "vllm"


def _same_settings_pair(**inputs) -> tuple[VLLMEngineAgent, OpenAIChatAgent]:
    """An engine agent and a server agent asking the same way (the engine's defaults, no constraint)."""
    engine = VLLMEngineAgent("llm", "some/model", seed=3, **inputs)
    server = OpenAIChatAgent(
        "llm", "some/model", "http://127.0.0.1:1/v1", api_key_env=None, temperature=0.01, max_tokens=512, seed=3,
        **inputs,
    )  # fmt: skip
    return engine, server


def _completions() -> list[str]:
    """Chat completions as both agents may receive them: an answer with probabilities, a cut one, a refusal, junk."""
    digit = {12: (math.log(0.6), "2"), 11: (math.log(0.3), "1"), 13: (math.log(0.1), "3")}
    with_probs = _output([(1, "Video", {1: (-0.01, "Video")}), (2, " ", {2: (-0.01, " ")}), (12, "2", digit),
                          (3, " is different.", {3: (-0.02, " is different.")})])  # fmt: skip
    cut = _output([(5, "They all feel", {5: (-0.1, "They all feel")})], finish="length")
    refusal = {"choices": [{"message": {"content": None, "refusal": "no"}, "finish_reason": "stop"}]}
    return [json.dumps(completion_payload(with_probs)), json.dumps(completion_payload(cut)), json.dumps(refusal)]


def test_engine_and_server_agents_build_the_same_messages_and_read_the_same_answers():
    engine, server = _same_settings_pair(prompt=PAPER_LLM_PROMPT, captions=CAPTIONS)
    for shown in [("a", "b", "c"), ("b", "c", "a")]:
        assert engine.conversations([shown]) == [server.build_request(shown)["messages"]]
    answers = [engine.codec.read_completion(text) for text in _completions()]
    assert answers == [server.read_completion(text) for text in _completions()]
    assert [a.status for a in answers] == ["ok", "unparseable", "refused"]
    assert answers[0].probs == pytest.approx((0.3, 0.6, 0.1))


def test_engine_and_server_agents_send_the_same_frames(tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("PIL.Image")
    from test_frames import write_clip

    videos = {name: write_clip(tmp_path / f"{name}.mp4", colour, n_frames=6)
              for name, colour in {"a": (200, 0, 0), "b": (0, 200, 0), "c": (0, 0, 200)}.items()}  # fmt: skip
    engine, server = _same_settings_pair(prompt=PAPER_MLLM_PROMPT, videos=videos, frames=FrameSpec(2, 16))
    (messages,) = engine.conversations([("c", "a", "b")])
    assert messages == server.build_request(("c", "a", "b"))["messages"]
    assert sum(part["type"] == "image_url" for part in messages[0]["content"]) == 6


def test_engine_output_is_read_like_a_server_answer():
    engine = VLLMEngineAgent("llm", "some/model", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS)
    # "Video 2 is noticeably different." with the digit token carrying the three options
    digit_alternatives = {12: (math.log(0.7), "2"), 11: (math.log(0.2), "1"), 13: (math.log(0.1), "3")}
    output = _output(
        [
            (1, "Video", {1: (-0.01, "Video")}),
            (2, " ", {2: (-0.01, " ")}),
            (12, "2", digit_alternatives),
            (3, " is noticeably different.", {3: (-0.02, " is noticeably different.")}),
        ]
    )
    payload = completion_payload(output)
    assert payload["usage"] == {"prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44}
    answer = engine.codec.read_completion(json.dumps(payload))
    assert answer.status == "ok" and answer.choice == 1
    assert answer.probs == pytest.approx((0.2, 0.7, 0.1))
    assert answer.tokens == 44


def test_unparseable_and_cut_answers_keep_their_text():
    engine = VLLMEngineAgent("llm", "some/model", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS)
    output = _output([(5, "They all feel", {5: (-0.1, "They all feel")})], finish="length")
    answer = engine.codec.read_completion(json.dumps(completion_payload(output)))
    assert answer.status == "unparseable" and answer.raw == "They all feel"
    assert "max_tokens" in answer.error


def test_anchor_and_ranked_conversations_and_answers_equal_the_server_agents():
    captions = {**CAPTIONS, "d": "a storm hits the coast", "e": "a baby sleeps"}
    for kind, shown, text, expected in [
        (ANCHOR, ("a", "b", "c"), "Option B is more similar to the reference.", (2, None)),
        (Ranked(4, 2), ("a", "b", "c", "d", "e"), "Ranking: D, A", (4, (4, 1))),
    ]:
        engine = VLLMEngineAgent("llm", "m", prompt=PAPER_LLM_PROMPT, captions=captions, trial_type=kind)
        server = OpenAIChatAgent("llm", "m", "http://127.0.0.1:1/v1", prompt=PAPER_LLM_PROMPT, captions=captions,
                                 api_key_env=None, trial_type=kind)  # fmt: skip
        assert engine.trial_types == (kind.name,) and engine.prompt_hash == server.prompt_hash
        assert engine.prompt_hash == BUILTIN_REFERENCE_PROMPTS[(kind.name, "text")].hash
        assert engine.conversations([shown], kind) == [server.build_request(shown, kind)["messages"]]
        answer = engine.codec.read_completion(
            json.dumps(completion_payload(_output([(1, text, {1: (-0.1, text)})]))), kind
        )
        assert (answer.choice, answer.ranking) == expected and answer.raw == text
        with pytest.raises(InputError, match=f"answers {kind.spec} trials, not odd_one_out"):
            engine.judge([("a", "b", "c")])
    video = VLLMEngineAgent("mllm", "m", prompt=PAPER_MLLM_PROMPT, videos={"a": __file__}, trial_type=Ranked(4, 2),
                            frames=FrameSpec(n_frames=3))  # fmt: skip
    assert video.engine_options["limit_mm_per_prompt"] == {"image": 15}


def test_bad_settings_and_missing_vllm_are_clear():
    with pytest.raises(InputError, match="constrained"):
        VLLMEngineAgent("llm", "m", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, constrained="json")
    engine = VLLMEngineAgent("llm", "m", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS)
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="pip install vllm"):
            engine.judge([("a", "b", "c")])


def _gpu_with_vllm() -> bool:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _gpu_with_vllm(), reason="needs vLLM and a CUDA GPU")
def test_engine_on_gpu():
    engine = VLLMEngineAgent(
        "llm", "Qwen/Qwen2.5-0.5B-Instruct", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, max_tokens=256,
        engine_options={"max_model_len": 2048, "gpu_memory_utilization": 0.5},
    )  # fmt: skip
    answers = engine.judge([("a", "b", "c"), ("b", "c", "a"), ("c", "a", "b")])
    assert len(answers) == 3
    assert all(a.status in ("ok", "unparseable", "ambiguous") for a in answers)
    assert all(a.choice in (0, 1, 2) for a in answers if a.status == "ok")
