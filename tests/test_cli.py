"""The command line, run as a user runs it: SPoSE-convention files in, embedding and JSON out, clear errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from oddoneout.embedding import Embedding
from oddoneout.triplets import sample_triplets

ENV = {**os.environ, "ODDONEOUT_PROGRESS": "0"}


def oddoneout(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "oddoneout.cli", *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd
    )


@pytest.fixture(scope="module")
def spose_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    weights = np.zeros((60, 3))
    weights[np.arange(60), rng.integers(0, 3, 60)] = rng.uniform(1.5, 3.0, 60)
    triplets = sample_triplets(weights, 24000, seed=1)
    np.save(folder / "train.npy", triplets.indices[:20000])
    np.savetxt(folder / "test.txt", triplets.indices[20000:], fmt="%d")
    (folder / "ids.txt").write_text("\n".join(f"item{i}" for i in range(60)) + "\n")
    return folder


def test_fit_then_evaluate_spose_convention_files(spose_files):
    folder = spose_files
    fit = oddoneout(
        "fit", folder / "train.npy", "--items", folder / "ids.txt", "--out", folder / "emb.parquet", "--n-dims", "10"
    )
    assert fit.returncode == 0, fit.stderr
    embedding = Embedding.load(folder / "emb.parquet")
    assert embedding.item_ids[0] == "item0" and embedding.metadata["method"] == "spose"
    assert embedding.metadata["source_file"].endswith("train.npy")
    result = oddoneout("evaluate", folder / "emb.parquet", folder / "test.txt", "--items", folder / "ids.txt", "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["n_triplets"] == 4000
    assert 0.6 < scores["accuracy"] <= 1.0
    assert scores["accuracy_ci"][0] <= scores["accuracy"] <= scores["accuracy_ci"][1]


def test_fit_spose_options_are_recorded_and_refused_for_vice(spose_files, tmp_path):
    args = ("fit", spose_files / "train.npy", "--items", spose_files / "ids.txt", "--n-dims", "10")
    fit = oddoneout(*args, "--relax", "--no-averaging", "--out", tmp_path / "relaxed.parquet")
    assert fit.returncode == 0, fit.stderr
    metadata = Embedding.load(tmp_path / "relaxed.parquet").metadata
    assert metadata["hyperparameters"]["relax"] is True
    assert metadata["hyperparameters"]["averaging"] is False
    assert metadata["relaxed_from_epoch"] > 1
    for option in ("--relax", "--no-averaging"):
        refused = oddoneout(*args, option, "--model", "vice", "--out", tmp_path / "vice.parquet")
        assert refused.returncode == 2 and option in refused.stderr


@pytest.mark.parametrize(
    "rows, message",
    [
        ("0 1 99\n", "out of range"),
        ("0 1 1\n", "repeats an item"),
        ("", "no triplets"),
        ("0 1\n", "N x 3"),
    ],
)
def test_bad_triplet_files_fail_with_one_clear_line(spose_files, tmp_path, rows, message):
    bad = tmp_path / "bad.txt"
    bad.write_text(rows)
    result = oddoneout("fit", bad, "--items", spose_files / "ids.txt", "--out", tmp_path / "emb.parquet")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert str(bad) in result.stderr


def test_unknown_id_and_missing_file(spose_files, tmp_path):
    result = oddoneout("evaluate", tmp_path / "nope.parquet", spose_files / "test.txt")
    assert result.returncode == 2 and "not found" in result.stderr
    (tmp_path / "short_ids.txt").write_text("a\nb\nc\n")
    result = oddoneout(
        "fit", spose_files / "train.npy", "--items", tmp_path / "short_ids.txt", "--out", tmp_path / "e.parquet"
    )
    assert result.returncode == 2 and "out of range [0, 3)" in result.stderr


def test_run_rejects_an_unknown_system(tmp_path):
    from oddoneout.studies import builtin_config

    result = oddoneout("run", builtin_config("synthetic"), "--out", tmp_path, "--system", "telepathy")
    assert result.returncode == 2 and "unknown system" in result.stderr


def test_fetch_verifies_offline_files_and_writes_the_stimulus_table(shared_data, tmp_path):
    result = oddoneout(
        "fetch", "cowen_keltner", "--from", shared_data / "cowen_keltner", "--out", tmp_path / "ck.parquet"
    )
    assert result.returncode == 0, result.stderr
    from oddoneout.stimuli import StimulusSet

    assert len(StimulusSet.load(tmp_path / "ck.parquet")) == 2185
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "CowenKeltnerEmotionalVideos.csv").write_text("Filename,Admiration\n0001.mp4,0.1\n")
    result = oddoneout("fetch", "cowen_keltner", "--from", tmp_path / "broken")
    assert result.returncode == 2 and "CowenKeltnerEmotionalVideos.csv" in result.stderr


def test_set_overrides_config_values_and_rejects_malformed_ones(tmp_path):
    from oddoneout.cli import _overrides
    from oddoneout.errors import InputError

    assert _overrides(3, ["design.n_triplets=7100000", "embedding.l1=[0.005, 0.01]", "study.name=ck"]) == {
        "design": {"n_triplets": 7100000},
        "embedding": {"l1": [0.005, 0.01]},
        "study": {"name": "ck", "seed": 3},
    }
    with pytest.raises(InputError, match="section.key=value"):
        _overrides(None, ["n_triplets=5"])
    from oddoneout.studies import builtin_config

    result = oddoneout("run", builtin_config("synthetic"), "--out", tmp_path, "--set", "design.n_triplet=5")
    assert result.returncode == 2 and "unknown key(s) ['n_triplet']" in result.stderr


def test_status_of_a_collected_store(tmp_path):
    from oddoneout.pipeline import run_study
    from oddoneout.studies import builtin_config

    overrides = {
        "stimuli": {"n_items": 30, "n_subjects": 1},
        "design": {"n_triplets": 500, "repeated_triplets": 0, "exhaustive_items": 0},
    }
    run_study(builtin_config("synthetic"), tmp_path, stages=("collect",), systems=["llm"], overrides=overrides)
    result = oddoneout("status", tmp_path / "triplets" / "llm.sqlite", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["n_judgments"] == 500 and status["counts"]["ok"] == 500
    assert abs(sum(status["position_bias"]["choice_rate"]) - 1) < 1e-9


def test_run_into_a_file_or_with_a_bad_setting_gives_one_line(tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = oddoneout("run", "synthetic", "--out", tmp_path / "taken")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "is a file" in result.stderr
    result = oddoneout("run", "synthetic", "--out", tmp_path / "out", "--set", "study.seed=-1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "[study] seed: -1" in result.stderr
    assert not (tmp_path / "out").exists()


def test_report_runs_the_report_stage_with_the_saved_config(tmp_path):
    from oddoneout.config import dump_config, load_config
    from oddoneout.studies import builtin_config

    out = tmp_path / "study"
    out.mkdir()
    result = oddoneout("report", out)
    assert result.returncode == 0, result.stderr
    assert "<title>study</title>" in (out / "report.html").read_text()  # no config.toml: the defaults
    config = load_config(builtin_config("synthetic"), {"report": {"title": "Saved title"}})
    (out / "config.toml").write_text(dump_config(config))
    result = oddoneout("report", out)
    assert result.returncode == 0, result.stderr
    assert "<title>Saved title</title>" in (out / "report.html").read_text()
