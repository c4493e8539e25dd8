"""Interpret embedding dimensions through human rating scales and their top items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.scoring import pearson_matrix
from oddoneout.stimuli.stimulus_set import RATING_GROUPS, StimulusSet
from oddoneout.study_folder import write_table

#: Columns of the table returned by :func:`top_items` (and of ``interpret/<system>_top_items.csv``).
TOP_ITEM_COLUMNS = ("dim", "rank", "item_id", "weight", "caption")


def rating_columns(stimuli: StimulusSet) -> list[str]:
    """Prefixed rating columns of a stimulus set, categories first, then dimensions.

    Within a group the columns keep their table order.
    """
    return [column for group in RATING_GROUPS for column in stimuli.rating_columns_of(stimuli.table, group)]


def rating_correlations(embedding: Embedding, stimuli: StimulusSet) -> pd.DataFrame:
    """Pearson correlation of each embedding dimension with each human rating scale.

    Parameters
    ----------
    embedding : Embedding
        Must hold every item of ``stimuli``; extra embedding items are ignored.
    stimuli : StimulusSet
        Items and their rating columns (``category:<name>`` and ``dimension:<name>``).

    Returns
    -------
    DataFrame of shape (n_dims, n_rating_scales)
        Index ``embedding.dim_names`` (named ``"dim"``); columns the prefixed rating columns,
        categories first, then dimensions (named ``"rating"``). The correlation is computed over
        the items of ``stimuli``, matched by id. A dimension or a rating scale that is constant
        over these items (e.g. a dimension that died during training) has no defined correlation:
        its entries are NaN and are left NaN.

    Raises
    ------
    InputError
        If the stimulus set has no rating columns or fewer than 3 items, or if some of its items
        are missing from the embedding.
    """
    columns = rating_columns(stimuli)
    if not columns:
        raise InputError(f"stimulus set {stimuli.name!r} has no rating columns (category:<name> or dimension:<name>)")
    if len(stimuli) < 3:
        raise InputError(f"stimulus set {stimuli.name!r} has {len(stimuli)} item(s); correlations need at least 3")
    known = set(embedding.item_ids)
    missing = [item for item in stimuli.item_ids if item not in known]
    if missing:
        raise InputError(
            f"embedding lacks {len(missing)} item(s) of stimulus set {stimuli.name!r}: "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    weights = embedding.align(stimuli.item_ids)
    ratings = stimuli.table[columns].to_numpy(dtype=np.float64)
    r = pearson_matrix(weights, ratings)
    return pd.DataFrame(
        r,
        index=pd.Index(embedding.dim_names, name="dim"),
        columns=pd.Index(columns, name="rating"),
    )


def top_items(embedding: Embedding, stimuli: StimulusSet | None = None, k: int = 8) -> pd.DataFrame:
    """The ``k`` items with the largest weight on each dimension.

    Parameters
    ----------
    embedding : Embedding
        Item embedding.
    stimuli : StimulusSet, optional
        Source of the captions. Without it, captions are empty strings.
    k : int, default=8
        Items per dimension; capped at the number of items.

    Returns
    -------
    DataFrame
        Columns ``dim, rank, item_id, weight, caption``; one row per dimension and rank (1 = largest
        weight), ordered by dimension then rank. Equal weights keep the embedding's item order.

    Raises
    ------
    InputError
        If ``k < 1``, or if a top item is missing from ``stimuli``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"top_items: k must be a positive integer, got {k!r}")
    n_items, n_dims = embedding.weights.shape
    k = min(int(k), n_items)
    # Stable sort of the negated weights: descending weight, ties in item order.
    order = np.argsort(-embedding.weights, axis=0, kind="stable")[:k]  # (k, n_dims)
    item_ids = np.asarray(embedding.item_ids, dtype=object)
    top_ids = item_ids[order.T.ravel()]
    weights = np.take_along_axis(embedding.weights, order, axis=0).T.ravel()
    if stimuli is None:
        captions = [""] * len(top_ids)
    else:
        absent = sorted({item for item in top_ids if item not in stimuli.table.index})
        if absent:
            raise InputError(f"stimulus set {stimuli.name!r} has no item(s) {absent[:5]} of the embedding")
        if "caption" in stimuli.table.columns:
            captions = stimuli.table["caption"].reindex(top_ids).fillna("").astype(str).tolist()
        else:
            captions = [""] * len(top_ids)
    return pd.DataFrame(
        {
            "dim": np.repeat(embedding.dim_names, k) if n_dims else np.array([], dtype=object),
            "rank": np.tile(np.arange(1, k + 1), n_dims),
            "item_id": top_ids,
            "weight": weights,
            "caption": captions,
        },
        columns=list(TOP_ITEM_COLUMNS),
    )


def dimension_labels(correlations: pd.DataFrame, n: int = 3) -> dict[str, list[tuple[str, float]]]:
    """Label each dimension by its most positively correlated rating scales.

    Parameters
    ----------
    correlations : DataFrame
        Dimensions x rating scales, as returned by :func:`rating_correlations`.
    n : int, default=3
        Scales per dimension.

    Returns
    -------
    dict
        ``{dim: [(scale, r), ...]}`` in the row order of ``correlations``, at most ``n`` scales per
        dimension by decreasing r (ties in column order). Only positive correlations label a
        dimension, so a dimension with fewer than ``n`` positive (non-NaN) correlations gets fewer
        labels, possibly none.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"dimension_labels: n must be a positive integer, got {n!r}")
    values = correlations.to_numpy(dtype=np.float64)
    ranked = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(-ranked, axis=1, kind="stable")[:, :n]
    scales = correlations.columns
    labels: dict[str, list[tuple[str, float]]] = {}
    for row, dim in enumerate(correlations.index):
        labels[str(dim)] = [(str(scales[col]), float(values[row, col])) for col in order[row] if values[row, col] > 0]
    return labels


def write_rating_correlations(correlations: pd.DataFrame, path: str | Path) -> Path:
    """Write a correlation table as ``interpret/<system>_ratings.csv`` (index column ``dim``)."""
    return write_table(correlations, Path(path), index_label="dim", float_format="%.6g")


def write_top_items(items: pd.DataFrame, path: str | Path) -> Path:
    """Write a top-items table as ``interpret/<system>_top_items.csv``."""
    absent = [c for c in TOP_ITEM_COLUMNS if c not in items.columns]
    if absent:
        raise InputError(f"top items table lacks column(s) {absent}; cannot write {path}")
    return write_table(items[list(TOP_ITEM_COLUMNS)], Path(path), index=False)


def read_rating_correlations(path: str | Path) -> pd.DataFrame:
    """Read ``interpret/<system>_ratings.csv`` (dimensions x rating scales, first column the dims).

    Raises
    ------
    InputError
        If the file is missing, malformed or holds non-numeric correlations.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"rating correlation file not found: {path}")
    try:
        frame = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from exc
    try:
        frame = frame.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: correlations must be numeric ({exc})") from exc
    frame.index = frame.index.astype(str)
    frame.index.name = "dim"
    frame.columns.name = "rating"
    return frame


def read_top_items(path: str | Path) -> pd.DataFrame:
    """Read ``interpret/<system>_top_items.csv`` (columns ``dim, rank, item_id, weight, caption``).

    Raises
    ------
    InputError
        If the file is missing, malformed or lacks one of the columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"top items file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype={"dim": str, "item_id": str, "caption": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from exc
    absent = [c for c in TOP_ITEM_COLUMNS if c not in frame.columns]
    if absent:
        raise InputError(f"{path}: missing column(s) {absent}")
    try:
        frame["rank"] = frame["rank"].astype(int)
        frame["weight"] = frame["weight"].astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: rank and weight must be numeric ({exc})") from exc
    return frame[list(TOP_ITEM_COLUMNS)]
