"""The shipped configs for the paper's LLM and MLLM run against a loopback OpenAI-compatible server.

The configs are used as shipped, with only the server address and the scale overridden: the LLM
reads the real Cowen-Keltner captions, the MLLM watches frames of small videos written here.
"""

from __future__ import annotations

import base64
import io

import pandas as pd
import pytest
from echo_server import EchoServer, Reply, completion
from PIL import Image
from test_frames import write_clip

from oddoneout.collect.store import read_judgments
from oddoneout.pipeline import run_study
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.studies import builtin_config

SMALL = {"n_triplets": 8, "repeated_triplets": 0, "exhaustive_items": 0}


def test_llm_config_sends_captions_and_stores_answers(tmp_path, shared_data):
    with EchoServer() as server:
        server.default = Reply(body=completion("Video 3 is noticeably different from the other two."))
        run_study(
            builtin_config("cowen_keltner_llm_vllm"),
            tmp_path,
            stages=("stimuli", "collect"),
            overrides={
                "stimuli": {"path": str(shared_data / "cowen_keltner")},
                "design": SMALL,
                "systems": {"llm": {"base_url": server.base_url}},
            },
        )
        requests = [r.json for r in server.requests]
    stimuli = StimulusSet.load(tmp_path / "stimuli.parquet")
    judgments = read_judgments(tmp_path / "triplets" / "llm.parquet")
    assert len(judgments) == len(requests) == 8
    assert (judgments["status"] == "ok").all()
    assert (judgments["odd_one_out"] == judgments["item_2"]).all()  # "Video 3" is the third shown
    assert {r["model"] for r in requests} == {"meta-llama/Llama-3.1-70B-Instruct"}
    assert all(body["temperature"] == pytest.approx(0.01) and body["max_tokens"] == 512 for body in requests)
    prompts = [r["messages"][0]["content"] for r in requests]
    for row in judgments.itertuples():
        captions = [stimuli.table.loc[item, "caption"] for item in (row.item_0, row.item_1, row.item_2)]
        matching = [p for p in prompts if all(c in p for c in captions)]
        assert matching, f"no request carried the captions of {row.item_0, row.item_1, row.item_2}"
        text = matching[0]
        assert text.index(captions[0]) < text.index(captions[1]) < text.index(captions[2])


def test_mllm_config_sends_the_frames_of_all_three_videos(tmp_path):
    colours = {f"{i:04d}": (40 * i, 255 - 40 * i, 128) for i in range(1, 7)}
    videos = tmp_path / "videos"
    videos.mkdir()
    for item_id, colour in colours.items():
        write_clip(videos / f"{int(item_id)}.mp4", colour, n_frames=10)
    table = pd.DataFrame({"item_id": list(colours), "caption": [f"clip {i}" for i in colours]})
    StimulusSet(table, name="tiny").save(tmp_path / "tiny.parquet")
    with EchoServer() as server:
        server.default = Reply(body=completion("Video 1 is noticeably different from the other two."))
        run_study(
            builtin_config("cowen_keltner_mllm_vllm"),
            tmp_path / "out",
            stages=("stimuli", "collect"),
            overrides={
                "stimuli": {"source": str(tmp_path / "tiny.parquet"), "videos": str(videos)},
                "design": SMALL,
                "systems": {"mllm": {"base_url": server.base_url}},
            },
        )
        requests = [r.json for r in server.requests]
    judgments = read_judgments(tmp_path / "out" / "triplets" / "mllm.parquet")
    assert len(requests) == len(judgments) == 8 and (judgments["status"] == "ok").all()
    for body in requests:
        parts = body["messages"][0]["content"]
        labels = [p["text"] for p in parts if p["type"] == "text"]
        images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
        assert any(label.startswith("Video 3") for label in labels)
        assert len(images) == 3 * 8  # the config's 8 frames of each of the three clips
        sizes = {Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size for url in images}
        assert sizes == {(336, 252)}  # longest side 336 (the config), 4:3 kept


def test_video_folder_fills_media_paths_and_top_items_show_thumbnails(tmp_path):
    from oddoneout.report.html import _items_cell

    videos = tmp_path / "videos"
    videos.mkdir()
    write_clip(videos / "0002.mp4", (200, 30, 30), n_frames=6)
    (videos / "0003.mp4").write_bytes(b"not a video")
    table = pd.DataFrame({"item_id": ["0001", "0002", "0003"], "caption": ["a", "b", "c"]})
    StimulusSet(table, name="tiny").save(tmp_path / "tiny.parquet")
    run_study(
        builtin_config("cowen_keltner_mllm_vllm"),
        tmp_path / "out",
        stages=("stimuli",),
        overrides={"stimuli": {"source": str(tmp_path / "tiny.parquet"), "videos": str(videos)}},
    )
    media = StimulusSet.load(tmp_path / "out" / "stimuli.parquet").table["media_path"]
    assert pd.isna(media["0001"]) and media["0002"].endswith("0002.mp4") and media["0003"].endswith("0003.mp4")
    items = pd.DataFrame({"item_id": ["0001", "0002", "0003"], "caption": ["a", "b", "c"], "weight": [1.0] * 3})
    cell = _items_cell(items, media.dropna().to_dict())
    assert cell.count('class="thumb"') == 1  # the real clip; no video, or one that will not decode: none
    assert "data:image/jpeg;base64," in cell
