"""SPoSE speed: this implementation against the original procedure, on the same triplets.

The baseline follows the original SPoSE training recipe: every triplet's items become one-hot
rows multiplied by a linear layer (n_items -> n_dims, no bias), batches of 100, Adam with
lr 1e-3, the L1 penalty ``lambda / n_items * |W|_1`` on the raw weights, a hand-written softmax,
and ``abs()`` of the weights at the end. Both are run on the same training triplets until they
reach the same held-out accuracy (this implementation's, minus 0.5 points), or until the
baseline's time budget runs out (then the ratio is a lower bound).

Usage::

    python benchmarks/spose_speed.py --quick          # 200 items, 100k triplets (a minute or two)
    python benchmarks/spose_speed.py                  # 2,180 items, 1M triplets, 100 dims (long)
    python benchmarks/spose_speed.py --baseline-budget 3600

Prints absolute figures (wall time, triplets/s per epoch, time to fit 7.1M triplets, peak memory)
and the ratio, all measured in the same run.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from oddoneout.embed.choice import odd_one_out_probabilities, sample_triplets
from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.embed.spose import SPoSE
from oddoneout.triplets import Triplets


def true_embedding(n_items: int, n_dims: int, seed: int) -> np.ndarray:
    """A sparse non-negative embedding: each item loads on 1-3 dimensions."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_items, n_dims))
    for item in range(n_items):
        dims = rng.choice(n_dims, size=rng.integers(1, 4), replace=False)
        weights[item, dims] = rng.uniform(0.8, 2.0, dims.size)
    return weights


def baseline_accuracy(weights: torch.Tensor, test: Triplets) -> float:
    w = weights.detach().abs().numpy()
    a, b, c = (w[test.indices[:, p]] for p in range(3))
    logits = np.column_stack([(b * c).sum(1), (a * c).sum(1), (a * b).sum(1)])
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return odd_one_out_accuracy(probs / probs.sum(1, keepdims=True))


def run_baseline(train: Triplets, test: Triplets, n_dims: int, l1: float, target: float, budget_s: float, seed: int):
    """The original recipe: one-hot x linear layer, batch 100, Adam lr 1e-3."""
    torch.manual_seed(seed)
    n_items = train.n_items
    layer = torch.nn.Linear(n_items, n_dims, bias=False)
    torch.nn.init.normal_(layer.weight, mean=0.1, std=0.01)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    indices = torch.from_numpy(train.indices)
    rng = np.random.default_rng(seed)
    start, epochs, accuracy, epoch_rates = time.perf_counter(), 0, 0.0, []
    while time.perf_counter() - start < budget_s:
        epoch_start = time.perf_counter()
        for batch in torch.from_numpy(rng.permutation(len(train))).split(100):
            rows = indices[batch].reshape(-1)
            one_hot = torch.zeros(rows.numel(), n_items).scatter_(1, rows[:, None], 1.0)
            emb = layer(one_hot).reshape(-1, 3, n_dims)
            s_kept = (emb[:, 0] * emb[:, 1]).sum(1)  # the pair kept together (odd one out last)
            s_02 = (emb[:, 0] * emb[:, 2]).sum(1)
            s_12 = (emb[:, 1] * emb[:, 2]).sum(1)
            probability = torch.exp(s_kept) / (torch.exp(s_kept) + torch.exp(s_02) + torch.exp(s_12))
            loss = -torch.log(probability).mean() + l1 / n_items * layer.weight.abs().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if time.perf_counter() - start > budget_s:
                break
        epochs += 1
        epoch_rates.append(len(train) / (time.perf_counter() - epoch_start))
        accuracy = baseline_accuracy(layer.weight.T, test)
        print(
            f"  baseline epoch {epochs}: held-out accuracy {accuracy:.4f} ({epoch_rates[-1]:,.0f} triplets/s)",
            flush=True,
        )
        if accuracy >= target:
            break
    return time.perf_counter() - start, epochs, accuracy, float(np.median(epoch_rates)) if epoch_rates else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2180)
    parser.add_argument("--triplets", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=100, help="initial dimensions")
    parser.add_argument("--true-dims", type=int, default=30)
    parser.add_argument("--l1", type=float, default=0.005)
    parser.add_argument("--baseline-budget", type=float, default=1800.0, help="seconds before the baseline gives up")
    parser.add_argument("--quick", action="store_true", help="200 items, 100k triplets, 60 s baseline budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--monitor",
        choices=("validation", "train"),
        default="validation",
        help="SPoSE stopping: early stopping on held-out loss, or convergence of the training objective",
    )
    args = parser.parse_args()
    if args.quick:
        args.items, args.triplets, args.true_dims, args.baseline_budget = 200, 100_000, 8, 60.0

    truth = true_embedding(args.items, args.true_dims, args.seed)
    triplets = sample_triplets(truth, args.triplets, seed=args.seed + 1)
    train, test = triplets.split(0.1, seed=args.seed)
    generating = odd_one_out_accuracy(odd_one_out_probabilities(truth, test.indices))
    print(f"{args.items} items, {len(train):,} training / {len(test):,} held-out triplets, {args.dims} initial dims")
    print(f"generating model's held-out accuracy: {generating:.4f}")

    start = time.perf_counter()
    model = SPoSE(n_dims=args.dims, l1=args.l1, seed=args.seed, monitor=args.monitor).fit(train)
    ours_s = time.perf_counter() - start
    ours_acc = model.score(test)
    ours_rate = len(train) * (1 - model.validation_fraction) * model.n_epochs_ / ours_s
    print(
        f"oddoneout SPoSE: {ours_s:.1f} s, {model.n_epochs_} epochs, accuracy {ours_acc:.4f}, "
        f"{model.weights_.shape[1]} dims, {ours_rate:,.0f} triplets/s"
    )

    target = ours_acc - 0.005
    base_s, base_epochs, base_acc, base_rate = run_baseline(
        train, test, args.dims, args.l1, target, args.baseline_budget, args.seed
    )
    reached = base_acc >= target
    print(
        f"baseline (one-hot, batch 100, Adam 1e-3): {base_s:.1f} s, {base_epochs} epochs, accuracy {base_acc:.4f}, "
        f"{base_rate:,.0f} triplets/s{'' if reached else ' (did not reach the target within its budget)'}"
    )
    ratio = base_s / ours_s
    print(f"speed-up to equal accuracy (target {target:.4f}): {'' if reached else '>= '}{ratio:.1f}x")
    print(f"throughput ratio per epoch: {ours_rate / base_rate:.1f}x")
    per_epoch_71m = 7.1e6 * 0.9 / ours_rate
    print(
        f"estimated time for 7.1M triplets: {per_epoch_71m:.1f} s per epoch, "
        f"{per_epoch_71m * model.n_epochs_ / 60:.1f} min for {model.n_epochs_} epochs"
    )
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
