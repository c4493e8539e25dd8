"""The study as a list of stages: each reads what an earlier one writes, a plan missing its inputs is
refused before anything runs, and a command fits exactly what its stage fits."""

import os
import subprocess
import sys

import numpy as np
import pytest

from oddoneout.config import load_config
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.pipeline import STAGE_NAMES, STAGES, StudyRun, run_study
from oddoneout.studies import builtin_config
from oddoneout.study_folder import StudyFolder

TINY = {
    "stimuli": {"n_items": 40, "n_subjects": 1, "n_runs": 4, "voxels_per_roi": 10},
    "design": {"n_triplets": 3000, "repeated_triplets": 0, "exhaustive_items": 0},
    "embedding": {"n_dims": 8, "l1": [0.01, 0.03], "max_epochs": 40},
}


def test_every_file_a_stage_reads_is_written_by_an_earlier_stage(tmp_path):
    config = load_config(builtin_config("synthetic"))
    run = StudyRun(config, StudyFolder(tmp_path), list(config.systems))
    written: set = set()
    for stage in STAGES:
        missing = [path for path in stage.reads(run) if path not in written]
        assert not missing, f"{stage.name} reads {missing}, written by no stage before it"
        written.update(stage.writes(run))
        assert stage.writes(run) or stage.name == "stimuli", stage.name
    assert [stage.name for stage in STAGES] == list(STAGE_NAMES)
    assert STAGE_NAMES.index("collect") < STAGE_NAMES.index("fit") < STAGE_NAMES.index("evaluate")
    assert STAGE_NAMES[-2:] == ("summary", "report")


def test_a_stage_whose_inputs_no_stage_writes_is_refused_before_any_stage_runs(tmp_path):
    out = tmp_path / "study"
    with pytest.raises(InputError, match=r"stage 'fit' reads triplets/.*\.parquet.*run the stages before it"):
        run_study(builtin_config("synthetic"), out, stages=["fit"], overrides=TINY)
    assert not out.exists()  # not even the stimuli were made


def test_the_fit_command_fits_what_the_fit_stage_fits(tmp_path):
    out = tmp_path / "study"
    run_study(builtin_config("synthetic"), out, stages=["collect", "fit"], systems=["llm"], overrides=TINY)
    files = StudyFolder(out).system("llm")
    from_stage = Embedding.load(files.embedding)
    command = subprocess.run(
        [
            sys.executable, "-m", "oddoneout.cli", "fit", str(files.train), "--items", str(files.items),
            "--out", str(tmp_path / "command.parquet"), "--n-dims", "8", "--l1", "0.01", "--l1", "0.03",
            "--max-epochs", "40", "--seed", "0",
        ],
        capture_output=True, text=True, env={**os.environ, "ODDONEOUT_PROGRESS": "0"},
    )  # fmt: skip
    assert command.returncode == 0, command.stderr
    from_command = Embedding.load(tmp_path / "command.parquet")
    assert from_command.item_ids == from_stage.item_ids
    np.testing.assert_array_equal(from_command.weights, from_stage.weights)
    assert from_command.metadata["l1_selection"] == from_stage.metadata["l1_selection"]
    chosen = [row["l1"] for row in from_stage.metadata["l1_selection"] if row["chosen"]]
    # the estimator reports its choice on stderr
    assert f"l1 = {chosen[0]:g}, chosen from 2 candidates" in command.stderr and "<- chosen" in command.stderr


def _noise_triplets(n_items: int, n_triplets: int, seed: int):
    """Triplets whose odd one out is drawn at random: nothing to learn, so any fit can only overfit."""
    from oddoneout.triplets import Triplets

    rng = np.random.default_rng(seed)
    indices = np.array([rng.choice(n_items, 3, replace=False) for _ in range(n_triplets)])
    return Triplets([f"item{i}" for i in range(n_items)], indices)


def test_a_fit_worse_than_chance_or_keeping_every_dimension_warns():
    from oddoneout.config.sections import EmbeddingSettings
    from oddoneout.embed.evaluate import CHANCE_CROSS_ENTROPY
    from oddoneout.embed.spose import SPoSE
    from oddoneout.errors import FitWarning
    from oddoneout.pipeline import fit_embedding

    noise = _noise_triplets(30, 800, seed=0)
    # the training-loss monitor lets an unpenalised fit overfit noise without limit
    with pytest.warns(FitWarning) as caught:
        model = SPoSE(n_dims=30, l1=0.0, monitor="train", max_epochs=200, patience=200).fit(noise)
    messages = " | ".join(str(w.message) for w in caught)
    assert model.l1_selection_["cross_entropy"].item() > CHANCE_CROSS_ENTROPY
    assert "worse than chance" in messages and "l1 from larger values" in messages
    assert model.weights_.shape[1] == 30 and "kept all 30 initial dimensions" in messages
    assert model.to_embedding().metadata["fit_warnings"] == model.fit_warnings_ and len(model.fit_warnings_) == 2
    # the study's fit records what the estimator said
    with pytest.warns(FitWarning, match="kept all 30 initial dimensions") as caught:
        fitted = fit_embedding(noise, EmbeddingSettings(n_dims=30, l1=0.0), seed=0)
    messages = " | ".join(str(w.message) for w in caught)
    assert fitted.embedding.metadata["fit_warnings"] and all(
        problem in messages for problem in fitted.embedding.metadata["fit_warnings"]
    )


def test_a_sound_fit_does_not_warn(tmp_path):
    import warnings

    from oddoneout.config.sections import EmbeddingSettings
    from oddoneout.pipeline import fit_embedding
    from oddoneout.triplets import sample_triplets

    rng = np.random.default_rng(0)
    weights = np.zeros((60, 3))
    weights[np.arange(60), rng.integers(0, 3, 60)] = rng.uniform(1.5, 3.0, 60)
    triplets = sample_triplets(weights, 8000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fitted = fit_embedding(triplets, EmbeddingSettings(n_dims=10, l1=[0.02, 0.05, 0.1]), seed=0)
    assert fitted.embedding.metadata["fit_warnings"] == []
    assert 0 < fitted.embedding.n_dims < 10
