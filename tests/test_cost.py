"""Cost accounting: usage stored per judgment as the loopback server counted it, totals, prices and estimates."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from echo_server import CountingResponder, EchoServer, Reply
from typer.testing import CliRunner

from oddoneout.agents.base import Answer
from oddoneout.agents.openai_chat import OpenAIChatAgent
from oddoneout.agents.prompts import PAPER_LLM_PROMPT, PAPER_MLLM_PROMPT
from oddoneout.cli import app
from oddoneout.collect.async_runner import collect_async
from oddoneout.collect.cost import RunMeter, estimate, price, read_runs, store_cost
from oddoneout.collect.designs import random_design
from oddoneout.collect.status import format_status, store_status
from oddoneout.collect.store import TripletStore, read_judgments
from oddoneout.media import FrameSpec
from oddoneout.report import write_report

GOLDEN = Path(__file__).parent / "golden"
ITEMS = [f"clip{i:02d}" for i in range(12)]
# captions of different lengths, each naming its clip: the server's counts differ from trial to trial
CAPTIONS = {item: f"{item} " + " ".join(["word"] * (i + 1)) for i, item in enumerate(ITEMS)}
PRICES = {
    "usd_per_million_input_tokens": 2.0,
    "usd_per_million_output_tokens": 8.0,
    "usd_per_image": 0.001,
    "usd_per_gpu_hour": None,
}


def shown_in(text: str) -> tuple[str, ...]:
    """The clips a request shows, in the order its captions name them."""
    return tuple(re.findall(r"clip\d\d", text))


# ---------------------------------------------------------------------------- the loopback server's counts
def test_tokens_stored_are_those_the_server_counted_for_each_request(tmp_path):
    responder = CountingResponder()
    design = random_design(ITEMS, 30, seed=0)
    with EchoServer() as server:
        server.responder = responder
        server.queue(Reply(status=503, body="busy"))  # one trial is asked twice
        agent = OpenAIChatAgent(
            "llm", "echo-model", server.base_url, prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, api_key_env=None
        )
        with TripletStore(tmp_path / "llm.sqlite", "llm", "echo-model", ITEMS) as store:
            summary = asyncio.run(collect_async(design, agent, store, backoff=0.001, seed=0, progress=False))
        n_requests = len(server.requests)
    assert summary.n_asked == 30 and n_requests == 31 and len(responder.counted) == 30

    frame = read_judgments(tmp_path / "llm.sqlite")
    counted = {shown_in(entry["text"]): entry for entry in responder.counted}
    assert len(counted) == 30  # every request names its trial
    assert len({entry["prompt_tokens"] for entry in responder.counted}) > 5  # the counts do differ
    for row in frame.itertuples():
        entry = counted[(row.item_0, row.item_1, row.item_2)]
        assert (row.tokens_in, row.tokens_out, row.tokens) == (
            entry["prompt_tokens"],
            entry["completion_tokens"],
            entry["total_tokens"],
        )
        assert row.images == 0
    assert sorted(frame["attempts"]) == [1] * 29 + [2]

    cost = store_cost(tmp_path / "llm.sqlite", PRICES)
    tokens_in = sum(entry["prompt_tokens"] for entry in responder.counted)
    tokens_out = sum(entry["completion_tokens"] for entry in responder.counted)
    assert (cost["tokens_in"], cost["tokens_out"], cost["tokens"]) == (tokens_in, tokens_out, tokens_in + tokens_out)
    assert (cost["requests"], cost["retries"], cost["judgments"], cost["images"]) == (n_requests, 1, 30, 0)
    assert math.isclose(cost["price_usd"], tokens_in * 2.0 / 1e6 + tokens_out * 8.0 / 1e6)
    runs = read_runs(tmp_path / "llm.sqlite")
    assert len(runs) == 1 and runs["n_requests"].tolist() == [31] and runs["n_retries"].tolist() == [1]
    assert runs["cpu_s"][0] > 0 and runs["gpu_s"].isna().all() and cost["gpu_s"] is None
    assert cost["cpu_s"] == pytest.approx(runs["cpu_s"][0])


def test_a_video_request_counts_the_frames_it_sends(tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("PIL.Image")
    from test_frames import write_clip

    videos = {item: write_clip(tmp_path / f"{item}.mp4", (40 * i % 255, 90, 200), n_frames=8)
              for i, item in enumerate(ITEMS[:5])}  # fmt: skip
    responder = CountingResponder()
    design = random_design(ITEMS[:5], 4, seed=1)
    with EchoServer() as server:
        server.responder = responder
        agent = OpenAIChatAgent("mllm", "echo-vl", server.base_url, prompt=PAPER_MLLM_PROMPT, videos=videos,
                                frames=FrameSpec(n_frames=3, size=32), api_key_env=None)  # fmt: skip
        with TripletStore(tmp_path / "mllm.sqlite", "mllm", "echo-vl", ITEMS[:5]) as store:
            asyncio.run(collect_async(design, agent, store, seed=0, progress=False))
    frame = read_judgments(tmp_path / "mllm.sqlite")
    assert [entry["images"] for entry in responder.counted] == [9] * 4
    assert frame["images"].tolist() == [9] * 4
    assert sorted(frame["tokens_in"]) == sorted(entry["prompt_tokens"] for entry in responder.counted)
    assert store_cost(tmp_path / "mllm.sqlite", PRICES)["images"] == 36


# ---------------------------------------------------------------------------- totals and prices, by hand
def pilot_store(path: Path, design, items=tuple(ITEMS)) -> Path:
    """Four judgments of known usage, asked one second apart, each answered in half a second."""
    answers = [
        Answer(0, tokens=110, tokens_in=100, tokens_out=10, images=6, attempts=1),
        Answer(1, tokens=220, tokens_in=200, tokens_out=20, images=6, attempts=1),
        Answer(2, tokens=330, tokens_in=300, tokens_out=30, images=6, attempts=2),
        Answer(None, "error", error="503 three times", images=6, attempts=3),
    ]
    starts = [f"2026-01-01T00:00:0{i}+00:00" for i in range(4)]
    finishes = [f"2026-01-01T00:00:0{i}.500000+00:00" for i in range(4)]
    with TripletStore(path, "llm", "m", list(items)) as store:
        store.add(design.subset(slice(0, 4)), answers, starts, finishes)
    return path


def test_totals_and_price_of_a_hand_made_store(tmp_path):
    path = pilot_store(tmp_path / "s.sqlite", random_design(ITEMS, 10, seed=0))
    cost = store_cost(path, PRICES)
    assert (cost["judgments"], cost["requests"], cost["retries"]) == (4, 7, 3)
    assert (cost["tokens_in"], cost["tokens_out"], cost["tokens"], cost["images"]) == (600, 60, 660, 24)
    assert cost["wall_s"] == pytest.approx(3.5) and cost["latency_s"] == pytest.approx(2.0)
    assert cost["cpu_s"] is None and cost["gpu_s"] is None  # no collecting call recorded
    # 600 / 1e6 * 2 + 60 / 1e6 * 8 + 24 * 0.001
    assert cost["price_usd"] == pytest.approx(0.0012 + 0.00048 + 0.024)

    # a GPU price without GPU seconds: the price is not known (None), never a 0 that means "unknown"
    priced_gpu = {**PRICES, "usd_per_gpu_hour": 3.6}
    assert store_cost(path, priced_gpu)["price_usd"] is None
    assert "price: gpu_s not known, priced by usd_per_gpu_hour" in store_cost(path, priced_gpu)["notes"]
    with TripletStore.open(path) as store:  # two hours of a local GPU model
        meter = RunMeter(uses_gpu=True)
        meter.busy(7200.0)
        meter.record(store, "collect", 0)
    cost = store_cost(path, priced_gpu)
    assert cost["gpu_s"] == pytest.approx(7200.0) and cost["cpu_s"] >= 0 and cost["runs"] == 1
    assert cost["price_usd"] == pytest.approx(0.02568 + 7.2)

    # no price at all, or images without an image price: None
    assert store_cost(path)["price_usd"] is None
    unpriced_images = {**priced_gpu, "usd_per_image": None}
    assert price(cost, unpriced_images)[0] is None
    assert price(cost, unpriced_images)[1] == ["images = 24 but usd_per_image is not set"]
    assert price({"tokens_in": 0, "tokens_out": 0, "images": 0}, {"usd_per_image": 5.0}) == (0.0, [])


def test_a_format_2_store_shows_its_cost_with_the_token_split_unknown(tmp_path):
    path = tmp_path / "v2.sqlite"
    shutil.copy(GOLDEN / "v2_store.sqlite", path)
    for source in (path, GOLDEN / "v2_export.parquet"):
        cost = store_cost(source, PRICES)
        assert (cost["judgments"], cost["requests"], cost["retries"], cost["tokens"]) == (54, 54, None, 60)
        assert cost["tokens_in"] is None and cost["tokens_out"] is None and cost["images"] is None
        assert cost["wall_s"] == pytest.approx(124.0) and cost["latency_s"] == pytest.approx(40 + 5 + 4)
        assert cost["price_usd"] is None and cost["cpu_s"] is None
        assert "tokens in/out not recorded for 54 judgments (a store written before format 3?)" in cost["notes"]
    text = format_status(store_status(path, prices=PRICES))
    assert "cost: requests 54 (retries n/a), tokens in n/a / out n/a (total 60), images n/a" in text
    assert "price n/a" in text


# ---------------------------------------------------------------------------- status, summary, report
def test_status_shows_the_cost(tmp_path):
    path = pilot_store(tmp_path / "s.sqlite", random_design(ITEMS, 10, seed=0))
    status = store_status(path, prices=PRICES)
    assert status["cost"]["price_usd"] == pytest.approx(0.02568)
    text = format_status(status)
    assert "cost: requests 7 (retries 3), tokens in 600 / out 60 (total 660), images 24" in text
    assert "wall 3.5 s (latency summed 2.0 s)" in text and "price $0.0257" in text
    result = CliRunner().invoke(app, ["status", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cost"]["tokens_in"] == 600
    assert json.loads(result.stdout)["cost"]["price_usd"] is None  # outside a study folder: no prices


def test_the_report_shows_the_cost_of_summary_json(tmp_path):
    summary = {
        "study": "s",
        "cost": {
            "llm<b>": {"judgments": 4, "requests": 7, "retries": 3, "tokens_in": 600, "tokens_out": 60,
                       "images": 24, "wall_s": 3.5, "cpu_s": None, "gpu_s": None, "price_usd": 0.02568},
        },
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert '<h2 id="cost">Cost</h2>' in text and '<a href="#cost">Cost</a>' in text
    assert "<td>llm&lt;b&gt;</td><td>4</td><td>7</td><td>3</td><td>600</td><td>60</td><td>24</td>" in text
    assert "<td>3.5</td><td>n/a</td><td>n/a</td><td>$0.0257</td>" in text
    (tmp_path / "summary.json").write_text(json.dumps({"study": "s"}))
    assert 'id="cost"' not in write_report(tmp_path).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- estimates
def test_estimate_projects_the_remaining_trials_at_the_pilot_rates():
    pilot = {"judgments": 4, "requests": 7, "tokens": 660, "tokens_in": 600, "tokens_out": 60, "images": 24,
             "judgments_with_tokens_in": 3, "judgments_with_tokens_out": 3, "judgments_with_images": 4,
             "wall_s": 3.5, "cpu_s": None, "gpu_s": None}  # fmt: skip
    result = estimate(pilot, 100, 4, PRICES)
    assert (result["n_remaining"], result["pilot"]) == (96, 4)
    p = result["projected"]
    assert p["requests"] == pytest.approx(7 / 4 * 96) and p["wall_s"] == pytest.approx(3.5 / 4 * 96)
    # tokens per judgment that reported them (3), images per judgment (4)
    assert (p["tokens_in"], p["tokens_out"], p["images"]) == pytest.approx((200 * 96, 20 * 96, 6 * 96))
    assert p["cpu_s"] is None and p["gpu_s"] is None
    assert p["price_usd"] == pytest.approx(19200 * 2 / 1e6 + 1920 * 8 / 1e6 + 576 * 0.001)
    empty = estimate({}, 100, 0, PRICES)
    assert "projected" not in empty and "max_requests" in empty["advice"]


SMALL = """
[study]
name = "small"
[stimuli]
source = "synthetic"
n_items = 12
[design]
n_triplets = 50
repeated_triplets = 0
exhaustive_items = 0
[cost]
usd_per_million_input_tokens = 2.0
usd_per_million_output_tokens = 8.0
usd_per_image = 0.001
[systems.llm]
agent = "simulated"
features = "synthetic:llm"
[systems.mllm]
agent = "simulated"
features = "synthetic:mllm"
"""


def test_oddoneout_estimate_reads_the_pilot_and_asks_no_agent(tmp_path, monkeypatch):
    from oddoneout.config import load_config
    from oddoneout.pipeline.collect import study_designs
    from oddoneout.stimuli import StimulusSet
    from oddoneout.study_folder import StudyFolder

    monkeypatch.setenv("ODDONEOUT_PROGRESS", "0")
    config_path, out = tmp_path / "small.toml", tmp_path / "out"
    config_path.write_text(SMALL)
    runner = CliRunner()
    result = runner.invoke(app, ["estimate", str(config_path), "--out", str(out)])
    assert result.exit_code == 2 and "--stage stimuli" in result.output
    assert runner.invoke(app, ["run", str(config_path), "--out", str(out), "--stage", "stimuli"]).exit_code == 0
    item_ids = StimulusSet.load(StudyFolder(out).stimuli).item_ids
    (design,) = study_designs(load_config(config_path), item_ids, "llm")
    pilot_store(out / "triplets" / "llm.sqlite", design, item_ids)

    result = runner.invoke(app, ["estimate", str(config_path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    estimates = json.loads(result.stdout)
    llm, mllm = estimates["llm"], estimates["mllm"]
    assert (llm["n_design"], llm["n_stored"], llm["n_remaining"], llm["pilot"]) == (50, 4, 46, 4)
    assert llm["projected"]["tokens_in"] == pytest.approx(200 * 46)
    assert llm["projected"]["price_usd"] == pytest.approx(9200 * 2 / 1e6 + 920 * 8 / 1e6 + 276 * 0.001)
    assert llm["pilot_cost"]["price_usd"] == pytest.approx(0.02568)
    assert (mllm["n_remaining"], mllm["pilot"]) == (50, 0) and "max_requests" in mllm["advice"]
    assert not (out / "triplets" / "mllm.sqlite").exists()  # nothing was asked

    dry = runner.invoke(app, ["run", str(config_path), "--out", str(out), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "llm: 50 trials in the design, 4 stored, 46 to ask" in dry.stdout
    assert "price $0.3018" in dry.stdout and "mllm: 50 trials in the design, 0 stored" in dry.stdout
    assert not (out / "triplets" / "mllm.sqlite").exists()

    # the collect stage records its call; summary.json has a cost entry per system with a store
    collected = runner.invoke(app, ["collect", str(config_path), "--out", str(out), "--system", "mllm"])
    assert collected.exit_code == 0, collected.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["cost"]) == {"llm", "mllm"}
    assert summary["cost"]["mllm"]["judgments"] == 50 and summary["cost"]["mllm"]["runs"] == 1
    assert summary["cost"]["mllm"]["price_usd"] is None  # a simulated agent reports no tokens
    assert summary["cost"]["llm"]["judgments"] == 4 and summary["cost"]["llm"]["tokens_in"] == 600
    assert np.isclose(summary["cost"]["llm"]["prices"]["usd_per_image"], 0.001)
    status = runner.invoke(app, ["status", str(out / "triplets" / "llm.sqlite"), "--json"])
    assert json.loads(status.stdout)["cost"]["prices"]["usd_per_million_input_tokens"] == 2.0  # the study's


def test_the_price_table_of_the_config(tmp_path):
    from oddoneout.config import dump_config, load_config
    from oddoneout.errors import InputError

    path = tmp_path / "small.toml"
    path.write_text(SMALL + "[cost.systems.mllm]\nusd_per_image = 0.5\nusd_per_million_input_tokens = 0\n")
    config = load_config(path)
    assert config.cost.prices("llm") == {**PRICES, "usd_per_gpu_hour": None}
    assert config.cost.prices("mllm") == {**PRICES, "usd_per_million_input_tokens": 0, "usd_per_image": 0.5}
    # prices change no result: the config hash is that of the config without them, and config.toml keeps them
    unpriced = tmp_path / "unpriced.toml"
    unpriced.write_text(re.sub(r"\[cost\][^\[]*", "", SMALL))
    assert "[cost]" not in unpriced.read_text() and load_config(unpriced).hash == config.hash
    assert "[cost]" not in dump_config(load_config(unpriced))
    dumped = tmp_path / "config.toml"
    dumped.write_text(dump_config(config))
    reloaded = load_config(dumped)
    assert reloaded.cost == config.cost and reloaded.hash == config.hash
    for bad, message in [
        ("[cost.systems.nobody]\nusd_per_image = 1.0\n", r"\[cost.systems\] system\(s\) \['nobody'\] are not in"),
        ("[cost.systems.llm]\nusd_per_token = 1.0\n", r"unknown key\(s\) \['usd_per_token'\]"),
        ("[cost.systems.llm]\nusd_per_image = -1.0\n", "must be a number >= 0"),
    ]:
        path.write_text(SMALL + bad)
        with pytest.raises(InputError, match=message):
            load_config(path)
    path.write_text(SMALL.replace("usd_per_image = 0.001", 'usd_per_image = "cheap"'))
    with pytest.raises(InputError, match=r"\[cost\] usd_per_image: 'cheap' is not a number or unset"):
        load_config(path)


def test_the_estimate_of_an_adaptive_system_counts_the_rounds_not_selected_yet(tmp_path, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_PROGRESS", "0")
    config_path, out = tmp_path / "small.toml", tmp_path / "out"
    adaptive = 'n_triplets = 60\nselection = "adaptive"\nadaptive_rounds = 2\nholdout_triplets = 6\nn_orderings = 2\n'
    config_path.write_text(SMALL.replace("n_triplets = 50\n", adaptive))
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(config_path), "--out", str(out), "--stage", "stimuli"]).exit_code == 0
    before = json.loads(runner.invoke(app, ["estimate", str(config_path), "--out", str(out), "--json"]).stdout)
    assert before["llm"]["n_design"] == 60 * 2  # the whole budget, every planned round in its orderings
    collected = runner.invoke(app, ["collect", str(config_path), "--out", str(out), "--system", "llm"])
    assert collected.exit_code == 0, collected.output
    after = json.loads(runner.invoke(app, ["estimate", str(config_path), "--out", str(out), "--json"]).stdout)
    assert (after["llm"]["n_design"], after["llm"]["n_stored"], after["llm"]["n_remaining"]) == (120, 120, 0)
