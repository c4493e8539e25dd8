"""Language-model agents on anchor and ranked trials, against a real loopback server (tests/echo_server.py).

The server answers in the forms the reference prompts ask for (and in ones they do not); the
agents' answers, the stored judgments and a whole study through ``oddoneout run`` are checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest
from echo_server import EchoServer, Reply, completion

from oddoneout.agents.base import Answer
from oddoneout.agents.openai_chat import OpenAIChatAgent
from oddoneout.agents.prompts import PAPER_LLM_PROMPT, PAPER_MLLM_PROMPT
from oddoneout.agents.reference_prompts import (
    PAPER_LLM_ANCHOR,
    PAPER_LLM_RANKED,
    PAPER_MLLM_ANCHOR,
    ReferencePrompt,
    load_reference_prompt,
)
from oddoneout.collect.async_runner import collect_async
from oddoneout.collect.designs import random_design
from oddoneout.collect.store import TripletStore, read_judgments
from oddoneout.errors import InputError
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Ranked

ITEMS = [f"v{i:02d}" for i in range(12)]
CAPTIONS = {item: f"Clip number {int(item[1:])} of a dog." for item in ITEMS}
RANKED = Ranked(4, 2)
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220)}


@pytest.fixture
def server():
    with EchoServer() as running:
        yield running


def agent_for(server, trial_type, **kwargs) -> OpenAIChatAgent:
    kwargs.setdefault("api_key_env", None)
    kwargs.setdefault("prompt", PAPER_LLM_PROMPT)
    kwargs.setdefault("captions", CAPTIONS)
    return OpenAIChatAgent("llm", "echo-model", server.base_url, trial_type=trial_type, **kwargs)


def ask(agent: OpenAIChatAgent, shown, trial_type) -> Answer:
    async def go():
        try:
            return await agent.ajudge(shown, trial_type=trial_type)
        finally:
            await agent.aclose()

    return asyncio.run(go())


def reply(text: str) -> Reply:
    return Reply(body=completion(text, total_tokens=30))


def test_anchor_trials_are_asked_with_the_anchor_prompt_and_read_as_shown_positions(server):
    agent = agent_for(server, ANCHOR)
    assert agent.trial_types == ("anchor",) and agent.prompt_hash == PAPER_LLM_ANCHOR.hash
    assert agent.describe["prompt"] == "paper_llm_anchor" and agent.describe["trial_type"] == "anchor"
    text = "Option B is more similar to the reference. Both are calm."
    server.queue(reply(text))
    assert ask(agent, ("v03", "v07", "v05"), ANCHOR) == Answer(
        2, raw=text, tokens=30, tokens_in=29, tokens_out=1, images=0
    )
    content = server.requests[0].json["messages"][0]["content"]
    assert content == PAPER_LLM_ANCHOR.render(CAPTIONS["v03"], [CAPTIONS["v07"], CAPTIONS["v05"]], 2, 1)
    assert "Reference: Clip number 3 of a dog.\nOption A: Clip number 7 of a dog.\nOption B: Clip number 5" in content
    assert "guided_choice" not in server.requests[0].json and "response_format" not in server.requests[0].json

    for text, expected in [
        ("Answer: A", Answer(1, raw="Answer: A", tokens=30, tokens_in=29, tokens_out=1, images=0)),
        ("I cannot tell which one is closer.", "unparseable"),
        ("Option A is more similar to the reference. Option B is more similar to the reference.", "ambiguous"),
        ("", "unparseable"),
    ]:
        server.queue(reply(text))
        answer = ask(agent_for(server, ANCHOR), ("v03", "v07", "v05"), ANCHOR)
        if isinstance(expected, Answer):
            assert answer == expected
        else:
            assert answer.status == expected and answer.choice is None and answer.raw == text and answer.error


def test_ranked_trials_give_a_ranking_of_shown_positions(server):
    agent = agent_for(server, RANKED)
    assert agent.prompt_hash == PAPER_LLM_RANKED.hash
    server.queue(reply("Ranking: C, A\nC shares the mood, then A."))
    answer = ask(agent, ("v00", "v01", "v02", "v03", "v04"), RANKED)
    assert answer.choice == 3 and answer.ranking == (3, 1) and answer.status == "ok" and answer.probs is None
    content = server.requests[0].json["messages"][0]["content"]
    assert "4 other videos" in content and "Option D: Clip number 4 of a dog." in content
    assert "listing 2 option letters" in content

    server.queue(reply("1. Option D\n2. Option B\n3. Option A"))
    answer = ask(agent_for(server, RANKED), ("v00", "v01", "v02", "v03", "v04"), RANKED)
    assert answer.ranking == (4, 2)
    for text in ("Ranking: C", "Ranking: C, C", "Ranking: E, A", "no idea"):
        server.queue(reply(text))
        answer = ask(agent_for(server, RANKED), ("v00", "v01", "v02", "v03", "v04"), RANKED)
        assert answer.status == "unparseable" and answer.raw == text and answer.ranking is None


def test_an_agent_answers_only_its_own_trial_type(server):
    agent = agent_for(server, ANCHOR)
    with pytest.raises(InputError, match="answers anchor trials, not odd_one_out"):
        ask(agent, ("v00", "v01", "v02"), ODD_ONE_OUT)
    with pytest.raises(InputError, match="anchor trial is 3 item ids"):
        ask(agent_for(server, ANCHOR), ("v00", "v01"), ANCHOR)
    # an odd-one-out agent is what it always was
    odd = agent_for(server, ODD_ONE_OUT)
    assert odd.prompt_hash == PAPER_LLM_PROMPT.hash and odd.trial_types == ("odd_one_out",)
    assert ask(odd, ("v00", "v01", "v02"), ODD_ONE_OUT).choice == 0


@pytest.mark.parametrize(
    ("constrained", "field", "value", "text"),
    [
        ("guided_choice", "guided_choice", ["A", "B"], "B"),
        ("structured_outputs", "structured_outputs", {"choice": ["A", "B"]}, "B"),
        ("json", "response_format", None, '{"more_similar": "B"}'),
        ("json_object", "response_format", None, '{"more_similar": "B"}'),
    ],
)
def test_constrained_anchor_answers_are_letters(server, constrained, field, value, text):
    server.queue(reply(text))
    answer = ask(agent_for(server, ANCHOR, constrained=constrained), ("v01", "v02", "v03"), ANCHOR)
    assert answer.choice == 2 and answer.status == "ok" and answer.raw == text
    body = server.requests[0].json
    if value is not None:
        assert body[field] == value
    else:
        schema = body[field]["json_schema"]["schema"] if constrained == "json" else body[field]["schema"]
        assert schema["properties"]["more_similar"]["enum"] == ["A", "B"]
    server.queue(reply('{"more_similar": "C"}'))
    bad = ask(agent_for(server, ANCHOR, constrained="json"), ("v01", "v02", "v03"), ANCHOR)
    assert bad.status == "unparseable" and "more_similar" in bad.error


def test_ranked_answers_are_never_constrained(server):
    server.queue(reply("Ranking: B, A"))
    answer = ask(agent_for(server, RANKED, constrained="guided_choice"), ("v00", "v01", "v02", "v03", "v04"), RANKED)
    body = server.requests[0].json
    assert "guided_choice" not in body and answer.ranking == (2, 1)


def test_video_anchor_trials_send_the_reference_frames_first(server, tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("PIL.Image")
    from test_frames import write_clip

    from oddoneout.media import FrameSpec

    videos = {name: write_clip(tmp_path / f"{name}.mp4", colour, n_frames=12) for name, colour in COLOURS.items()}
    agent = OpenAIChatAgent(
        "mllm", "echo-model", server.base_url, prompt=PAPER_MLLM_PROMPT, videos=videos,
        frames=FrameSpec(n_frames=2, size=32), api_key_env=None, trial_type=ANCHOR,
    )  # fmt: skip
    assert agent.prompt_hash == PAPER_MLLM_ANCHOR.hash
    server.queue(reply("The reference is calm... Option A is more similar to the reference."))
    assert ask(agent, ("blue", "red", "green"), ANCHOR).choice == 1
    parts = server.requests[0].json["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": PAPER_MLLM_ANCHOR.text}
    labels = [part["text"] for part in parts[1:] if part["type"] == "text"]
    assert labels == ["Reference:", "Option A:", "Option B:"]
    kinds = [part["type"] for part in parts[1:]]
    assert kinds == ["text", "image_url", "image_url"] * 3


def test_a_user_reference_prompt_file(tmp_path):
    path = tmp_path / "my_anchor.txt"
    path.write_text("Ref: {reference}\n{options}\nWhich option is closer? Say 'Option X is more similar'.")
    prompt = load_reference_prompt(path, "text")
    assert prompt == ReferencePrompt("my_anchor", path.read_text(), "text")
    path.write_text("Which is closer, {caption1}?")
    with pytest.raises(InputError, match="unknown placeholder"):
        load_reference_prompt(path, "text")
    with pytest.raises(InputError, match=r"\.txt"):
        load_reference_prompt(tmp_path / "p.toml", "text")


def collect(design, agent, store):
    async def go():
        try:
            return await collect_async(design, agent, store, concurrency=4, progress=False)
        finally:
            await agent.aclose()

    return asyncio.run(go())


def test_stored_ranked_answers_keep_the_ranking(server, tmp_path):
    server.default = reply("Ranking: D, B\nD and B are closest.")
    design = random_design(ITEMS, 20, seed=1, trial_type=RANKED)
    with TripletStore(tmp_path / "llm.sqlite", "llm", "echo-model", ITEMS) as store:
        assert collect(design, agent_for(server, RANKED), store).n_asked == 20
    frame = read_judgments(tmp_path / "llm.sqlite")
    assert (frame["trial_type"] == RANKED.spec).all() and (frame["status"] == "ok").all()
    assert (frame["choice"] == 4).all() and [json.loads(r) for r in frame["ranking"]] == [[4, 2]] * 20
    assert (frame["prompt_hash"] == PAPER_LLM_RANKED.hash).all()


def closest_option(body) -> Reply:
    """Answer an anchor trial by the option whose clip number is closest to the reference's.

    References v00 and v01 get an unparseable and an ambiguous answer.
    """
    content = body["messages"][0]["content"]
    numbers = [int(n) for n in re.findall(r"Clip number (\d+)", content)]
    reference, options = numbers[0], numbers[1:]
    if reference == 0:
        return reply("They are all the same to me.")
    if reference == 1:
        return reply("Option A is more similar to the reference. Option B is more similar to the reference.")
    best = min(range(len(options)), key=lambda k: (abs(options[k] - reference), k))
    return reply(f"Option {'AB'[best]} is more similar to the reference.")


def test_stored_anchor_answers_are_the_servers(server, tmp_path):
    server.responder = closest_option
    design = random_design(ITEMS, 60, seed=3, trial_type=ANCHOR)
    with TripletStore(tmp_path / "llm.sqlite", "llm", "echo-model", ITEMS) as store:
        summary = collect(design, agent_for(server, ANCHOR), store)
    assert summary.n_asked == 60
    frame = read_judgments(tmp_path / "llm.sqlite")
    assert len(frame) == 60 and (frame["trial_type"] == "anchor").all()
    assert (frame["prompt_hash"] == PAPER_LLM_ANCHOR.hash).all()
    for row in frame.itertuples():
        reference, a, b = (int(item[1:]) for item in (row.item_0, row.item_1, row.item_2))
        if reference > 1:
            closest = 1 if (abs(a - reference), 0) <= (abs(b - reference), 1) else 2
            assert row.status == "ok" and row.choice == closest and row.raw_answer.startswith("Option")
    assert frame["ranking"].isna().all()
    statuses = frame["status"].value_counts().to_dict()
    expected_unparseable = sum(1 for shown in design.shown() if shown[0] == "v00")
    expected_ambiguous = sum(1 for shown in design.shown() if shown[0] == "v01")
    assert statuses.get("unparseable", 0) == expected_unparseable
    assert statuses.get("ambiguous", 0) == expected_ambiguous
    failed = frame[frame["status"] != "ok"]
    assert failed["choice"].isna().all() and failed["raw_answer"].str.len().gt(0).all()


STUDY = """
[study]
name = "llm_anchor"
seed = 0
[stimuli]
source = "synthetic"
n_items = 16
n_subjects = 1
n_runs = 2
voxels_per_roi = 5
[design]
trial_type = "anchor"
n_triplets = 400
repeated_triplets = 0
exhaustive_items = 0
[systems.llm]
agent = "openai"
model = "echo-model"
base_url = "{base_url}"
prompt = "anchor_prompt.txt"
concurrency = 8
[embedding]
method = "spose"
n_dims = 5
l1 = 0.01
"""


def shared_emotion(body) -> Reply:
    """Answer an anchor trial about synthetic captions by the option sharing more words about the emotion."""
    content = body["messages"][0]["content"]
    evoked = [set(line.split("evokes", 1)[-1].split()) for line in content.splitlines()
              if line.startswith(("Reference:", "Option A:", "Option B:"))]  # fmt: skip
    reference, a, b = evoked
    choice = "A" if len(reference & a) >= len(reference & b) else "B"
    return reply(f"Option {choice} is more similar to the reference. Both feel alike.")


@pytest.mark.filterwarnings("ignore")
def test_an_anchor_study_with_a_chat_model_and_its_prompt_file_runs_and_fits(server, tmp_path):
    server.responder = shared_emotion
    config = tmp_path / "study.toml"
    config.write_text(STUDY.format(base_url=server.base_url))
    prompt_file = tmp_path / "anchor_prompt.txt"
    prompt_file.write_text("Reference: {reference}\n{options}\nWhich option feels closer to the reference?\n")
    prompt = load_reference_prompt(prompt_file, "text")
    out = tmp_path / "out"
    env = {**os.environ, "ODDONEOUT_PROGRESS": "0"}
    command = [sys.executable, "-m", "oddoneout.cli", "run", str(config), "--out", str(out)]
    result = subprocess.run([*command, "--stage=stimuli", "--stage=collect", "--stage=fit"],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 400
    frame = read_judgments(out / "triplets" / "llm.sqlite")
    assert (frame["trial_type"] == "anchor").all() and (frame["status"] == "ok").all()
    assert (frame["prompt_hash"] == prompt.hash).all() and set(frame["choice"]) == {1, 2}
    assert server.requests[0].json["messages"][0]["content"].endswith("Which option feels closer to the reference?\n")
    assert (out / "embeddings" / "llm.parquet").is_file()
