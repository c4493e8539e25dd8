"""ROI sets from the real roiInf.mat (Horikawa et al. 2020), their resolution on data, user masks."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest
import scipy.io

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.rois import (
    CORTICAL_ROIS,
    SUBCORTICAL_ROIS,
    Region,
    RoiSet,
    horikawa_rois,
    mask_from_array,
    mask_from_nifti,
    read_roi_info,
    resolve_rois,
    roi_masks,
    with_masks,
)

# What roiInf.mat holds under each name (parcels, both hemispheres). If the file changes, these fail.
FILE_INSULA = ["a24", "a24pr", "a32pr", "p24", "p32pr"]
FILE_ACC = ["AAIC", "FOP2", "FOP3", "Ig", "MI", "OP2-3", "PoI1", "PoI2"]


@pytest.fixture(scope="module")
def roi_file(shared_data):
    path = shared_data / "horikawa" / "roiInf.mat"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def write_roi_info(path, sets: dict[str, RoiSet]) -> None:
    """Write ROI sets as a roiInf.mat struct (names, member cells, empty exclusion cells)."""

    def cell(items):
        array = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = item
        return array

    content = {}
    for name, roi_set in sets.items():
        content[name] = {
            "roiDescrip": cell([r.name for r in roi_set.regions]),
            "roiName": cell([cell(list(r.members)) for r in roi_set.regions]),
            "exRoiName": cell([cell([]) for _ in roi_set.regions]),
        }
    scipy.io.savemat(path, {"roiInf": content})


def test_file_holds_four_sets(roi_file):
    sets = read_roi_info(roi_file)
    assert {name: len(s) for name, s in sets.items()} == {
        "hcp360": 360,
        "individual": 13,
        "subcortex": 10,
        "network17": 17,
    }
    assert sets["individual"].names == [
        "VC", "TPJ", "IPL", "PC", "STS", "TE", "MTC", "Insula", "DLPFC", "DMPFC", "VMPFC", "ACC", "OFC",
    ]  # fmt: skip
    assert sets["hcp360"]["hcp180_L_V1"].members == ("hcp180_r_lh.L_V1_ROI",)
    assert sets["subcortex"]["thalamus"].members == (
        "pickatlas_r_waal_MNI_V4_Thalamus_L",
        "pickatlas_r_waal_MNI_V4_Thalamus_R",
    )
    assert all(not r.excluded for s in sets.values() for r in s.regions)


def test_file_has_insula_and_acc_swapped(roi_file):
    individual = read_roi_info(roi_file)["individual"]
    assert individual["Insula"].parcels() == FILE_INSULA
    assert individual["ACC"].parcels() == FILE_ACC
    assert len(individual["Insula"].members) == 2 * len(FILE_INSULA)
    assert len(individual["ACC"].members) == 2 * len(FILE_ACC)


def test_horikawa_rois_fix_the_swap(roi_file, caplog):
    with caplog.at_level(logging.WARNING, logger="oddoneout.neural.rois"):
        rois = horikawa_rois(roi_file)
    assert rois["Insula"].parcels() == FILE_ACC
    assert rois["ACC"].parcels() == FILE_INSULA
    assert "swapped" in caplog.text
    assert any("swapped names" in note for note in rois.notes)
    kept = horikawa_rois(roi_file, fix_insula_acc=False)
    assert kept["Insula"].parcels() == FILE_INSULA


def test_horikawa_rois_has_the_study_regions(roi_file):
    rois = horikawa_rois(roi_file)
    assert rois.names == [*CORTICAL_ROIS, *SUBCORTICAL_ROIS]
    assert len(CORTICAL_ROIS) == 16 and len(SUBCORTICAL_ROIS) == 10
    assert rois["MST"].members == ("hcp180_r_lh.L_MST_ROI", "hcp180_r_rh.R_MST_ROI")
    assert rois["TF"].parcels() == ["TF"]
    assert "IFSa" in rois["VLPFC"].parcels() and "44" in rois["VLPFC"].parcels()
    assert rois["TPJ"].parcels() == ["TPOJ1", "TPOJ2", "TPOJ3"]
    assert rois["hippocampus"].aliases == ("hyppocampus",)
    assert rois["accumbens"].aliases == ("nuc_accum",)
    # Every cortical member names a real HCP-MMP parcel of the file.
    known = {p for r in read_roi_info(roi_file)["hcp360"].regions for p in r.parcels()}
    for name in CORTICAL_ROIS:
        assert rois[name].parcels() and set(rois[name].parcels()) <= known


def test_correctly_named_file_is_not_changed(roi_file, tmp_path):
    sets = read_roi_info(roi_file)
    individual = sets["individual"]
    fixed = []
    for region in individual.regions:
        if region.name == "Insula":
            region = Region("Insula", individual["ACC"].members)
        elif region.name == "ACC":
            region = Region("ACC", individual["Insula"].members)
        fixed.append(region)
    sets["individual"] = RoiSet("individual", tuple(fixed))
    path = tmp_path / "roiInf.mat"
    write_roi_info(path, sets)
    rois = horikawa_rois(path)
    assert rois["Insula"].parcels() == FILE_ACC
    assert not any("swapped" in note for note in rois.notes)

    # Neither insular nor cingulate: refuse rather than guess.
    sets["individual"] = RoiSet(
        "individual", tuple(Region(r.name, individual["VC"].members) if r.name == "ACC" else r for r in fixed)
    )
    write_roi_info(path, sets)
    with pytest.raises(InputError, match="cannot tell the Insula and ACC"):
        horikawa_rois(path)


def test_bad_roi_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_roi_info(tmp_path / "none.mat")
    text = tmp_path / "bad.mat"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a MATLAB"):
        read_roi_info(text)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"x": np.zeros(3)})
    with pytest.raises(InputError, match="no variable 'roiInf'"):
        read_roi_info(other)


def test_resolve_rois_matches_any_key_spelling(roi_file, caplog):
    rois = horikawa_rois(roi_file)
    masks = {
        "hcp180_lh.L_TPOJ1_ROI": np.array([0, 1]),  # MATLAB code's spelling
        "hcp180_R_TPOJ2": np.array([2, 3]),  # roiDescrip spelling
        "hcp180_r_lh.L_PoI1_ROI": np.array([4]),
        "hyppocampus": np.array([5, 6]),  # a whole-region mask (Python release)
        "pickatlas_r_waal_MNI_V4_Thalamus_L": np.array([7]),
        "pickatlas_r_waal_MNI_V4_Thalamus_R": np.array([8, 7]),
    }
    with caplog.at_level(logging.INFO, logger="oddoneout.neural.rois"):
        result = resolve_rois(masks, rois, n_voxels=10)
    assert list(result) == ["Insula", "TPJ", "thalamus", "hippocampus"]  # the set's order
    np.testing.assert_array_equal(result["TPJ"], [0, 1, 2, 3])
    np.testing.assert_array_equal(result["thalamus"], [7, 8])
    np.testing.assert_array_equal(result["hippocampus"], [5, 6])
    assert "built from the others" in caplog.text
    with pytest.raises(InputError, match="region 'VC'"):
        resolve_rois(masks, rois, n_voxels=10, missing="raise")


def test_roi_masks_and_exclusions():
    data = NeuralData(
        "s1",
        np.zeros((3, 6)),
        np.array(["a", "b", "c"]),
        np.array([1, 1, 2]),
        {"A": np.array([0, 1, 2]), "B": np.array([2, 3])},
    )
    own = roi_masks(data)
    np.testing.assert_array_equal(own["B"], [False, False, True, True, False, False])
    roi_set = RoiSet("x", (Region("AB-not-B", ("A", "B"), excluded=("B",)), Region("none", ("Z",))))
    masks = roi_masks(data, roi_set)
    assert list(masks) == ["AB-not-B"]
    np.testing.assert_array_equal(masks["AB-not-B"], [True, True, False, False, False, False])


def grid_data() -> tuple[NeuralData, np.ndarray]:
    """Six voxels of a 2 mm grid shifted by (-10, -20, 4) mm."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-10, -20, 4]
    ijk = np.array([[0, 0, 0], [1, 0, 0], [2, 1, 0], [0, 2, 1], [3, 3, 2], [9, 9, 9]])
    coords = ijk * 2.0 + affine[:3, 3]
    data = NeuralData(
        "s1", np.zeros((2, 6)), np.array(["a", "b"]), np.array([1, 2]), {"all": np.arange(6)}, coords, affine=affine
    )
    return data, affine


def test_user_masks_from_arrays_and_nifti(tmp_path):
    data, affine = grid_data()
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[1, 0, 0] = image[0, 2, 1] = image[3, 3, 2] = 1
    expected = np.array([False, True, False, True, True, False])  # voxel 5 lies outside the image
    np.testing.assert_array_equal(mask_from_array(data, image), expected)
    np.testing.assert_array_equal(mask_from_array(data, np.array([1, 0, 0, 0, 0, 2])), [1, 0, 0, 0, 0, 1])
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(image, affine), path)
    np.testing.assert_array_equal(mask_from_nifti(data, path), expected)

    # The same mask resampled on a 1 mm grid of the same space selects the same voxels.
    fine_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    fine_affine[:3, 3] = affine[:3, 3]
    fine = np.zeros((8, 8, 6), dtype=np.uint8)
    fine[::2, ::2, ::2] = image
    np.testing.assert_array_equal(mask_from_array(data, fine, fine_affine), expected)

    extended = with_masks(data, {"user": expected})
    np.testing.assert_array_equal(extended.rois["user"], [1, 3, 4])
    assert "user" not in data.rois
    with pytest.raises(InputError, match="holds no voxel"):
        with_masks(data, {"empty": np.zeros(6, dtype=bool)})
    with pytest.raises(InputError, match="one per voxel"):
        mask_from_array(data, np.ones(5))
    no_affine = NeuralData("s2", np.zeros((2, 6)), np.array(["a", "b"]), np.array([1, 2]), {"all": np.arange(6)})
    with pytest.raises(InputError, match="needs an affine"):
        mask_from_array(no_affine, image)
