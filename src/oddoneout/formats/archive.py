"""The trial archive: trials of any trial type, their extra columns and item table in one ``.npz``.

The SPoSE index files (``.npy``/``.txt``) hold odd-one-out trials only and no ids; a fetched data
set may hold anchor or ranked trials, rater ids and item metadata. A trial archive keeps all of
it (format in ``docs/formats.md``, ``kind: "trials"``):

- ``indices``: trials x items shown, int64, in the canonical layout of the trial type;
- ``item_ids``: the vocabulary (text);
- ``probs``: soft labels, when the trials have them;
- ``extra_<k>`` / ``items_<k>``: column ``k`` of the per-trial table / of the item table, named in
  the provenance record's ``extra_columns`` / ``item_columns``;
- ``provenance``: JSON with ``trial_type`` (:attr:`TrialType.spec`) and what the writer records
  (for a fetched data set: name, citation, license, url, the sha256 of each source file).

:mod:`oddoneout.formats` reads an ``.npz`` with an ``indices`` array as a trial archive, so
``oddoneout fit trials.npz`` reads one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oddoneout.errors import InputError
from oddoneout.provenance import provenance, read_npz, write_npz
from oddoneout.triplets import Triplets, as_item_ids, trial_type_from_spec, validate_indices
from oddoneout.triplets.readers import ItemsArg

#: The ``kind`` of a trial archive's provenance record.
KIND = "trials"


@dataclass(frozen=True, eq=False)
class TrialArchive:
    """What a trial archive holds.

    Attributes
    ----------
    triplets : Triplets
    extra : DataFrame
        One row per trial (may have no columns).
    items : DataFrame or None
        Per-item metadata, index ``item_id`` in vocabulary order.
    record : dict
        The provenance record.
    """

    triplets: Triplets
    extra: pd.DataFrame
    items: pd.DataFrame | None
    record: dict[str, Any]


def save_trial_archive(
    path: str | Path,
    triplets: Triplets,
    extra: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    **recorded: Any,
) -> Path:
    """Write trials (and their extra columns and item table) as a compressed ``.npz``, atomically.

    Parameters
    ----------
    path : str or Path
        The file; it must end in ``.npz`` (the suffix :func:`~oddoneout.triplets.load_triplets`
        reads archives by).
    triplets : Triplets
    extra : DataFrame, optional
        One row per trial. Numeric and boolean columns are kept as they are; any other column is
        stored as text (missing values as empty text).
    items : DataFrame, optional
        Per-item metadata indexed by item id; stored in vocabulary order.
    **recorded
        Written into the provenance record (JSON-serialisable values).

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError(f"{path}: a trial archive is a .npz file")
    extra = pd.DataFrame(index=pd.RangeIndex(len(triplets))) if extra is None else extra
    if len(extra) != len(triplets):
        raise InputError(f"{path}: {len(extra)} rows of extra columns for {len(triplets)} trials")
    arrays: dict[str, np.ndarray] = {
        "indices": triplets.indices,
        "item_ids": np.array(triplets.item_ids, dtype=str),
    }
    if triplets.probs is not None:
        arrays["probs"] = triplets.probs
    for k, column in enumerate(extra.columns):
        arrays[f"extra_{k}"] = _column(extra[column])
    item_columns: list[str] = []
    if items is not None:
        items = items.reindex(list(triplets.item_ids))
        item_columns = [str(column) for column in items.columns]
        for k, column in enumerate(items.columns):
            arrays[f"items_{k}"] = _column(items[column])
    record = provenance(
        KIND,
        trial_type=triplets.trial_type.spec,
        n_trials=len(triplets),
        n_items=triplets.n_items,
        triplets_hash=triplets.hash(),
        extra_columns=[str(column) for column in extra.columns],
        item_columns=item_columns if items is not None else None,
        **recorded,
    )
    return write_npz(path, arrays, record)


def _column(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values):
        if values.isna().any() or not pd.api.types.is_integer_dtype(values):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return values.to_numpy(dtype=np.int64)
    return values.where(values.notna(), "").astype(str).to_numpy(dtype=str)


def read_trial_archive(path: str | Path) -> TrialArchive:
    """Read a file written by :func:`save_trial_archive`.

    Raises
    ------
    InputError
        The file is missing, is not a trial archive, or its trials are invalid (naming the file).
    """
    path = Path(path)
    arrays, record = read_npz(path, "trial archive")
    if record.get("kind") != KIND:
        raise InputError(f"{path}: not a trial archive (provenance kind {record.get('kind')!r})")
    try:
        trial_type = trial_type_from_spec(record["trial_type"])
        item_ids = tuple(str(i) for i in arrays["item_ids"])
        indices = np.asarray(arrays["indices"])
        extra_columns = list(record.get("extra_columns") or [])
        item_columns = record.get("item_columns")
        extra = pd.DataFrame(
            {name: arrays[f"extra_{k}"] for k, name in enumerate(extra_columns)}, index=pd.RangeIndex(len(indices))
        )
        items = None
        if item_columns is not None:
            items = pd.DataFrame(
                {name: arrays[f"items_{k}"] for k, name in enumerate(item_columns)},
                index=pd.Index(item_ids, name="item_id"),
            )
    except KeyError as exc:
        raise InputError(f"{path}: trial archive lacks {exc}") from None
    if indices.ndim != 2 or indices.shape[1] != trial_type.n_shown or not np.issubdtype(indices.dtype, np.integer):
        raise InputError(f"{path}: {trial_type.spec} trials need integer indices of shape (n, {trial_type.n_shown})")
    validate_indices(indices, len(item_ids), source=str(path))
    try:
        triplets = Triplets(item_ids, indices, arrays.get("probs"), trial_type)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return TrialArchive(triplets, extra, items, record)


def read_archive_triplets(path: Path, items: ItemsArg = None) -> Triplets:
    """The trials of an archive, re-expressed over ``items`` when given."""
    triplets = read_trial_archive(path).triplets
    item_ids = as_item_ids(items)
    return triplets if item_ids is None else triplets.reindex(item_ids)
