"""The report's interpretation section and paper-vs-ours table, from a small study folder written directly."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from oddoneout.config.sections import InterpretSettings
from oddoneout.embedding import Embedding
from oddoneout.interpret.cross_system import compare_systems_stage
from oddoneout.interpret.stage import interpret_embedding, interpretation_summary
from oddoneout.report import StudyOutputs, interpret_section, load_study_outputs, render_report
from oddoneout.report.figures import system_colors
from oddoneout.report.interactive_map import write_interactive_maps
from oddoneout.report.interpret_figures import systems_rsa_figure
from oddoneout.stimuli import StimulusSet
from oddoneout.study_folder import StudyFolder
from oddoneout.triplets import sample_triplets

SYSTEMS = ("mllm", "human_category")
SETTINGS = InterpretSettings(
    top_k=3, map_method="tsne", graph_threshold=0.1, class_min_r=0.3, class_balance=0.8, interactive=True
)


def _stimuli_and_weights(seed: int = 0) -> tuple[StimulusSet, dict[str, np.ndarray]]:
    """Four planted categories; both systems see them, the second with more noise."""
    rng = np.random.default_rng(seed)
    classes = ("Joy", "Fear", "Awe", "Anger")
    labels = np.repeat(np.arange(4), 15)
    ratings = rng.uniform(0, 0.2, (len(labels), 4))
    ratings[np.arange(len(labels)), labels] += 0.6
    ids = [f"v{i:03d}" for i in range(len(labels))]
    table = pd.DataFrame({"item_id": ids, "caption": [f"clip {i}" for i in ids]})
    for c, name in enumerate(classes):
        table[f"category:{name}"] = ratings[:, c]
    table["dimension:valence"] = rng.uniform(1, 9, len(labels))
    table["dimension:arousal"] = rng.uniform(1, 9, len(labels))
    base = np.eye(4)[labels] * 3
    weights = {
        "mllm": base + rng.uniform(0, 0.5, base.shape),
        "human_category": np.hstack([base, rng.uniform(0, 0.2, (len(labels), 1))]) + rng.uniform(0, 0.3, (60, 5)),
    }
    return StimulusSet(table, name="planted"), weights


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    stimuli, weights = _stimuli_and_weights()
    stimuli.save(out / "stimuli.parquet")
    (out / "split").mkdir()
    systems = {}
    for name in SYSTEMS:
        embedding = Embedding(stimuli.item_ids, weights[name])
        embedding.save(out / "embeddings" / f"{name}.parquet")
        interpret_embedding(SETTINGS, out, name, embedding, stimuli, seed=0)
        test = sample_triplets(weights[name], 600, seed=1, item_ids=stimuli.item_ids)
        np.save(out / "split" / f"{name}_test.npy", test.indices)
        (out / "split" / f"{name}_items.txt").write_text("\n".join(test.item_ids) + "\n")
        systems[name] = {"n_judgments": 12345, "n_dims": embedding.n_dims, "accuracy": 0.7, "accuracy_ci": [0.6, 0.8]}
    between = compare_systems_stage(out, SYSTEMS, n_bootstrap=20)
    summary = {
        "study": "tiny",
        "synthetic": True,
        "seed": 0,
        "systems": systems,
        "interpretation": interpretation_summary(out, SYSTEMS),
        "between_systems": between,
    }
    (out / "summary.json").write_text(json.dumps(summary))
    write_interactive_maps(StudyFolder(out))
    return out


@pytest.fixture(scope="module")
def outputs(study):
    return load_study_outputs(study)


def test_interpretation_section_shows_every_figure_table_and_link(outputs):
    html = interpret_section.render(outputs, system_colors(outputs.systems))
    assert html.startswith('<h2 id="interpretation">')
    for piece in (
        'alt="class shares per system"',
        "<h3>Nearest-centroid classification</h3>",
        'alt="systems RSA matrix"',
        "similarity-structure r [95% CI]",
        "embedding \\ judgments",
        'alt="mllm item map"',
        'alt="human_category item map"',
        'alt="mllm dimension graph"',
        'alt="mllm dimension correlations"',
        'href="interactive/mllm_map.html"',
        'href="interactive/human_category_map.html"',
        "separate self-contained page",
    ):
        assert piece in html, piece
    assert 'class="note"' not in html  # every file is present
    # the centroid table: one row per system, with top-1 and top-3 accuracy
    centroid = html.split("<h3>Nearest-centroid classification</h3>")[1].split("</table>")[0]
    assert centroid.count("<tr>") == 1 + len(SYSTEMS)
    # the cross-prediction table: accuracy with its CI in each cell (2 x 2)
    cross = html.split("embedding \\ judgments")[1].split("</table>")[0]
    assert len(re.findall(r"\d+\.\d%\s\[\d+\.\d%, \d+\.\d%\]", cross)) == 4


def test_reproduction_table_has_every_paper_number_and_the_judgment_statement(outputs):
    from oddoneout.interpret.reproduction import PAPER_NUMBERS

    html = interpret_section.render_reproduction(outputs)
    assert html.startswith('<h2 id="reproduction">')
    body = html.split("<tbody>")[1]
    assert body.count("<tr>") == len(PAPER_NUMBERS)
    assert "mllm: 12,345 judgments here vs ~7,100,000 in the paper (0.17%)" in html
    assert "human_category: 12,345 judgments here" in html
    assert "<details><summary" in html and "Paper: LLM 62.1%" in html
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in body.split("<tr>")[1:]]
    by_key = {(r[0], r[1]): r for r in rows}
    assert by_key[("accuracy", "mllm")][3] == "0.700 [0.600, 0.800]"
    assert by_key[("accuracy", "llm")][3] == ""  # llm was not run here: blank
    assert by_key[("rsa_TPJ", "mllm")][3] == "not measured"


def test_the_full_report_is_deterministic(outputs, study):
    first = render_report(outputs)
    again = render_report(load_study_outputs(study))
    assert first == again
    assert 'id="interpretation"' in first and 'id="reproduction"' in first


def test_a_folder_without_interpretation_files_gives_notes_not_errors(tmp_path, study):
    assert '<p class="note">' in interpret_section.render(StudyOutputs(StudyFolder(tmp_path)), {})
    assert '<p class="note">' in interpret_section.render_reproduction(StudyOutputs(StudyFolder(tmp_path)))
    # embeddings but no interpret/ files
    bare = tmp_path / "bare"
    (bare / "embeddings").mkdir(parents=True)
    for name in SYSTEMS:
        (bare / "embeddings" / f"{name}.parquet").write_bytes((study / "embeddings" / f"{name}.parquet").read_bytes())
    (bare / "interpret").mkdir()
    html = interpret_section.render(load_study_outputs(bare), {})
    for piece in ("No dimension classes", "No nearest-centroid", "No systems RSA", "No item map", "No dimension graph"):
        assert piece in html, piece
    assert "<img" not in html


def test_a_malformed_file_becomes_a_note(tmp_path, study):
    broken = tmp_path / "broken"
    for part in ("embeddings", "interpret"):
        (broken / part).mkdir(parents=True)
        for path in (study / part).iterdir():
            (broken / part / path.name).write_bytes(path.read_bytes())
    (broken / "interpret" / "mllm_map.csv").write_text("item_id,x,y\nnot_an_item,0,0\n")
    (broken / "stimuli.parquet").write_bytes((study / "stimuli.parquet").read_bytes())
    html = interpret_section.render(load_study_outputs(broken), {})
    assert "mllm: could not be shown" in html
    assert 'alt="human_category item map"' in html  # the other system is unaffected


def test_systems_rsa_figure_is_symmetric_with_a_unit_diagonal():
    rsa = pd.DataFrame({"system_a": ["a", "a"], "system_b": ["b", "c"], "r": [0.5, -0.2]})
    figure = systems_rsa_figure(rsa)
    matrix = np.ma.filled(figure.axes[0].images[0].get_array(), np.nan)
    assert matrix.shape == (3, 3) and np.allclose(np.diag(matrix), 1)
    assert matrix[0, 1] == matrix[1, 0] == 0.5 and matrix[2, 0] == -0.2 and np.isnan(matrix[1, 2])


def test_a_system_whose_embedding_has_no_dimensions_is_noted_not_fatal(tmp_path, study):
    """120 judgments of a small model: the fit keeps no dimension; the later stages go on without it."""
    stimuli = StimulusSet.load(study / "stimuli.parquet")
    out = tmp_path / "study"
    for part in ("embeddings", "interpret", "split"):
        (out / part).mkdir(parents=True)
        for path in (study / part).iterdir():
            (out / part / path.name).write_bytes(path.read_bytes())
    (out / "stimuli.parquet").write_bytes((study / "stimuli.parquet").read_bytes())
    empty = Embedding(stimuli.item_ids, np.zeros((len(stimuli.item_ids), 0)))
    empty.save(out / "embeddings" / "gemma.parquet")
    # files of an earlier, non-empty fit of the same system must not survive as its interpretation
    stale = StudyFolder(out).interpret("gemma").top_items
    stale.write_text("item_id\nv000\n")
    assert interpret_embedding(SETTINGS, out, "gemma", empty, stimuli, seed=0) == {}
    assert not stale.exists()
    test = sample_triplets(np.ones((len(stimuli.item_ids), 1)), 300, seed=2, item_ids=stimuli.item_ids)
    np.save(out / "split" / "gemma_test.npy", test.indices)
    (out / "split" / "gemma_items.txt").write_text("\n".join(test.item_ids) + "\n")
    systems = (*SYSTEMS, "gemma")
    between = compare_systems_stage(out, systems, n_bootstrap=20)
    assert "gemma" not in json.dumps(interpretation_summary(out, systems))
    # the two real systems are still compared with each other
    assert any("mllm" in key and "human_category" in key for key in between["systems_rsa"])
    outputs = load_study_outputs(out)
    html = interpret_section.render(outputs, {})
    assert 'alt="mllm item map"' in html
    # said once, plainly, instead of "run the interpret stage"
    gemma = html[html.index('id="interpretation-gemma"') :]
    assert "gemma: the embedding has no dimensions" in gemma and "No item map" not in gemma
    assert not any("gemma" in note and "run the interpret stage" in note for note in outputs.notes["embeddings"])
