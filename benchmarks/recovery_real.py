"""Recovery of a real embedding: this SPoSE and VICE with their defaults beside cblearn's estimators.

Triplets are sampled with the SPoSE choice rule (softmax over the three pair dot products) from a
real published embedding (by default ``../shared/data/vice_adjectives/final_embedding.npy``: 2,372
adjectives x 21 VICE dimensions learned from human judgments; ``--embedding`` takes any
non-negative ``.npy`` items x dims array) at realistic sizes: about 200, 600 and 2,000 triplets per
item (``--per-item``). Each regime is fitted, in the same run, by

- ``spose``: :class:`~oddoneout.embed.spose.SPoSE` with its defaults (``l1`` chosen on held-out
  loss from a grid scaled to the data), exactly what ``oddoneout fit`` does;
- ``spose-soft``: the same on the soft labels (the generating probabilities, what an agent that
  reports log-probabilities gives);
- ``vice``: :class:`~oddoneout.embed.vice.VICE` with its defaults;
- ``soe``, ``ste``, ``tste``, ``ckl``: cblearn's ordinal embedding estimators with their defaults at
  the generating dimensionality; each odd-one-out judgment (i, j kept, k odd) becomes the two
  anchor triplets "i is closer to j than to k" and "j is closer to i than to k". Their held-out
  odd-one-out prediction is the item left out of the closest pair.

Printed per regime and method: held-out odd-one-out accuracy beside the generating model's (same
held-out triplets), cross-entropy (for the models that give odd-one-out probabilities), dimensions
kept, recovery of the generating dimensions (best-match Pearson r over items, for the non-negative
models whose dimensions are meant to be interpretable; cblearn's Euclidean embeddings are defined up
to rotation, so theirs are not printed), wall time and the ratio of each method's time to ``spose``'s.

A generating dimension is *important* when zeroing it costs the generating model at least 0.5
points of held-out accuracy (measured on ``--n-importance`` further triplets); recovery is judged on
those (every important dimension matched at r >= 0.9), and the count of weaker dimensions that are
matched too is printed.

Usage::

    python benchmarks/recovery_real.py                              # 200, 600 and 2,000 per item, every method
    python benchmarks/recovery_real.py --per-item 200 --methods spose vice ckl
    python benchmarks/recovery_real.py --embedding other.npy --json results.json

cblearn is not a dependency of oddoneout: install it with ``pip install -r benchmarks/requirements.txt``
(see that file for why its pins are installed without their dependency metadata).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.special import softmax

from oddoneout.embed.evaluate import cross_entropy, odd_one_out_accuracy
from oddoneout.embed.recovery import IMPORTANT_ACCURACY_LOSS, MATCH_R, dimension_importance, recovery
from oddoneout.embed.spose import SPoSE
from oddoneout.embed.vice import VICE
from oddoneout.triplets import Triplets, odd_one_out_probabilities, sample_triplets

SHARED_DATA = Path(os.environ.get("ODDONEOUT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_EMBEDDING = SHARED_DATA / "vice_adjectives" / "final_embedding.npy"
OURS = ("spose", "spose-soft", "vice")
CBLEARN = ("soe", "ste", "tste", "ckl")


def load_embedding(path: Path) -> np.ndarray:
    """A non-negative items x dims array (float64)."""
    weights = np.load(path).astype(np.float64)
    if weights.ndim != 2 or not np.isfinite(weights).all() or (weights < 0).any():
        raise SystemExit(f"{path}: expected a finite, non-negative items x dims array, got shape {weights.shape}")
    return weights


def as_anchor_triplets(indices: np.ndarray) -> np.ndarray:
    """Odd-one-out rows (i, j kept, k odd) as cblearn anchor triplets (anchor, nearer, farther), two per row."""
    i, j, k = indices[:, 0], indices[:, 1], indices[:, 2]
    return np.concatenate([np.stack([i, j, k], axis=1), np.stack([j, i, k], axis=1)])


def distance_odd_one_out_accuracy(embedding: np.ndarray, indices: np.ndarray) -> float:
    """Odd-one-out accuracy of a Euclidean embedding: the closest pair is kept (ties split)."""
    points = embedding[indices]  # (n, 3, d)
    pair_distance = np.stack(
        [
            ((points[:, 1] - points[:, 2]) ** 2).sum(axis=1),  # pair without column 0: column 0 is odd
            ((points[:, 0] - points[:, 2]) ** 2).sum(axis=1),
            ((points[:, 0] - points[:, 1]) ** 2).sum(axis=1),
        ],
        axis=1,
    )
    # a smaller distance of the other pair makes an item likelier to be the odd one out
    return odd_one_out_accuracy(softmax(-pair_distance, axis=1))


def _cblearn_estimator(name: str, n_components: int, seed: int) -> Any:
    from cblearn.embedding import CKL, SOE, STE, TSTE

    cls = {"soe": SOE, "ste": STE, "tste": TSTE, "ckl": CKL}[name]
    return cls(n_components=n_components, random_state=seed)


def fit_method(
    name: str, train: Triplets, truth: np.ndarray, importance: np.ndarray, seed: int, threads: int
) -> tuple[Callable[[Triplets], dict[str, Any]], float]:
    """Fit one method; returns its scorer of held-out triplets and the wall time of the fit."""
    start = time.perf_counter()
    if name in OURS:
        model: Any = VICE(seed=seed, n_threads=threads) if name == "vice" else SPoSE(seed=seed, n_threads=threads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(train if name == "spose-soft" else Triplets(train.item_ids, train.indices))
        elapsed = time.perf_counter() - start

        def score(test: Triplets) -> dict[str, Any]:
            probs = model.predict_proba(test)
            found = recovery(truth, model.weights_, importance)
            return {
                "accuracy": odd_one_out_accuracy(probs),
                "cross_entropy": cross_entropy(probs),
                "n_dims": int(model.weights_.shape[1]),
                "match_r": found.match_r.tolist(),
                "important_found": found.important_found,
                "weaker_found": found.weaker_found,
                "min_important_r": found.min_important_r,
                "chosen": {"l1": getattr(model, "l1_", None)},
                "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
            }

        return score, elapsed
    estimator = _cblearn_estimator(name, truth.shape[1], seed)
    anchors = as_anchor_triplets(train.indices)
    embedding = estimator.fit_transform(anchors)
    elapsed = time.perf_counter() - start

    def score(test: Triplets) -> dict[str, Any]:
        return {
            "accuracy": distance_odd_one_out_accuracy(embedding, test.indices),
            "cross_entropy": None,
            "n_dims": int(embedding.shape[1]),
            "match_r": None,
            "chosen": {},
            "warnings": [],
        }

    return score, elapsed


def run_regime(
    truth: np.ndarray,
    per_item: int,
    args: argparse.Namespace,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Sample one regime, fit every method, score them on the same held-out triplets.

    ``on_result(regime)`` is called after every method (the results so far), so a long run that
    is stopped keeps what it measured.
    """
    n_items = truth.shape[0]
    n_train = per_item * n_items
    data = sample_triplets(truth, n_train + args.n_test, seed=args.seed + per_item, with_probs=True)
    train, test = data.subset(np.arange(n_train)), data.subset(np.arange(n_train, n_train + args.n_test))
    test = Triplets(test.item_ids, test.indices)
    generating = odd_one_out_probabilities(truth, test.indices)
    importance_set = sample_triplets(truth, args.n_importance, seed=args.seed + 10_000 + per_item)
    importance = dimension_importance(truth, importance_set)
    important = importance >= IMPORTANT_ACCURACY_LOSS
    regime: dict[str, Any] = {
        "per_item": per_item,
        "n_train": n_train,
        "n_test": args.n_test,
        "generating_accuracy": odd_one_out_accuracy(generating),
        "generating_cross_entropy": cross_entropy(generating),
        "importance": importance.tolist(),
        "n_important": int(important.sum()),
        "methods": {},
    }
    print(
        f"\n== {per_item} triplets per item: {n_train:,} training, {args.n_test:,} held out; generating model "
        f"{regime['generating_accuracy']:.2%}, cross-entropy {regime['generating_cross_entropy']:.4f}; "
        f"{important.sum()} of {truth.shape[1]} dimensions important (zeroing costs >= 0.5 points)",
        flush=True,
    )
    for name in args.methods:
        score, elapsed = fit_method(name, train, truth, importance, args.seed, args.threads)
        result = {"seconds": elapsed, **score(test)}
        regime["methods"][name] = result
        print(f"   {name}: {_row(result, regime)}", flush=True)
        if on_result is not None:
            on_result(regime)
    return regime


def _row(result: dict[str, Any], regime: dict[str, Any]) -> str:
    gap = (regime["generating_accuracy"] - result["accuracy"]) * 100
    ce = f"{result['cross_entropy']:.4f}" if result["cross_entropy"] is not None else "-"
    found = (
        f"{result['important_found']}/{regime['n_important']} important (min r {result['min_important_r']:.3f}), "
        f"{result['weaker_found']} weaker"
        if result["match_r"] is not None
        else "-"
    )
    return (
        f"accuracy {result['accuracy']:.2%} ({gap:+.2f} points below generating), cross-entropy {ce}, "
        f"{result['n_dims']} dims, matched at r >= {MATCH_R}: {found}, {result['seconds']:.1f} s"
    )


def print_table(regimes: list[dict[str, Any]]) -> None:
    """A Markdown table of every regime and method (what the README records)."""
    print("\n| triplets per item | method | held-out accuracy (generating) | cross-entropy | dims | important dims "
          "matched (r >= 0.9) | weaker dims matched | time | time / spose |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for regime in regimes:
        reference = regime["methods"].get("spose", {}).get("seconds")
        for name, result in regime["methods"].items():
            ce = f"{result['cross_entropy']:.4f}" if result["cross_entropy"] is not None else "-"
            important = (
                f"{result['important_found']}/{regime['n_important']} (min r {result['min_important_r']:.2f})"
                if result["match_r"] is not None
                else "-"
            )
            weaker = str(result["weaker_found"]) if result["match_r"] is not None else "-"
            ratio = f"{result['seconds'] / reference:.1f}x" if reference else "-"
            print(
                f"| {regime['per_item']:,} | {name} | {result['accuracy']:.2%} ({regime['generating_accuracy']:.2%}) "
                f"| {ce} | {result['n_dims']} | {important} | {weaker} | {result['seconds']:.0f} s | {ratio} |"
            )


def provenance(args: argparse.Namespace) -> dict[str, Any]:
    """How the results were made: the command, the code's commit, versions, the machine."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except OSError:
        commit = ""
    versions = {}
    for package in ("oddoneout", "torch", "numpy", "cblearn"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a package that is not installed is simply not listed
            pass
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit,
        "versions": versions,
        "machine": f"{platform.machine()}, {platform.processor() or platform.platform()}",
        "embedding": str(args.embedding),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", type=Path, default=DEFAULT_EMBEDDING, help="Generating items x dims .npy")
    parser.add_argument("--per-item", type=int, nargs="+", default=[200, 600, 2000], help="Triplets per item")
    parser.add_argument("--methods", nargs="+", default=[*OURS, *CBLEARN], choices=[*OURS, *CBLEARN])
    parser.add_argument("--n-test", type=int, default=100_000, help="Held-out triplets per regime")
    parser.add_argument("--n-importance", type=int, default=400_000, help="Triplets that rank the dimensions")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of this project's fits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write every figure here")
    args = parser.parse_args(argv)
    truth = load_embedding(args.embedding)
    print(f"{args.embedding}: {truth.shape[0]:,} items x {truth.shape[1]} dimensions", flush=True)
    regimes: list[dict[str, Any]] = []

    def save(current: dict[str, Any]) -> None:  # the finished regimes and the one under way
        if args.json:
            payload = {"provenance": provenance(args), "regimes": [*regimes, current]}
            args.json.write_text(json.dumps(payload, indent=1) + "\n")

    for per_item in args.per_item:
        regimes.append(run_regime(truth, per_item, args, on_result=save))
    print_table(regimes)


if __name__ == "__main__":
    main()
