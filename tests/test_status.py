"""`store_status` on real triplet stores and exports built with the store and a random design."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from oddoneout.agents.base import Answer
from oddoneout.collect.designs import random_design
from oddoneout.collect.status import format_status, position_bias, store_status
from oddoneout.collect.store import TripletStore
from oddoneout.errors import InputError

ITEMS = [f"clip{i:02d}" for i in range(12)]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def build_store(path, answers_for, n_triplets=90, seed=0, tokens=None, seconds=30.0):
    design = random_design(ITEMS, n_triplets, seed=seed, n_orderings=3)
    answers = answers_for(len(design))
    if tokens is not None:
        answers = [Answer(a.choice, a.status, a.probs, a.raw, a.error, tokens) for a in answers]
    with TripletStore(path, "mllm", "qwen2-vl-7b", ITEMS) as store:
        store.add(design, answers, T0, T0 + timedelta(seconds=seconds), prompt_hash="abc")
    return design


def test_always_first_position_is_flagged_as_biased(tmp_path):
    path = tmp_path / "mllm.sqlite"
    design = build_store(path, lambda n: [Answer(0) for _ in range(n)], tokens=7)
    status = store_status(path)
    assert status["n_judgments"] == len(design) == 270
    assert status["counts"]["ok"] == 270 and status["counts"]["ambiguous"] == 0
    assert status["designs"] == {"random": 270}
    assert status["agent"] == "mllm" and status["model"] == "qwen2-vl-7b"
    assert status["prompt_hashes"] == ["abc"]
    assert status["throughput_per_s"] == pytest.approx(270 / 30.0)
    assert status["tokens"] == 7 * 270
    bias = status["position_bias"]
    assert bias["choice_rate"] == [1.0, 0.0, 0.0]
    assert bias["chi2"] == pytest.approx(2 * 270)  # sum((o - e)^2 / e) with o = (270, 0, 0), e = 90
    assert bias["p_value"] < 1e-3


def test_balanced_choices_show_no_bias_and_failures_are_counted(tmp_path):
    def answers(n):
        out = []
        for i in range(n):
            if i % 10 == 9:
                out.append(Answer(None, "unparseable", raw="hmm", error="no statement"))
            elif i % 10 == 8:
                out.append(Answer(None, "ambiguous", raw="1 and 2"))
            else:
                out.append(Answer(i % 3))
        return out

    path = tmp_path / "llm.sqlite"
    build_store(path, answers)
    status = store_status(path)
    assert status["counts"]["unparseable"] == 27 and status["counts"]["ambiguous"] == 27
    assert status["counts"]["ok"] == 270 - 54
    assert sum(status["counts"].values()) == 270
    assert status["tokens"] is None
    bias = status["position_bias"]
    assert bias["n"] == 216
    assert np.allclose(bias["choice_rate"], [1 / 3] * 3, atol=0.02)
    assert bias["p_value"] > 0.5


def test_export_gives_the_same_status_as_the_store(tmp_path):
    path = tmp_path / "mllm.sqlite"
    rng = np.random.default_rng(3)
    build_store(path, lambda n: [Answer(int(c)) for c in rng.choice(3, size=n, p=[0.5, 0.3, 0.2])])
    with TripletStore.open(path) as store:
        exported = store.export_parquet(tmp_path / "mllm.parquet")
    from_store, from_export = store_status(path), store_status(exported)
    from_store.pop("path"), from_export.pop("path")
    assert from_store == from_export
    assert from_store["position_bias"]["choice_rate"][0] > 0.4
    assert from_store["position_bias"]["p_value"] < 1e-3


def test_throughput_spans_several_batches(tmp_path):
    path = tmp_path / "mllm.sqlite"
    design = random_design(ITEMS, 40, seed=1)
    with TripletStore(path, "mllm", "m", ITEMS) as store:
        store.add(design.subset(slice(0, 20)), [Answer(1)] * 20, T0, T0 + timedelta(seconds=5))
        # a pause between batches counts: the span runs from the first start to the last finish
        second = (T0 + timedelta(seconds=15), T0 + timedelta(seconds=20))
        store.add(design.subset(slice(20, 40)), [Answer(2)] * 20, *second)
    status = store_status(path)
    assert status["span_s"] == pytest.approx(20.0)
    assert status["throughput_per_s"] == pytest.approx(2.0)
    assert status["mean_latency_s"] == pytest.approx(0.25)
    assert status["position_bias"]["choice_rate"] == [0.0, 0.5, 0.5]


def test_empty_store(tmp_path):
    path = tmp_path / "empty.sqlite"
    TripletStore(path, "mllm", "m", ITEMS).close()
    status = store_status(path)
    assert status["n_judgments"] == 0 and all(v == 0 for v in status["counts"].values())
    assert status["throughput_per_s"] is None and status["tokens"] is None
    assert status["position_bias"] == {"n": 0, "choice_rate": None, "chi2": None, "p_value": None}
    assert "no ok judgment" in format_status(status)


def half_failed(n):
    return [Answer(0) if i % 2 else Answer(None, "error", error="boom") for i in range(n)]


def test_format_status_is_readable(tmp_path):
    path = tmp_path / "mllm.sqlite"
    build_store(path, half_failed, tokens=3)
    text = format_status(store_status(path))
    lines = text.splitlines()
    assert len(lines) >= 6
    assert "mllm" in text and "qwen2-vl-7b" in text
    assert "judgments: 270" in text
    assert any(line.split()[:2] == ["error", "135"] for line in lines)
    assert "[1.000, 0.000, 0.000]" in text
    assert "tokens: 810" in text  # tokens are counted for failed requests too
    assert "random" in text


def test_position_bias_matches_scipy_by_hand():
    bias = position_bias(np.array([0] * 50 + [1] * 30 + [2] * 20))
    expected = (50 - 100 / 3) ** 2 / (100 / 3) + (30 - 100 / 3) ** 2 / (100 / 3) + (20 - 100 / 3) ** 2 / (100 / 3)
    assert bias["chi2"] == pytest.approx(expected)
    assert bias["choice_rate"] == [0.5, 0.3, 0.2]
    assert 0 < bias["p_value"] < 0.01


@pytest.mark.parametrize("name", ["missing.sqlite", "notes.txt"])
def test_bad_paths_raise_input_errors_naming_the_file(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("hello")
    with pytest.raises(InputError, match=name):
        store_status(path)


def test_a_parquet_that_is_not_an_export_is_refused(tmp_path):
    import pandas as pd

    path = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with pytest.raises(InputError, match="other.parquet"):
        store_status(path)
