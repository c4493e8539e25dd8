"""Searchlight representational similarity analysis (RSA) without forming the stimulus-by-stimulus matrices.

For every searchlight centre (a voxel) the neighbourhood is a sphere or a cube of voxels around
it. The data RSM of the neighbourhood is the Pearson correlation, across its ``v`` voxels, between
every two stimuli's response patterns; its score for a model is the Pearson (or Spearman)
correlation between the upper triangles (pairs ``i < j``) of the data RSM and the model RSM.

With ``n`` stimuli (2,180 in the study) an RSM has ``n^2`` (4.75 M) entries, and forming one per
centre is what makes naive searchlights slow. The Pearson score needs only five sums over the
pairs ``i < j``: of ``D``, ``M``, ``D^2``, ``M^2`` and ``D M``. Write the centre's patterns,
each centred and scaled to unit norm across the neighbourhood, as the rows of ``U`` (``n x v``),
so that ``D = U U^T``; and write the model as ``M = F F^T`` (any similarity that is an inner
product of item vectors: dot product, cosine, Pearson across dimensions). Then, exactly,

- ``sum_{i<j} D_ij       = (||1^T U||^2 - trace D) / 2``
- ``sum_{i<j} D_ij^2     = (||U^T U||_F^2 - sum_i D_ii^2) / 2``
- ``sum_{i<j} D_ij M_ij  = (||F^T U||_F^2 - sum_i D_ii M_ii) / 2``

(the diagonal is excluded exactly: ``D_ii`` is 1, or 0 for a pattern that is constant over
the neighbourhood), and the model's sums are computed once. A centre costs one ``v x v`` Gram
matrix and one ``k x v`` product (``k``: the model ranks of all models together), instead of an
``n x n`` matrix. A dense model RSM (any symmetric matrix) is also exact, at ``n^2 v`` per centre.

Spearman scores need the ranks of the ``n (n - 1) / 2`` data pairs, so the data RSM is formed;
``spearman_stimuli`` scores them on a seeded random subsample of the stimuli (the same for every
centre and model) to keep that affordable. Ties get average ranks.

The model RSM of a system's embedding is, by default, the Pearson correlation between items'
embedding vectors across dimensions (the usual RSA choice); ``"dot"`` is the SPoSE similarity
itself (the dot product the choice rule uses) and ``"cosine"`` its length-normalised version.
The exact choice-rule similarity of :func:`oddoneout.embed.rsm.predicted_similarity` averages over
all ``n - 2`` third items (``O(n^3)``: billions of triplets at 2,180 items) and is not low-rank;
pass it as a dense RSM (:meth:`oddoneout.rsm.RSM.from_matrix`) when wanted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree
from scipy.stats import rankdata

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.provenance import provenance, read_npz, write_npz
from oddoneout.rsm import RSM, SIMILARITIES
from oddoneout.scoring import CONSTANT_RTOL, pearson, pearson_from_sums
from oddoneout.study_folder import roi_frame

__all__ = [
    "RSM",
    "SearchlightResult",
    "SIMILARITIES",
    "neighbourhoods",
    "searchlight_rsa",
    "searchlight_scores",
    "pattern_rsm",
    "stimulus_patterns",
]

_SHAPES = ("sphere", "cube")
_METHODS = ("pearson", "spearman")


@dataclass(eq=False)
class SearchlightResult:
    """Searchlight RSA scores of one subject.

    Parameters
    ----------
    subject : str
    voxel_r : dict of str to ndarray of shape (n_voxels,)
        Per model, the score of the searchlight centred on each voxel; NaN for voxels that were
        not centres or whose neighbourhood had fewer than ``min_voxels`` voxels.
    n_neighbours : ndarray of shape (n_voxels,), int
        Voxels in each centre's neighbourhood (0 for non-centres).
    roi_r : dict of str to dict of str to float
        ``roi_r[model][roi]``: mean score over the ROI's scored centres (NaN if none).
    metadata : dict
        Radius, shape, method, similarity of each model, sizes.
    """

    subject: str
    voxel_r: dict[str, np.ndarray]
    n_neighbours: np.ndarray
    roi_r: dict[str, dict[str, float]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz``: per-model voxel scores, neighbourhood sizes, ROI means, provenance."""
        models = list(self.voxel_r)
        rois = list(next(iter(self.roi_r.values()), {}))
        arrays = {
            "models": np.array(models, dtype=str),
            "roi_names": np.array(rois, dtype=str),
            "voxel_r": np.vstack([self.voxel_r[m] for m in models]) if models else np.zeros((0, 0)),
            "roi_r": np.array([[self.roi_r[m][roi] for roi in rois] for m in models], dtype=np.float64),
            "n_neighbours": np.asarray(self.n_neighbours),
        }
        return write_npz(path, arrays, provenance("searchlight", subject=self.subject, metadata=self.metadata))

    @classmethod
    def load(cls, path: str | Path) -> "SearchlightResult":
        """Read a file written by :meth:`save`."""
        arrays, meta = read_npz(path, "searchlight result")
        try:
            models = [str(m) for m in arrays["models"]]
            rois = [str(r) for r in arrays["roi_names"]]
            return cls(
                subject=meta["subject"],
                voxel_r={m: arrays["voxel_r"][i] for i, m in enumerate(models)},
                n_neighbours=arrays["n_neighbours"],
                roi_r={m: dict(zip(rois, map(float, arrays["roi_r"][i]))) for i, m in enumerate(models)},
                metadata=meta["metadata"],
            )
        except KeyError as exc:
            raise InputError(f"{path}: not an oddoneout searchlight result file (no {exc})") from exc

    def to_frame(self) -> pd.DataFrame:
        """Long table ``subject, system, roi, r`` (the layout of ``encoding/roi_r.csv``)."""
        return roi_frame(
            {"subject": self.subject, "system": model, "roi": roi, "r": r}
            for model, by_roi in self.roi_r.items()
            for roi, r in by_roi.items()
        )


def neighbourhoods(
    coords: np.ndarray,
    radius: float,
    shape: str = "sphere",
    affine: np.ndarray | None = None,
    centres: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Voxels within ``radius`` of each centre.

    Parameters
    ----------
    coords : ndarray of shape (n_voxels, 3)
        Voxel positions. With ``affine`` they are voxel indices (i, j, k) mapped to millimetres
        by ``affine``; without it, positions in any unit (voxels or mm), the unit of ``radius``.
    radius : float
        Sphere: Euclidean radius. Cube: half the side (Chebyshev distance), so ``radius=3`` on
        voxel indices is the study's 7 x 7 x 7-voxel cube.
    shape : {"sphere", "cube"}
    affine : ndarray of shape (4, 4), optional
        Voxel-to-world (mm) transform; ``radius`` is then in mm.
    centres : ndarray of int, optional
        Indices of the centre voxels (default: every voxel).

    Returns
    -------
    list of ndarray of int64
        Sorted voxel indices of each centre's neighbourhood (the centre included).
    """
    points = _positions(coords, affine)
    if shape not in _SHAPES:
        raise InputError(f"unknown searchlight shape {shape!r}; expected one of {_SHAPES}")
    if not np.isfinite(radius) or radius < 0:
        raise InputError(f"searchlight radius must be a finite number >= 0, got {radius!r}")
    centres = np.arange(points.shape[0]) if centres is None else _check_centres(centres, points.shape[0])
    tree = cKDTree(points)
    # A relative tolerance keeps voxels at exactly the radius (e.g. 8 mm on a 2 mm grid) inside.
    found = tree.query_ball_point(
        points[centres], r=radius * (1 + 1e-9) + 1e-12, p=np.inf if shape == "cube" else 2.0, return_sorted=True
    )
    return [np.asarray(members, dtype=np.int64) for members in found]


def stimulus_patterns(data: NeuralData) -> tuple[np.ndarray, np.ndarray]:
    """Mean response of each distinct stimulus (repeats averaged).

    Returns
    -------
    stimulus_ids : ndarray of shape (n_stimuli,), str
        Sorted distinct stimulus ids.
    patterns : ndarray of shape (n_stimuli, n_voxels), float64
    """
    ids, inverse, counts = np.unique(data.stimulus_ids, return_inverse=True, return_counts=True)
    n = inverse.size
    average = sp.csr_matrix((1.0 / counts[inverse], (inverse, np.arange(n))), shape=(ids.size, n))
    return ids, np.asarray(average @ data.responses.astype(np.float64))


def pattern_rsm(patterns: np.ndarray) -> np.ndarray:
    """Pearson correlation between the rows of ``patterns`` (0 where a row is constant)."""
    return RSM.from_features(patterns, similarity="pearson").dense()


def searchlight_scores(
    patterns: np.ndarray,
    neighbourhoods: Sequence[np.ndarray],
    models: Mapping[str, RSM],
    method: str = "pearson",
    zscore_voxels: bool = True,
    spearman_stimuli: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    dtype: str = "float64",
    n_jobs: int = 1,
) -> dict[str, np.ndarray]:
    """RSA score of every neighbourhood for every model; models' rows follow ``patterns``' rows.

    Parameters
    ----------
    patterns : ndarray of shape (n_stimuli, n_voxels)
        One response pattern per stimulus.
    neighbourhoods : sequence of int arrays
        Voxel indices of each searchlight (see :func:`neighbourhoods`).
    models : mapping of str to RSM
        Model RSMs whose rows are the stimuli of ``patterns``, in order.
    method : {"pearson", "spearman"}
        Correlation of the RSMs' upper triangles.
    zscore_voxels : bool, default=True
        Z-score each voxel across stimuli before forming patterns' correlations (so that voxels
        with large responses or variances do not dominate a pattern).
    spearman_stimuli : int, optional
        Spearman only: score on this many stimuli drawn at random (``seed``) without replacement.
    seed : int
    progress : callable, optional
        ``progress(done, total)`` every 256 centres and at the end.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the Pearson computation. float32 halves memory and is about twice as fast;
        scores then agree with float64 to about 1e-5. Spearman always runs in float64.
    n_jobs : int, default=1
        Pearson only: threads scoring centres in parallel, each limited to one BLAS thread
        (-1: one per CPU). With 1, BLAS threads as configured.

    Returns
    -------
    dict of str to ndarray of shape (n_neighbourhoods,)
        Scores; NaN where a neighbourhood has fewer than 2 voxels or the data RSM is constant.
    """
    x = np.asarray(patterns)
    if x.ndim != 2 or x.shape[0] < 3:
        raise InputError(f"patterns must have shape (n_stimuli >= 3, n_voxels), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("patterns contain NaN or infinite values")
    if method not in _METHODS:
        raise InputError(f"unknown RSA method {method!r}; expected one of {_METHODS}")
    if dtype not in ("float64", "float32"):
        raise InputError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if not models:
        raise InputError("no model RSMs given")
    for name, model in models.items():
        if model.item_ids.size != x.shape[0]:
            raise InputError(f"model {name!r} has {model.item_ids.size} rows, patterns have {x.shape[0]} stimuli")
        if model.matrix is not None and not np.all(np.isfinite(model.matrix)):
            raise InputError(f"model RSM {name!r} contains NaN or infinite values off the diagonal")
    # Voxel-major copy (a neighbourhood is then a block of contiguous rows), z-scored in place.
    xt = np.array(x.T, dtype=np.float64 if method == "spearman" else dtype, order="C")
    if zscore_voxels:
        xt -= xt.mean(axis=1, keepdims=True)
        scale = np.sqrt(np.einsum("ij,ij->i", xt, xt, dtype=np.float64) / xt.shape[1])
        xt /= np.where(scale > 0, scale, 1.0).astype(xt.dtype)[:, None]
    if method == "spearman":
        return _spearman_scores(xt.T, neighbourhoods, models, spearman_stimuli, seed, progress)
    if n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    if int(n_jobs) != n_jobs or n_jobs < 1:
        raise InputError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    return _pearson_scores(xt, neighbourhoods, models, progress, int(n_jobs))


def searchlight_rsa(
    data: NeuralData,
    models: Mapping[str, RSM],
    radius: float = 3.0,
    shape: str = "sphere",
    coords: np.ndarray | None = None,
    affine: np.ndarray | None = None,
    method: str = "pearson",
    zscore_voxels: bool = True,
    min_voxels: int = 10,
    centres: np.ndarray | None = None,
    spearman_stimuli: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    dtype: str = "float64",
    n_jobs: int = 1,
) -> SearchlightResult:
    """Searchlight RSA of one subject against each model RSM, with ROI means.

    Repeated presentations are averaged per stimulus; the stimuli are the data's distinct
    stimuli, each of which must be a row of every model.

    Parameters
    ----------
    data : NeuralData
    models : mapping of str to RSM
        E.g. ``{system: RSM.from_embedding(embedding)}``.
    radius, shape
        See :func:`neighbourhoods`; ``radius`` is in the units of the coordinates: mm for data
        loaded from images (``data.coords`` are then world coordinates, ``data.affine`` set),
        grid steps for the synthetic brain.
    coords : ndarray of shape (n_voxels, 3), optional
        Voxel positions (default ``data.coords``).
    affine : ndarray of shape (4, 4), optional
        Only with ``coords`` given as voxel indices: maps them to mm (``radius`` then in mm).
    method, zscore_voxels, spearman_stimuli, seed, progress, dtype, n_jobs
        See :func:`searchlight_scores`.
    min_voxels : int, default=10
        Centres with fewer voxels in their neighbourhood are not scored (NaN).
    centres : ndarray of int, optional
        Voxels to use as centres (default: all).

    Returns
    -------
    SearchlightResult
    """
    if coords is None:
        if affine is not None:
            raise InputError("affine maps explicit voxel-index coords; data.coords are used as they are")
        coords = data.coords
        unit = "mm" if getattr(data, "affine", None) is not None else "units of data.coords"
    else:
        unit = "mm" if affine is not None else "units of coords"
    if coords is None:
        raise InputError(
            f"subject {data.subject}: no voxel coordinates (NeuralData.coords or coords=) for a searchlight"
        )
    coords = np.asarray(coords)
    if coords.shape != (data.n_voxels, 3):
        raise InputError(f"subject {data.subject}: coords of shape {coords.shape}, expected ({data.n_voxels}, 3)")
    stimulus_ids, patterns = stimulus_patterns(data)
    aligned = {}
    for name, model in models.items():
        rows = {item: i for i, item in enumerate(model.item_ids)}
        missing = [s for s in stimulus_ids if s not in rows]
        if missing:
            raise InputError(
                f"subject {data.subject}: {len(missing)} stimulus id(s) are not rows of model {name!r}: "
                f"{missing[:5]}{' ...' if len(missing) > 5 else ''}"
            )
        aligned[name] = model.subset(np.array([rows[s] for s in stimulus_ids], dtype=np.int64))

    centre_index = np.arange(data.n_voxels) if centres is None else _check_centres(centres, data.n_voxels)
    hoods = neighbourhoods(coords, radius, shape, affine, centre_index)
    sizes = np.array([h.size for h in hoods], dtype=np.int64)
    keep = sizes >= max(int(min_voxels), 2)
    scores = searchlight_scores(
        patterns,
        [h for h, k in zip(hoods, keep) if k],
        aligned,
        method=method,
        zscore_voxels=zscore_voxels,
        spearman_stimuli=spearman_stimuli,
        seed=seed,
        progress=progress,
        dtype=dtype,
        n_jobs=n_jobs,
    )
    n_neighbours = np.zeros(data.n_voxels, dtype=np.int64)
    n_neighbours[centre_index] = sizes
    voxel_r = {}
    for name, values in scores.items():
        full = np.full(data.n_voxels, np.nan)
        full[centre_index[keep]] = values
        voxel_r[name] = full
    roi_r = {name: {roi: _nanmean(r[voxels]) for roi, voxels in data.rois.items()} for name, r in voxel_r.items()}
    metadata = {
        "radius": float(radius),
        "radius_unit": unit,
        "shape": shape,
        "method": method,
        "zscore_voxels": bool(zscore_voxels),
        "min_voxels": int(min_voxels),
        "n_stimuli": int(stimulus_ids.size),
        "n_centres": int(keep.sum()),
        "median_neighbourhood": float(np.median(sizes[keep])) if keep.any() else 0.0,
        "spearman_stimuli": spearman_stimuli,
        "seed": seed,
        "dtype": dtype,
        "similarity": {name: model.similarity for name, model in models.items()},
    }
    return SearchlightResult(data.subject, voxel_r, n_neighbours, roi_r, metadata)


# ----------------------------------------------------------------------------- internals


def _positions(coords: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    points = np.asarray(coords, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] == 0:
        raise InputError(f"voxel coordinates must have shape (n_voxels >= 1, 3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError("voxel coordinates contain NaN or infinite values")
    if affine is not None:
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise InputError(f"affine must be a 4 x 4 matrix, got shape {affine.shape}")
        points = points @ affine[:3, :3].T + affine[:3, 3]
    return points


def _check_centres(centres: np.ndarray, n_voxels: int) -> np.ndarray:
    centres = np.asarray(centres)
    if centres.ndim != 1 or not np.issubdtype(centres.dtype, np.integer):
        raise InputError("centres must be a 1-D array of voxel indices")
    if centres.size and (centres.min() < 0 or centres.max() >= n_voxels):
        raise InputError(f"centre indices must lie in [0, {n_voxels})")
    return centres.astype(np.int64)


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _centred_unit_patterns_t(xt: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """``U^T`` (voxels x stimuli) from voxel-major data: a row gather, contiguous in memory.

    A stimulus whose pattern is constant over the neighbourhood (:mod:`oddoneout.scoring`) gets a
    zero column, as :meth:`oddoneout.rsm.RSM.from_features` gives it a zero row.
    """
    ut = xt[voxels]
    raw = np.sqrt(np.einsum("ij,ij->j", ut, ut))
    ut -= ut.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", ut, ut))
    ok = norms > CONSTANT_RTOL * raw
    ut /= np.where(ok, norms, 1.0)
    ut[:, ~ok] = 0.0
    return ut


def _squared_frobenius_of_gram(ut: np.ndarray) -> float:
    """``||U^T U||_F^2`` from the ``v x v`` Gram matrix (numpy computes ``a @ a.T`` with BLAS syrk)."""
    gram = ut @ ut.T
    return float(np.einsum("ij,ij->", gram, gram, dtype=np.float64))


@dataclass
class _ModelSums:
    """Upper-triangle sums of one model RSM and its diagonal."""

    diagonal: np.ndarray  # M_ii
    total: float  # sum_{i<j} M_ij
    squares: float  # sum_{i<j} M_ij^2


def _model_sums(model: RSM) -> _ModelSums:
    if model.factor is not None:
        f = model.factor
        diagonal = np.einsum("ij,ij->i", f, f)
        column_sums = f.sum(axis=0)
        gram = f.T @ f
        return _ModelSums(
            diagonal, (column_sums @ column_sums - diagonal.sum()) / 2, (np.sum(gram * gram) - diagonal @ diagonal) / 2
        )
    m = model.matrix  # zero diagonal (from_matrix), but stay general
    diagonal = np.diag(m).copy()
    return _ModelSums(diagonal, (m.sum() - diagonal.sum()) / 2, (np.sum(m * m) - diagonal @ diagonal) / 2)


def _pearson_scores(
    xt: np.ndarray,
    hoods: Sequence[np.ndarray],
    models: Mapping[str, RSM],
    progress: Callable[[int, int], None] | None,
    n_jobs: int = 1,
) -> dict[str, np.ndarray]:
    """Pearson scores from voxel-major, z-scored data ``xt`` (n_voxels x n_stimuli)."""
    dtype = xt.dtype
    n = xt.shape[1]
    n_pairs = n * (n - 1) // 2
    names = list(models)
    sums = {name: _model_sums(models[name]) for name in names}
    factor_names = [name for name in names if models[name].factor is not None]
    dense = {name: models[name].matrix.astype(dtype) for name in names if models[name].factor is None}
    # All factors side by side: one (v x k_total) product per centre serves every low-rank model.
    stacked = np.hstack([models[name].factor for name in factor_names]).astype(dtype) if factor_names else None
    bounds = np.cumsum([0] + [models[name].factor.shape[1] for name in factor_names])
    out = {name: np.full(len(hoods), np.nan) for name in names}

    def score(c: int) -> None:
        voxels = hoods[c]
        if voxels.size < 2:
            return
        ut = _centred_unit_patterns_t(xt, voxels)
        d_diag = np.einsum("ij,ij->j", ut, ut, dtype=np.float64)  # 1, or 0 for a constant pattern
        column_sums = ut.sum(axis=1, dtype=np.float64)  # 1^T U: sum over stimuli of each voxel
        d_total = (column_sums @ column_sums - d_diag.sum()) / 2
        d_squares = (_squared_frobenius_of_gram(ut) - d_diag @ d_diag) / 2
        cross = {}
        if stacked is not None:
            projected = ut @ stacked  # (v, k_total) = (F^T U)^T
            squared = np.einsum("ij,ij->j", projected, projected, dtype=np.float64)
            for i, name in enumerate(factor_names):
                cross[name] = squared[bounds[i] : bounds[i + 1]].sum()
        for name, matrix in dense.items():
            cross[name] = float(np.einsum("ij,ij->", ut, ut @ matrix, dtype=np.float64))
        for name in names:
            s = sums[name]
            sxy = (cross[name] - d_diag @ s.diagonal) / 2
            out[name][c] = pearson_from_sums(n_pairs, d_total, s.total, d_squares, s.squares, sxy)

    _run_centres(score, len(hoods), progress, n_jobs)
    return out


def _run_centres(score: Callable[[int], None], n_centres: int, progress, n_jobs: int) -> None:
    """Call ``score(c)`` for every centre, in threads of one BLAS thread each when ``n_jobs > 1``.

    The matrices of one centre are small (hundreds of voxels): BLAS threads inside one product
    gain little and contend badly on a busy machine, so parallelism goes over centres instead
    (numpy releases the GIL inside its products).
    """
    chunk = 64
    starts = range(0, n_centres, chunk)

    def run(start: int) -> int:
        stop = min(start + chunk, n_centres)
        for c in range(start, stop):
            score(c)
        return stop - start

    if n_jobs == 1:
        done = 0
        for start in starts:
            done += run(start)
            if progress is not None:
                progress(done, n_centres)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=n_jobs) as pool:
        done = 0
        for future in as_completed([pool.submit(run, start) for start in starts]):
            done += future.result()
            if progress is not None:
                progress(done, n_centres)


def _spearman_scores(
    x: np.ndarray,
    hoods: Sequence[np.ndarray],
    models: Mapping[str, RSM],
    n_stimuli: int | None,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, np.ndarray]:
    n = x.shape[0]
    if n_stimuli is not None:
        if int(n_stimuli) != n_stimuli or not 3 <= n_stimuli <= n:
            raise InputError(f"spearman_stimuli must be an integer in [3, {n}], got {n_stimuli!r}")
        rows = np.sort(np.random.default_rng(seed).choice(n, size=int(n_stimuli), replace=False))
        x = x[rows]
        models = {name: model.subset(rows) for name, model in models.items()}
    model_ranks = {name: rankdata(model.upper()) for name, model in models.items()}
    out = {name: np.full(len(hoods), np.nan) for name in models}
    for c, voxels in enumerate(hoods):
        if voxels.size >= 2:
            ranks = rankdata(RSM.from_features(x[:, voxels], similarity="pearson").upper())
            for name, model_rank in model_ranks.items():
                out[name][c] = pearson(ranks, model_rank, undefined=np.nan)
        if progress is not None and ((c + 1) % 256 == 0 or c + 1 == len(hoods)):
            progress(c + 1, len(hoods))
    return out
