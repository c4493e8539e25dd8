"""The embedding file: items x non-negative dimensions, with how it was made."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from oddoneout.atomic import atomic_path
from oddoneout.errors import InputError
from oddoneout.files import read_parquet
from oddoneout.provenance import provenance
from oddoneout.triplets import ODD_ONE_OUT, TrialType, trial_type_from_spec

_META_KEY = b"oddoneout"
#: Metadata key of a study's embedding: the trial type of the held-out split it was fitted beside
#: (``split/<s>_test.npy``), written for trial types other than odd-one-out only.
TEST_TRIAL_TYPE = "test_trial_type"


def split_trial_type(metadata: dict[str, Any]) -> TrialType:
    """The trial type of the held-out split an embedding with this metadata was fitted beside."""
    return trial_type_from_spec(metadata.get(TEST_TRIAL_TYPE, ODD_ONE_OUT.spec))


@dataclass(eq=False)
class Embedding:
    """Item embedding with provenance.

    Parameters
    ----------
    item_ids : sequence of str
        One id per row of ``weights``.
    weights : ndarray of shape (n_items, n_dims)
        Non-negative item weights; dimensions sorted by decreasing L1 norm.
    metadata : dict
        Provenance: method, hyperparameters, seed, source triplets hash, package version...
    """

    item_ids: Sequence[str]
    weights: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_ids = tuple(str(i) for i in self.item_ids)
        repeated = [(item, n) for item, n in Counter(self.item_ids).items() if n > 1]
        if repeated:
            item, n = repeated[0]
            raise InputError(f"item id {item!r} appears {'twice' if n == 2 else f'{n} times'}")
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if self.weights.ndim != 2 or self.weights.shape[0] != len(self.item_ids):
            raise InputError(
                f"embedding weights of shape {self.weights.shape} do not match {len(self.item_ids)} item ids"
            )
        if not np.all(np.isfinite(self.weights)):
            raise InputError("embedding weights contain NaN or infinite values")
        if np.any(self.weights < 0):
            raise InputError("embedding weights must be non-negative")

    @property
    def n_dims(self) -> int:
        """Number of dimensions."""
        return int(self.weights.shape[1])

    @property
    def dim_names(self) -> list[str]:
        """Dimension names ``dim_01``, ``dim_02``... in stored order."""
        return [f"dim_{d + 1:02d}" for d in range(self.n_dims)]

    def similarity(self) -> np.ndarray:
        """Dot-product similarity matrix ``W W^T`` of shape (n_items, n_items)."""
        return self.weights @ self.weights.T

    def align(self, item_ids: Sequence[str]) -> np.ndarray:
        """Weights in the order of ``item_ids``; raises on an id the embedding lacks."""
        position = {item: i for i, item in enumerate(self.item_ids)}
        missing = [item for item in item_ids if item not in position]
        if missing:
            raise InputError(f"embedding has no item(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        return self.weights[[position[item] for item in item_ids]]

    def save(self, path: str | Path) -> Path:
        """Write a Parquet file: column ``item_id`` then one float column per dimension.

        The file is written atomically (:func:`oddoneout.atomic.atomic_path`): a failed write
        leaves the previous file as it was.
        """
        path = Path(path)
        columns = {"item_id": pa.array(self.item_ids, pa.string())}
        for d, name in enumerate(self.dim_names):
            columns[name] = pa.array(self.weights[:, d], pa.float64())
        table = pa.table(columns)
        meta = provenance("embedding", **self.metadata)
        table = table.replace_schema_metadata({_META_KEY: json.dumps(meta, sort_keys=True, default=str).encode()})
        with atomic_path(path) as temporary:
            pq.write_table(table, temporary)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Embedding":
        """Read an embedding written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"embedding file not found: {path}")
        table = read_parquet(path)
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None or "item_id" not in table.column_names:
            raise InputError(f"{path}: not an oddoneout embedding file (no item_id column or metadata)")
        metadata = json.loads(raw)
        if metadata.get("kind") != "embedding":
            raise InputError(f"{path}: holds {metadata.get('kind')!r}, not an embedding")
        dims = [name for name in table.column_names if name != "item_id"]
        weights = np.column_stack([table[name].to_numpy() for name in dims]) if dims else np.zeros((table.num_rows, 0))
        try:
            return cls(table["item_id"].to_pylist(), weights, metadata)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
