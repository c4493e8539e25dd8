"""Which paradigm recovers an embedding with fewer judgments: anchor triplets or odd-one-out?

Judgments of both paradigms are sampled, with the same budget of judgments per item, from a real
published embedding (by default ``../shared/data/vice_adjectives/final_embedding.npy``: 2,372
adjectives x 21 VICE dimensions; ``--n-items`` fits a random subset of them) with the choice rule
of each paradigm on the embedding's dot-product similarity:

- odd-one-out: three items, the odd one out is the softmax of the other pair's similarity (SPoSE);
- anchor triplet: a reference and two options, the option chosen by the softmax of its similarity
  to the reference (the task of NEXT, salmon and cblearn's data sets).

Each paradigm's training set is fitted, in the same run, by this project's ``SPoSE()`` and
``VICE()`` with their defaults (the trial type's own choice rule) and by cblearn's SOE, STE, t-STE
and CKL at the generating dimensionality (an odd-one-out judgment becomes cblearn's two anchor
triplets "i is closer to j than to k", "j is closer to i than to k", as in
``benchmarks/recovery_real.py``). A third kind of row, ``oracle``, estimates what the data allow:
SPoSE's objective (the trial type's cross-entropy plus ``l1 / n_items * sum(W)``, ``W >= 0``)
minimised by L-BFGS-B on all training trials *starting from the generating embedding*, for ``l1``
on a grid :data:`ORACLE_L1_SCALES` over the judgments per item, the ``l1`` with the best held-out
accuracy on the fitted paradigm kept (chosen in hindsight, on the test trials). It is the
penalised optimum nearest the truth, a reference for the gap the data leave rather than a strict
bound (a fit stopped early on held-out loss has come out up to 0.07 points above it). Every fit is
scored on the *same* held-out sets of both paradigms, so the paradigms are compared on one
yardstick:

- held-out accuracy on anchor triplets and on odd-one-out triplets, beside the generating model's;
- ``rho``: Spearman correlation, over the item pairs of a fixed subset of 400 items, between the
  fitted similarity (dot product; minus the squared distance for cblearn's Euclidean embeddings)
  and the generating one: how well the whole similarity structure was recovered, whatever the task;
- the wall time of the fit.

Usage::

    python benchmarks/paradigms.py                                  # 200 and 600 per item, all methods
    python benchmarks/paradigms.py --n-items 600 --per-item 100 200 400 600 --methods spose
    python benchmarks/paradigms.py --json results.json

cblearn is not a dependency of oddoneout: ``pip install --no-deps -r benchmarks/requirements.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.stats import spearmanr

from oddoneout.embed.evaluate import choice_scores
from oddoneout.embed.selection import triplets_per_item
from oddoneout.embed.spose import SPoSE
from oddoneout.embed.torch_choice import TrialTensors, add_batch_gradient
from oddoneout.embed.vice import VICE
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Triplets, sample_triplets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recovery_real import (  # noqa: E402  (the benchmark next door owns these)
    CBLEARN,
    DEFAULT_EMBEDDING,
    _cblearn_estimator,
    as_anchor_triplets,
    distance_odd_one_out_accuracy,
    load_embedding,
    provenance,
)

PARADIGMS = {"odd_one_out": ODD_ONE_OUT, "anchor": ANCHOR}
OURS = ("spose", "vice")
ORACLE = "oracle"
#: The oracle's ``l1`` candidates: these multiples of one over the judgments per item (a factor
#: of sqrt(2) apart, spanning the start of SPoSE's automatic grid).
ORACLE_L1_SCALES = (0.0, 1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0)
#: Trials per block of the oracle's full-batch gradient (bounds its memory).
ORACLE_BLOCK = 50_000
#: Items whose pairwise similarities are correlated with the generating ones (``rho``).
N_RHO_ITEMS = 400


def similarity_rho(truth: np.ndarray, fitted_similarity: np.ndarray, items: np.ndarray) -> float:
    """Spearman correlation of the fitted and generating similarities over the pairs of ``items``."""
    upper = np.triu_indices(len(items), k=1)
    generating = (truth[items] @ truth[items].T)[upper]
    return float(spearmanr(generating, fitted_similarity[upper]).statistic)


def distance_anchor_accuracy(embedding: np.ndarray, indices: np.ndarray) -> float:
    """Anchor-triplet accuracy of a Euclidean embedding: the option nearer the reference is chosen (ties split)."""
    points = embedding[indices]
    chosen = ((points[:, 0] - points[:, 1]) ** 2).sum(axis=1)
    other = ((points[:, 0] - points[:, 2]) ** 2).sum(axis=1)
    return float(np.mean(np.where(chosen < other, 1.0, np.where(chosen == other, 0.5, 0.0))))


def penalised_objective(train: Triplets, l1: float) -> Any:
    """SPoSE's objective on all of ``train`` as ``f(w) -> (value, gradient)`` of the flattened weights.

    The mean cross-entropy of the trials under their trial type's choice rule (float64, in blocks of
    :data:`ORACLE_BLOCK` trials) plus ``l1 / n_items * sum(W)``, the penalty of
    :class:`~oddoneout.embed.spose.SPoSE` on ``W >= 0``.
    """
    indices = torch.as_tensor(train.indices)
    n_trials, scale = len(train), l1 / train.n_items

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weights = torch.as_tensor(flat.reshape(train.n_items, -1))
        gradient = torch.full_like(weights, scale)
        value = scale * float(weights.sum())
        for start in range(0, n_trials, ORACLE_BLOCK):
            block = indices[start : start + ORACLE_BLOCK]
            block_gradient = torch.zeros_like(weights)
            loss = add_batch_gradient(weights, [TrialTensors(train.trial_type, block, None)], block_gradient)
            share = len(block) / n_trials
            value += float(loss) * share
            gradient += block_gradient * share
        return value, gradient.numpy().ravel()

    return objective


def oracle_fit(truth: np.ndarray, train: Triplets, test: Triplets) -> tuple[np.ndarray, float]:
    """The penalised fit started at ``truth`` whose ``l1`` scores best on ``test``; its weights and ``l1``."""
    per_item = triplets_per_item(len(train), train.n_items)
    best: tuple[float, np.ndarray, float] | None = None
    for scale in ORACLE_L1_SCALES:
        l1 = scale / per_item
        fitted = minimize(
            penalised_objective(train, l1),
            truth.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * truth.size,
            options={"maxiter": 2000},
        )
        weights = fitted.x.reshape(truth.shape)
        accuracy = choice_scores(weights, test)[0]
        if best is None or accuracy > best[0]:
            best = (accuracy, weights, l1)
    assert best is not None
    return best[1], best[2]


def fit_and_score(
    method: str, train: Triplets, tests: dict[str, Triplets], truth: np.ndarray, rho_items: np.ndarray, args: Any
) -> dict[str, Any]:
    """Fit one method on one paradigm's training trials; its scores on every paradigm's held-out trials."""
    start = time.perf_counter()
    if method in OURS:
        estimator = SPoSE if method == "spose" else VICE
        model = estimator(seed=args.seed, n_threads=args.threads, verbose=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(train)
        seconds = time.perf_counter() - start
        weights = model.weights_
        accuracy = {name: model.score(test) for name, test in tests.items()}
        result = {"n_dims": int(weights.shape[1]), "fit_warnings": [str(w.message) for w in caught]}
        similarity = weights[rho_items] @ weights[rho_items].T
    elif method == ORACLE:
        own_test = tests["anchor" if train.trial_type == ANCHOR else "odd_one_out"]
        weights, l1 = oracle_fit(truth, train, own_test)
        seconds = time.perf_counter() - start
        accuracy = {name: choice_scores(weights, test)[0] for name, test in tests.items()}
        alive = weights.max(axis=0) > SPoSE().prune_threshold
        result = {"n_dims": int(alive.sum()), "fit_warnings": [], "l1": l1}
        similarity = weights[rho_items] @ weights[rho_items].T
    else:
        anchors = train.indices if train.trial_type == ANCHOR else as_anchor_triplets(train.indices)
        embedding = _cblearn_estimator(method, truth.shape[1], args.seed).fit_transform(anchors)
        seconds = time.perf_counter() - start
        accuracy = {
            "anchor": distance_anchor_accuracy(embedding, tests["anchor"].indices),
            "odd_one_out": distance_odd_one_out_accuracy(embedding, tests["odd_one_out"].indices),
        }
        result = {"n_dims": int(embedding.shape[1]), "fit_warnings": []}
        points = embedding[rho_items]
        similarity = -((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    return {
        **result,
        "seconds": seconds,
        "accuracy": accuracy,
        "rho": similarity_rho(truth, similarity, rho_items),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    full = load_embedding(args.embedding)
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(full), args.n_items, replace=False)) if args.n_items else np.arange(len(full))
    truth = full[rows]
    n_items = len(truth)
    rho_items = np.sort(rng.choice(n_items, min(N_RHO_ITEMS, n_items), replace=False))
    tests = {
        name: sample_triplets(truth, args.n_test, seed=args.seed + 1 + k, trial_type=kind)
        for k, (name, kind) in enumerate(PARADIGMS.items())
    }
    generating = {name: choice_scores(truth, test)[0] for name, test in tests.items()}
    results: dict[str, Any] = {
        "provenance": {**provenance(args), "n_items": n_items, "n_test": args.n_test},
        "generating_accuracy": generating,
        "cells": [],
    }
    print(
        f"{n_items:,} items x {truth.shape[1]} dimensions; generating model: anchor {generating['anchor']:.2%}, "
        f"odd-one-out {generating['odd_one_out']:.2%} on {args.n_test:,} held-out trials each",
        flush=True,
    )
    for per_item in args.per_item:
        for paradigm in args.paradigms:
            kind = PARADIGMS[paradigm]
            train = sample_triplets(truth, per_item * n_items, seed=args.seed + 100 + per_item, trial_type=kind)
            for method in args.methods:
                cell = {"per_item": per_item, "paradigm": paradigm, "method": method}
                cell.update(fit_and_score(method, train, tests, truth, rho_items, args))
                results["cells"].append(cell)
                print(f"  {_row(cell, generating)}", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(results, indent=1) + "\n")
    return results


def _row(cell: dict[str, Any], generating: dict[str, float]) -> str:
    accuracy = cell["accuracy"]
    return (
        f"| {cell['per_item']:,} | {cell['paradigm']} | {cell['method']} | {accuracy['anchor']:.2%} "
        f"({(accuracy['anchor'] - generating['anchor']) * 100:+.2f}) | {accuracy['odd_one_out']:.2%} "
        f"({(accuracy['odd_one_out'] - generating['odd_one_out']) * 100:+.2f}) | {cell['rho']:.3f} | "
        f"{cell['n_dims']} | {cell['seconds']:.0f} s |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", type=Path, default=DEFAULT_EMBEDDING, help="Generating items x dims .npy")
    parser.add_argument("--n-items", type=int, default=0, help="Fit a random subset of this many items (0: all)")
    parser.add_argument("--per-item", type=int, nargs="+", default=[200, 600], help="Judgments per item")
    parser.add_argument("--paradigms", nargs="+", default=list(PARADIGMS), choices=list(PARADIGMS))
    parser.add_argument("--methods", nargs="+", default=[*OURS, *CBLEARN, ORACLE], choices=[*OURS, *CBLEARN, ORACLE])
    parser.add_argument("--n-test", type=int, default=50_000, help="Held-out trials of each paradigm")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of this project's fits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write every figure here (after every fit)")
    args = parser.parse_args(argv)
    print(
        "| judgments per item | paradigm fitted | method | anchor accuracy (vs generating) "
        "| odd-one-out accuracy (vs generating) | rho | dims | time |\n|---|---|---|---|---|---|---|---|"
    )
    run(args)


if __name__ == "__main__":
    main()
