"""Generic fMRI loaders: a 4-D NIfTI or a samples x voxels ``.npy``, plus a table of samples.

The table (CSV) has one row per sample, in the order of the volumes (or rows of the
array), with at least the columns ``stimulus_id`` and ``run``. Typical inputs are
single-trial or per-stimulus beta maps (e.g. from GLMsingle or nilearn's first-level
models), one volume per presentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oddoneout.errors import InputError
from oddoneout.files import read_npy
from oddoneout.neural.data import NeuralData
from oddoneout.neural.repeats import REPEAT_MODES, apply_repeat_mode

__all__ = ["load_nifti", "load_npy", "read_image", "read_sample_table", "voxel_coordinates"]

STIMULUS_COLUMN = "stimulus_id"
RUN_COLUMN = "run"


def read_image(path: str | Path) -> Any:
    """Open a NIfTI image with nibabel; a clear :class:`InputError` when it is not one."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"NIfTI file not found: {path}")
    try:
        return nib.load(path)
    except (ImageFileError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: not a readable NIfTI image ({exc})") from exc


def read_sample_table(path: str | Path, n_samples: int) -> pd.DataFrame:
    """Read the sample table: columns ``stimulus_id`` (str) and ``run`` (int), one row per sample."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"sample table not found: {path}")
    try:
        table = pd.read_csv(path, dtype={STIMULUS_COLUMN: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV table ({exc})") from exc
    for column in (STIMULUS_COLUMN, RUN_COLUMN):
        if column not in table.columns:
            raise InputError(f"{path}: no column {column!r} (columns: {list(table.columns)})")
    if len(table) != n_samples:
        raise InputError(f"{path}: {len(table)} rows but the data have {n_samples} samples (one row per sample)")
    blank = np.flatnonzero(table[STIMULUS_COLUMN].isna().to_numpy())
    if blank.size:
        raise InputError(f"{path}: row(s) {(blank + 2).tolist()[:10]} have no {STIMULUS_COLUMN}")
    runs = pd.to_numeric(table[RUN_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(runs) | (runs != np.round(runs)))
    if bad.size:
        raise InputError(f"{path}: row(s) {(bad + 2).tolist()[:10]} have a {RUN_COLUMN} that is not a whole number")
    table = table.copy()
    table[RUN_COLUMN] = runs.astype(np.int64)
    table[STIMULUS_COLUMN] = table[STIMULUS_COLUMN].astype(str).str.strip()
    return table


def voxel_coordinates(ijk: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World (mm) coordinates of voxel indices: ``affine @ [i, j, k, 1]``."""
    ijk = np.asarray(ijk, dtype=np.float64)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _rois_from_masks(
    rois: Mapping[str, Any] | None, grid_shape: tuple[int, ...], affine: np.ndarray, ijk: np.ndarray
) -> dict[str, np.ndarray]:
    result = {}
    for name, value in (rois or {}).items():
        if isinstance(value, (str, Path)):
            image = read_image(value)
            if image.shape[:3] != grid_shape or not np.allclose(image.affine, affine, atol=1e-3):
                raise InputError(f"{value}: ROI mask {name!r} is not on the grid of the data (shape and affine differ)")
            data = np.asarray(image.dataobj)
            data = data[..., 0] if data.ndim == 4 else data
        else:
            data = np.asarray(value)
            if data.shape != grid_shape:
                raise InputError(f"ROI mask {name!r} has shape {data.shape}, expected the image grid {grid_shape}")
        inside = np.nan_to_num(data[tuple(ijk.T)].astype(np.float64)) != 0
        if not inside.any():
            raise InputError(f"ROI mask {name!r} holds no voxel of the data")
        result[name] = np.flatnonzero(inside)
    return result


def load_nifti(
    bold: str | Path,
    table: str | Path,
    *,
    mask: str | Path | None = None,
    rois: Mapping[str, str | Path | np.ndarray] | None = None,
    subject: str | None = None,
    repeats: str = "keep",
) -> NeuralData:
    """Load a 4-D NIfTI of responses (one volume per sample) and its sample table.

    Parameters
    ----------
    bold : path
        4-D image (x, y, z, samples), e.g. beta maps.
    table : path
        CSV with one row per volume: ``stimulus_id``, ``run`` (other columns ignored).
    mask : path, optional
        3-D mask on the same grid (non-zero = voxel kept). Default: every voxel whose
        values are finite and not all zero.
    rois : mapping of name to path or 3-D array, optional
        ROI masks on the same grid (non-zero = in the ROI); every ROI must hold a voxel.
        Without ``rois`` the data get one ROI, ``"mask"``, with every voxel.
    subject : str, optional
        Default: the image file name without extensions.
    repeats : {"keep", "average", "run"}
        See :mod:`oddoneout.neural.repeats`.

    Returns
    -------
    NeuralData
        Voxels in C order of the grid; ``coords`` in mm (through the image affine) and
        ``affine`` set.
    """
    if repeats not in REPEAT_MODES:
        raise InputError(f"repeats must be one of {REPEAT_MODES}, got {repeats!r}")
    image = read_image(bold)
    if len(image.shape) != 4:
        raise InputError(f"{bold}: expected a 4-D image (x, y, z, samples), got shape {image.shape}")
    data = np.asarray(image.dataobj, dtype=np.float32)
    grid_shape = data.shape[:3]
    affine = np.asarray(image.affine, dtype=np.float64)
    if mask is not None:
        mask_image = read_image(mask)
        if mask_image.shape[:3] != grid_shape or not np.allclose(mask_image.affine, affine, atol=1e-3):
            raise InputError(f"{mask}: the mask is not on the grid of {bold} (shape and affine differ)")
        mask_data = np.asarray(mask_image.dataobj)
        mask_data = mask_data[..., 0] if mask_data.ndim == 4 else mask_data
        keep = np.nan_to_num(mask_data.astype(np.float64)) != 0
        if not keep.any():
            raise InputError(f"{mask}: the mask selects no voxel")
        in_mask = data[keep]
        bad = ~np.all(np.isfinite(in_mask), axis=1)
        if bad.any():
            raise InputError(f"{bold}: {int(bad.sum())} voxel(s) inside the mask have NaN or infinite values")
    else:
        keep = np.all(np.isfinite(data), axis=3) & np.any(data != 0, axis=3)
        if not keep.any():
            raise InputError(f"{bold}: no voxel with finite, non-zero values")
    ijk = np.argwhere(keep)
    responses = data[keep].T
    samples = read_sample_table(table, responses.shape[0])
    roi_indices = _rois_from_masks(rois, grid_shape, affine, ijk) or {"mask": np.arange(ijk.shape[0])}
    name = Path(bold).name
    neural = NeuralData(
        subject=subject if subject is not None else name.split(".")[0],
        responses=responses,
        stimulus_ids=samples[STIMULUS_COLUMN].to_numpy(),
        runs=samples[RUN_COLUMN].to_numpy(),
        rois=roi_indices,
        coords=voxel_coordinates(ijk, affine),
        metadata={
            "source": "nifti",
            "path": str(bold),
            "table": str(table),
            "mask": None if mask is None else str(mask),
        },
        affine=affine,
    )
    return apply_repeat_mode(neural, repeats)


def load_npy(
    responses: str | Path,
    table: str | Path,
    *,
    coords: str | Path | np.ndarray | None = None,
    rois: Mapping[str, np.ndarray] | None = None,
    subject: str | None = None,
    repeats: str = "keep",
) -> NeuralData:
    """Load a samples x voxels ``.npy`` array and its sample table.

    Parameters
    ----------
    responses : path
        2-D float array, one row per sample.
    table : path
        CSV with one row per sample: ``stimulus_id``, ``run``.
    coords : path or ndarray of shape (n_voxels, 3), optional
    rois : mapping of name to voxel indices or boolean masks (n_voxels,), optional
        Default: one ROI ``"all"`` with every voxel.
    subject : str, optional
        Default: the file stem.
    repeats : {"keep", "average", "run"}
        See :mod:`oddoneout.neural.repeats`.
    """
    if repeats not in REPEAT_MODES:
        raise InputError(f"repeats must be one of {REPEAT_MODES}, got {repeats!r}")
    path = Path(responses)
    if not path.is_file():
        raise InputError(f"response array not found: {path}")
    array = read_npy(path)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise InputError(f"{path}: expected a 2-D numeric array (samples x voxels), got {array.dtype} {array.shape}")
    n_voxels = array.shape[1]
    if coords is not None:
        coords = read_npy(coords) if isinstance(coords, (str, Path)) else np.asarray(coords)
        if coords.shape != (n_voxels, 3):
            raise InputError(f"coords must have shape ({n_voxels}, 3), got {coords.shape}")
    roi_indices = {}
    for name, value in (rois or {"all": np.arange(n_voxels)}).items():
        value = np.asarray(value)
        if value.dtype == bool:
            if value.shape != (n_voxels,):
                raise InputError(f"ROI mask {name!r} has shape {value.shape}, expected ({n_voxels},)")
            value = np.flatnonzero(value)
        roi_indices[name] = value
    samples = read_sample_table(table, array.shape[0])
    neural = NeuralData(
        subject=subject if subject is not None else path.stem,
        responses=array,
        stimulus_ids=samples[STIMULUS_COLUMN].to_numpy(),
        runs=samples[RUN_COLUMN].to_numpy(),
        rois=roi_indices,
        coords=coords,
        metadata={"source": "npy", "path": str(path), "table": str(table)},
    )
    return apply_repeat_mode(neural, repeats)
