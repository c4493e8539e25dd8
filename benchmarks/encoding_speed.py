"""Time voxel-wise encoding: this project's eigh solver, himalaya, and scikit-learn RidgeCV.

Synthetic data: ``--stimuli`` stimuli (default 2,180), each shown once, in 12
runs; 30 features; ``--voxels`` voxels (default 20,000) that are a random
linear map of the features plus noise, with a signal-to-noise ratio that varies
over voxels (a fifth are pure noise). All three methods use the same 6
run-blocked outer folds and the same 20 alphas (``np.logspace(-2, 5, 20)``):

- ``encode`` (solver "eigh"): alpha per voxel by 5 inner run-blocked folds;
- ``encode(solver="himalaya")``: the same nested CV with himalaya's
  ``solve_ridge_cv_svd`` (numpy backend, float32);
- scikit-learn ``RidgeCV(alphas, alpha_per_target=True)`` fit on each outer
  training set with its efficient leave-one-out CV (not run-blocked: a speed
  reference, not the same model selection).

Prints wall-clock seconds, the mean held-out r (mean over voxels of the mean
over test folds of the per-fold Pearson r) of each method, and the ratio of
each time to the faster of the two baselines. Usage::

    python benchmarks/encoding_speed.py            # 20,000 voxels
    python benchmarks/encoding_speed.py --voxels 50000
    python benchmarks/encoding_speed.py --quick    # 2,000 voxels
    python benchmarks/encoding_speed.py --memory --voxels 80000

``--memory`` measures instead the peak resident memory (RSS) of ``encode`` (eigh solver) over
``--voxels`` voxels with each ``--batches`` value of ``voxel_batch`` (0: all voxels at once).
Every setting runs in a fresh process that builds the data, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``, Linux), and encodes; the report gives the RSS with the data loaded,
the peak RSS during ``encode``, and the difference: what encoding itself added.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np

from oddoneout.neural.data import NeuralData
from oddoneout.neural.encoding import DEFAULT_ALPHAS, encode, run_blocked_folds

N_FEATURES, N_RUNS, N_FOLDS = 30, 12, 6


def make_problem(n_stimuli: int, n_voxels: int, seed: int) -> tuple[np.ndarray, list[str], NeuralData]:
    """Features, item ids and one subject's responses (one presentation per stimulus)."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_stimuli, N_FEATURES))
    item_ids = [f"stim_{i:05d}" for i in range(n_stimuli)]
    runs = rng.permutation(np.arange(n_stimuli) % N_RUNS)
    weights = rng.standard_normal((N_FEATURES, n_voxels)) / np.sqrt(N_FEATURES)
    snr = rng.uniform(0.0, 1.0, n_voxels) ** 2
    snr[rng.random(n_voxels) < 0.2] = 0.0
    responses = (features @ weights) * np.sqrt(snr) + rng.standard_normal((n_stimuli, n_voxels)) + 5.0
    rois = {"all": np.arange(n_voxels)}
    data = NeuralData("sub-bench", responses.astype(np.float32), np.array(item_ids), runs, rois)
    return features, item_ids, data


def fold_mean_r(observed: list[np.ndarray], predicted: list[np.ndarray]) -> np.ndarray:
    """Per-voxel Pearson r within each fold, averaged over folds (0 where undefined)."""
    scores = []
    for obs, pred in zip(observed, predicted):
        obs = obs - obs.mean(axis=0)
        pred = pred - pred.mean(axis=0)
        denominator = np.sqrt((obs**2).sum(axis=0) * (pred**2).sum(axis=0))
        defined = denominator > 0
        scores.append(np.where(defined, (obs * pred).sum(axis=0) / np.where(defined, denominator, 1.0), 0.0))
    return np.mean(scores, axis=0)


def sklearn_ridgecv(features: np.ndarray, data: NeuralData, alphas: np.ndarray) -> np.ndarray:
    """Voxel r of scikit-learn RidgeCV (per-voxel alpha, efficient LOO) on the run-blocked outer folds."""
    from sklearn.linear_model import RidgeCV

    x = features  # one presentation per stimulus, samples in item order
    observed, predicted = [], []
    for train, test in run_blocked_folds(data.runs, N_FOLDS, stimulus_ids=data.stimulus_ids):
        mean, scale = x[train].mean(axis=0), x[train].std(axis=0)
        y_train = data.responses[train].astype(np.float64)
        model = RidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=True)
        model.fit((x[train] - mean) / scale, y_train)
        observed.append(data.responses[test].astype(np.float64))
        predicted.append(model.predict((x[test] - mean) / scale))
    return fold_mean_r(observed, predicted)


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (Linux) in MB: VmRSS (current) or VmHWM (peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_run(n_stimuli: int, n_voxels: int, voxel_batch: int | None, seed: int, queue) -> None:
    """In a fresh process: build the problem, reset the peak RSS, encode, and report RSS figures."""
    features, item_ids, data = make_problem(n_stimuli, n_voxels, seed)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current RSS: the data's temporaries are not counted
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    result = encode(features, item_ids, data, n_folds=N_FOLDS, alphas=DEFAULT_ALPHAS, voxel_batch=voxel_batch)
    seconds = time.perf_counter() - start
    queue.put((before, _status_mb("VmHWM"), seconds, float(result.voxel_r.mean())))


def memory_report(n_stimuli: int, n_voxels: int, batches: list[int], seed: int) -> None:
    """Peak RSS of encode for each voxel_batch, each in its own process (ru_maxrss is per process)."""
    responses_mb = n_stimuli * n_voxels * 4 / 2**20
    print(f"{n_stimuli} stimuli x {n_voxels} voxels (float32 responses: {responses_mb:.0f} MB); encode, eigh solver")
    print(
        f"{'voxel_batch':>12}{'RSS data (MB)':>15}{'peak RSS (MB)':>15}{'added (MB)':>12}{'seconds':>10}{'mean r':>9}"
    )
    context = multiprocessing.get_context("spawn")
    for batch in batches:
        queue = context.Queue()
        process = context.Process(target=_memory_run, args=(n_stimuli, n_voxels, batch or None, seed, queue))
        process.start()
        before, peak, seconds, mean_r = queue.get()
        process.join()
        label = "all" if not batch else str(batch)
        print(f"{label:>12}{before:>15.0f}{peak:>15.0f}{peak - before:>12.0f}{seconds:>10.1f}{mean_r:>9.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxels", type=int, default=20_000)
    parser.add_argument("--stimuli", type=int, default=2_180)
    parser.add_argument("--quick", action="store_true", help="2,000 voxels (overrides --voxels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voxel-batch", type=int, default=None, help="encode's voxel_batch (default: all voxels)")
    parser.add_argument("--memory", action="store_true", help="report peak RSS per voxel_batch instead of timing")
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[0, 20_000, 5_000], help="voxel_batch values for --memory (0: all)"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["himalaya", "sklearn"], help="methods to leave out")
    args = parser.parse_args()
    n_voxels = 2_000 if args.quick else args.voxels
    if args.memory:
        memory_report(args.stimuli, n_voxels, args.batches, args.seed)
        return

    features, item_ids, data = make_problem(args.stimuli, n_voxels, args.seed)
    alphas = DEFAULT_ALPHAS
    print(
        f"{args.stimuli} stimuli x {N_FEATURES} features -> {n_voxels} voxels; {N_RUNS} runs, "
        f"{N_FOLDS} outer folds, {alphas.size} alphas; load average {os.getloadavg()}",
        flush=True,
    )

    times, r = {}, {}
    start = time.perf_counter()
    result = encode(features, item_ids, data, n_folds=N_FOLDS, alphas=alphas, voxel_batch=args.voxel_batch)
    times["encode (eigh)"], r["encode (eigh)"] = time.perf_counter() - start, result.voxel_r
    if "himalaya" not in args.skip:
        start = time.perf_counter()
        himalaya = encode(
            features, item_ids, data, n_folds=N_FOLDS, alphas=alphas, voxel_batch=args.voxel_batch, solver="himalaya"
        )
        times["encode (himalaya)"], r["encode (himalaya)"] = time.perf_counter() - start, himalaya.voxel_r
        same = np.mean(himalaya.fold_alphas == result.fold_alphas)
        print(
            f"eigh vs himalaya: same alpha in {same:.4%} of (fold, voxel); "
            f"max |r difference| {np.abs(himalaya.voxel_r - result.voxel_r).max():.2e}"
        )
    if "sklearn" not in args.skip:
        start = time.perf_counter()
        r["sklearn RidgeCV (LOO)"] = sklearn_ridgecv(features, data, alphas)
        times["sklearn RidgeCV (LOO)"] = time.perf_counter() - start

    baselines = [times[name] for name in times if name != "encode (eigh)"]
    fastest = min(baselines) if baselines else None
    print(f"{'method':<24}{'seconds':>10}{'mean r':>10}{'time / fastest baseline':>26}")
    for name, seconds in times.items():
        ratio = f"{seconds / fastest:.3f}" if fastest else "-"
        print(f"{name:<24}{seconds:>10.2f}{r[name].mean():>10.4f}{ratio:>26}")
    if fastest:
        print(f"speed-up of encode (eigh) over the fastest baseline: {fastest / times['encode (eigh)']:.1f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
