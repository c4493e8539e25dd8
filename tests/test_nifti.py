"""Generic fMRI loaders: 4-D NIfTI + sample table, and .npy + sample table."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.nifti import load_nifti, load_npy, voxel_coordinates

SHAPE = (5, 4, 3)
N_SAMPLES = 12


@pytest.fixture()
def affine() -> np.ndarray:
    # 3 mm voxels, the x axis flipped (radiological storage), an oblique-free shift.
    a = np.diag([-3.0, 3.0, 3.0, 1.0])
    a[:3, 3] = [60.0, -80.0, -10.0]
    return a


@pytest.fixture()
def files(tmp_path, affine):
    rng = np.random.default_rng(0)
    bold = rng.standard_normal((*SHAPE, N_SAMPLES)).astype(np.float32) + 100
    bold[0, 0, 0] = 0.0  # an empty (out-of-brain) voxel
    mask = np.ones(SHAPE, dtype=np.uint8)
    mask[4] = 0  # drop the x = 4 slab
    mask[0, 0, 0] = 0
    roi = np.zeros(SHAPE, dtype=np.int16)
    roi[1, :, 2] = 1
    nib.save(nib.Nifti1Image(bold, affine), tmp_path / "sub-01_betas.nii.gz")
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "mask.nii.gz")
    nib.save(nib.Nifti1Image(roi, affine), tmp_path / "roi.nii.gz")
    table = pd.DataFrame(
        {"stimulus_id": [f"{i % 6 + 1:04d}" for i in range(N_SAMPLES)], "run": np.repeat([1, 2, 3], 4), "x": 0}
    )
    table.to_csv(tmp_path / "samples.csv", index=False)
    return tmp_path, bold, mask, roi


def test_load_nifti_with_mask(files, affine):
    folder, bold, mask, roi = files
    data = load_nifti(folder / "sub-01_betas.nii.gz", folder / "samples.csv", mask=folder / "mask.nii.gz")
    keep = mask.astype(bool)
    assert data.subject == "sub-01_betas"
    assert data.responses.shape == (N_SAMPLES, keep.sum())
    np.testing.assert_allclose(data.responses, bold[keep].T)
    ijk = np.argwhere(keep)
    # Coordinates in mm through the affine, checked against nibabel's own transform.
    np.testing.assert_allclose(data.coords, nib.affines.apply_affine(affine, ijk))
    np.testing.assert_array_equal(data.affine, affine)
    np.testing.assert_array_equal(data.stimulus_ids[:7], ["0001", "0002", "0003", "0004", "0005", "0006", "0001"])
    np.testing.assert_array_equal(data.runs, np.repeat([1, 2, 3], 4))
    assert list(data.rois) == ["mask"]
    # The affine survives saving.
    saved = NeuralData.load(data.save(folder / "s.npz"))
    np.testing.assert_array_equal(saved.affine, affine)


def test_load_nifti_without_mask_drops_empty_voxels(files):
    folder, bold, *_ = files
    data = load_nifti(folder / "sub-01_betas.nii.gz", folder / "samples.csv", subject="s1")
    assert data.subject == "s1"
    assert data.n_voxels == np.prod(SHAPE) - 1


def test_load_nifti_rois_and_average(files, affine):
    folder, bold, mask, roi = files
    data = load_nifti(
        folder / "sub-01_betas.nii.gz",
        folder / "samples.csv",
        mask=folder / "mask.nii.gz",
        rois={"file_roi": folder / "roi.nii.gz", "array_roi": roi == 0},
        repeats="average",
    )
    in_roi = roi[mask.astype(bool)] != 0
    np.testing.assert_array_equal(data.rois["file_roi"], np.flatnonzero(in_roi))
    np.testing.assert_array_equal(data.rois["array_roi"], np.flatnonzero(~in_roi))
    assert data.responses.shape[0] == 6
    first = bold[mask.astype(bool)].T
    np.testing.assert_allclose(data.responses[0], first[[0, 6]].mean(axis=0), rtol=1e-6)
    assert data.runs[0] == 1 and data.runs[5] == 2


def test_voxel_coordinates_match_nibabel(affine):
    ijk = np.array([[0, 0, 0], [4, 3, 2], [1, 2, 0]])
    np.testing.assert_allclose(voxel_coordinates(ijk, affine), nib.affines.apply_affine(affine, ijk))


def test_nifti_errors(files, tmp_path, affine):
    folder, bold, mask, roi = files
    betas, table = folder / "sub-01_betas.nii.gz", folder / "samples.csv"
    pd.DataFrame({"stimulus_id": ["a"] * 5, "run": 1}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(InputError, match="5 rows but the data have 12"):
        load_nifti(betas, tmp_path / "short.csv")
    pd.DataFrame({"stimulus": ["a"] * 12, "run": 1}).to_csv(tmp_path / "nocol.csv", index=False)
    with pytest.raises(InputError, match="no column 'stimulus_id'"):
        load_nifti(betas, tmp_path / "nocol.csv")
    pd.DataFrame({"stimulus_id": ["a"] * 12, "run": [1.5] + [1] * 11}).to_csv(tmp_path / "run.csv", index=False)
    with pytest.raises(InputError, match="row\\(s\\) \\[2\\]"):
        load_nifti(betas, tmp_path / "run.csv")
    with pytest.raises(InputError, match="expected a 4-D image"):
        load_nifti(folder / "mask.nii.gz", table)
    (tmp_path / "fake.nii").write_text("not an image")
    with pytest.raises(InputError, match="not a readable NIfTI"):
        load_nifti(tmp_path / "fake.nii", table)
    other = affine.copy()
    other[0, 3] += 7
    nib.save(nib.Nifti1Image(mask, other), tmp_path / "shifted_mask.nii.gz")
    with pytest.raises(InputError, match="not on the grid"):
        load_nifti(betas, table, mask=tmp_path / "shifted_mask.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.uint8), affine), tmp_path / "empty.nii.gz")
    with pytest.raises(InputError, match="selects no voxel"):
        load_nifti(betas, table, mask=tmp_path / "empty.nii.gz")
    with pytest.raises(InputError, match="holds no voxel"):
        load_nifti(betas, table, rois={"none": np.zeros(SHAPE, bool)})


def test_load_npy(tmp_path):
    rng = np.random.default_rng(1)
    responses = rng.standard_normal((N_SAMPLES, 20))
    np.save(tmp_path / "resp.npy", responses)
    pd.DataFrame({"stimulus_id": [f"s{i % 4}" for i in range(N_SAMPLES)], "run": np.arange(N_SAMPLES) // 3}).to_csv(
        tmp_path / "t.csv", index=False
    )
    coords = rng.integers(0, 10, (20, 3)).astype(float)
    roi = np.zeros(20, dtype=bool)
    roi[:5] = True
    data = load_npy(tmp_path / "resp.npy", tmp_path / "t.csv", coords=coords, rois={"front": roi, "idx": [7, 9]})
    assert data.subject == "resp"
    np.testing.assert_allclose(data.responses, responses.astype(np.float32))
    np.testing.assert_array_equal(data.rois["front"], np.arange(5))
    np.testing.assert_array_equal(data.coords, coords)
    averaged = load_npy(tmp_path / "resp.npy", tmp_path / "t.csv", repeats="average")
    assert averaged.responses.shape == (4, 20)
    assert list(averaged.rois) == ["all"]
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(InputError, match="2-D numeric array"):
        load_npy(tmp_path / "flat.npy", tmp_path / "t.csv")
    with pytest.raises(InputError, match="coords must have shape"):
        load_npy(tmp_path / "resp.npy", tmp_path / "t.csv", coords=coords[:3])
