"""The shipped Cowen & Keltner study config runs offline on the real ratings (small scale)."""

from oddoneout.embedding import Embedding
from oddoneout.pipeline import run_study
from oddoneout.studies import builtin_config


def test_real_ratings_study_runs_offline_end_to_end(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_COWEN_KELTNER", str(shared_data / "cowen_keltner"))
    overrides = {
        "design": {"n_triplets": 60000, "repeated_triplets": 200, "exhaustive_items": 12},
        "embedding": {"n_dims": 30, "max_epochs": 60, "l1_folds": 2},
        "evaluation": {"n_bootstrap": 100},
    }
    summary = run_study(builtin_config("cowen_keltner"), tmp_path, systems=["human_dimension"], overrides=overrides)
    system = summary["systems"]["human_dimension"]
    assert summary["synthetic"] is False and summary["study"] == "cowen-keltner"
    assert system["n_judgments"] == 60000 + 200 * 3 + 220 and system["n_failed"] == 0
    assert -1 <= system["rsm_r"] <= 1
    assert system["accuracy"] > 0.6  # the cosine rule on centred ratings is learnable; chance is 1/3
    assert system["noise_ceiling"] == 1.0  # a deterministic agent agrees with itself
    assert 'source = "cowen_keltner"' in (tmp_path / "config.toml").read_text()
    assert (tmp_path / "report.html").read_text().count("SYNTHETIC DATA") == 0
    # l1 chosen by 2-fold cross-validation over the config's candidates, recorded with the embedding
    selection = Embedding.load(tmp_path / "embeddings" / "human_dimension.parquet").metadata["l1_selection"]
    assert len(selection) >= 2  # the config lists several l1 values
    assert sum(row["chosen"] for row in selection) == 1
    assert "l1_folds = 2" in (tmp_path / "config.toml").read_text()
