"""The embedding file round-trips with its provenance and rejects what is not an embedding."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from oddoneout import __version__
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError, UnreadableFile


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


def test_a_duplicated_item_id_is_refused_naming_the_file(tmp_path):
    with pytest.raises(InputError, match="item id 'a' appears twice"):
        Embedding(["a", "b", "a"], np.ones((3, 2)))
    path = Embedding(["i0", "i1", "i2"], np.ones((3, 2)), {"method": "spose"}).save(tmp_path / "e.parquet")
    table = pq.read_table(path)  # the same file with a second 'i0' in place of 'i1'
    table = table.set_column(0, "item_id", pa.array(["i0", "i0", "i2"]))
    pq.write_table(table, path)
    with pytest.raises(InputError, match=r"e.parquet: item id 'i0' appears twice$"):
        Embedding.load(path)
    np.save(tmp_path / "test.npy", np.array([[0, 1, 2]]))
    (tmp_path / "ids.txt").write_text("i0\ni1\ni2\n")
    result = subprocess.run(
        [sys.executable, "-m", "oddoneout.cli", "evaluate", str(path), str(tmp_path / "test.npy")]
        + ["--items", str(tmp_path / "ids.txt")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {path}: item id 'i0' appears twice\n"


def test_a_truncated_or_foreign_file_is_one_unreadable_file_error(tmp_path):
    path = Embedding(["a", "b"], np.ones((2, 3))).save(tmp_path / "e.parquet")
    data = path.read_bytes()
    cases = {
        "truncated.parquet": data[: len(data) // 2],
        "footer.parquet": data[:-100] + b"\xff" * 92 + data[-8:],  # metadata garbled, magic bytes kept
        "random.parquet": np.random.default_rng(0).bytes(len(data)),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UnreadableFile) as raised:
            Embedding.load(tmp_path / name)
        message = str(raised.value)
        assert message.startswith(f"{tmp_path / name}: not a readable Parquet file (")
        assert message.endswith("re-run the stage or command that writes it, or delete it")
        assert "\n" not in message


def test_save_replaces_the_file_whole(tmp_path):
    path = tmp_path / "e.parquet"
    Embedding(["a"], [[1.0]]).save(path)
    Embedding(["a", "b"], [[1.0], [2.0]]).save(path)
    assert Embedding.load(path).item_ids == ("a", "b")
    assert [p.name for p in tmp_path.iterdir()] == ["e.parquet"]  # no partial file left
