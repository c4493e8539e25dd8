"""Kamitani-lab BData files (HDF5): read with h5py, without requiring ``bdpy``.

Layout (as written by ``bdpy.BData.save``; the Horikawa et al. 2020 preprocessed fMRI,
``fmri_Subject<N>.h5``, is in it)::

    /dataset               float (n_samples, n_columns)   (older files: /dataSet)
    /metadata/key          strings (n_keys,)               (older files: /metaData/...)
    /metadata/description  strings (n_keys,)
    /metadata/value        float (n_keys, n_columns)
    /vmap/<key>/<value>    optional: the label of each numeric value of <key>,
                           one scalar string dataset per value, named like "1.0"
    /header/...            optional, ignored

Each metadata row describes the columns of ``dataset``: a row marking a block of
columns has 1 on them and NaN elsewhere (``VoxelData``, ``Run``, ``stimulus_name``),
and per-voxel rows hold a value on every voxel column and NaN elsewhere
(``voxel_x``/``voxel_y``/``voxel_z`` coordinates, ROI memberships such as
``hcp180_r_lh.L_V1_ROI`` or ``thalamus`` with 1 for a member voxel, 0 or NaN otherwise).

:func:`load_bdata` turns one such file into :class:`NeuralData`; :func:`write_bdata`
writes a file in the same layout (for tests and examples: the real files are too big
to ship).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from oddoneout.atomic import atomic_path
from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.repeats import REPEAT_MODES, apply_repeat_mode

if TYPE_CHECKING:
    from oddoneout.neural.rois import RoiSet

__all__ = [
    "DEFAULT_ROI_PREFIXES",
    "BData",
    "load_bdata",
    "read_bdata",
    "video_id",
    "write_bdata",
]

log = logging.getLogger(__name__)

#: Metadata keys starting with one of these are read as ROI masks (HCP-MMP parcels, WFU
#: PickAtlas subcortical masks, Yeo networks, generic ``ROI_`` masks).
DEFAULT_ROI_PREFIXES = ("hcp180_", "ROI_", "pickatlas_", "yeo2011_")

#: Subcortical masks of the Horikawa files carry plain names (bdpy selects them as ``thalamus = 1``).
HORIKAWA_PLAIN_ROI_KEYS = (
    "thalamus",
    "hyppocampus",
    "hypothalamus",
    "pallidum",
    "brainstem",
    "caudate",
    "putamen",
    "nuc_accum",
    "amygdala",
    "cerebellum",
    "WholeBrain",
)

IdMap = Callable[[str], str] | Mapping[str, str] | None

_DIGITS = re.compile(r"^\d+$")


def video_id(label: str) -> str:
    """Default stimulus-name to item-id map for the Cowen & Keltner videos.

    The directory and extension are dropped and a purely numeric name is
    zero-padded to 4 digits, so ``"0001.mp4"``, ``"stimuli/0001.mp4"``, ``"1"``
    and a numeric label ``1.0`` all become ``"0001"`` (the item ids of
    :mod:`oddoneout.stimuli.cowen_keltner`). Other names are returned as their
    stem unchanged.
    """
    name = str(label).strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name and not _is_number(name) else name
    if _is_number(stem) and float(stem) == int(float(stem)):
        stem = str(int(float(stem)))
    return stem.zfill(4) if _DIGITS.match(stem) else stem


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class BData:
    """The raw content of a BData file.

    Parameters
    ----------
    dataset : ndarray of shape (n_samples, n_columns)
    keys : list of str
        Metadata keys, one per row of ``values``.
    descriptions : list of str
    values : ndarray of shape (n_keys, n_columns)
    vmap : dict of str to dict of float to str
        Value-to-label maps of some keys.
    path : str
        The file it was read from (for messages).
    """

    dataset: np.ndarray
    keys: list[str]
    descriptions: list[str]
    values: np.ndarray
    vmap: dict[str, dict[float, str]]
    path: str = "<memory>"

    def metadata(self, key: str) -> np.ndarray:
        """The metadata row of ``key`` (one value per column)."""
        try:
            return self.values[self.keys.index(key)]
        except ValueError:
            raise InputError(f"{self.path}: no metadata key {key!r} (keys: {_preview(self.keys)})") from None

    def columns(self, key: str) -> np.ndarray:
        """Indices of the dataset columns marked by ``key`` (metadata value 1)."""
        columns = np.flatnonzero(self.metadata(key) == 1)
        if columns.size == 0:
            raise InputError(f"{self.path}: metadata key {key!r} marks no column of the dataset")
        return columns

    def select(self, key: str) -> np.ndarray:
        """The dataset columns marked by ``key``, shape (n_samples, n_columns_of_key)."""
        return self.dataset[:, self.columns(key)]

    def labels(self, key: str, column: int | None = None) -> np.ndarray:
        """The values of a one-column key as strings, through its vmap when it has one.

        ``column`` picks one column of a key spanning several (e.g. ``Label``).
        """
        block = self.select(key)
        if block.shape[1] > 1:
            if column is None:
                raise InputError(
                    f"{self.path}: key {key!r} spans {block.shape[1]} columns; say which holds the stimulus "
                    "(label_column)"
                )
            if not -block.shape[1] <= column < block.shape[1]:
                raise InputError(f"{self.path}: key {key!r} has no column {column} (it has {block.shape[1]})")
        values = block[:, 0 if column is None else column]
        missing = np.flatnonzero(~np.isfinite(values))
        if missing.size:
            raise InputError(f"{self.path}: key {key!r} has no value in sample(s) {missing[:10].tolist()}")
        vmap = self.vmap.get(key)
        if vmap is None:
            return np.array([_format_number(v) for v in values])
        unknown = sorted({float(v) for v in values} - set(vmap))
        if unknown:
            raise InputError(f"{self.path}: vmap of {key!r} has no label for value(s) {unknown[:10]}")
        return np.array([vmap[float(v)] for v in values])


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _preview(items: list[str], n: int = 12) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _strings(dataset: Any) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in np.asarray(dataset[()]).ravel()]


def _scalar_string(dataset: Any) -> str:
    value = dataset[()]
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_bdata(path: str | Path) -> BData:
    """Read the dataset, metadata and vmaps of a BData HDF5 file.

    Raises
    ------
    InputError
        If the file is missing, is not HDF5, lacks the dataset or metadata, or the
        metadata does not match the dataset's columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"BData file not found: {path}")
    if not h5py.is_hdf5(path):
        raise InputError(f"{path}: not an HDF5 file (expected a BData .h5 file)")
    with h5py.File(path, "r") as f:
        data_name = next((n for n in ("dataset", "dataSet") if n in f), None)
        meta_name = next((n for n in ("metadata", "metaData") if n in f), None)
        if data_name is None or meta_name is None:
            raise InputError(f"{path}: not a BData file (needs /dataset and /metadata; found {sorted(f.keys())})")
        meta = f[meta_name]
        for part in ("key", "description", "value"):
            if part not in meta:
                raise InputError(f"{path}: /{meta_name} has no {part!r}")
        dataset = np.asarray(f[data_name][()])  # native dtype: the real files are GBs
        keys = _strings(meta["key"])
        descriptions = _strings(meta["description"])
        values = np.asarray(meta["value"][()], dtype=np.float64)
        vmap: dict[str, dict[float, str]] = {}
        if "vmap" in f:
            for key, group in f["vmap"].items():
                try:
                    vmap[key] = {float(name): _scalar_string(item) for name, item in group.items()}
                except ValueError as exc:
                    raise InputError(f"{path}: /vmap/{key} has a non-numeric entry ({exc})") from exc
    if not np.issubdtype(dataset.dtype, np.floating):
        dataset = dataset.astype(np.float64)
    if dataset.ndim != 2:
        raise InputError(f"{path}: /{data_name} must be 2-D (samples x columns), got shape {dataset.shape}")
    if values.ndim != 2 or values.shape != (len(keys), dataset.shape[1]):
        raise InputError(
            f"{path}: /{meta_name}/value has shape {values.shape}, expected (n_keys={len(keys)}, "
            f"n_columns={dataset.shape[1]})"
        )
    if len(descriptions) != len(keys):
        raise InputError(f"{path}: {len(keys)} metadata keys but {len(descriptions)} descriptions")
    return BData(dataset, keys, descriptions, values, vmap, str(path))


def _roi_keys(bdata: BData, voxel_columns: np.ndarray, prefixes: Iterable[str], extra: Iterable[str]) -> list[str]:
    prefixes = tuple(prefixes)
    wanted = set(extra)
    chosen = []
    for key in bdata.keys:
        if not (key.startswith(prefixes) or key in wanted):
            continue
        row = bdata.metadata(key)[voxel_columns]
        finite = row[np.isfinite(row)]
        if not np.all((finite == 0) | (finite == 1)):
            log.info("%s: metadata key %r matches an ROI prefix but is not a 0/1 mask; skipped", bdata.path, key)
            continue
        chosen.append(key)
    return chosen


def _apply_id_map(labels: np.ndarray, id_map: IdMap, path: str) -> np.ndarray:
    if id_map is None:
        return labels
    if isinstance(id_map, Mapping):
        missing = sorted({str(x) for x in labels} - set(id_map))
        if missing:
            raise InputError(f"{path}: id_map has no entry for stimulus name(s) {missing[:10]}")
        return np.array([id_map[str(x)] for x in labels])
    if callable(id_map):
        cache: dict[str, str] = {}
        for label in labels:
            if label not in cache:
                cache[label] = str(id_map(str(label)))
        return np.array([cache[x] for x in labels])
    raise InputError(f"id_map must be a callable, a mapping or None, got {type(id_map).__name__}")


def load_bdata(
    path: str | Path,
    *,
    subject: str | None = None,
    voxels: str = "VoxelData",
    run_key: str = "Run",
    stimulus_key: str = "stimulus_name",
    label_column: int | None = None,
    coord_keys: tuple[str, str, str] | None = ("voxel_x", "voxel_y", "voxel_z"),
    roi_prefixes: Iterable[str] = DEFAULT_ROI_PREFIXES,
    roi_keys: Iterable[str] = HORIKAWA_PLAIN_ROI_KEYS,
    roi_set: RoiSet | None = None,
    id_map: IdMap = video_id,
    repeats: str = "average",
) -> NeuralData:
    """Load one subject's BData HDF5 file (e.g. Horikawa et al. 2020) as :class:`NeuralData`.

    Parameters
    ----------
    path : path
        The ``.h5`` file.
    subject : str, optional
        Subject label; default the file stem (``fmri_Subject1``).
    voxels : str
        Metadata key marking the voxel columns.
    run_key : str
        Key of the run column (one column).
    stimulus_key : str
        Key of the stimulus column; its vmap (when present) gives the stimulus names,
        otherwise the numbers are used as names. Horikawa's files: ``stimulus_name``.
        Older BrainDecoderToolbox files use ``Label`` (several columns; the stimulus
        is ``label_column=2``).
    label_column : int, optional
        Column of a multi-column ``stimulus_key`` holding the stimulus.
    coord_keys : 3 keys, optional
        Per-voxel metadata rows with the x, y, z coordinates; skipped (coords None)
        when absent from the file.
    roi_prefixes, roi_keys : iterables of str
        Metadata keys starting with a prefix, or equal to one of ``roi_keys``, whose
        rows are 0/1 (or NaN) on the voxel columns are read as ROI masks. ROIs
        without a voxel are dropped (logged).
    roi_set : RoiSet, optional
        When given, the ROIs of the result are this set's composite regions resolved
        from the file's ROI columns (see :func:`oddoneout.neural.rois.resolve_rois`);
        otherwise the file's ROI columns themselves, keyed by metadata key.
    id_map : callable, mapping or None
        Maps a stimulus name to an item id. Default :func:`video_id`
        (``"0001.mp4"`` -> ``"0001"``); ``None`` keeps the names.
    repeats : {"average", "keep", "run"}
        Average all samples of each stimulus into one (placed at its first sample,
        with that run); keep every sample (for noise ceilings); or average the
        samples of a stimulus within each run (one sample per presentation when the
        file stores several volumes per presentation). See :mod:`oddoneout.neural.repeats`.

    Returns
    -------
    NeuralData

    Raises
    ------
    InputError
        A file that is not BData HDF5, a missing key, lengths that do not match,
        a stimulus name the id map does not know.
    """
    if repeats not in REPEAT_MODES:
        raise InputError(f"repeats must be one of {REPEAT_MODES}, got {repeats!r}")
    bdata = read_bdata(path)
    voxel_columns = bdata.columns(voxels)
    responses = bdata.dataset[:, voxel_columns]
    bad = np.flatnonzero(~np.all(np.isfinite(responses), axis=0))
    if bad.size:
        raise InputError(f"{bdata.path}: voxel column(s) {bad[:10].tolist()} of {voxels!r} hold NaN or inf")
    run_block = bdata.select(run_key)
    if run_block.shape[1] != 1:
        raise InputError(f"{bdata.path}: key {run_key!r} spans {run_block.shape[1]} columns, expected 1")
    runs = run_block[:, 0]
    if not np.all(np.isfinite(runs)) or not np.all(runs == np.round(runs)):
        raise InputError(f"{bdata.path}: key {run_key!r} must hold whole numbers in every sample")
    names = bdata.labels(stimulus_key, label_column)
    stimulus_ids = _apply_id_map(names, id_map, bdata.path)

    coords = None
    if coord_keys is not None and all(k in bdata.keys for k in coord_keys):
        coords = np.stack([bdata.metadata(k)[voxel_columns] for k in coord_keys], axis=1)
        if not np.all(np.isfinite(coords)):
            raise InputError(f"{bdata.path}: voxel coordinates {coord_keys} missing for some voxels")

    file_rois: dict[str, np.ndarray] = {}
    for key in _roi_keys(bdata, voxel_columns, roi_prefixes, roi_keys):
        members = np.flatnonzero(bdata.metadata(key)[voxel_columns] == 1)
        if members.size:
            file_rois[key] = members
        else:
            log.info("%s: ROI %r has no voxel; dropped", bdata.path, key)
    if roi_set is not None:
        from oddoneout.neural.rois import resolve_rois

        rois = resolve_rois(file_rois, roi_set, voxel_columns.size)
    else:
        rois = file_rois

    neural = NeuralData(
        subject=subject if subject is not None else Path(path).stem,
        responses=responses,
        stimulus_ids=stimulus_ids,
        runs=runs.astype(np.int64),
        rois=rois,
        coords=coords,
        metadata={
            "source": "bdata",
            "path": str(path),
            "voxels_key": voxels,
            "stimulus_key": stimulus_key,
            "roi_set": None if roi_set is None else roi_set.name,
        },
    )
    return apply_repeat_mode(neural, repeats)


def write_bdata(
    path: str | Path,
    voxel_data: np.ndarray,
    *,
    runs: np.ndarray,
    stimulus_names: np.ndarray,
    rois: Mapping[str, np.ndarray] | None = None,
    coords: np.ndarray | None = None,
    voxels_key: str = "VoxelData",
    run_key: str = "Run",
    stimulus_key: str = "stimulus_name",
    legacy_names: bool = False,
) -> Path:
    """Write a small BData HDF5 file in the layout :func:`load_bdata` reads.

    Meant for tests and examples (the real Horikawa files are several GB). Columns:
    the voxels, then ``Run``, then the stimulus (numbered 1, 2, ... in order of
    first appearance, with a vmap giving the names).

    Parameters
    ----------
    path : path
        Output ``.h5`` file.
    voxel_data : ndarray of shape (n_samples, n_voxels)
    runs : ndarray of shape (n_samples,)
    stimulus_names : ndarray of shape (n_samples,)
        Stimulus name of each sample (e.g. ``"0001.mp4"``).
    rois : mapping of str to bool ndarray of shape (n_voxels,), optional
        ROI masks, written as metadata rows (1/0 on the voxel columns, NaN elsewhere).
    coords : ndarray of shape (n_voxels, 3), optional
        Written as ``voxel_x``, ``voxel_y``, ``voxel_z``.
    legacy_names : bool
        Use the older group names ``/dataSet`` and ``/metaData``.
    """
    voxel_data = np.asarray(voxel_data, dtype=np.float64)
    n_samples, n_voxels = voxel_data.shape
    runs = np.asarray(runs, dtype=np.float64).reshape(-1)
    stimulus_names = np.asarray(stimulus_names).astype(str).reshape(-1)
    if runs.size != n_samples or stimulus_names.size != n_samples:
        raise InputError(f"write_bdata: runs and stimulus_names need {n_samples} entries (one per sample)")
    unique, first, inverse = np.unique(stimulus_names, return_index=True, return_inverse=True)
    rank = np.empty(unique.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(unique.size)
    stimulus_values = (rank[inverse] + 1).astype(np.float64)

    dataset = np.hstack([voxel_data, runs[:, None], stimulus_values[:, None]])
    n_columns = dataset.shape[1]
    voxel_part = np.zeros(n_columns, dtype=bool)
    voxel_part[:n_voxels] = True

    keys, descriptions, rows = [], [], []

    def marker(column_mask: np.ndarray, key: str) -> None:
        row = np.full(n_columns, np.nan)
        row[column_mask] = 1.0
        keys.append(key)
        descriptions.append(f"1 = {key}")
        rows.append(row)

    def per_voxel(values: np.ndarray, key: str, description: str) -> None:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size != n_voxels:
            raise InputError(f"write_bdata: {key!r} needs {n_voxels} values (one per voxel), got {values.size}")
        row = np.full(n_columns, np.nan)
        row[:n_voxels] = values
        keys.append(key)
        descriptions.append(description)
        rows.append(row)

    marker(voxel_part, voxels_key)
    marker(np.arange(n_columns) == n_voxels, run_key)
    marker(np.arange(n_columns) == n_voxels + 1, stimulus_key)
    if coords is not None:
        coords = np.asarray(coords, dtype=np.float64)
        if coords.shape != (n_voxels, 3):
            raise InputError(f"write_bdata: coords must have shape ({n_voxels}, 3), got {coords.shape}")
        for axis, name in enumerate("xyz"):
            per_voxel(coords[:, axis], f"voxel_{name}", f"Voxel {name} coordinate")
    for name, mask in (rois or {}).items():
        per_voxel(np.asarray(mask, dtype=bool).astype(np.float64), name, f"1 = ROI {name}")

    path = Path(path)
    data_name, meta_name = ("dataSet", "metaData") if legacy_names else ("dataset", "metadata")
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as f:
        f.create_dataset(data_name, data=dataset)
        meta = f.create_group(meta_name)
        meta.create_dataset("key", data=np.array([k.encode() for k in keys]))
        meta.create_dataset("description", data=np.array([d.encode() for d in descriptions]))
        meta.create_dataset("value", data=np.vstack(rows))
        vmap = f.create_group("vmap").create_group(stimulus_key)
        for value, name in zip(rank + 1, unique):
            vmap.create_dataset(str(float(value)), data=str(name))
    return path
