"""The stimulus table: one row per item, with captions, media path and rating columns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from oddoneout.atomic import atomic_path
from oddoneout.errors import InputError
from oddoneout.files import read_parquet
from oddoneout.provenance import provenance

#: Prefixes of rating columns: ``category:amusement``, ``dimension:valence``.
RATING_GROUPS = ("category", "dimension")


@dataclass(eq=False)
class StimulusSet:
    """Items of a study.

    Parameters
    ----------
    table : DataFrame
        Index ``item_id`` (unique strings). Columns: ``caption`` (str), optionally
        ``captions`` (list of str, every caption of the item), ``media_path`` (str or
        missing), and rating columns named ``<group>:<name>`` with group ``category``
        (shares of raters, 0-1) or ``dimension`` (scale means).
    name : str
        Name of the set, e.g. ``"synthetic-emotion"``.
    """

    table: pd.DataFrame
    name: str = "stimuli"

    def __post_init__(self) -> None:
        table = self.table
        if table.index.name != "item_id":
            if "item_id" not in table.columns:
                raise InputError(f"stimulus table {self.name!r} has no item_id column")
            table = table.set_index("item_id")
        table.index = table.index.astype(str)
        duplicated = table.index[table.index.duplicated()].unique().tolist()
        if duplicated:
            raise InputError(f"stimulus table {self.name!r} repeats item ids: {duplicated[:5]}")
        for column in self.rating_columns_of(table):
            values = pd.to_numeric(table[column], errors="coerce")
            bad = table.index[values.isna()].tolist()
            if bad:
                raise InputError(
                    f"stimulus table {self.name!r}: column {column!r} is missing or not numeric for item(s) {bad[:5]}"
                )
            table[column] = values.astype(float)
        self.table = table

    @staticmethod
    def rating_columns_of(table: pd.DataFrame, group: str | None = None) -> list[str]:
        groups = RATING_GROUPS if group is None else (group,)
        return [c for c in table.columns if isinstance(c, str) and c.split(":", 1)[0] in groups and ":" in c]

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Item ids in table order."""
        return tuple(self.table.index)

    def __len__(self) -> int:
        return len(self.table)

    def ratings(self, group: str) -> pd.DataFrame:
        """Rating columns of one group (``"category"`` or ``"dimension"``), names without prefix."""
        columns = self.rating_columns_of(self.table, group)
        if not columns:
            raise InputError(f"stimulus set {self.name!r} has no {group} ratings")
        ratings = self.table[columns].copy()
        ratings.columns = [c.split(":", 1)[1] for c in columns]
        return ratings

    def captions(self, item_id: str) -> list[str]:
        """Every caption of an item (the ``captions`` list if present, else ``[caption]``)."""
        row = self.table.loc[item_id]
        if "captions" in self.table.columns and isinstance(row["captions"], (list, np.ndarray)):
            return [str(c) for c in row["captions"]]
        return [str(row["caption"])]

    def save(self, path: str | Path, **how_made) -> Path:
        """Write the table as Parquet with provenance in the schema metadata (atomically: a failed
        write leaves the previous file as it was)."""
        path = Path(path)
        table = pa.Table.from_pandas(self.table.reset_index(), preserve_index=False)
        meta = provenance("stimuli", name=self.name, **how_made)
        merged = dict(table.schema.metadata or {})
        merged[b"oddoneout"] = json.dumps(meta, sort_keys=True, default=str).encode()
        with atomic_path(path) as temporary:
            pq.write_table(table.replace_schema_metadata(merged), temporary)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "StimulusSet":
        """Read a stimulus table from Parquet (as written by :meth:`save`) or CSV."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"stimulus table not found: {path}")
        name = path.stem
        if path.suffix == ".parquet":
            table = read_parquet(path)
            raw = (table.schema.metadata or {}).get(b"oddoneout")
            if raw:
                name = json.loads(raw).get("name", name)
            frame = table.to_pandas()
        else:
            try:
                frame = pd.read_csv(path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: malformed CSV ({exc})") from exc
        return cls(frame, name=name)
