"""Nearest-centroid classification of items by emotion category, and PCA variance components.

Labels
------
Each item is labelled by its *dominant category*: the category with the largest rating (share of
raters) among the categories considered, ties to the first in column order. The study classifies
over the 27 categories that Cowen & Keltner (2017) found to be distinct (:data:`PAPER_CATEGORIES`);
the ratings CSV has 34 category columns, the extra seven (Contempt, Disappointment, Envy, Guilt,
Pride, Sympathy, Triumph) are left out of both the argmax and the candidate classes by default.
So every item gets one of the 27 labels, even one whose largest share overall is, say, Sympathy.

Classification
--------------
Each category's centroid is the mean of its items' feature vectors. An item is scored against
its own category's centroid computed *without itself* (leave-one-out) and against the full
centroids of the other categories; it is correct at top-k when its category is among the k
nearest centroids (Euclidean distance). Categories with fewer than ``min_items`` items (default 2:
a single item has no leave-one-out centroid) are dropped, with their items.

The features may be the embedding itself or a 2-D map (t-SNE/UMAP coordinates): the study does
not say which it used for its "t-SNE maps with top-3 nearest-centroid classification".

Chance
------
``chance_uniform`` is ``k / n_classes``. ``chance_permutation`` is the mean accuracy of the same
procedure with the labels shuffled (``n_permutations`` seeded shuffles); it reflects the class
imbalance and is the fairer baseline (the study's "chance ~25%" for top-3 over 27 classes is
above 3/27, so it probably counted imbalance too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.stimuli.stimulus_set import StimulusSet

#: The 27 emotion categories of Cowen & Keltner (2017), spelled as in the ratings CSV.
PAPER_CATEGORIES = (
    "Admiration", "Adoration", "Aesthetic Appreciation", "Amusement", "Anger", "Anxiety", "Awe",
    "Awkwardness", "Boredom", "Calmness", "Confusion", "Craving", "Disgust", "Empathic Pain",
    "Entrancement", "Excitement", "Fear", "Horror", "Interest", "Joy", "Nostalgia", "Relief",
    "Romance", "Sadness", "Satisfaction", "Sexual Desire", "Surprise",
)  # fmt: skip

#: Columns of the table returned by :func:`nearest_centroid_accuracy`.
CENTROID_COLUMNS = ("k", "accuracy", "chance_uniform", "chance_permutation", "n_items", "n_classes")


def dominant_category(stimuli: StimulusSet, categories: Sequence[str] | None = PAPER_CATEGORIES) -> pd.Series:
    """Each item's category with the largest rating.

    Parameters
    ----------
    stimuli : StimulusSet
        Must have ``category:<name>`` columns.
    categories : sequence of str or None, default=PAPER_CATEGORIES
        Categories to choose from (names without prefix). ``None`` uses every category column.
        When the set has none of the 27 paper categories (e.g. a synthetic study) and the default
        is kept, every category column is used instead; when it has only some of them, those.

    Returns
    -------
    Series
        Index the item ids, values category names (ties to the first column), name ``"category"``.
    """
    ratings = stimuli.ratings("category")
    if categories is not None:
        present = [c for c in categories if c in ratings.columns]
        if categories is PAPER_CATEGORIES and not present:
            present = list(ratings.columns)
        missing = [c for c in categories if c not in ratings.columns]
        if missing and categories is not PAPER_CATEGORIES:
            raise InputError(f"stimulus set {stimuli.name!r} has no category rating(s) {missing[:5]}")
        ratings = ratings[present]
    values = ratings.to_numpy(dtype=np.float64)
    labels = np.asarray(ratings.columns, dtype=object)[np.argmax(values, axis=1)]
    return pd.Series(labels, index=ratings.index, name="category")


def _features(source: Embedding | pd.DataFrame | np.ndarray, item_ids: Sequence[str]) -> np.ndarray:
    """Feature matrix aligned with ``item_ids`` from an embedding, a coordinate table or an array."""
    if isinstance(source, Embedding):
        return source.align(item_ids)
    if isinstance(source, pd.DataFrame):
        frame = source.set_index("item_id") if "item_id" in source.columns else source.copy()
        frame.index = frame.index.astype(str)
        missing = [i for i in item_ids if i not in frame.index]
        if missing:
            raise InputError(f"feature table lacks item(s) {missing[:5]}")
        numeric = frame.select_dtypes("number")
        return numeric.loc[list(item_ids)].to_numpy(dtype=np.float64)
    array = np.asarray(source, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != len(item_ids):
        raise InputError(f"features of shape {array.shape} do not match {len(item_ids)} items")
    return array


def _loo_distances(x: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Squared distances (n_items, n_classes) to the centroids, own class left-one-out."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, x.shape[1]))
    np.add.at(sums, labels, x)
    centroids = sums / counts[:, None]
    distances = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    rows = np.arange(len(x))
    own = (sums[labels] - x) / (counts[labels] - 1)[:, None]
    distances[rows, labels] = ((x - own) ** 2).sum(axis=1)
    return distances


def _top_k_hits(distances: np.ndarray, labels: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """Top-k accuracy: the true class's rank among centroids (ties count against the item)."""
    own = distances[np.arange(len(labels)), labels]
    rank = (distances < own[:, None]).sum(axis=1)  # 0 = nearest
    return {k: float(np.mean(rank < k)) for k in ks}


def nearest_centroid_accuracy(
    features: Embedding | pd.DataFrame | np.ndarray,
    stimuli: StimulusSet,
    ks: Sequence[int] = (1, 3),
    categories: Sequence[str] | None = PAPER_CATEGORIES,
    min_items: int = 2,
    n_permutations: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Top-k nearest-centroid classification of items into their dominant category.

    Parameters
    ----------
    features : Embedding, DataFrame or ndarray
        Item features: an embedding, a table indexed by (or with a column) ``item_id`` whose
        numeric columns are the features (e.g. ``x, y`` of a 2-D map), or an array whose rows
        follow ``stimuli.item_ids``.
    stimuli : StimulusSet
        Items and their category ratings; every item is classified.
    ks : sequence of int, default=(1, 3)
        The k of each top-k accuracy.
    categories : sequence of str or None, default=PAPER_CATEGORIES
        Categories that label items and serve as classes (see :func:`dominant_category`).
    min_items : int, default=2
        Categories with fewer items are dropped, with their items.
    n_permutations : int, default=20
        Label shuffles for ``chance_permutation`` (0 leaves it NaN).
    seed : int, default=0
        Seed of the shuffles.

    Returns
    -------
    DataFrame
        One row per k: ``k, accuracy, chance_uniform, chance_permutation, n_items, n_classes``.

    Raises
    ------
    InputError
        On a k outside 1..n_classes, ``min_items < 2``, fewer than 2 classes left, or features
        missing an item.
    """
    if min_items < 2:
        raise InputError(f"nearest_centroid_accuracy: min_items must be >= 2, got {min_items}")
    labels = dominant_category(stimuli, categories)
    x = _features(features, list(labels.index))
    if not np.all(np.isfinite(x)):
        raise InputError("nearest_centroid_accuracy: features contain NaN or infinite values")
    sizes = labels.value_counts()
    kept = labels[labels.map(sizes) >= min_items]
    keep_mask = labels.index.isin(kept.index)
    x = x[keep_mask]
    classes = sorted(kept.unique())
    n_classes = len(classes)
    if n_classes < 2:
        raise InputError(f"nearest_centroid_accuracy: only {n_classes} category has >= {min_items} items")
    ks = [int(k) for k in ks]
    bad = [k for k in ks if not 1 <= k <= n_classes]
    if bad:
        raise InputError(f"nearest_centroid_accuracy: k must be in 1..{n_classes}, got {bad}")
    codes = pd.Categorical(kept.to_numpy(), categories=classes).codes.astype(np.int64)
    accuracy = _top_k_hits(_loo_distances(x, codes, n_classes), codes, ks)
    rng = np.random.default_rng(seed)
    shuffled = {k: [] for k in ks}
    for _ in range(n_permutations):
        perm = rng.permutation(codes)
        for k, value in _top_k_hits(_loo_distances(x, perm, n_classes), perm, ks).items():
            shuffled[k].append(value)
    return pd.DataFrame(
        [
            {
                "k": k,
                "accuracy": accuracy[k],
                "chance_uniform": k / n_classes,
                "chance_permutation": float(np.mean(shuffled[k])) if n_permutations else np.nan,
                "n_items": int(len(codes)),
                "n_classes": n_classes,
            }
            for k in ks
        ],
        columns=list(CENTROID_COLUMNS),
    )


def variance_components(
    embeddings: Embedding | Mapping[str, Embedding], thresholds: Sequence[float] = (0.95, 0.99)
) -> pd.DataFrame:
    """Number of principal components needed to reach a share of the embedding's variance.

    This is the *variance-based* count (PCA of the centred item x dimension weights); it is not
    the study's accuracy-based count (components needed to keep 95-99% of the full embedding's
    odd-one-out accuracy), which is computed elsewhere.

    Parameters
    ----------
    embeddings : Embedding or mapping of str to Embedding
        One embedding, or ``{system: embedding}``.
    thresholds : sequence of float, default=(0.95, 0.99)
        Shares of variance in (0, 1].

    Returns
    -------
    DataFrame
        Index the systems (``"system"``; a single embedding is named ``"embedding"``), columns
        ``n_dims`` and ``pcs_var_<pct>`` (e.g. ``pcs_var_95``): the smallest number of components
        whose cumulative explained variance reaches the threshold (0 for an embedding without
        variance).
    """
    bad = [t for t in thresholds if not 0 < t <= 1]
    if bad:
        raise InputError(f"variance_components: thresholds must be in (0, 1], got {bad}")
    items = {"embedding": embeddings} if isinstance(embeddings, Embedding) else dict(embeddings)
    rows = {}
    for system, embedding in items.items():
        centred = embedding.weights - embedding.weights.mean(axis=0)
        singular = np.linalg.svd(centred, compute_uv=False) if centred.size else np.zeros(0)
        variance = singular**2
        total = variance.sum()
        row: dict[str, int] = {"n_dims": embedding.n_dims}
        for t in thresholds:
            name = f"pcs_var_{round(t * 100):g}"
            if total <= 0:
                row[name] = 0
            else:
                cumulative = np.cumsum(variance) / total
                row[name] = int(np.searchsorted(cumulative, t - 1e-12) + 1)
        rows[system] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "system"
    return frame
