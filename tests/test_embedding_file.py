"""The embedding file round-trips with its provenance and rejects what is not an embedding."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from oddoneout import __version__
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError


def test_round_trip_keeps_weights_ids_and_metadata(tmp_path):
    weights = np.random.default_rng(0).random((5, 3))
    embedding = Embedding(["a", "b", "c", "d", "e"], weights, {"method": "spose", "seed": 7})
    loaded = Embedding.load(embedding.save(tmp_path / "e.parquet"))
    np.testing.assert_array_equal(loaded.weights, weights)
    assert loaded.item_ids == ("a", "b", "c", "d", "e")
    assert loaded.metadata["method"] == "spose" and loaded.metadata["seed"] == 7
    assert loaded.metadata["package_version"] == __version__
    assert loaded.metadata["format_version"] == 1 and loaded.metadata["kind"] == "embedding"
    np.testing.assert_array_equal(loaded.align(["e", "a"]), weights[[4, 0]])


def test_invalid_embeddings_are_rejected(tmp_path):
    with pytest.raises(InputError, match="non-negative"):
        Embedding(["a"], [[-1.0]])
    with pytest.raises(InputError, match="NaN"):
        Embedding(["a"], [[np.nan]])
    with pytest.raises(InputError, match="do not match"):
        Embedding(["a", "b"], [[1.0]])
    with pytest.raises(InputError, match="has no item"):
        Embedding(["a"], [[1.0]]).align(["z"])
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(InputError, match="not an oddoneout embedding"):
        Embedding.load(tmp_path / "other.parquet")
    (tmp_path / "junk.parquet").write_text("junk")
    with pytest.raises(InputError, match="not a readable Parquet"):
        Embedding.load(tmp_path / "junk.parquet")
    with pytest.raises(InputError, match="not found"):
        Embedding.load(tmp_path / "missing.parquet")
