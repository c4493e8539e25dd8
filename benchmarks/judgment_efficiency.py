"""How many judgments does an embedding need: random triplets, adaptive triplets, soft labels.

Each agent answers odd-one-out triplets over ``--n-items`` items, in rounds of ``--round-size``
trials, under three ways of spending judgments (arms), in the same run and from the same first
round:

- ``random``: every round uniform random triplets (what studies do today);
- ``adaptive``: every round after the first the most informative triplets under the answers so
  far (:func:`oddoneout.collect.informativeness.select_trials`: expected information gain under
  the posterior of a VICE fit, a pool of 20 random candidates per selected triplet, each item in
  at most 1.5 times its share of a round);
- ``soft``: random triplets answered with the agent's choice probabilities (soft labels; only
  for agents that give them).

After every round ``SPoSE()`` with its defaults (what ``oddoneout fit`` runs) is fitted on all the
answers so far and scored on the same held-out set of random triplets (adaptive triplets are not
a fair test set), and on the validation subset: ``rsm_r`` is the correlation of the fit's
predicted similarity matrix with the one measured from the agent's answers to every triplet of
``--n-rsm-items`` items (the ``rsm_r`` of ``oddoneout evaluate``).

Agents (all from data this project did not make, except the planted one):

- ``real``: simulated from the published VICE embedding of 2,372 adjectives
  (``../shared/data/vice_adjectives``), SPoSE's choice rule at temperature 1 (a realistic noise
  level: the generating model itself is right on about 54% of held-out triplets);
- ``planted``: simulated from a planted sparse non-negative embedding (8 dimensions);
- ``ratings``: the study's human-category system (``SimilarityAgent`` on the Cowen-Keltner
  category shares, ``../shared/data/cowen_keltner``): deterministic, no probabilities.

Printed per agent and arm: the judgments needed to reach 99% of the held-out accuracy, and of
the ``rsm_r``, that random sampling reaches at the full budget (linear interpolation between
rounds; mean over seeds with a 95% t-interval; "not reached" when a seed never gets there), and
the ratio to random's. ``--json`` writes every round of every run; ``--figure`` draws accuracy
against judgments.

Usage::

    python benchmarks/judgment_efficiency.py                       # 3 agents, 3 seeds, 200 items, 40,000 judgments
    python benchmarks/judgment_efficiency.py --agents real --seeds 0 1 --rounds 6
    python benchmarks/judgment_efficiency.py --json eff.json --figure docs/images/judgment_efficiency.png
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import stats

from oddoneout.agents.similarity import SimilarityAgent
from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.designs import all_triplets
from oddoneout.collect.informativeness import fit_selection_model, select_trials
from oddoneout.embed.rsm import measured_similarity, predicted_similarity, rsm_correlation
from oddoneout.embed.spose import SPoSE
from oddoneout.stimuli.cowen_keltner import load_ratings
from oddoneout.triplets import ODD_ONE_OUT, Triplets, random_trial_indices

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recovery_real import DEFAULT_EMBEDDING, SHARED_DATA, load_embedding, provenance  # noqa: E402

ARMS = ("random", "adaptive", "soft")
AGENTS = ("real", "planted", "ratings")
#: Share of random sampling's final score an arm must reach.
TARGET_SHARE = 0.99
RATINGS = SHARED_DATA / "cowen_keltner" / "CowenKeltnerEmotionalVideos.csv"


def planted_embedding(n_items: int, seed: int = 0, n_dims: int = 8) -> np.ndarray:
    """A sparse non-negative embedding: each item loads on 1 to 3 dimensions."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_items, n_dims))
    for item in range(n_items):
        dims = rng.choice(n_dims, rng.integers(1, 4), replace=False)
        weights[item, dims] = rng.gamma(4.0, 0.5, len(dims))
    return weights


def make_agent(name: str, n_items: int, embedding_path: Path = DEFAULT_EMBEDDING) -> tuple[Any, tuple[str, ...], bool]:
    """The agent, its item ids and whether it gives choice probabilities."""
    rng = np.random.default_rng(0)
    if name == "ratings":
        ratings = load_ratings(RATINGS)
        shares = ratings.filter(like="category:").to_numpy()
        rows = np.sort(rng.choice(len(shares), n_items, replace=False))
        ids = tuple(str(i) for i in ratings.index[rows])
        return SimilarityAgent(shares[rows], ids, name), ids, False
    if name == "real":
        embedding = load_embedding(embedding_path)
        features = embedding[np.sort(rng.choice(len(embedding), n_items, replace=False))]
    elif name == "planted":
        features = planted_embedding(n_items)
    else:
        raise SystemExit(f"unknown agent {name!r}; choose from {AGENTS}")
    ids = tuple(str(i) for i in range(n_items))
    return SimulatedAgent(features, ids, name, seed=1, return_probs=True), ids, True


def ask(
    agent: Any,
    ids: tuple[str, ...],
    indices: np.ndarray,
    soft: bool,
    asked: dict[int, int] | None = None,
    stream: str = "train",
) -> Triplets:
    """The agent's answers to ``indices`` as Triplets (with soft labels when ``soft``).

    Each trial is asked with a key of its unordered triplet and how often that triplet was asked
    before (counted in ``asked``), so a simulated agent's answer is a function of the trial alone:
    arms asking the same trials get the same answers (the comparison is paired), a triplet asked
    again an independent one. ``stream`` names the draws: the held-out and validation answers
    are independent of the training ones.
    """
    asked = {} if asked is None else asked
    n = len(ids)
    ordered = np.sort(indices, axis=1)
    codes = ((ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2]).tolist()
    keys = []
    for code in codes:
        keys.append((stream, code, 0, asked.get(code, 0)))
        asked[code] = asked.get(code, 0) + 1
    shown = [tuple(ids[i] for i in row) for row in indices]
    answers = agent.judge(shown, keys)
    choices = np.array([answer.choice for answer in answers])
    canonical = ODD_ONE_OUT.to_canonical(indices, choices)
    if not soft:
        return Triplets(ids, canonical)
    probs = np.array([answer.probs for answer in answers])
    return Triplets(ids, canonical, ODD_ONE_OUT.to_canonical(probs, choices))  # laid out like the items


def rsm_reference(agent: Any, ids: tuple[str, ...], n_rsm_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Items of the validation subset and the similarity measured from every triplet of them."""
    subset = np.sort(np.random.default_rng(2).choice(len(ids), n_rsm_items, replace=False))
    triplets = subset[all_triplets(n_rsm_items)]
    answered = ask(agent, ids, triplets, soft=False, stream="validation")
    item_ids = np.asarray(ids)
    shown = item_ids[answered.indices]
    measured = measured_similarity(shown, shown[:, 2], [ids[i] for i in subset])  # column 2: the odd one out
    return subset, measured


def fit_scores(train: Triplets, test: Triplets, subset: np.ndarray, measured: np.ndarray, seed: int) -> dict:
    """SPoSE with its defaults on ``train``: held-out accuracy, rsm_r, dimensions."""
    model = SPoSE(seed=seed)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        model.fit(train)
    weights = model.weights_
    rsm_r = rsm_correlation(predicted_similarity(weights[subset]), measured) if weights.shape[1] else 0.0
    rsm_r = rsm_r if np.isfinite(rsm_r) else 0.0  # constant predicted similarity: nothing recovered
    return {"accuracy": float(model.score(test)), "rsm_r": float(rsm_r), "dims": int(weights.shape[1])}


def run_arm(
    arm: str,
    agent: Any,
    ids: tuple[str, ...],
    seed: int,
    args: argparse.Namespace,
    test: Triplets,
    reference: tuple[np.ndarray, np.ndarray],
    log: Callable[[str], None],
    stop_at: dict[str, float] | None = None,
) -> list[dict]:
    """Rounds of one arm: the score after each round.

    The soft arm asks rounds ``--soft-resolution`` times smaller (one soft judgment is worth
    several hard ones, so its curve needs a finer grid) and stops once every score of
    ``stop_at`` is reached.
    """
    n_items = len(ids)
    soft = arm == "soft"
    round_size = args.round_size // args.soft_resolution if soft else args.round_size
    n_rounds = args.rounds * args.soft_resolution if soft else args.rounds
    first = random_trial_indices(n_items, 3, args.round_size, np.random.default_rng([seed, 0]))[:round_size]
    rng = np.random.default_rng([seed, ARMS.index(arm) + 1])
    asked: dict[int, int] = {}
    answered = ask(agent, ids, first, soft, asked)
    rows: list[dict] = []
    for round_number in range(1, n_rounds + 1):
        start = time.perf_counter()
        scores = fit_scores(answered, test, *reference, seed=seed)
        rows.append({"round": round_number, "judgments": len(answered), **scores})
        log(
            f"  {arm:8s} seed {seed} round {round_number:2d}: {len(answered):6,} judgments  "
            f"accuracy {scores['accuracy']:.4f}  rsm_r {scores['rsm_r']:.3f}  dims {scores['dims']:3d}  "
            f"({time.perf_counter() - start:.1f} s fit)"
        )
        if round_number == n_rounds or (stop_at is not None and all(rows[-1][m] >= stop_at[m] for m in stop_at)):
            break
        if arm == "adaptive":
            model = fit_selection_model(answered, seed=1000 * seed + round_number)
            chosen = select_trials(
                model, n_items, args.round_size, seed=1000 * seed + round_number, exclude=answered.indices
            ).indices
        else:
            chosen = random_trial_indices(n_items, 3, round_size, rng)
        new = ask(agent, ids, chosen, soft, asked)
        probs = np.concatenate([answered.probs, new.probs]) if soft else None
        answered = Triplets(ids, np.concatenate([answered.indices, new.indices]), probs)
    return rows


def judgments_to(rows: list[dict], metric: str, target: float) -> float:
    """Judgments at which ``metric`` first reaches ``target`` (interpolated); NaN if never.

    Reached after the first round: that round's size, an upper bound.
    """
    previous: tuple[float, float] | None = None
    for row in rows:
        value = row[metric] if np.isfinite(row[metric]) else 0.0  # an undefined rsm_r recovered nothing
        if value >= target:
            if previous is None or value == previous[1]:
                return float(row["judgments"])
            share = (target - previous[1]) / (value - previous[1])
            return float(previous[0] + share * (row["judgments"] - previous[0]))
        previous = (row["judgments"], value)
    return float("nan")


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds (NaN when any seed did not reach the target)."""
    array = np.asarray(values, dtype=np.float64)
    if np.isnan(array).any() or not len(array):
        return float("nan"), float("nan"), float("nan")
    mean = float(array.mean())
    if len(array) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))
    return mean, mean - half, mean + half


def summarise(runs: dict[str, dict[int, list[dict]]]) -> dict[str, dict]:
    """Per arm and metric: the judgments to random sampling's target, paired by seed.

    The target of seed ``s`` is :data:`TARGET_SHARE` of the score random sampling with seed ``s``
    reaches at the full budget; every arm's run with seed ``s`` starts from the same first round.
    """
    summary: dict[str, dict] = {}
    for metric in ("accuracy", "rsm_r"):
        finals = {seed: rows[-1][metric] for seed, rows in runs["random"].items()}
        targets = {seed: TARGET_SHARE * final for seed, final in finals.items()}
        random_needed = {seed: judgments_to(runs["random"][seed], metric, targets[seed]) for seed in finals}
        for arm, by_seed in runs.items():
            needed = {seed: judgments_to(rows, metric, targets[seed]) for seed, rows in by_seed.items()}
            ratios = [needed[seed] / random_needed[seed] for seed in needed]
            mean, low, high = mean_ci(list(needed.values()))
            ratio, ratio_low, ratio_high = mean_ci(ratios)
            summary.setdefault(arm, {})[metric] = {
                "random_final": float(np.mean(list(finals.values()))),
                "targets": targets,
                "per_seed": needed,
                "mean": mean,
                "ci95": [low, high],
                "ratio": ratio,
                "ratio_ci95": [ratio_low, ratio_high],
            }
    return summary


def print_summary(agent: str, summary: dict[str, dict], budget: int, first_round: dict[str, int]) -> None:
    """The table of one agent (``<=``: reached after some seed's first round, an upper bound)."""
    print(f"\n{agent}: judgments to reach 99% of random sampling's score at {budget:,} judgments (paired by seed)")
    print(f"{'arm':10s} {'accuracy':>24s} {'ratio to random':>20s} {'rsm_r':>24s} {'ratio to random':>20s}")
    for arm, metrics in summary.items():
        cells = []
        for metric in ("accuracy", "rsm_r"):
            entry = metrics[metric]
            values = list(entry["per_seed"].values())
            if np.isnan(entry["mean"]):
                reached = sum(not np.isnan(v) for v in values)
                cells += [f"not reached ({reached}/{len(values)} seeds)", ""]
                continue
            bound = "<= " if any(v == first_round[arm] for v in values) else ""
            low, high = entry["ci95"]
            ratio_low, ratio_high = entry["ratio_ci95"]
            cells += [
                f"{bound}{entry['mean']:,.0f} [{low:,.0f}, {high:,.0f}]",
                f"{bound}{entry['ratio']:.2f} [{ratio_low:.2f}, {ratio_high:.2f}]",
            ]
        print(f"{arm:10s} {cells[0]:>24s} {cells[1]:>20s} {cells[2]:>24s} {cells[3]:>20s}")
    finals = {m: summary["random"][m]["random_final"] for m in ("accuracy", "rsm_r")}
    print(f"(random sampling at the full budget: accuracy {finals['accuracy']:.4f}, rsm_r {finals['rsm_r']:.3f})")


def draw_figure(results: dict[str, Any], path: Path) -> None:
    """Held-out accuracy against judgments: one panel per agent, mean over seeds per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = list(results["runs"])
    fig, axes = plt.subplots(1, len(agents), figsize=(4.2 * len(agents), 3.4), squeeze=False)
    for ax, agent in zip(axes[0], agents):
        for arm, by_seed in results["runs"][agent].items():
            runs = list(by_seed.values())
            common = min(len(rows) for rows in runs)  # the soft arm stops at its target, seeds apart
            x = np.array([row["judgments"] for row in runs[0][:common]])
            y = np.array([[row["accuracy"] for row in rows[:common]] for rows in runs])
            line = ax.plot(x, y.mean(axis=0), marker="o", ms=3, label=arm)[0]
            if len(runs) > 1:
                ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=line.get_color(), alpha=0.2)
        target = np.mean(list(results["summary"][agent]["random"]["accuracy"]["targets"].values()))
        ax.axhline(target, color="grey", lw=0.8, ls="--", label="99% of random at full budget")
        ax.set_title(agent)
        ax.set_xlabel("judgments")
        ax.set_ylabel("held-out accuracy")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def resummarise(path: Path, figure: Path | None) -> None:
    """Print the tables (and draw the figure) of a ``--json`` file again."""
    results = json.loads(path.read_text())
    for agent, runs in results["runs"].items():
        runs = {arm: {int(seed): rows for seed, rows in by_seed.items()} for arm, by_seed in runs.items()}
        results["summary"][agent] = summarise(runs)
        first_round = {arm: next(iter(by_seed.values()))[0]["judgments"] for arm, by_seed in runs.items()}
        budget = next(iter(runs["random"].values()))[-1]["judgments"]
        print_summary(agent, results["summary"][agent], budget, first_round)
    if figure:
        draw_figure(results, figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", nargs="+", choices=AGENTS, default=list(AGENTS))
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-items", type=int, default=200)
    parser.add_argument("--round-size", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--soft-resolution", type=int, default=4, help="The soft arm's rounds are this many times smaller."
    )
    parser.add_argument("--n-test", type=int, default=20000, help="Held-out random triplets.")
    parser.add_argument("--n-rsm-items", type=int, default=30, help="Items of the exhaustive validation subset.")
    parser.add_argument("--embedding", type=Path, default=DEFAULT_EMBEDDING, help="The real agent's embedding (.npy).")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--summarise", type=Path, help="Only print the tables of this --json file (and --figure).")
    args = parser.parse_args(argv)
    if args.summarise:
        resummarise(args.summarise, args.figure)
        return
    if "random" not in args.arms:
        parser.error("the random arm sets the target: keep it in --arms")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results: dict[str, Any] = {"provenance": provenance(args), "runs": {}, "summary": {}}
    for agent_name in args.agents:
        agent, ids, gives_probs = make_agent(agent_name, args.n_items, args.embedding)
        test_rows = random_trial_indices(len(ids), 3, args.n_test, np.random.default_rng(99))
        test = ask(agent, ids, test_rows, soft=False, stream="test")
        reference = rsm_reference(agent, ids, args.n_rsm_items)
        runs: dict[str, dict[int, list[dict]]] = {}
        for arm in args.arms:
            if arm == "soft" and not gives_probs:
                log(f"{agent_name}: no choice probabilities, no soft arm")
                continue
            stop_at = None
            if arm == "soft":  # random has run: stop the soft arm past its targets
                targets = summarise({"random": runs["random"]})["random"]
                stop_at = {m: max(entry["targets"].values()) for m, entry in targets.items()}
            for seed in args.seeds:
                log(f"{agent_name} {arm} seed {seed}")
                runs.setdefault(arm, {})[seed] = run_arm(arm, agent, ids, seed, args, test, reference, log, stop_at)
        results["runs"][agent_name] = runs
        results["summary"][agent_name] = summarise(runs)
        first_round = {arm: by_seed[args.seeds[0]][0]["judgments"] for arm, by_seed in runs.items()}
        print_summary(agent_name, results["summary"][agent_name], args.round_size * args.rounds, first_round)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))
    if args.figure:
        draw_figure(results, args.figure)


if __name__ == "__main__":
    main()
