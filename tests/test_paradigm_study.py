"""A study of anchor (and one of ranked) trials through the command line: collect, fit, evaluate, status.

The simulated agent answers from the synthetic world's MLLM view with the trial type's choice rule;
the fitted embedding's held-out accuracy comes close to the accuracy of that rule itself on the
same held-out trials (what the generating vectors would score).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from synthetic_study import synthetic_study_config

from oddoneout.embed.evaluate import choice_scores
from oddoneout.triplets import Triplets, read_item_ids, trial_type_from_spec

ENV = {**os.environ, "ODDONEOUT_PROGRESS": "0"}
DESIGN = """
trial_type = "{trial_type}"
n_triplets = {n_trials}
repeated_triplets = 100
n_repeats = 3
exhaustive_items = {exhaustive_items}
"""
STAGES = ("stimuli", "collect", "fit", "evaluate")


def oddoneout(*args):
    return subprocess.run(
        [sys.executable, "-m", "oddoneout.cli", *map(str, args)], capture_output=True, text=True, env=ENV
    )


def run_study(tmp_path, trial_type, n_trials, exhaustive_items):
    config = tmp_path / "study.toml"
    design = DESIGN.format(trial_type=trial_type, n_trials=n_trials, exhaustive_items=exhaustive_items)
    config.write_text(synthetic_study_config("paradigm", design, l1=0.02, n_bootstrap=50))
    out = tmp_path / "out"
    result = oddoneout("run", config, "--out", out, *(f"--stage={stage}" for stage in STAGES))
    assert result.returncode == 0, result.stderr
    return config, out


def generating_accuracy(out, trial_type):
    """Accuracy of the simulated agent's own choice rule on the held-out trials of the fit."""
    view = pd.read_parquet(out / "world" / "view_mllm.parquet")
    view = view.set_index("item_id") if "item_id" in view.columns else view
    items = read_item_ids(out / "split" / "mllm_items.txt")
    test = Triplets(items, np.load(out / "split" / "mllm_test.npy"), trial_type=trial_type_from_spec(trial_type))
    return choice_scores(view.loc[list(items)].to_numpy(float), test)[0]


@pytest.mark.filterwarnings("ignore")
def test_an_anchor_study_recovers_the_generating_accuracy(tmp_path):
    config, out = run_study(tmp_path, "anchor", 10_000, exhaustive_items=8)
    evaluation = json.loads((out / "evaluation" / "mllm.json").read_text())
    assert evaluation["trial_type"] == "anchor" and evaluation["chance_cross_entropy"] == pytest.approx(np.log(2))
    generating = generating_accuracy(out, "anchor")
    assert generating > 0.7  # far from chance (1/2): the test can tell a fit from a guess
    assert abs(evaluation["accuracy"] - generating) < 0.05, (evaluation["accuracy"], generating)
    assert evaluation["cross_entropy"] < np.log(2) - 0.15
    assert evaluation["n_repeated_triplets"] == 100 and evaluation["accuracy"] < evaluation["noise_ceiling"] + 0.05
    assert evaluation["rsm_r"] > 0.5 and evaluation["n_exhaustive_items"] == 8
    n_judgments = 10_000 + 100 * 3 + 8 * 21
    assert evaluation["n_judgments"] == n_judgments

    status = oddoneout("status", out / "triplets" / "mllm.sqlite", "--json")
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)
    assert counts["n_judgments"] == n_judgments and counts["counts"]["ok"] == n_judgments
    assert counts["trial_types"] == {"anchor": n_judgments}
    assert counts["designs"] == {"exhaustive": 168, "random": 10_000, "repeats": 300}
    assert len(counts["position_bias"]["choice_rate"]) == 2 and counts["position_bias"]["p_value"] > 0.001
    text = oddoneout("status", out / "triplets" / "mllm.sqlite")
    assert "trial types:" in text.stdout and f"anchor       {n_judgments}" in text.stdout

    # the same folder under another trial type: the stage checks and the store refuse it in one line
    odd = ("--set", 'design.trial_type="odd_one_out"', "--set", "design.n_triplets=5000")
    refit = oddoneout("run", config, "--out", out, "--stage=fit", *odd)
    assert refit.returncode == 2 and "was collected as anchor trials" in refit.stderr
    assert refit.stderr.count("\n") == 1
    recollect = oddoneout("run", config, "--out", out, "--stage=collect", *odd)
    assert recollect.returncode == 2 and "stored as anchor trials but asks odd_one_out trials" in recollect.stderr


@pytest.mark.filterwarnings("ignore")
def test_a_ranked_study_recovers_the_generating_accuracy(tmp_path):
    _, out = run_study(tmp_path, "ranked:4:2", 6_000, exhaustive_items=0)
    evaluation = json.loads((out / "evaluation" / "mllm.json").read_text())
    assert evaluation["trial_type"] == "ranked:4:2"
    generating = generating_accuracy(out, "ranked:4:2")
    assert generating > 0.5  # chance is 1/4
    assert abs(evaluation["accuracy"] - generating) < 0.05, (evaluation["accuracy"], generating)
    assert evaluation["cross_entropy"] < evaluation["chance_cross_entropy"] - 0.5
    assert evaluation["noise_ceiling"] is not None and evaluation["rsm_r"] is None
    status = json.loads(oddoneout("status", out / "triplets" / "mllm.parquet", "--json").stdout)
    assert status["trial_types"] == {"ranked:4:2": 6_000 + 300}
    assert len(status["position_bias"]["choice_rate"]) == 4
