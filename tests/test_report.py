"""Tests of the HTML study report, on a small real study folder written with the contracts' writers."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.interpret import rating_correlations, top_items, write_rating_correlations, write_top_items
from oddoneout.report import write_report
from oddoneout.report.figures import system_colors
from oddoneout.stimuli import StimulusSet

SYSTEMS = ("mllm", "llm", "human_category", "human_dimension", "human_concat")
EVIL_CAPTION = "<script>alert('x')</script> a dog & a cat"


def build_study(
    out: Path,
    *,
    systems=SYSTEMS,
    n_items: int = 30,
    n_categories: int = 5,
    n_scales: int = 3,
    n_dims: int = 4,
    rois=("VC", "TPJ", "Amygdala"),
    subjects=("sub-01", "sub-02", "sub-03"),
    epochs: int = 5,
    synthetic: bool = True,
    interpret_files: bool = True,
    encoding: bool = True,
    seed: int = 0,
) -> Path:
    """Write a study output folder with every part of the layout, filled with seeded random values."""
    rng = np.random.default_rng(seed)
    ids = [f"clip{i:04d}" for i in range(n_items)]
    captions = [f"caption of clip {i}" for i in range(n_items)]
    categories = {f"category:cat{c}": rng.random(n_items) for c in range(n_categories)}
    scales = {f"dimension:scale{s}": 1 + 8 * rng.random(n_items) for s in range(n_scales)}
    # Put the evil caption on the item with the largest weight of dim_01 in every embedding.
    captions[0] = EVIL_CAPTION
    stimuli = StimulusSet(pd.DataFrame({"item_id": ids, "caption": captions, **scales, **categories}), name="test-set")
    stimuli.save(out / "stimuli.parquet")
    (out / "config.toml").write_text(f'study = "test-study"\nseed = {seed}\nnote = "<b>not bold</b>"\n')

    summary_systems, encoding_means, roi_rows = {}, {}, []
    for k, system in enumerate(systems):
        weights = rng.random((n_items, n_dims)) * np.linspace(1.0, 0.3, n_dims)
        weights[0, 0] = 5.0
        weights[:, -1] = 0.0  # a dead dimension: no defined correlation, no positive label
        selection = [
            {"l1": 0.01, "n_dims": 7.5, "cross_entropy": 0.81, "excess": 0.0, "excess_se": 0.0, "accuracy": 0.6,
             "chosen": False},
            {"l1": 0.02, "n_dims": 6.0, "cross_entropy": 0.8102, "excess": 0.0002, "excess_se": 0.0004,
             "accuracy": 0.6, "chosen": True},
        ]  # fmt: skip
        metadata = {"method": "spose", "seed": seed, "l1": 0.02, "l1_selection": selection,
                    "l1_scheme": "5 folds (<i>3,000</i> triplets, each held out once)",
                    "hyperparameters": {"relax": True}, "fit_warnings": [f"kept all <{k}> dimensions"]}  # fmt: skip
        embedding = Embedding(ids, weights, metadata)
        embedding.save(out / "embeddings" / f"{system}.parquet")
        if interpret_files:
            interpret = out / "interpret"
            write_rating_correlations(rating_correlations(embedding, stimuli), interpret / f"{system}_ratings.csv")
            write_top_items(top_items(embedding, stimuli, k=4), interpret / f"{system}_top_items.csv")
        accuracy = 0.5 + 0.08 * k
        learned = 1 - np.exp(-np.arange(1, epochs + 1) / (0.1 * epochs))  # saturating training curve
        evaluation = {
            "accuracy": accuracy,
            "accuracy_ci": [accuracy - 0.03, accuracy + 0.03],
            "cross_entropy": 0.9 - 0.05 * k,
            "n_triplets": 1000,
            "noise_ceiling": accuracy + 0.07,
            "noise_ceiling_ci": [accuracy + 0.04, accuracy + 0.1],
            "n_repeated_triplets": 100,
            "history": {
                "epoch": list(range(1, epochs + 1)),
                "train_loss": list(1.1 - (0.35 + 0.05 * k) * learned),
                "val_loss": list(1.1 - (0.3 + 0.05 * k) * learned),
                "val_accuracy": list(1 / 3 + (accuracy - 1 / 3) * learned),
            },
        }
        (out / "evaluation").mkdir(exist_ok=True)
        (out / "evaluation" / f"{system}.json").write_text(json.dumps(evaluation))
        summary_systems[system] = {
            "n_judgments": 5000,
            "n_failed": 7 * k,
            "n_dims": n_dims,
            **{
                key: evaluation[key]
                for key in ("accuracy", "accuracy_ci", "noise_ceiling", "noise_ceiling_ci", "cross_entropy")
            },
        }
        for roi in rois:
            values = 0.02 + 0.03 * k + 0.01 * rng.normal(size=len(subjects))
            roi_rows += [(subject, system, roi, value) for subject, value in zip(subjects, values)]
            encoding_means.setdefault(roi, {})[system] = float(values.mean())
    if encoding:
        (out / "encoding").mkdir(exist_ok=True)
        pd.DataFrame(roi_rows, columns=["subject", "system", "roi", "r"]).to_csv(
            out / "encoding" / "roi_r.csv", index=False
        )
    summary = {
        "study": "test-study",
        "synthetic": synthetic,
        "seed": seed,
        "provenance": {"package_version": "0.1.0", "config_hash": "abc123", "python": "3.12"},
        "systems": summary_systems,
    }
    if encoding:
        summary["encoding"] = encoding_means
    (out / "summary.json").write_text(json.dumps(summary))
    return out


def images(text: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'<img src="data:image/png;base64,([^"]+)"', text)]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    out = build_study(tmp_path_factory.mktemp("study"))
    return out, write_report(out).read_text(encoding="utf-8")


def test_report_shows_every_system_and_figure(study):
    out, text = study
    assert (out / "report.html").is_file()
    assert text.startswith("<!DOCTYPE html>")
    for system in SYSTEMS:
        assert f"<td>{system}</td>" in text  # behaviour table row
        assert f'id="embedding-{system}"' in text  # embeddings subsection
    # accuracy bars + training curves + encoding bars + per system a heatmap and the correlation bars
    pngs = images(text)
    assert len(pngs) == 3 + 2 * len(SYSTEMS)
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pngs)
    assert b"Software" not in b"".join(pngs)


def test_report_header_and_tables(study):
    _, text = study
    assert "SYNTHETIC DATA" in text
    assert "<title>test-study</title>" in text
    assert "abc123" in text and "0.1.0" in text
    # The config is shown escaped.
    assert "&lt;b&gt;not bold&lt;/b&gt;" in text and "<b>not bold</b>" not in text
    # Accuracy with CI of the first system (0.50 [0.47, 0.53]) and a per-subject encoding cell.
    assert "50.0% [47.0%, 53.0%]" in text
    assert re.search(r"<td>-?0\.\d{3} ± 0\.\d{3} \(n=3\)</td>", text)
    for roi in ("VC", "TPJ", "Amygdala"):
        assert f"<td>{roi}</td>" in text
    # No external resources.
    assert "<script" not in text.replace("&lt;script", "")
    assert not re.search(r'(src|href)="(http|//)', text)


def test_report_shows_how_l1_was_chosen(study):
    _, text = study
    for k in range(len(SYSTEMS)):  # each fit's problems are marked, escaped
        assert f'<p class="warning">Warning: kept all &lt;{k}&gt; dimensions</p>' in text
    summary = "l1 = 0.02: 2 candidate(s) scored on 5 folds (&lt;i&gt;3,000&lt;/i&gt; triplets, each held out once)"
    assert text.count(summary + " after the relaxed refit") == len(SYSTEMS)  # the scheme is escaped
    assert "<td>0.02</td><td>6</td><td>0.8102</td><td>0.0002 ± 0.0004</td><td>60.0%</td><td>chosen</td>" in text
    assert "<td>0.01</td><td>7.5</td><td>0.8100</td><td>0.0000 ± 0.0000</td><td>60.0%</td><td></td>" in text


def test_report_escapes_captions(study):
    _, text = study
    assert "<script>" not in text
    assert "none positive" in text  # the dead dimension has no label
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; a dog &amp; a cat" in text


def test_report_is_deterministic(study):
    out, text = study
    assert write_report(out).read_text(encoding="utf-8") == text


def test_report_survives_missing_sections(tmp_path):
    out = build_study(tmp_path, systems=("mllm", "llm"), encoding=False, interpret_files=False, synthetic=False)
    (out / "config.toml").unlink()
    summary = json.loads((out / "summary.json").read_text())
    summary["systems"]["llm"].update(noise_ceiling=None, noise_ceiling_ci=None)
    (out / "summary.json").write_text(json.dumps(summary))
    for path in (out / "evaluation").iterdir():
        path.unlink()
    text = write_report(out, title="My <study>").read_text(encoding="utf-8")

    assert "SYNTHETIC DATA" not in text
    assert "<title>My &lt;study&gt;</title>" in text
    assert "No encoding results" in text
    assert "config.toml is missing" in text
    assert "No evaluation files" in text
    assert "<td>n/a</td>" in text  # llm has no noise ceiling
    # The report computes no interpretation of its own: it says which files are missing.
    assert "interpret/llm_ratings.csv and interpret/llm_top_items.csv missing" in text
    # Accuracy bars (from summary.json) only; no heatmaps, training curves or encoding figure.
    assert len(images(text)) == 1


def test_report_of_an_almost_empty_folder(tmp_path):
    (tmp_path / "embeddings").mkdir()
    Embedding(["a", "b", "c"], np.eye(3)).save(tmp_path / "embeddings" / "only.parquet")
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "summary.json is missing" in text
    assert "stimuli.parquet is missing" in text
    assert "No behavioural results" in text
    assert 'id="embedding-only"' in text
    assert images(text) == []  # no ratings to correlate, nothing behavioural or neural


def test_report_brain_section_from_summary_only(tmp_path):
    out = build_study(tmp_path, systems=("mllm",))
    (out / "encoding" / "roi_r.csv").unlink()
    text = write_report(out).read_text(encoding="utf-8")
    assert "showing the subject means of summary.json only" in text
    assert len(images(text)) == 3 + 2


def test_report_rejects_malformed_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        write_report(tmp_path / "absent")
    out = build_study(tmp_path, systems=("mllm",))
    (out / "evaluation" / "mllm.json").write_text("{not json")
    with pytest.raises(InputError, match="mllm.json"):
        write_report(out)
    (out / "evaluation" / "mllm.json").unlink()
    (out / "encoding" / "roi_r.csv").write_text("subject,system,roi\nsub-01,mllm,VC\n")
    with pytest.raises(InputError, match=r"roi_r.csv.*\['r'\]"):
        write_report(out)


def test_system_colours_are_stable_and_distinct():
    colors = system_colors(["new_a", *SYSTEMS, "new_b"])
    assert colors == system_colors(["new_a", *SYSTEMS, "new_b"])
    assert len(set(colors.values())) == len(colors)
    assert colors["mllm"] == system_colors(["mllm"])["mllm"]


def test_chance_follows_each_systems_trial_type():
    from oddoneout.report.figures import chance_accuracy

    assert chance_accuracy({"accuracy": 0.5}) == pytest.approx(1 / 3)  # evaluations of odd-one-out name no type
    assert chance_accuracy({"trial_type": "anchor"}) == 0.5
    assert chance_accuracy({"trial_type": "ranked:8:2"}) == pytest.approx(1 / 8)
