"""Time whole-brain searchlight RSA: the exact fast sums of ``oddoneout.neural.searchlight`` vs naive RSMs.

Synthetic data: ``--stimuli`` stimuli (default 2,180) x ``--voxels`` voxels (default 20,000) filling
an ellipsoid "brain" on a 2 mm grid; searchlight spheres of ``--radius`` mm (default 8 mm, i.e.
4 voxels: up to 257 voxels); five model RSMs (Pearson similarity of 30-d non-negative embeddings).

- fast: :func:`searchlight_scores` on ``--centres`` centres (default 400, spread over the brain),
  timed (the one-off set-up apart) and extrapolated linearly to every voxel as a centre (the
  cost of a centre depends only on its neighbourhood size, about constant away from the edges);
- naive: for ``--naive-centres`` centres (default 3), the full ``n x n`` data RSM
  (``np.corrcoef``), its upper triangle, and ``np.corrcoef`` with each model's upper triangle.

BLAS threads contend badly on a busy machine for the small per-centre products; set
``OPENBLAS_NUM_THREADS=1`` (and ``--n-jobs`` for threads over centres) for stable figures.

Prints seconds per centre, the extrapolated whole-brain time, the ratio naive / fast, and the
largest difference between the two on the naive centres. Usage::

    python benchmarks/searchlight_speed.py
    python benchmarks/searchlight_speed.py --voxels 50000 --centres 400
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from oddoneout.neural.searchlight import neighbourhoods, searchlight_scores
from oddoneout.rsm import RSM

N_DIMS, N_SYSTEMS, VOXEL_MM = 30, 5, 2.0


def brain_coords(n_voxels: int) -> np.ndarray:
    """The ``n_voxels`` grid points nearest the centre of a 3:4:3 ellipsoid (voxel indices)."""
    side = int(np.ceil((n_voxels * 6 / np.pi / (0.75 * 0.75)) ** (1 / 3))) + 4
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), axis=-1).reshape(-1, 3).astype(float)
    centre = (side - 1) / 2
    distance = np.sqrt(((grid - centre) / np.array([0.75, 1.0, 0.75])) ** 2).sum(axis=1)
    return grid[np.argsort(distance, kind="stable")[:n_voxels]].astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stimuli", type=int, default=2_180)
    parser.add_argument("--voxels", type=int, default=20_000)
    parser.add_argument("--radius", type=float, default=8.0, help="sphere radius / half cube side in mm (2 mm voxels)")
    parser.add_argument("--shape", default="sphere", choices=["sphere", "cube"], help="cube --radius 6: 7x7x7 voxels")
    parser.add_argument("--centres", type=int, default=400, help="centres timed for the fast method")
    parser.add_argument("--naive-centres", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=1, help="searchlight_scores n_jobs (threads over centres)")
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    coords = brain_coords(args.voxels)
    latent = np.abs(rng.normal(size=(args.stimuli, N_DIMS)))
    patterns = latent @ rng.normal(size=(N_DIMS, args.voxels)) * 0.3 + rng.normal(size=(args.stimuli, args.voxels))
    ids = np.array([f"stim{i:05d}" for i in range(args.stimuli)])
    models = {}
    for s in range(N_SYSTEMS):
        embedding = np.clip(latent + rng.normal(0, 0.5 * s + 0.1, latent.shape), 0, None)
        models[f"system{s}"] = RSM.from_features(embedding, ids, "pearson")
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    centres = np.linspace(0, args.voxels - 1, args.centres).astype(np.int64)
    start = time.perf_counter()
    hoods = neighbourhoods(coords, args.radius, args.shape, affine=affine)
    t_hoods = time.perf_counter() - start
    sizes = np.array([h.size for h in hoods])
    print(
        f"{args.stimuli} stimuli x {args.voxels} voxels, {args.radius} mm {args.shape}s on a {VOXEL_MM} mm grid "
        f"(median {np.median(sizes):.0f}, max {sizes.max()} voxels), {N_SYSTEMS} models of rank {N_DIMS}; "
        f"load average {os.getloadavg()}",
        flush=True,
    )
    print(f"neighbourhoods of all {args.voxels} centres (cKDTree): {t_hoods:.2f} s")

    chosen = [hoods[c] for c in centres]
    per_centre, fast = {}, {}
    for dtype in args.dtype:
        # One centre first: the one-off set-up (z-scoring, voxel-major copy) apart from the cost per centre.
        start = time.perf_counter()
        searchlight_scores(patterns, chosen[:1], models, dtype=dtype, n_jobs=args.n_jobs)
        once = time.perf_counter() - start
        start = time.perf_counter()
        fast[dtype] = searchlight_scores(patterns, chosen, models, dtype=dtype, n_jobs=args.n_jobs)
        total = time.perf_counter() - start
        per_centre[dtype] = (total - once) / (len(chosen) - 1)
        setup = max(once - per_centre[dtype], 0.0)
        whole = setup + per_centre[dtype] * args.voxels + t_hoods
        print(
            f"fast ({dtype}, n_jobs={args.n_jobs}): set-up {setup:.2f} s, {per_centre[dtype] * 1e3:.2f} ms per "
            f"centre (all {N_SYSTEMS} models, {len(chosen)} centres); whole brain ({args.voxels} centres) "
            f"extrapolated: {whole:.0f} s ({whole / 60:.1f} min)",
            flush=True,
        )

    from scipy.stats import zscore

    z = zscore(patterns, axis=0)
    upper = np.triu_indices(args.stimuli, k=1)
    model_upper = {name: model.dense()[upper] for name, model in models.items()}
    naive_centres = centres[:: max(1, len(centres) // args.naive_centres)][: args.naive_centres]
    start = time.perf_counter()
    naive = {name: [] for name in models}
    for c in naive_centres:
        data_upper = np.corrcoef(z[:, hoods[c]])[upper]
        for name, values in model_upper.items():
            naive[name].append(np.corrcoef(data_upper, values)[0, 1])
    t_naive = (time.perf_counter() - start) / len(naive_centres)
    position = {int(c): i for i, c in enumerate(centres)}
    print(
        f"naive: {t_naive:.2f} s per centre on {len(naive_centres)} centres -> whole brain "
        f"{t_naive * args.voxels / 3600:.1f} h"
    )
    for dtype, scores in fast.items():
        difference = max(
            abs(naive[name][i] - scores[name][position[int(c)]]) for name in models for i, c in enumerate(naive_centres)
        )
        print(
            f"naive / fast ({dtype}) per centre: {t_naive / per_centre[dtype]:.0f}x; "
            f"max |fast - naive| = {difference:.1e}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
