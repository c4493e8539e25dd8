"""BData HDF5 files (Kamitani-lab layout): reading, ROI columns, repeats, bad files."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest

from oddoneout.errors import InputError
from oddoneout.neural.bdata import load_bdata, read_bdata, video_id, write_bdata
from oddoneout.neural.data import NeuralData

N_VOXELS, N_RUNS, N_STIMULI, REPEATS = 300, 6, 30, 2


def make_design(seed: int = 0):
    """30 clips, each shown twice in two different runs; 300 voxels with coordinates and ROI columns."""
    rng = np.random.default_rng(seed)
    stimulus = np.tile(np.arange(N_STIMULI), REPEATS)
    runs = np.concatenate([np.arange(N_STIMULI) % N_RUNS, (np.arange(N_STIMULI) + 3) % N_RUNS]) + 1
    order = np.lexsort((rng.random(stimulus.size), runs))
    stimulus, runs = stimulus[order], runs[order]
    names = np.array([f"{i + 1:04d}.mp4" for i in range(N_STIMULI)])[stimulus]
    responses = rng.standard_normal((stimulus.size, N_VOXELS)) + 10.0
    coords = np.column_stack([np.arange(N_VOXELS) % 10, (np.arange(N_VOXELS) // 10) % 10, np.arange(N_VOXELS) // 100])
    coords = coords * 2.0 - 40.0
    voxel = np.arange(N_VOXELS)
    rois = {
        "hcp180_r_lh.L_V1_ROI": voxel < 40,
        "hcp180_r_rh.R_V1_ROI": (voxel >= 40) & (voxel < 80),
        "hcp180_r_lh.L_PoI1_ROI": (voxel >= 100) & (voxel < 120),
        "hcp180_r_rh.R_MI_ROI": (voxel >= 120) & (voxel < 130),
        "hcp180_r_lh.L_a24_ROI": (voxel >= 150) & (voxel < 170),
        "hcp180_r_lh.L_MST_ROI": (voxel >= 70) & (voxel < 90),
        "thalamus": (voxel >= 200) & (voxel < 230),
        "hcp180_r_lh.L_empty_ROI": np.zeros(N_VOXELS, dtype=bool),
    }
    return responses, runs, names, coords, rois


@pytest.fixture()
def bdata_file(tmp_path):
    responses, runs, names, coords, rois = make_design()
    path = write_bdata(
        tmp_path / "fmri_Subject1.h5", responses, runs=runs, stimulus_names=names, rois=rois, coords=coords
    )
    return path, responses, runs, names, coords, rois


def test_video_id_maps_cowen_keltner_names():
    assert video_id("0001.mp4") == "0001"
    assert video_id("stimuli/2185.mp4") == "2185"
    assert video_id("12") == "0012"
    assert video_id("12.0") == "0012"
    assert video_id("clip_a.avi") == "clip_a"


def test_read_bdata_exposes_layout(bdata_file):
    path, responses, runs, names, coords, rois = bdata_file
    bdata = read_bdata(path)
    assert bdata.dataset.shape == (N_STIMULI * REPEATS, N_VOXELS + 2)
    assert bdata.keys[:3] == ["VoxelData", "Run", "stimulus_name"]
    np.testing.assert_array_equal(bdata.columns("VoxelData"), np.arange(N_VOXELS))
    np.testing.assert_array_equal(bdata.select("Run")[:, 0], runs)
    np.testing.assert_array_equal(bdata.labels("stimulus_name"), names)
    np.testing.assert_array_equal(bdata.metadata("voxel_y")[:N_VOXELS], coords[:, 1])
    assert np.isnan(bdata.metadata("voxel_y")[N_VOXELS:]).all()


def test_load_keep_gives_every_presentation(bdata_file):
    path, responses, runs, names, coords, rois = bdata_file
    data = load_bdata(path, repeats="keep")
    assert data.subject == "fmri_Subject1"
    np.testing.assert_allclose(data.responses, responses.astype(np.float32))
    np.testing.assert_array_equal(data.stimulus_ids, [n[:4] for n in names])
    np.testing.assert_array_equal(data.runs, runs)
    np.testing.assert_array_equal(data.coords, coords)
    # ROI columns keyed by metadata key; the empty one is dropped.
    assert set(data.rois) == set(rois) - {"hcp180_r_lh.L_empty_ROI"}
    np.testing.assert_array_equal(data.rois["thalamus"], np.arange(200, 230))
    assert data.metadata["repeats"] == "keep"


def test_load_average_gives_one_sample_per_stimulus(bdata_file):
    path, responses, runs, names, *_ = bdata_file
    data = load_bdata(path, repeats="average")
    ids = np.array([n[:4] for n in names])
    assert data.responses.shape == (N_STIMULI, N_VOXELS)
    assert len(set(data.stimulus_ids)) == N_STIMULI
    for row, stimulus in enumerate(data.stimulus_ids):
        shown = ids == stimulus
        np.testing.assert_allclose(data.responses[row], responses[shown].mean(axis=0), rtol=1e-5)
        assert data.runs[row] == runs[np.flatnonzero(shown)[0]]
    assert data.metadata["n_repeats"] == [REPEATS] * N_STIMULI


def test_load_with_id_map_mapping_and_none(bdata_file):
    path, _, _, names, *_ = bdata_file
    mapping = {n: f"clip-{n[:4]}" for n in set(names)}
    data = load_bdata(path, id_map=mapping, repeats="keep")
    assert data.stimulus_ids[0] == f"clip-{names[0][:4]}"
    raw = load_bdata(path, id_map=None, repeats="keep")
    np.testing.assert_array_equal(raw.stimulus_ids, names)
    partial = dict(list(mapping.items())[:5])
    with pytest.raises(InputError, match="id_map has no entry"):
        load_bdata(path, id_map=partial)


def test_load_with_horikawa_roi_set(bdata_file, shared_data):
    from oddoneout.neural.rois import horikawa_rois

    path, *_ = bdata_file
    roi_set = horikawa_rois(shared_data / "horikawa" / "roiInf.mat")
    data = load_bdata(path, roi_set=roi_set)
    # Insular parcels (PoI1, MI) form "Insula" once the file's swapped names are fixed.
    np.testing.assert_array_equal(data.rois["Insula"], np.arange(100, 130))
    np.testing.assert_array_equal(data.rois["ACC"], np.arange(150, 170))
    np.testing.assert_array_equal(data.rois["VC"], np.arange(0, 90))  # V1 both hemispheres + MST
    np.testing.assert_array_equal(data.rois["MST"], np.arange(70, 90))
    np.testing.assert_array_equal(data.rois["thalamus"], np.arange(200, 230))
    assert "amygdala" not in data.rois  # no mask in the file
    assert data.metadata["roi_set"] == "horikawa2020"


def test_legacy_names_and_multicolumn_label(tmp_path):
    responses, runs, names, coords, rois = make_design(seed=1)
    path = write_bdata(tmp_path / "old.h5", responses, runs=runs, stimulus_names=names, legacy_names=True)
    data = load_bdata(path, repeats="keep", roi_prefixes=(), roi_keys=(), coord_keys=None)
    assert data.rois == {}
    assert data.coords is None
    # A BrainDecoderToolbox "Label" block of 3 columns whose third holds the stimulus number.
    with h5py.File(path, "r") as f:
        dataset, keys = f["dataSet"][()], [k.decode() for k in f["metaData/key"][()]]
        values = f["metaData/value"][()]
    stim_col = dataset[:, -1:]
    label = np.hstack([np.ones_like(stim_col), np.zeros_like(stim_col), stim_col])
    new_dataset = np.hstack([dataset, label])
    new_values = np.hstack([values, np.full((values.shape[0], 3), np.nan)])
    label_row = np.full(new_dataset.shape[1], np.nan)
    label_row[-3:] = 1
    new_values = np.vstack([new_values, label_row])
    path2 = tmp_path / "label.h5"
    with h5py.File(path2, "w") as f:
        f["dataSet"] = new_dataset
        f["metaData/key"] = np.array([k.encode() for k in [*keys, "Label"]])
        f["metaData/description"] = np.array([b"d"] * (len(keys) + 1))
        f["metaData/value"] = new_values
    with pytest.raises(InputError, match="spans 3 columns"):
        load_bdata(path2, stimulus_key="Label", coord_keys=None)
    data2 = load_bdata(path2, stimulus_key="Label", label_column=2, repeats="keep", coord_keys=None)
    # No vmap for Label: the stimulus numbers (1 = first shown) become zero-padded ids.
    first = np.unique(names, return_index=True)[1].min()
    assert data2.stimulus_ids[first] == "0001"
    assert len(set(data2.stimulus_ids)) == N_STIMULI


def test_variable_length_string_keys(tmp_path, bdata_file):
    path, *_ = bdata_file
    bdata = read_bdata(path)
    path2 = tmp_path / "vlen.h5"
    with h5py.File(path2, "w") as f:
        f["dataset"] = bdata.dataset
        f.create_dataset("metadata/key", data=bdata.keys, dtype=h5py.string_dtype())
        f.create_dataset("metadata/description", data=bdata.descriptions, dtype=h5py.string_dtype())
        f["metadata/value"] = bdata.values
        for value, label in bdata.vmap["stimulus_name"].items():
            f.create_dataset(f"vmap/stimulus_name/{value}", data=label, dtype=h5py.string_dtype())
    data = load_bdata(path2, repeats="keep")
    assert data.stimulus_ids[0] == load_bdata(path, repeats="keep").stimulus_ids[0]


def test_errors_name_the_problem(tmp_path, bdata_file):
    path, responses, runs, names, coords, rois = bdata_file
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(InputError, match="not an HDF5 file"):
        load_bdata(text)
    with pytest.raises(InputError, match="not found"):
        load_bdata(tmp_path / "missing.h5")
    with pytest.raises(InputError, match="no metadata key 'BrainData'"):
        load_bdata(path, voxels="BrainData")
    with pytest.raises(InputError, match="no metadata key 'stim'"):
        load_bdata(path, stimulus_key="stim")
    with pytest.raises(InputError, match="repeats must be"):
        load_bdata(path, repeats="median")

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(InputError, match="not a BData file"):
        load_bdata(other)

    bdata = read_bdata(path)
    mismatched = tmp_path / "mismatch.h5"
    with h5py.File(mismatched, "w") as f:
        f["dataset"] = bdata.dataset[:, :-1]
        f["metadata/key"] = np.array([k.encode() for k in bdata.keys])
        f["metadata/description"] = np.array([d.encode() for d in bdata.descriptions])
        f["metadata/value"] = bdata.values
    with pytest.raises(InputError, match="expected \\(n_keys="):
        load_bdata(mismatched)

    with pytest.raises(InputError, match="one per sample"):
        write_bdata(tmp_path / "bad.h5", responses, runs=runs[:-1], stimulus_names=names)


def test_missing_stimulus_value_and_nan_voxels(tmp_path, bdata_file):
    path, *_ = bdata_file
    bdata = read_bdata(path)
    for column, message in ((N_VOXELS + 1, "no value in sample"), (5, "hold NaN")):
        dataset = bdata.dataset.copy()
        dataset[3, column] = np.nan
        broken = tmp_path / f"broken{column}.h5"
        with h5py.File(broken, "w") as f:
            f["dataset"] = dataset
            f["metadata/key"] = np.array([k.encode() for k in bdata.keys])
            f["metadata/description"] = np.array([d.encode() for d in bdata.descriptions])
            f["metadata/value"] = bdata.values
            for value, label in bdata.vmap["stimulus_name"].items():
                f[f"vmap/stimulus_name/{value}"] = label
        with pytest.raises(InputError, match=message):
            load_bdata(broken)


def test_non_mask_row_with_roi_prefix_is_skipped(tmp_path, caplog):
    responses, runs, names, coords, rois = make_design(seed=2)
    rois = {"hcp180_r_lh.L_V1_ROI": rois["hcp180_r_lh.L_V1_ROI"]}
    path = write_bdata(tmp_path / "s.h5", responses, runs=runs, stimulus_names=names, rois=rois)
    bdata = read_bdata(path)
    values = np.vstack([bdata.values, np.r_[np.linspace(0, 3, N_VOXELS), [np.nan, np.nan]]])
    path2 = tmp_path / "s2.h5"
    with h5py.File(path2, "w") as f:
        f["dataset"] = bdata.dataset
        f["metadata/key"] = np.array([k.encode() for k in [*bdata.keys, "ROI_tstat"]])
        f["metadata/description"] = np.array([d.encode() for d in [*bdata.descriptions, "t"]])
        f["metadata/value"] = values
        for value, label in bdata.vmap["stimulus_name"].items():
            f[f"vmap/stimulus_name/{value}"] = label
    with caplog.at_level(logging.INFO, logger="oddoneout.neural.bdata"):
        data = load_bdata(path2)
    assert list(data.rois) == ["hcp180_r_lh.L_V1_ROI"]
    assert "not a 0/1 mask" in caplog.text


def test_saved_neural_data_round_trip(tmp_path, bdata_file):
    path, *_ = bdata_file
    data = load_bdata(path, repeats="keep")
    saved = NeuralData.load(data.save(tmp_path / "sub.npz"))
    np.testing.assert_array_equal(saved.responses, data.responses)
    np.testing.assert_array_equal(saved.coords, data.coords)
    assert saved.rois.keys() == data.rois.keys()


def test_run_mode_averages_volumes_of_one_presentation(tmp_path):
    """Three volumes per presentation: "run" gives one sample per presentation, "average" one per stimulus."""
    responses, runs, names, coords, rois = make_design(seed=3)
    volumes = np.repeat(responses, 3, axis=0) + np.tile([-1.0, 0.0, 1.0], responses.shape[0])[:, None]
    path = write_bdata(tmp_path / "vol.h5", volumes, runs=np.repeat(runs, 3), stimulus_names=np.repeat(names, 3))
    per_presentation = load_bdata(path, repeats="run")
    np.testing.assert_allclose(per_presentation.responses, responses.astype(np.float32), rtol=1e-5)
    np.testing.assert_array_equal(per_presentation.runs, runs)
    assert per_presentation.metadata["n_repeats"] == [3] * len(runs)
    per_stimulus = load_bdata(path, repeats="average")
    assert per_stimulus.responses.shape == (N_STIMULI, N_VOXELS)
