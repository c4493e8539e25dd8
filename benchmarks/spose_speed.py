"""SPoSE speed: this implementation against the original procedure, on the same triplets.

The baseline follows the original SPoSE training recipe: every triplet's items become one-hot
rows multiplied by a linear layer (n_items -> n_dims, no bias, weights normal(0.1, 0.01)),
batches of 100, Adam with lr 1e-3, a hand-written softmax, the L1 penalty
``lambda / n_items * |W|_1`` and the soft non-negativity penalty ``0.01 * sum(relu(-W))`` on the
raw weights, and ``abs()`` of the weights at the end.

Protocol, all in one run on the same training and held-out triplets:

1. this implementation is fitted with its own stopping rule; its final held-out accuracy minus
   0.5 points is the *target*;
2. after every epoch of either implementation the held-out accuracy is computed (the time this
   takes is not counted) and the time at which each first reaches the target is recorded; the
   baseline stops there, or when its budget runs out (then the ratio is a lower bound).

Printed: time to the target for both and their ratio; this implementation's whole fit (stopping
rule included) against the baseline's time to the target; the original procedure's 500 epochs
(measured epoch time x 500) against the whole fit; throughput per epoch; an estimate for 7.1M
triplets; peak memory.

Usage::

    python benchmarks/spose_speed.py --quick          # 200 items, 100k triplets (a minute or two)
    python benchmarks/spose_speed.py --threads 1      # one core for both
    python benchmarks/spose_speed.py                  # 2,180 items, 1M triplets, 100 dims
    python benchmarks/spose_speed.py --device cuda --skip-baseline --batch-size 16384
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.embed.spose import SPoSE
from oddoneout.triplets import Triplets, odd_one_out_probabilities, sample_triplets

ORIGINAL_EPOCHS = 500


def true_embedding(n_items: int, n_dims: int, seed: int) -> np.ndarray:
    """A sparse non-negative embedding: each item loads on 1-3 dimensions."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_items, n_dims))
    for item in range(n_items):
        dims = rng.choice(n_dims, size=rng.integers(1, 4), replace=False)
        weights[item, dims] = rng.uniform(0.8, 2.0, dims.size)
    return weights


def held_out_accuracy(weights: np.ndarray, test: Triplets) -> float:
    return odd_one_out_accuracy(odd_one_out_probabilities(weights, test.indices))


class Clock:
    """Wall time since ``start()``, without the intervals spent inside ``paused()``."""

    def start(self) -> None:
        self.origin, self.excluded = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.origin - self.excluded

    def paused(self):
        clock = self

        class _Pause:
            def __enter__(self):
                self.begin = time.perf_counter()

            def __exit__(self, *exc):
                clock.excluded += time.perf_counter() - self.begin

        return _Pause()


class TracedSPoSE(SPoSE):
    """SPoSE that also scores the held-out triplets after every epoch (benchmark instrumentation)."""

    def trace_on(self, test: Triplets, clock: Clock) -> None:
        self._test, self._clock, self.trace_ = test, clock, []

    def _validate(self, weights, indices, targets):
        result = super()._validate(weights, indices, targets)
        with self._clock.paused():
            accuracy = held_out_accuracy(weights.cpu().double().numpy(), self._test)
        self.trace_.append((self._clock.elapsed(), accuracy))
        return result


def run_baseline(train: Triplets, test: Triplets, n_dims: int, l1: float, target: float, budget_s: float, seed: int):
    """The original recipe until the held-out accuracy reaches ``target`` or ``budget_s`` runs out."""
    torch.manual_seed(seed)
    n_items = train.n_items
    layer = torch.nn.Linear(n_items, n_dims, bias=False)
    torch.nn.init.normal_(layer.weight, mean=0.1, std=0.01)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    indices = torch.from_numpy(train.indices)
    rng = np.random.default_rng(seed)
    clock, epoch_times, trace = Clock(), [], []
    clock.start()
    accuracy = 0.0
    while clock.elapsed() < budget_s and accuracy < target:
        epoch_start = clock.elapsed()
        for batch in torch.from_numpy(rng.permutation(len(train))).split(100):
            rows = indices[batch].reshape(-1)
            one_hot = torch.zeros(rows.numel(), n_items).scatter_(1, rows[:, None], 1.0)
            emb = layer(one_hot).reshape(-1, 3, n_dims)
            s_kept = (emb[:, 0] * emb[:, 1]).sum(1)  # the pair kept together (odd one out last)
            s_02 = (emb[:, 0] * emb[:, 2]).sum(1)
            s_12 = (emb[:, 1] * emb[:, 2]).sum(1)
            probability = torch.exp(s_kept) / (torch.exp(s_kept) + torch.exp(s_02) + torch.exp(s_12))
            positivity = torch.relu(-layer.weight).sum()
            loss = -torch.log(probability).mean() + 0.01 * positivity + l1 / n_items * layer.weight.abs().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if clock.elapsed() > budget_s:
                break
        epoch_times.append(clock.elapsed() - epoch_start)
        with clock.paused():
            accuracy = held_out_accuracy(layer.weight.detach().abs().T.double().numpy(), test)
        trace.append((clock.elapsed(), accuracy))
        print(f"  baseline epoch {len(trace)}: held-out accuracy {accuracy:.4f} ({clock.elapsed():.0f} s)", flush=True)
    return trace, float(np.median(epoch_times))


def time_to(trace: list[tuple[float, float]], accuracy: float) -> float:
    """Elapsed seconds at the first epoch of ``trace`` (elapsed, accuracy) that reached ``accuracy``."""
    return next((elapsed for elapsed, reached in trace if reached >= accuracy), float("nan"))


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
    parser.add_argument("--device", default="cpu", help="this implementation's torch device (the baseline: CPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="this implementation's batch size")
    parser.add_argument("--lr", type=float, default=None, help="this implementation's learning rate")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads of both (the goal's 2 cores; SPoSE's default is 1)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="time this implementation only")
    args = parser.parse_args()
    if args.quick:
        args.items, args.triplets, args.true_dims, args.baseline_budget = 200, 100_000, 8, 60.0

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch's one-time imports, out of both timings
    truth = true_embedding(args.items, args.true_dims, args.seed)
    triplets = sample_triplets(truth, args.triplets, seed=args.seed + 1)
    train, test = triplets.split(0.1, seed=args.seed)
    generating = held_out_accuracy(truth, test)
    print(f"{args.items} items, {len(train):,} training / {len(test):,} held-out triplets, {args.dims} initial dims")
    print(f"generating model's held-out accuracy: {generating:.4f}")

    tuned = {key: value for key, value in (("batch_size", args.batch_size), ("lr", args.lr)) if value is not None}
    tuned["n_threads"] = args.threads
    torch.set_num_threads(args.threads)
    model = TracedSPoSE(n_dims=args.dims, l1=args.l1, seed=args.seed, monitor=args.monitor, device=args.device, **tuned)
    clock = Clock()
    model.trace_on(test, clock)
    clock.start()
    model.fit(train)
    ours_s = clock.elapsed()
    ours_acc = model.score(test)
    ours_rate = len(train) * (1 - model.validation_fraction) * model.n_epochs_ / ours_s
    target = ours_acc - 0.005
    ours_to_target = time_to(model.trace_, target)
    print(
        f"oddoneout SPoSE ({args.device}, batch {model.batch_size}, lr {model.lr}): whole fit {ours_s:.1f} s, "
        f"{model.n_epochs_} epochs, accuracy {ours_acc:.4f}, {model.weights_.shape[1]} dims, "
        f"{ours_rate:,.0f} triplets/s; target {target:.4f} reached after {ours_to_target:.1f} s"
    )
    first = ", ".join(f"{accuracy:.4f} ({elapsed:.1f} s)" for elapsed, accuracy in model.trace_[:5])
    print(f"  held-out accuracy after epochs 1-5: {first}")
    per_epoch_71m = 7.1e6 * 0.9 / ours_rate
    print(
        f"estimated time for 7.1M triplets: {per_epoch_71m:.1f} s per epoch, "
        f"{per_epoch_71m * model.n_epochs_ / 60:.1f} min for {model.n_epochs_} epochs"
    )
    if not args.skip_baseline:
        trace, epoch_s = run_baseline(train, test, args.dims, args.l1, target, args.baseline_budget, args.seed)
        base_to_target = time_to(trace, target)
        reached = np.isfinite(base_to_target)
        base_s = base_to_target if reached else trace[-1][0]
        bound = "" if reached else ">= "
        print(
            f"baseline (one-hot, batch 100, Adam 1e-3): {len(trace)} epochs, best accuracy "
            f"{max(a for _, a in trace):.4f}, {len(train) / epoch_s:,.0f} triplets/s, "
            + (f"target reached after {base_to_target:.1f} s" if reached else f"target not reached in {base_s:.0f} s")
        )
        print(f"time to the target accuracy: {bound}{base_s / ours_to_target:.1f}x")
        print(f"baseline's time to the target / this implementation's whole fit: {bound}{base_s / ours_s:.1f}x")
        original_s = ORIGINAL_EPOCHS * epoch_s
        print(
            f"original procedure ({ORIGINAL_EPOCHS} epochs, {original_s / 60:.0f} min from the measured epoch time) / "
            f"whole fit: {original_s / ours_s:.0f}x"
        )
        print(f"throughput per epoch: {ours_rate * epoch_s / len(train):.1f}x")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
