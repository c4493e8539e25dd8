"""Classify embedding dimensions as categorical, hybrid or dimensional from their rating correlations.

The study reports the share of dimensions that are "categorical" (explained by one or a few
emotion categories), "dimensional" (explained by affective dimensions such as valence or
arousal) or "hybrid" (both). It does not give its rule, so this module fixes one and exposes its
two thresholds.

The rule
--------
For each embedding dimension, from its Pearson correlations with the rating scales
(:func:`oddoneout.interpret.ratings.rating_correlations`):

``r_category``
    the largest *signed* correlation with a category rating (``category:<Name>``). Category
    ratings are shares of raters choosing the category; a dimension "is" a category when its
    weight rises with that share, while a negative correlation only says what it is not.
``r_dimension``
    the largest *absolute* correlation with an affective-dimension rating (``dimension:<name>``).
    These scales are bipolar (valence runs from unpleasant to pleasant), so a dimension that
    tracks low valence is as dimensional as one that tracks high valence.

With ``min_r`` (default 0.3) and ``balance`` (default 0.8):

1. if both ``r_category`` and ``r_dimension`` are below ``min_r`` (or NaN, e.g. a dead
   dimension): ``"unclassified"``;
2. else if both are at least ``min_r`` and the smaller is at least ``balance`` times the larger:
   ``"hybrid"``;
3. else ``"categorical"`` if ``r_category > r_dimension``, otherwise ``"dimensional"``.

Hence a dimension with ``r_category = 0.8, r_dimension = 0.7`` is hybrid (0.7 >= 0.8 * 0.8),
one with ``0.8, 0.5`` categorical and one with ``0.35, 0.6`` dimensional. Ties in step 3 go to
"dimensional" (rare: exact equality of two correlations).

Only the categories passed in count: the default is all rating columns of the table, and
:data:`oddoneout.interpret.centroid.PAPER_CATEGORIES` restricts the comparison to the 27
categories of Cowen & Keltner (2017).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.errors import InputError

#: Classes of :func:`classify_dimensions`, in report order.
CLASSES = ("categorical", "hybrid", "dimensional", "unclassified")

#: Columns of the table returned by :func:`classify_dimensions`.
CLASSIFICATION_COLUMNS = (
    "dim",
    "class",
    "best_category",
    "r_category",
    "best_dimension",
    "r_dimension",
)


def _group_columns(correlations: pd.DataFrame, group: str, names: Sequence[str] | None) -> list[str]:
    columns = [c for c in correlations.columns if isinstance(c, str) and c.startswith(f"{group}:")]
    if names is not None:
        wanted = {f"{group}:{n}" if not str(n).startswith(f"{group}:") else str(n) for n in names}
        unknown = sorted(wanted - set(columns))
        if unknown:
            raise InputError(f"correlation table has no column(s) {unknown[:5]}")
        columns = [c for c in columns if c in wanted]
    return columns


def _best(values: np.ndarray, columns: list[str], absolute: bool) -> tuple[list[str | None], np.ndarray]:
    """Column and (signed) r of each row's largest (absolute) correlation; NaN rows give (None, NaN)."""
    n_rows = values.shape[0]
    if not columns:
        return [None] * n_rows, np.full(n_rows, np.nan)
    key = np.abs(values) if absolute else values
    key = np.where(np.isnan(key), -np.inf, key)
    position = np.argmax(key, axis=1)  # first column on ties
    best_r = values[np.arange(n_rows), position]
    names = [None if np.isnan(r) else columns[p].split(":", 1)[1] for p, r in zip(position, best_r)]
    return names, best_r


def classify_dimensions(
    correlations: pd.DataFrame,
    min_r: float = 0.3,
    balance: float = 0.8,
    categories: Sequence[str] | None = None,
    dimensions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Classify each embedding dimension as categorical, hybrid, dimensional (or unclassified).

    Parameters
    ----------
    correlations : DataFrame
        Dimensions x prefixed rating scales (``category:<Name>``, ``dimension:<name>``), as
        returned by :func:`~oddoneout.interpret.ratings.rating_correlations`.
    min_r : float, default=0.3
        Smallest correlation that counts as explaining a dimension.
    balance : float, default=0.8
        A dimension explained by both kinds of scale is hybrid when the weaker correlation is at
        least ``balance`` times the stronger one.
    categories, dimensions : sequence of str, optional
        Names (with or without prefix) of the category / affective-dimension scales to use;
        default all such columns of ``correlations``.

    Returns
    -------
    DataFrame
        One row per dimension in table order, columns ``dim, class, best_category, r_category,
        best_dimension, r_dimension``. ``r_category`` is the largest signed r with a category,
        ``r_dimension`` the signed r of the affective dimension with the largest ``|r|``. See the
        module docstring for the rule.

    Raises
    ------
    InputError
        On thresholds outside (0, 1], a table without category or dimension columns, or an
        unknown scale name.
    """
    if not 0 < min_r <= 1:
        raise InputError(f"classify_dimensions: min_r must be in (0, 1], got {min_r!r}")
    if not 0 < balance <= 1:
        raise InputError(f"classify_dimensions: balance must be in (0, 1], got {balance!r}")
    category_columns = _group_columns(correlations, "category", categories)
    dimension_columns = _group_columns(correlations, "dimension", dimensions)
    if not category_columns or not dimension_columns:
        raise InputError(
            "classify_dimensions needs both category:<name> and dimension:<name> columns; found "
            f"{len(category_columns)} category and {len(dimension_columns)} dimension column(s)"
        )
    best_category, r_category = _best(
        correlations[category_columns].to_numpy(dtype=np.float64), category_columns, absolute=False
    )
    best_dimension, r_dimension = _best(
        correlations[dimension_columns].to_numpy(dtype=np.float64), dimension_columns, absolute=True
    )
    strength_c = np.nan_to_num(r_category, nan=-np.inf)
    strength_d = np.nan_to_num(np.abs(r_dimension), nan=-np.inf)
    classes = []
    for c, d in zip(strength_c, strength_d):
        if c < min_r and d < min_r:
            classes.append("unclassified")
        elif c >= min_r and d >= min_r and min(c, d) >= balance * max(c, d):
            classes.append("hybrid")
        elif c > d:
            classes.append("categorical")
        else:
            classes.append("dimensional")
    return pd.DataFrame(
        {
            "dim": [str(d) for d in correlations.index],
            "class": classes,
            "best_category": best_category,
            "r_category": r_category,
            "best_dimension": best_dimension,
            "r_dimension": r_dimension,
        },
        columns=list(CLASSIFICATION_COLUMNS),
    )


def class_shares(classification: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Share of dimensions in each class, for one system or several.

    Parameters
    ----------
    classification : DataFrame or mapping of str to DataFrame
        Output of :func:`classify_dimensions`, or ``{system: output}``.

    Returns
    -------
    DataFrame
        Index the system names (``"system"``; a single table gets the name ``"embedding"``),
        columns :data:`CLASSES` (shares summing to 1 per row; 0 when a class is absent) and
        ``n_dims``. A system without dimensions gets NaN shares.
    """
    tables = {"embedding": classification} if isinstance(classification, pd.DataFrame) else dict(classification)
    rows = {}
    for system, table in tables.items():
        if "class" not in table.columns:
            raise InputError(f"classification of {system!r} has no 'class' column")
        unknown = sorted(set(table["class"]) - set(CLASSES))
        if unknown:
            raise InputError(f"classification of {system!r} has unknown class(es) {unknown}")
        counts = table["class"].value_counts().reindex(list(CLASSES), fill_value=0)
        n = int(counts.sum())
        shares = counts / n if n else counts * np.nan
        rows[system] = {**shares.to_dict(), "n_dims": n}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[*CLASSES, "n_dims"])
    frame.index.name = "system"
    return frame
