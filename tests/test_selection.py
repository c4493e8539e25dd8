"""SPoSE chooses its l1 by held-out cross-entropy: the grid scaled to the data, the one-SE rule, folds."""

import numpy as np
import pytest

from oddoneout.embed.selection import AUTO_L1_SCALES, MAX_GROWTH, auto_l1_grid, grow_grid, one_se_rule
from oddoneout.embed.spose import SPoSE
from oddoneout.errors import InputError
from oddoneout.triplets import sample_triplets


def _one_per_dim(n_items: int, n_dims: int, seed: int) -> np.ndarray:
    weights = np.zeros((n_items, n_dims))
    weights[np.arange(n_items), np.arange(n_items) % n_dims] = np.random.default_rng(seed).uniform(1.5, 3.0, n_items)
    return weights


def test_the_automatic_grid_scales_with_the_triplets_per_item():
    grid = auto_l1_grid(n_triplets=200_000, n_items=1_000)  # 200 per item
    assert grid == pytest.approx([scale / 200 for scale in AUTO_L1_SCALES], rel=1e-3)
    # three times the data per item, a third of the penalty
    assert auto_l1_grid(600_000, 1_000) == pytest.approx([v / 3 for v in grid], rel=5e-3)
    # fewer triplets than items: the grid stops growing (one triplet per item at least)
    assert auto_l1_grid(10, 1_000) == auto_l1_grid(1_000, 1_000)


def test_the_grid_grows_past_the_end_that_holds_the_best():
    values = [0.01, 0.02, 0.04]
    assert grow_grid(values, [0.9, 0.8, 0.7]) == 0.08
    assert grow_grid(values, [0.7, 0.8, 0.9]) == 0.005
    assert grow_grid(values, [0.8, 0.7, 0.9]) is None


def test_the_grid_grows_only_past_an_end_whose_fit_does_not_warn():
    values = [0.01, 0.02, 0.04]
    # the smallest is lowest but kept every dimension: the best eligible one is inside the grid
    assert grow_grid(values, [0.7, 0.8, 0.9], warned=[True, False, False]) is None
    assert grow_grid(values, [0.7, 0.9, 0.8], warned=[True, False, False]) == 0.08
    # all warn: the plain rule
    assert grow_grid(values, [0.7, 0.8, 0.9], warned=[True, True, True]) == 0.005


def test_one_se_rule_passes_over_candidates_that_warn():
    base = np.array([1.0, 1.2, 0.8, 1.0])
    losses = [base - 0.1, base, base + np.array([0.0, 0.0, 0.0, 0.004]), base + 0.5]
    # the first is lowest but warned: the best eligible is the second; the third is within one SE of it
    chosen, excess, _ = one_se_rule(losses, n_se=1.0, warned=[True, False, False, False])
    assert chosen == 2
    assert excess == pytest.approx([-0.1, 0.0, 0.001, 0.5])
    # every candidate warns: chosen as if none did
    assert one_se_rule(losses, n_se=0.0, warned=[True] * 4)[0] == one_se_rule(losses, n_se=0.0)[0] == 0
    # a warned candidate is never chosen, even inside the slack
    assert one_se_rule(losses, n_se=1.0, warned=[True, False, True, False])[0] == 1


def test_one_se_rule_on_hand_made_losses():
    base = np.array([1.0, 1.2, 0.8, 1.0])
    losses = [base + 0.01, base, base + np.array([0.0, 0.0, 0.0, 0.004]), base + 0.5]
    chosen, excess, se = one_se_rule(losses, n_se=1.0)
    assert excess == pytest.approx([0.01, 0.0, 0.001, 0.5])
    # the third's paired differences are (0, 0, 0, 0.004): mean 0.001, SE = std / 2 = 0.001
    assert se[2] == pytest.approx(0.001)
    assert chosen == 2  # the largest candidate within one SE of the best
    assert one_se_rule(losses, n_se=0.0)[0] == 1  # zero slack: the minimum
    with pytest.raises(InputError, match="n_se"):
        one_se_rule(losses, n_se=-1.0)


def test_a_list_of_l1_rejects_a_collapsing_penalty_and_finds_the_true_dimensions():
    triplets = sample_triplets(_one_per_dim(80, 4, seed=0), 30000, seed=1)
    model = SPoSE(l1=[0.003, 0.03, 3.0], l1_n_se=0.0, n_dims=20, verbose=0).fit(triplets)
    scores = model.l1_selection_.set_index("l1")
    assert scores.loc[3.0, "n_dims"] == 0 and abs(scores.loc[3.0, "cross_entropy"] - np.log(3)) < 1e-6
    best = scores["cross_entropy"].idxmin()
    assert model.l1_ == best != 3.0 and scores.loc[best, "chosen"]
    assert model.weights_.shape[1] >= 4 and scores.loc[best, "accuracy"] > 0.6
    # the kept model is the chosen candidate's fit, scored on the validation split
    assert model.history_["val_loss"][model.best_epoch_ - 1] == pytest.approx(
        scores.loc[best, "cross_entropy"], abs=0.01
    )
    metadata = model.to_embedding().metadata
    assert metadata["l1"] == best and len(metadata["l1_selection"]) == 3
    assert metadata["hyperparameters"]["l1"] == [0.003, 0.03, 3.0]


def test_k_fold_choice_scores_every_triplet_once_and_refits_on_all():
    triplets = sample_triplets(_one_per_dim(60, 3, seed=2), 12000, seed=3)
    fitted_l1 = []

    def progress(epoch, max_epochs, metrics):
        if epoch == 1:
            fitted_l1.append(metrics["l1"])

    model = SPoSE(l1=[0.003, 3.0], l1_folds=3, n_dims=10, batch_size=1024, verbose=0, progress=progress).fit(triplets)
    # 2 candidates x 3 folds, then the chosen one validated on the split, then refitted on everything
    assert fitted_l1 == [0.003] * 3 + [3.0] * 3 + [0.003] * 2
    scores = model.l1_selection_.set_index("l1")
    # the collapsing penalty predicts chance on every held-out triplet: log(3) exactly, over all folds
    assert scores.loc[3.0, "n_dims"] == 0 and abs(scores.loc[3.0, "cross_entropy"] - np.log(3)) < 1e-9
    assert model.l1_ == 0.003 and model.weights_.shape[1] >= 3
    info = model.to_embedding().metadata
    assert info["n_triplets"] == len(triplets) and info["n_train_triplets"] == round(0.9 * len(triplets))
    assert info["refit"]["n_triplets"] == len(triplets)
    assert "3 folds" in info["l1_scheme"]
    # the paired standard error uses one held-out loss per triplet: with 12,000 of them it is small
    assert 0 < scores.loc[3.0, "excess_se"] < 0.02 < scores.loc[3.0, "excess"]


def test_auto_reports_its_choice_and_brackets_the_best(capsys):
    triplets = sample_triplets(_one_per_dim(60, 3, seed=4), 9000, seed=5)
    model = SPoSE(n_dims=10, batch_size=1024).fit(triplets)
    table = model.l1_selection_
    assert len(AUTO_L1_SCALES) <= len(table) <= len(AUTO_L1_SCALES) + MAX_GROWTH
    eligible = ~table["warned"] if not table["warned"].all() else table["warned"]
    best = int(table["cross_entropy"].where(eligible, np.inf).argmin())
    # the best candidate that fits without a warning lies inside the grid unless the grid had
    # grown as far as it may
    assert 0 < best < len(table) - 1 or len(table) == len(AUTO_L1_SCALES) + MAX_GROWTH
    assert model.l1_ == table.loc[table["chosen"], "l1"].item()
    printed = capsys.readouterr().err
    assert f"l1 = {model.l1_:g}, chosen from {len(table)} candidates" in printed and "<- chosen" in printed
    SPoSE(n_dims=10, batch_size=1024, verbose=0).fit(triplets)
    assert capsys.readouterr().err == ""


def test_a_fixed_l1_is_fitted_as_it_is_and_scored():
    triplets = sample_triplets(_one_per_dim(30, 3, seed=6), 3000, seed=7)
    model = SPoSE(l1=0.01, n_dims=6, batch_size=512, max_epochs=20).fit(triplets)
    assert model.l1_ == 0.01 and len(model.l1_selection_) == 1 and model.l1_selection_["chosen"].all()
    silent = SPoSE(l1=0.01, n_dims=6, batch_size=512, max_epochs=20, validation_fraction=0.0).fit(triplets)
    assert silent.l1_ == 0.01 and silent.l1_selection_ is None


@pytest.mark.parametrize("bad", ["bogus", [], [-0.1, 0.01], float("nan"), -1.0, True])
def test_invalid_l1_is_refused(bad):
    triplets = sample_triplets(_one_per_dim(12, 3, seed=0), 300, seed=0)
    with pytest.raises(InputError, match="l1="):
        SPoSE(l1=bad).fit(triplets)


def test_choosing_needs_held_out_triplets_and_sound_fold_counts():
    triplets = sample_triplets(_one_per_dim(12, 3, seed=0), 300, seed=0)
    with pytest.raises(InputError, match="needs held-out triplets"):
        SPoSE(validation_fraction=0.0).fit(triplets)
    for bad in (0, 1.5):
        with pytest.raises(InputError, match="l1_folds"):
            SPoSE(l1_folds=bad).fit(triplets)
    with pytest.raises(InputError, match="n_folds"):
        SPoSE(l1=[0.01, 0.02], l1_folds=301).fit(triplets)
