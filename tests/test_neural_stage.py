"""The brain stage wired from the config: encoding, searchlight RSA, statistics, ceilings, and the report's section."""

from __future__ import annotations

import json
import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from oddoneout.config import load_config
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.neural.bdata import write_bdata
from oddoneout.neural.data import NeuralData
from oddoneout.neural.stage import neural_summary, run_neural_stage
from oddoneout.pipeline import run_study
from oddoneout.report import brain_section, load_study_outputs, write_report
from oddoneout.report.figures import system_colors
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.studies import builtin_config
from oddoneout.studies.synthetic import ROI_CARRIERS

SYSTEMS = ("mllm", "llm", "human_category", "human_dimension", "human_concat")


def _view_embeddings(out) -> None:
    """Each system's embedding = the features its agent judges by (what SPoSE would recover), made non-negative."""
    table = StimulusSet.load(out / "stimuli.parquet").table
    if "item_id" in table.columns:
        table = table.set_index("item_id")
    categories = table[[c for c in table.columns if c.startswith("category:")]].to_numpy(float)
    dimensions = table[[c for c in table.columns if c.startswith("dimension:")]].to_numpy(float)
    both = np.hstack([categories, dimensions])
    features = {
        "mllm": pd.read_parquet(out / "world" / "view_mllm.parquet").loc[table.index].to_numpy(float),
        "llm": pd.read_parquet(out / "world" / "view_llm.parquet").loc[table.index].to_numpy(float),
        "human_category": categories,
        "human_dimension": dimensions - dimensions.mean(axis=0),
        "human_concat": (both - both.mean(axis=0)) / both.std(axis=0),
    }
    for name, values in features.items():
        Embedding(table.index.astype(str), values - values.min(axis=0)).save(out / "embeddings" / f"{name}.parquet")


@pytest.fixture(scope="module")
def synthetic_study(tmp_path_factory):
    """The default study's synthetic brain with 4 subjects, run through the pipeline's encode and report stages."""
    out = tmp_path_factory.mktemp("synthetic_brain")
    overrides = {"stimuli": {"n_subjects": 4}}
    run_study(builtin_config("synthetic"), out, stages=("stimuli",), overrides=overrides)
    _view_embeddings(out)
    summary = run_study(builtin_config("synthetic"), out, stages=("encode", "report"), overrides=overrides)
    return out, summary


def test_carriers_win_their_rois_and_vc_has_no_winner(synthetic_study):
    out, summary = synthetic_study
    comparisons = pd.read_csv(out / "encoding" / "comparisons.csv")
    assert comparisons["n_subjects"].eq(4).all()
    assert len(comparisons) == len(ROI_CARRIERS) * 10  # 10 pairs of 5 systems per ROI
    means = pd.read_csv(out / "encoding" / "roi_r.csv").groupby(["roi", "system"])["r"].mean()
    for roi, carriers in ROI_CARRIERS.items():
        if not carriers:
            continue
        best = means.loc[roi].idxmax()
        assert best in carriers, (roi, means.loc[roi].to_dict())
        # the best carrier beats every system that does not carry the ROI, q < 0.05 after FDR
        for other in set(SYSTEMS) - set(carriers):
            pair = comparisons[
                (comparisons["roi"] == roi)
                & (comparisons[["system_a", "system_b"]].isin([best, other]).sum(axis=1) == 2)
            ].iloc[0]
            sign = 1 if pair["system_a"] == best else -1
            assert pair["q"] < 0.05 and sign * pair["mean_diff"] > 0, (roi, other, pair.to_dict())
    winners = summary["winners"]["encoding"]
    assert winners["TPJ"] == "mllm" and winners["STS"] == "llm"  # single carriers beat all four others
    assert winners["Insula"] in (None, *ROI_CARRIERS["Insula"])  # two carriers: a tie is allowed
    assert winners["VC"] is None
    table = pd.read_csv(out / "encoding" / "winners.csv").set_index("roi")
    assert not table.loc["VC", "wins"] and table.loc["TPJ", "max_q"] < 0.05


def test_searchlight_rsa_and_summary(synthetic_study):
    out, summary = synthetic_study
    rsa = pd.read_csv(out / "rsa" / "roi_r.csv")
    assert list(rsa.columns) == ["subject", "system", "roi", "r"]
    assert len(rsa) == 4 * 5 * len(ROI_CARRIERS) and rsa["r"].notna().all()
    for name in ("comparisons.csv", "winners.csv", "against_zero.csv"):
        assert (out / "rsa" / name).is_file()
    assert len(list((out / "rsa").glob("sub-*.npz"))) == 4
    # the RSA of a ROI is highest for a system carrying it (STS: llm; Insula: the dimension systems)
    assert max(summary["rsa"]["STS"], key=summary["rsa"]["STS"].get) == "llm"
    assert max(summary["rsa"]["Insula"], key=summary["rsa"]["Insula"].get) in ROI_CARRIERS["Insula"]
    # VC carries no system: its RSA stays near 0 (a fixed item-sample effect of ~0.015 can still reach q < 0.05,
    # since the subjects share the stimuli: the t-tests generalise over subjects, not over stimuli)
    assert max(abs(r) for r in summary["rsa"]["VC"].values()) < 0.05
    saved = json.loads((out / "summary.json").read_text())
    assert saved["encoding"] == summary["encoding"] == neural_summary(out)["encoding"]
    assert saved["rsa"] == summary["rsa"] and saved["winners"] == summary["winners"]
    assert summary["noise_ceiling"] == {}  # the synthetic brain shows each stimulus once
    value = summary["encoding"]["TPJ"]["mllm"]
    assert value == round(value, 6)


def test_report_brain_section_shows_bars_marks_tables_and_maps(synthetic_study):
    out, _ = synthetic_study
    text = (out / "report.html").read_text(encoding="utf-8")
    section = text[text.index('<h2 id="brain">') :]
    for alt in ("encoding r per ROI", "RSA r per ROI", "encoding map mllm sub-01", "rsa map mllm sub-01"):
        assert f'alt="{alt}"' in section
    assert "paired two-tailed t-tests across subjects, FDR-corrected" in section
    assert re.search(r"<td>mllm \*{1,3}</td>", section)  # TPJ's winner with its significance mark
    assert re.search(r"<td>\*{1,3}</td>", section)  # a mark in the table of pairwise tests
    assert "<td>none</td>" in section  # VC has no winner
    assert "No noise ceiling" in section
    assert write_report(out).read_text(encoding="utf-8") == text  # deterministic


# --- other sources ---------------------------------------------------------------------------


def _write_config(tmp_path, neural: str) -> dict:
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "brain-test"\nseed = 1\n\n'
        '[systems.signal]\nagent = "ratings"\nratings = ["category"]\n\n'
        '[systems.noise]\nagent = "ratings"\nratings = ["category"]\n\n'
        f"[neural]\n{neural}\n"
    )
    return load_config(path)


def _brain_world(out, n_items: int = 72, n_features: int = 4, seed: int = 0):
    """Item features of two systems, written as embeddings: 'signal' drives ROI_A, 'noise' drives nothing."""
    rng = np.random.default_rng(seed)
    ids = [f"{i + 1:04d}" for i in range(n_items)]
    signal = rng.gamma(2.0, 1.0, (n_items, n_features))
    Embedding(ids, signal).save(out / "embeddings" / "signal.parquet")
    Embedding(ids, rng.gamma(2.0, 1.0, (n_items, n_features))).save(out / "embeddings" / "noise.parquet")
    return ids, signal


def _presentations(ids, n_runs: int = 6):
    """Every item twice, in two different runs (a noise ceiling can be estimated)."""
    order, runs = [], []
    for run in range(n_runs):
        shown = [i for i in range(len(ids)) if i % n_runs == run or (i + n_runs // 2) % n_runs == run]
        order += shown
        runs += [run + 1] * len(shown)
    return np.array(order), np.array(runs)


def _responses(rng, signal, order, n_voxels, roi_a):
    centred = (signal - signal.mean(axis=0))[order]
    weights = rng.normal(0.0, 1.0, (signal.shape[1], n_voxels)) * roi_a
    return centred @ weights + rng.normal(0.0, 1.0, (len(order), n_voxels))


@pytest.fixture(scope="module")
def bdata_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bdata")
    out = tmp / "out"
    ids, signal = _brain_world(out)
    order, runs = _presentations(ids)
    grid = np.stack(np.unravel_index(np.arange(300), (10, 10, 3)), axis=1)
    coords = grid * 2.0 - np.array([10.0, 12.0, 2.0])  # mm, negative too; no affine in BData
    roi_a = np.zeros(300, dtype=bool)
    roi_a[grid[:, 0] < 5] = True
    files = []
    for s in range(3):
        rng = np.random.default_rng(10 + s)
        files.append(
            write_bdata(
                tmp / f"fmri_Subject{s + 1}.h5",
                _responses(rng, signal, order, 300, roi_a),
                runs=runs,
                stimulus_names=np.array([f"{ids[i]}.mp4" for i in order]),
                rois={"ROI_A": roi_a, "ROI_B": ~roi_a},
                coords=coords,
            ).name
        )
    config = _write_config(
        tmp,
        f'source = "bdata"\nsubjects = {json.dumps(files)}\nvariance_partition = [["signal", "noise"]]\n'
        "n_folds = 3\ninner_folds = 2\nvoxel_batch = 128",
    )
    table = run_neural_stage(config, out, ["signal", "noise"])
    return config, out, table


def test_bdata_subjects_give_encoding_rsa_statistics_and_ceilings(bdata_study):
    config, out, table = bdata_study
    assert len(table) == 3 * 2 * 2
    assert sorted(p.name for p in (out / "neural").glob("*.npz")) == [f"fmri_Subject{s}.npz" for s in (1, 2, 3)]
    prepared = NeuralData.load(out / "neural" / "fmri_Subject1.npz")
    assert len(prepared.stimulus_ids) == 72  # repeats averaged (repeats = "average")
    assert prepared.metadata["source"] == "bdata" and "prepared_from" in prepared.metadata

    means = table.groupby(["roi", "system"])["r"].mean()
    assert means[("ROI_A", "signal")] > 0.3 > abs(means[("ROI_A", "noise")])
    winners = pd.read_csv(out / "encoding" / "winners.csv").set_index("roi")
    assert winners.loc["ROI_A", "best_system"] == "signal" and winners.loc["ROI_A", "wins"]
    comparisons = pd.read_csv(out / "encoding" / "comparisons.csv")
    assert set(comparisons["roi"]) == {"ROI_A", "ROI_B"} and comparisons["n_subjects"].eq(3).all()

    rsa = pd.read_csv(out / "rsa" / "roi_r.csv").groupby(["roi", "system"])["r"].mean()
    assert rsa[("ROI_A", "signal")] > 0.1 > abs(rsa[("ROI_A", "noise")])
    assert (out / "rsa" / "comparisons.csv").is_file() and (out / "rsa" / "winners.csv").is_file()

    ceiling = pd.read_csv(out / "encoding" / "ceiling.csv").groupby("roi")["ceiling"].mean()
    assert ceiling["ROI_A"] > 0.6 > ceiling["ROI_B"]
    assert means[("ROI_A", "signal")] < ceiling["ROI_A"]

    partition = pd.read_csv(out / "encoding" / "variance_partition.csv")
    roi_a = partition[partition["roi"] == "ROI_A"]
    assert len(partition) == 3 * 2 and set(roi_a["system_a"]) == {"signal"}
    assert (roi_a["unique_a"] > 0.1).all() and (roi_a["unique_a"] > roi_a["unique_b"] + 0.1).all()

    summary = neural_summary(out)
    assert summary["winners"]["encoding"]["ROI_A"] == "signal"
    assert summary["noise_ceiling"]["ROI_A"] == pytest.approx(ceiling["ROI_A"], abs=1e-6)


def test_rerun_reuses_prepared_subjects_and_gives_the_same_tables(bdata_study):
    config, out, table = bdata_study
    prepared = out / "neural" / "fmri_Subject2.npz"
    stamp = prepared.stat().st_mtime_ns
    again = run_neural_stage(config, out, ["signal", "noise"])
    assert prepared.stat().st_mtime_ns == stamp  # reused, not prepared again
    pd.testing.assert_frame_equal(again, table)


def test_report_section_of_bdata_study_draws_maps_from_mm_coordinates(bdata_study):
    _, out, _ = bdata_study
    outputs = load_study_outputs(out)
    html = brain_section.render(outputs, system_colors(["signal", "noise"]))
    assert 'alt="encoding map signal fmri_Subject1"' in html and 'alt="rsa map noise fmri_Subject1"' in html
    assert "Variance partitioning" in html and "unique signal" in html
    assert "noise ceiling r" in html


def test_one_subject_writes_scores_but_no_statistics(tmp_path):
    out = tmp_path / "out"
    ids, signal = _brain_world(out, n_items=36)
    order, runs = _presentations(ids)
    rng = np.random.default_rng(3)
    roi = np.arange(40) < 20
    coords = np.stack(np.unravel_index(np.arange(40), (5, 8, 1)), axis=1)
    rois = {"A": np.flatnonzero(roi), "B": np.flatnonzero(~roi)}
    data = NeuralData("solo", _responses(rng, signal, order, 40, roi), np.array(ids)[order], runs, rois, coords)
    data.save(tmp_path / "solo.npz")
    (out / "encoding").mkdir(parents=True)
    (out / "encoding" / "comparisons.csv").write_text("stale\n")
    config = _write_config(tmp_path, 'source = "npz"\nsubjects = ["solo.npz"]\nn_folds = 3\ninner_folds = 2')
    table = run_neural_stage(config, out, ["signal", "noise"])
    assert len(table) == 4 and (out / "rsa" / "roi_r.csv").is_file()
    assert not (out / "encoding" / "comparisons.csv").exists()  # no t-tests with one subject, stale file gone
    assert not (out / "rsa" / "winners.csv").exists()
    assert neural_summary(out)["winners"] == {"encoding": {}, "rsa": {}}
    html = brain_section.render(load_study_outputs(out), system_colors(["signal", "noise"]))
    assert "need at least two subjects" in html


def test_nifti_subjects_with_an_affine_get_a_brain_map(tmp_path):
    out = tmp_path / "out"
    ids, signal = _brain_world(out, n_items=36)
    order, runs = _presentations(ids)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-12.0, -12.0, -6.0]
    shape = (8, 8, 4)
    in_roi = np.zeros(shape, dtype=bool)
    in_roi[:4] = True
    nib.save(nib.Nifti1Image(in_roi.astype(np.uint8), affine), tmp_path / "tpj.nii.gz")
    subjects, tables = [], []
    for s in range(2):
        rng = np.random.default_rng(20 + s)
        values = _responses(rng, signal, order, in_roi.size, in_roi.ravel())
        nib.save(nib.Nifti1Image(values.T.reshape(*shape, -1).astype(np.float32), affine), tmp_path / f"s{s}.nii.gz")
        pd.DataFrame({"stimulus_id": np.array(ids)[order], "run": runs}).to_csv(tmp_path / f"s{s}.csv", index=False)
        subjects.append(f"s{s}.nii.gz")
        tables.append(f"s{s}.csv")
    config = _write_config(
        tmp_path,
        f'source = "nifti"\nsubjects = {json.dumps(subjects)}\ntables = {json.dumps(tables)}\n'
        'roi_masks = [["TPJ", "tpj.nii.gz"]]\nsubject_names = ["sub-a", "sub-b"]\nn_folds = 3\ninner_folds = 2',
    )
    table = run_neural_stage(config, out, ["signal", "noise"])
    assert set(table["subject"]) == {"sub-a", "sub-b"} and set(table["roi"]) == {"TPJ"}
    assert NeuralData.load(out / "neural" / "sub-a.npz").affine is not None
    html = brain_section.render(load_study_outputs(out), system_colors(["signal", "noise"]))
    assert 'alt="encoding map signal sub-a"' in html and 'alt="rsa map signal sub-a"' in html


@pytest.mark.parametrize(
    ("neural", "message"),
    [
        ('source = "bdata"', "needs `subjects`"),
        ('source = "nifti"\nsubjects = ["a.nii.gz"]', "needs `tables`"),
        ('source = "fmri"', r"\[neural\] source: 'fmri' is not one of"),
    ],
)
def test_bad_neural_settings_are_refused_at_load(tmp_path, neural, message):
    with pytest.raises(InputError, match=message):
        _write_config(tmp_path, neural)


def test_a_missing_subject_file_is_named(tmp_path):
    config = _write_config(tmp_path, 'source = "npz"\nsubjects = ["missing.npz"]')
    with pytest.raises(InputError, match="missing.npz"):
        run_neural_stage(config, tmp_path / "out", ["signal"])
