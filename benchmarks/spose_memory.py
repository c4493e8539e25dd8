"""SPoSE memory and time per epoch at the paper's scale (7.1M triplets x 2,180 items, 100 dims).

Builds the triplets from a sparse synthetic embedding in chunks (so that the sampler's
temporary arrays never hold all 7.1M triplets at once), fits SPoSE for a few epochs, and
reports the peak resident memory (``getrusage`` high-water mark of this process, i.e.
everything: numpy, torch, Python) after building and after fitting, and the seconds per
epoch. The full fit time is extrapolated as seconds per epoch x the number of epochs a
full fit takes (``--full-epochs``, measured with ``benchmarks/spose_speed.py`` on 1M triplets).

Usage::

    nice python benchmarks/spose_memory.py                   # 7.1M triplets, 2 epochs
    python benchmarks/spose_memory.py --epochs 500           # a whole fit (its stopping rule ends it)
    python benchmarks/spose_memory.py --triplets 1000000 --epochs 3

Requirement checked: peak memory < 4 GB.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from spose_speed import true_embedding  # the same planted embedding as the speed benchmark

from oddoneout.embed.spose import SPoSE
from oddoneout.triplets import Triplets, sample_triplets

LIMIT_GB = 4.0


def peak_rss_gb() -> float:
    """High-water mark of this process's resident memory, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def build_triplets(truth: np.ndarray, n_triplets: int, seed: int, chunk: int) -> Triplets:
    """Sample ``n_triplets`` choices chunk by chunk into one preallocated index array."""
    indices = np.empty((n_triplets, 3), dtype=np.int64)  # Triplets stores int64 indices
    for number, start in enumerate(range(0, n_triplets, chunk)):
        stop = min(start + chunk, n_triplets)
        indices[start:stop] = sample_triplets(truth, stop - start, seed=seed + number).indices
    return Triplets(tuple(str(i) for i in range(truth.shape[0])), indices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2180)
    parser.add_argument("--triplets", type=int, default=7_100_000)
    parser.add_argument("--dims", type=int, default=100)
    parser.add_argument("--true-dims", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--l1", type=float, default=0.005, help="one fixed l1 (the default 'auto' fits several)")
    parser.add_argument("--full-epochs", type=int, default=52, help="epochs of a full fit (from spose_speed.py)")
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (as spose_speed.py)")
    args = parser.parse_args()

    start = time.perf_counter()
    truth = true_embedding(args.items, args.true_dims, args.seed)
    triplets = build_triplets(truth, args.triplets, args.seed + 1, args.chunk)
    build_s = time.perf_counter() - start
    print(
        f"built {len(triplets):,} triplets over {args.items} items in {build_s:.1f} s "
        f"({triplets.indices.nbytes / 1e6:.0f} MB of {triplets.indices.dtype} indices); "
        f"peak RSS so far {peak_rss_gb():.2f} GB",
        flush=True,
    )

    stamps: list[float] = []
    model = SPoSE(n_dims=args.dims, l1=args.l1, max_epochs=args.epochs, seed=args.seed, n_threads=args.threads)
    model.progress = lambda epoch, total, metrics: (
        stamps.append(time.perf_counter()),
        print(f"  epoch {epoch}/{total}: {metrics}, peak RSS {peak_rss_gb():.2f} GB", flush=True),
    )
    fit_start = time.perf_counter()
    model.fit(triplets)
    fit_s = time.perf_counter() - fit_start
    epoch_s = np.diff([fit_start, *stamps])
    per_epoch = float(np.median(epoch_s))
    peak = peak_rss_gb()
    print(f"fit: {fit_s:.1f} s for {model.n_epochs_} epochs; seconds per epoch {np.round(epoch_s, 1).tolist()}")
    print(
        f"median {per_epoch:.1f} s/epoch "
        f"(incl. scoring {model.to_embedding().metadata['n_val_triplets']:,} validation triplets)"
    )
    print(
        f"extrapolated full fit: {per_epoch * args.full_epochs / 60:.1f} min for {args.full_epochs} epochs "
        f"(epoch count from spose_speed.py on 1M triplets)"
    )
    print(f"peak RSS: {peak:.2f} GB ({'below' if peak < LIMIT_GB else 'ABOVE'} the {LIMIT_GB:.0f} GB requirement)")


if __name__ == "__main__":
    main()
