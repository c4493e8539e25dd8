"""Two-dimensional maps of the items of an embedding: t-SNE (scikit-learn) and UMAP (umap-learn).

Both are seeded and single-threaded where the library allows it, so a given embedding and seed
give the same map. ``umap-learn`` is optional and imported only when a UMAP map is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.stimuli.stimulus_set import StimulusSet

#: Methods of :func:`item_map`.
MAP_METHODS = ("tsne", "umap")

#: Columns of the table returned by :func:`item_map`.
MAP_COLUMNS = ("item_id", "x", "y")


def _weights(embedding: Embedding, stimuli: StimulusSet | None, caller: str) -> tuple[list[str], np.ndarray]:
    """Item ids and weights to map (those of ``stimuli``, in its order, when given); at least 4 items."""
    if stimuli is None:
        ids, weights = list(embedding.item_ids), embedding.weights
    else:
        ids = list(stimuli.item_ids)
        weights = embedding.align(ids)
    if len(ids) < 4:
        raise InputError(f"{caller} needs at least 4 items, got {len(ids)}")
    return ids, weights


def _table(ids: list[str], coords: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ids, "x": coords[:, 0], "y": coords[:, 1]}, columns=list(MAP_COLUMNS))


def tsne_map(
    embedding: Embedding,
    stimuli: StimulusSet | None = None,
    seed: int = 0,
    perplexity: float = 30.0,
    metric: str = "euclidean",
    max_iter: int = 1000,
) -> pd.DataFrame:
    """t-SNE map of the items (scikit-learn ``TSNE``, PCA initialisation).

    Parameters
    ----------
    embedding : Embedding
        Item embedding.
    stimuli : StimulusSet, optional
        Restrict the map to these items, in their order (default: every embedding item).
    seed : int, default=0
        ``random_state`` of t-SNE.
    perplexity : float, default=30
        Lowered to ``(n_items - 1) / 3`` for small sets (t-SNE needs perplexity < n_items).
    metric : str, default="euclidean"
        Distance between item vectors (any scikit-learn metric, e.g. ``"cosine"``).
    max_iter : int, default=1000
        Optimisation steps (scikit-learn's default).

    Returns
    -------
    DataFrame
        Columns ``item_id, x, y``, one row per item.
    """
    from sklearn.manifold import TSNE

    ids, weights = _weights(embedding, stimuli, "tsne_map")
    n_items = len(ids)
    perplexity = min(float(perplexity), (n_items - 1) / 3)
    init = "pca" if metric == "euclidean" else "random"
    coords = TSNE(
        n_components=2, perplexity=perplexity, metric=metric, init=init, max_iter=max_iter, random_state=seed
    ).fit_transform(weights)
    return _table(ids, coords)


def umap_map(
    embedding: Embedding,
    stimuli: StimulusSet | None = None,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "euclidean",
) -> pd.DataFrame:
    """UMAP map of the items (``umap-learn``, seeded, hence single-threaded).

    ``embedding``, ``stimuli`` and the table returned are as in :func:`tsne_map`; ``seed`` is the
    ``random_state`` of UMAP.

    Parameters
    ----------
    n_neighbors : int, default=15
        Lowered to ``n_items - 1`` for small sets.
    min_dist : float, default=0.1
    metric : str, default="euclidean"

    Raises
    ------
    ImportError
        If ``umap-learn`` is not installed (``pip install umap-learn``).
    """
    try:
        import umap
    except ImportError as exc:  # optional dependency
        raise ImportError("UMAP maps need the umap-learn package: pip install umap-learn") from exc
    ids, weights = _weights(embedding, stimuli, "umap_map")
    n_items = len(ids)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(int(n_neighbors), n_items - 1),
        min_dist=min_dist,
        metric=metric,
        random_state=seed,
        n_jobs=1,
    )
    return _table(ids, reducer.fit_transform(weights))


def item_map(
    embedding: Embedding, stimuli: StimulusSet | None = None, method: str = "tsne", seed: int = 0, **kwargs
) -> pd.DataFrame:
    """A 2-D map of the items by ``method`` (``"tsne"`` or ``"umap"``); see :func:`tsne_map`, :func:`umap_map`."""
    if method == "tsne":
        return tsne_map(embedding, stimuli, seed=seed, **kwargs)
    if method == "umap":
        return umap_map(embedding, stimuli, seed=seed, **kwargs)
    raise InputError(f"unknown map method {method!r}; expected one of {MAP_METHODS}")


def check_coordinates(coords: pd.DataFrame, item_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Validate a map table (``item_id, x, y``) and return it indexed by ``item_id`` (str).

    Raises
    ------
    InputError
        On a missing column, a repeated id, a non-finite coordinate, or (with ``item_ids``) an
        item absent from the map.
    """
    absent = [c for c in MAP_COLUMNS if c not in coords.columns]
    if absent:
        raise InputError(f"map table lacks column(s) {absent}; expected {list(MAP_COLUMNS)}")
    frame = coords[list(MAP_COLUMNS)].copy()
    frame["item_id"] = frame["item_id"].astype(str)
    repeated = frame["item_id"][frame["item_id"].duplicated()].unique().tolist()
    if repeated:
        raise InputError(f"map table repeats item id(s) {repeated[:5]}")
    frame = frame.set_index("item_id")
    values = frame[["x", "y"]].apply(pd.to_numeric, errors="coerce")
    bad = values.index[~np.isfinite(values.to_numpy(dtype=np.float64)).all(axis=1)].tolist()
    if bad:
        raise InputError(f"map table has missing or non-finite coordinates for item(s) {bad[:5]}")
    if item_ids is not None:
        missing = [i for i in item_ids if i not in values.index]
        if missing:
            raise InputError(f"map table lacks item(s) {missing[:5]}")
    return values.astype(np.float64)
