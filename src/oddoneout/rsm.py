"""Representational similarity matrices (RSMs) of items, and their comparison.

An :class:`RSM` is an item x item similarity matrix, held either as a low-rank factor ``F``
(``M = F F^T``: any similarity that is an inner product of item vectors, so large item sets
never need the ``n^2`` matrix; the searchlight uses the factor directly) or as a dense matrix
(e.g. measured pair similarities, which may be undefined (NaN) for pairs never judged). The
diagonal is never used. Two RSMs are compared over their upper triangles (pairs ``i < j``,
vectorised by :func:`upper_triangle`, the one place that orders pairs) with :meth:`RSM.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy.stats import kendalltau, rankdata

from oddoneout.errors import InputError
from oddoneout.scoring import pearson, varies

__all__ = ["RSM", "SIMILARITIES", "COMPARISONS", "upper_triangle"]

#: Similarities of item vectors that :meth:`RSM.from_features` knows.
SIMILARITIES = ("pearson", "cosine", "dot")

#: Methods of :meth:`RSM.compare`.
COMPARISONS = ("pearson", "spearman", "kendall", "cosine")


@dataclass(eq=False)
class RSM:
    """An item x item similarity matrix, as a low-rank factor or a dense matrix.

    Parameters
    ----------
    item_ids : ndarray of shape (n_items,), str
        Item of each row (and column); unique.
    factor : ndarray of shape (n_items, k), optional
        ``M = factor @ factor.T``.
    matrix : ndarray of shape (n_items, n_items), optional
        The matrix itself: symmetric; NaN marks an undefined pair; the diagonal is never used.
    similarity : str
        How it was made (for the record).

    Exactly one of ``factor`` and ``matrix`` is given. Build with :meth:`from_features`,
    :meth:`from_embedding`, :meth:`from_matrix` or :meth:`from_pairs`.
    """

    item_ids: np.ndarray
    factor: np.ndarray | None = None
    matrix: np.ndarray | None = None
    similarity: str = "custom"

    def __post_init__(self) -> None:
        self.item_ids = np.asarray(self.item_ids).astype(str)
        n = self.item_ids.size
        if (self.factor is None) == (self.matrix is None):
            raise InputError("an RSM needs exactly one of factor and matrix")
        if len(set(self.item_ids.tolist())) != n:
            raise InputError("RSM item_ids must be unique")
        if self.factor is not None:
            self.factor = np.asarray(self.factor, dtype=np.float64)
            if self.factor.ndim != 2 or self.factor.shape[0] != n:
                raise InputError(f"factor of shape {self.factor.shape} does not match {n} item ids")
            if not np.all(np.isfinite(self.factor)):
                raise InputError("RSM factor contains NaN or infinite values")
        else:
            self.matrix = np.asarray(self.matrix, dtype=np.float64)
            if self.matrix.shape != (n, n):
                raise InputError(f"RSM of shape {self.matrix.shape} does not match {n} item ids (expected square)")
            if not np.allclose(self.matrix, self.matrix.T, equal_nan=True):
                raise InputError("an RSM must be symmetric")

    @classmethod
    def from_features(
        cls, features: np.ndarray, item_ids: Sequence[str] | None = None, similarity: str = "pearson"
    ) -> "RSM":
        """RSM of item vectors (e.g. an embedding's weights or response patterns) under ``similarity``.

        Parameters
        ----------
        features : ndarray of shape (n_items, n_dims)
        item_ids : sequence of str, optional
            Default ``"0"``, ``"1"``, ...
        similarity : {"pearson", "cosine", "dot"}, default="pearson"
            ``"pearson"``: correlation of two items' vectors across dimensions; ``"cosine"``: cosine
            of the angle between them; ``"dot"``: their dot product (the SPoSE similarity). An item
            whose vector is constant (pearson, by the rule of :mod:`oddoneout.scoring`) or zero
            (cosine) gets a zero row: similarity 0 to everything.

        Returns
        -------
        RSM
            Factored.
        """
        if similarity not in SIMILARITIES:
            raise InputError(f"unknown similarity {similarity!r}; expected one of {SIMILARITIES}")
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] == 0:
            raise InputError(f"features must have shape (n_items, n_dims >= 1), got {x.shape}")
        if similarity == "pearson":
            keep = varies(x, axis=1)
            x = _unit_rows(x - x.mean(axis=1, keepdims=True), keep)
        elif similarity == "cosine":
            x = _unit_rows(x)
        return cls(item_ids=_ids(item_ids, x.shape[0]), factor=x, similarity=similarity)

    @classmethod
    def from_embedding(cls, embedding: Any, similarity: str = "pearson") -> "RSM":
        """RSM of an :class:`oddoneout.embedding.Embedding` (its ``weights`` and ``item_ids``)."""
        return cls.from_features(embedding.weights, embedding.item_ids, similarity)

    @classmethod
    def from_matrix(
        cls, matrix: np.ndarray, item_ids: Sequence[str] | None = None, similarity: str = "custom"
    ) -> "RSM":
        """A dense RSM, e.g. measured pair similarities (NaN: pair undefined; the diagonal is set to 0)."""
        matrix = np.array(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise InputError(f"similarity matrices must be square, got {matrix.shape}")
        np.fill_diagonal(matrix, 0.0)
        return cls(item_ids=_ids(item_ids, matrix.shape[0]), matrix=matrix, similarity=similarity)

    @classmethod
    def from_pairs(cls, pairs: np.ndarray, item_ids: Sequence[str] | None = None, similarity: str = "custom") -> "RSM":
        """A dense RSM from one value per pair ``i < j`` in the order of :func:`upper_triangle` (NaN: undefined)."""
        pairs = np.asarray(pairs, dtype=np.float64)
        n = int(round((1 + np.sqrt(1 + 8 * pairs.size)) / 2))
        if pairs.ndim != 1 or n * (n - 1) // 2 != pairs.size:
            raise InputError(f"{pairs.shape} values are not one per pair of some number of items")
        matrix = np.zeros((n, n))
        rows, cols = np.triu_indices(n, k=1)
        matrix[rows, cols] = pairs
        matrix[cols, rows] = pairs
        return cls(item_ids=_ids(item_ids, n), matrix=matrix, similarity=similarity)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    def subset(self, rows: np.ndarray) -> "RSM":
        """The RSM of the items at positions ``rows`` (in that order)."""
        if self.factor is not None:
            return RSM(self.item_ids[rows], factor=self.factor[rows], similarity=self.similarity)
        return RSM(self.item_ids[rows], matrix=self.matrix[np.ix_(rows, rows)], similarity=self.similarity)

    def dense(self) -> np.ndarray:
        """The full ``(n_items, n_items)`` matrix (diagonal as computed; it is never used)."""
        return self.factor @ self.factor.T if self.factor is not None else self.matrix.copy()

    def upper(self) -> np.ndarray:
        """The pairs ``i < j`` of the matrix (:func:`upper_triangle`)."""
        return upper_triangle(self.factor @ self.factor.T if self.factor is not None else self.matrix)

    def compare(self, other: "RSM", method: str = "pearson") -> float:
        """Similarity of two RSMs of the same items over their pairs ``i < j``.

        Pairs undefined (NaN) in either RSM are left out.

        Parameters
        ----------
        other : RSM
            Over the same items, in the same order.
        method : {"pearson", "spearman", "kendall", "cosine"}, default="pearson"
            Pearson r; Spearman rho (Pearson r of average ranks); Kendall tau-b; or the cosine of
            the two (uncentred) pair vectors.

        Returns
        -------
        float
            NaN when either RSM is constant over the pairs used (zero, for cosine).

        Raises
        ------
        InputError
            Different items, an unknown method, or fewer than 3 pairs defined in both.
        """
        if method not in COMPARISONS:
            raise InputError(f"unknown RSM comparison {method!r}; expected one of {COMPARISONS}")
        if self.n_items != other.n_items:
            raise InputError(f"similarity matrices differ in shape: {self.n_items} and {other.n_items} items")
        if not np.array_equal(self.item_ids, other.item_ids):
            raise InputError("the two RSMs are over different items (or in a different order)")
        x, y = self.upper(), other.upper()
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() < 3:
            raise InputError(f"need at least 3 pairs defined in both matrices, got {int(keep.sum())}")
        x, y = x[keep], y[keep]
        if method == "pearson":
            return pearson(x, y, undefined=np.nan)
        if method == "spearman":
            return pearson(rankdata(x), rankdata(y), undefined=np.nan)
        if method == "kendall":
            return float(kendalltau(x, y).statistic)
        norms = np.sqrt((x @ x) * (y @ y))
        return float(x @ y / norms) if norms > 0 else float("nan")


def upper_triangle(matrix: np.ndarray) -> np.ndarray:
    """The entries ``(i, j)``, ``i < j``, of a square matrix, row by row: ``n (n - 1) / 2`` values."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"similarity matrices must be square, got {matrix.shape}")
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    return matrix[rows, cols]


def _ids(item_ids: Sequence[str] | None, n: int) -> np.ndarray:
    return np.arange(n).astype(str) if item_ids is None else np.asarray(item_ids)


def _unit_rows(x: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Rows scaled to unit Euclidean norm; zero rows, and rows not in ``keep``, become zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    ok = norms > 0 if keep is None else (norms > 0) & keep
    return np.where(ok[:, None], x / np.where(ok, norms, 1.0)[:, None], 0.0)
