"""Regions of interest: the Horikawa et al. (2020) composite ROIs and user masks.

``roiInf.mat`` (distributed with Horikawa et al.'s code, KamitaniLab/EmotionVideoNeuralRepresentation,
``data/fmri/misc/roiInf.mat``) holds one MATLAB struct ``roiInf`` with four ROI sets, each with
the fields ``roiDescrip`` (region names), ``roiName`` (the BData metadata keys of the masks whose
union is the region) and ``exRoiName`` (masks to exclude; empty throughout):

``hcp360``
    The 360 HCP-MMP 1.0 parcels (Glasser et al. 2016), e.g. ``hcp180_L_V1`` /
    ``hcp180_r_lh.L_V1_ROI``.
``individual``
    13 cortical composites built from those parcels: VC, TPJ, IPL, PC, STS, TE, MTC, Insula,
    DLPFC, DMPFC, VMPFC, ACC, OFC.
``subcortex``
    10 subcortical regions from WFU PickAtlas masks (thalamus, hyppocampus [sic], hypothalamus,
    pallidum, brainstem, caudate, putamen, nuc_accum, amygdala, cerebellum).
``network17``
    The 17 Yeo et al. (2011) networks.

In the file, the composite named ``Insula`` lists the cingulate parcels a24, a24pr, a32pr, p24,
p32pr and the one named ``ACC`` lists the insular/opercular parcels AAIC, FOP2, FOP3, Ig, MI, OP2-3,
PoI1, PoI2: the two names are swapped. :func:`horikawa_rois` detects this from the parcel names and
swaps them back (logged, and recorded in the set's notes).

The study's 16 cortical ROIs add three regions the file does not define, built here from HCP-MMP
parcels: MST (the MST parcel), TF (the TF parcel) and VLPFC (the inferior frontal parcels 44, 45,
47l, a47r, p47r, IFSa, IFSp, IFJa, IFJp: Glasser et al. 2016's "inferior frontal cortex" group).
Each composite takes both hemispheres. Composites may overlap (VC contains MST, as in the file).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData

__all__ = [
    "ACC_PARCELS",
    "INSULAR_PARCELS",
    "Region",
    "RoiSet",
    "horikawa_rois",
    "mask_from_array",
    "mask_from_nifti",
    "read_roi_info",
    "resolve_rois",
    "roi_masks",
    "with_masks",
]

log = logging.getLogger(__name__)

#: HCP-MMP parcels of the insula and frontal/parietal operculum (Glasser et al. 2016).
INSULAR_PARCELS = frozenset(
    {"52", "PI", "Ig", "PoI1", "PoI2", "FOP1", "FOP2", "FOP3", "FOP4", "FOP5", "MI", "AVI", "AAIC", "Pir", "OP1",
     "OP2-3", "OP4"}
)  # fmt: skip
#: HCP-MMP parcels of the anterior cingulate cortex (Glasser et al. 2016).
ACC_PARCELS = frozenset(
    {"a24", "p24", "a24pr", "p24pr", "a32pr", "p32pr", "33pr", "d32", "p32", "s32", "25", "24dd", "24dv"}
)

#: The study's cortical ROIs, in display order.
CORTICAL_ROIS = (
    "VC", "ACC", "Insula", "IPL", "MST", "MTC", "OFC", "PC", "STS", "TE", "TF", "TPJ", "DLPFC", "DMPFC", "VLPFC",
    "VMPFC",
)  # fmt: skip
#: The study's subcortical ROIs, in display order, and the name each has in roiInf.mat.
SUBCORTICAL_ROIS = {
    "thalamus": "thalamus",
    "hippocampus": "hyppocampus",
    "pallidum": "pallidum",
    "caudate": "caudate",
    "putamen": "putamen",
    "accumbens": "nuc_accum",
    "amygdala": "amygdala",
    "cerebellum": "cerebellum",
    "hypothalamus": "hypothalamus",
    "brainstem": "brainstem",
}
#: Cortical composites not in roiInf.mat: HCP-MMP parcels (both hemispheres).
ADDED_CORTICAL = {
    "MST": ("MST",),
    "TF": ("TF",),
    "VLPFC": ("44", "45", "47l", "a47r", "p47r", "IFSa", "IFSp", "IFJa", "IFJp"),
}

_HCP_KEY = re.compile(r"^hcp180_(?:r_)?(?:[lr]h\.)?([LR])_(.+?)(?:_ROI)?$")


@dataclass(frozen=True)
class Region:
    """One region: the union of some ROI masks.

    Parameters
    ----------
    name : str
    members : tuple of str
        ROI mask keys (BData metadata keys, e.g. ``hcp180_r_lh.L_V1_ROI``) whose union is the region.
    aliases : tuple of str
        Keys of a single mask that is the whole region (e.g. ``thalamus`` in the Python release
        of the Horikawa files); used in preference to ``members`` when present.
    excluded : tuple of str
        Mask keys whose voxels are removed from the region.
    source : str
        Where the definition comes from.
    """

    name: str
    members: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    source: str = ""

    def parcels(self) -> list[str]:
        """HCP-MMP parcel names of the members (hemisphere dropped, sorted, unique)."""
        return sorted({m.group(2) for m in map(_HCP_KEY.match, self.members) if m})


@dataclass(frozen=True)
class RoiSet:
    """A named, ordered set of regions, with notes on how it was built."""

    name: str
    regions: tuple[Region, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.regions]

    def __getitem__(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.regions)


def _cell_strings(value: object) -> tuple[str, ...]:
    """Strings of a MATLAB cell/char value loaded with ``squeeze_me=True``."""
    if isinstance(value, str):
        return (value,)
    array = np.atleast_1d(np.asarray(value, dtype=object))
    return tuple(str(x) for x in array.ravel() if str(x))


def _per_region(value: object, n_regions: int) -> list[tuple[str, ...]]:
    """One tuple of strings per region from a MATLAB cell (squeezed: a lone region loses its cell)."""
    if n_regions == 1:
        return [_cell_strings(value)]
    array = np.asarray(value, dtype=object)
    if array.size == 0:
        return []
    return [_cell_strings(x) for x in np.atleast_1d(array).ravel()]


def read_roi_info(path: str | Path) -> dict[str, RoiSet]:
    """Read every ROI set of a ``roiInf.mat`` file, names and members as stored (no fixes).

    Returns
    -------
    dict of str to RoiSet
        ``hcp360``, ``individual``, ``subcortex``, ``network17`` (whatever the file holds).
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"ROI information file not found: {path}")
    try:
        content = loadmat(path, squeeze_me=True, struct_as_record=False)
    except (MatReadError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a MATLAB .mat file ({exc})") from exc
    if "roiInf" not in content:
        raise InputError(f"{path}: no variable 'roiInf' (found {sorted(k for k in content if not k.startswith('__'))})")
    info = content["roiInf"]
    sets = {}
    for set_name in getattr(info, "_fieldnames", []):
        entry = getattr(info, set_name)
        try:
            names = _cell_strings(entry.roiDescrip)
            members = _per_region(entry.roiName, len(names))
            excluded = _per_region(getattr(entry, "exRoiName", ()), len(names)) or [()] * len(names)
        except AttributeError as exc:
            raise InputError(f"{path}: roiInf.{set_name} lacks a field ({exc})") from exc
        if not (len(names) == len(members) == len(excluded)):
            raise InputError(
                f"{path}: roiInf.{set_name} has {len(names)} names, {len(members)} member lists and "
                f"{len(excluded)} exclusion lists"
            )
        regions = tuple(
            Region(name, tuple(dict.fromkeys(m)), (), tuple(e), f"{path.name}:{set_name}")
            for name, m, e in zip(names, members, excluded)
        )
        sets[set_name] = RoiSet(set_name, regions)
    if not sets:
        raise InputError(f"{path}: roiInf holds no ROI set")
    return sets


def _share(region: Region, parcels: frozenset[str]) -> float:
    names = region.parcels()
    return sum(p in parcels for p in names) / len(names) if names else 0.0


def _hcp_key(hemisphere: str, parcel: str) -> str:
    return f"hcp180_r_{hemisphere.lower()}h.{hemisphere}_{parcel}_ROI"


def horikawa_rois(path: str | Path, *, fix_insula_acc: bool = True) -> RoiSet:
    """The study's 16 cortical and 10 subcortical ROIs, built from ``roiInf.mat``.

    Cortical: the file's 13 HCP-MMP composites (Insula and ACC checked and, when swapped,
    renamed; see the module docstring), plus MST, TF and VLPFC from HCP-MMP parcels.
    Subcortical: the file's 10 regions under the study's names (``hippocampus``,
    ``accumbens``), each also matching a single mask named as in the file (``thalamus``...).

    Parameters
    ----------
    path : path
        ``roiInf.mat``.
    fix_insula_acc : bool
        Swap the names ``Insula`` and ``ACC`` back when their parcels show they are swapped.

    Raises
    ------
    InputError
        If the file lacks a set or region this needs, or the Insula/ACC parcels are neither
        the expected nor the swapped ones.
    """
    sets = read_roi_info(path)
    for needed in ("individual", "subcortex", "hcp360"):
        if needed not in sets:
            raise InputError(f"{path}: roiInf has no {needed!r} set (found {sorted(sets)})")
    cortical = {r.name: r for r in sets["individual"].regions}
    known_parcels = {p for r in sets["hcp360"].regions for p in r.parcels()}
    notes: list[str] = []

    for name in ("Insula", "ACC"):
        if name not in cortical:
            raise InputError(f"{path}: roiInf.individual has no region {name!r}")
    insula, acc = cortical["Insula"], cortical["ACC"]
    swapped = _share(insula, ACC_PARCELS) > 0.5 and _share(acc, INSULAR_PARCELS) > 0.5
    correct = _share(insula, INSULAR_PARCELS) > 0.5 and _share(acc, ACC_PARCELS) > 0.5
    if not (swapped or correct):
        raise InputError(
            f"{path}: cannot tell the Insula and ACC regions apart: Insula = {insula.parcels()}, ACC = {acc.parcels()}"
        )
    if swapped and fix_insula_acc:
        note = (
            f"{Path(path).name}: regions 'Insula' ({', '.join(insula.parcels())}) and 'ACC' "
            f"({', '.join(acc.parcels())}) have swapped names (cingulate parcels under 'Insula', insular ones under "
            "'ACC'); names swapped back"
        )
        log.warning(note)
        notes.append(note)
        cortical["Insula"] = Region("Insula", acc.members, acc.aliases, acc.excluded, acc.source + " (named 'ACC')")
        cortical["ACC"] = Region(
            "ACC", insula.members, insula.aliases, insula.excluded, insula.source + " (named 'Insula')"
        )
    elif swapped:
        notes.append("Insula and ACC kept as named in the file although their parcels look swapped")

    for name, parcels in ADDED_CORTICAL.items():
        unknown = sorted(set(parcels) - known_parcels)
        if unknown:
            raise InputError(f"{path}: HCP-MMP parcel(s) {unknown} needed for {name} are not in roiInf.hcp360")
        members = tuple(_hcp_key(h, p) for h in "LR" for p in parcels)
        cortical[name] = Region(name, members, source="oddoneout: HCP-MMP parcels " + ", ".join(parcels))
        notes.append(f"{name} is not in {Path(path).name}; built from HCP-MMP parcels {', '.join(parcels)}")

    missing = [n for n in CORTICAL_ROIS if n not in cortical]
    if missing:
        raise InputError(f"{path}: roiInf.individual lacks region(s) {missing}")
    subcortex = {r.name: r for r in sets["subcortex"].regions}
    regions = [cortical[n] for n in CORTICAL_ROIS]
    for name, file_name in SUBCORTICAL_ROIS.items():
        if file_name not in subcortex:
            raise InputError(f"{path}: roiInf.subcortex has no region {file_name!r}")
        region = subcortex[file_name]
        regions.append(Region(name, region.members, (file_name,), region.excluded, region.source))
    return RoiSet("horikawa2020", tuple(regions), tuple(notes))


def _normalize(key: str) -> str:
    """One spelling per mask: ``hcp180_r_lh.L_V1_ROI``, ``hcp180_lh.L_V1_ROI``, ``hcp180_L_V1`` agree."""
    match = _HCP_KEY.match(key)
    return f"hcp180:{match.group(1)}_{match.group(2)}" if match else key


def resolve_rois(
    masks: Mapping[str, np.ndarray],
    roi_set: RoiSet,
    n_voxels: int,
    *,
    missing: str = "skip",
) -> dict[str, np.ndarray]:
    """Voxel indices of each region of ``roi_set`` from a data set's own ROI masks.

    Parameters
    ----------
    masks : mapping of str to ndarray
        The data's masks by key: voxel indices (int) or boolean masks of ``n_voxels``.
        HCP-MMP keys match whatever their spelling (``hcp180_r_lh.L_V1_ROI``,
        ``hcp180_lh.L_V1_ROI``, ``hcp180_L_V1``).
    roi_set : RoiSet
    n_voxels : int
    missing : {"skip", "raise"}
        What to do with a region none of whose masks is in ``masks``. A region with
        only some of its masks present is built from those (logged).

    Returns
    -------
    dict of str to ndarray of int
        Sorted voxel indices of each region found, in the set's order.
    """
    if missing not in ("skip", "raise"):
        raise InputError(f"missing must be 'skip' or 'raise', got {missing!r}")
    by_key: dict[str, np.ndarray] = {}
    for key, value in masks.items():
        value = np.asarray(value)
        if value.dtype == bool:
            if value.shape != (n_voxels,):
                raise InputError(f"mask {key!r} has shape {value.shape}, expected ({n_voxels},)")
            value = np.flatnonzero(value)
        by_key[_normalize(key)] = value.astype(np.int64)
    result = {}
    for region in roi_set.regions:
        alias = next((a for a in region.aliases if _normalize(a) in by_key), None)
        if alias is not None:
            found = [_normalize(alias)]
        else:
            found = [k for k in map(_normalize, region.members) if k in by_key]
            absent = len(set(map(_normalize, region.members))) - len(set(found))
            if found and absent:
                log.info("region %s: %d of its masks are not in the data; built from the others", region.name, absent)
        if not found:
            if missing == "raise":
                keys = list(region.aliases + region.members)[:6]
                raise InputError(f"region {region.name!r}: none of its masks {keys} is in the data")
            log.info("region %s: no mask in the data; skipped", region.name)
            continue
        voxels = np.unique(np.concatenate([by_key[k] for k in found]))
        excluded = [by_key[k] for k in map(_normalize, region.excluded) if k in by_key]
        if excluded:
            voxels = np.setdiff1d(voxels, np.concatenate(excluded))
        if voxels.size:
            result[region.name] = voxels
    return result


def roi_masks(neural: NeuralData, roi_set: RoiSet | None = None, *, missing: str = "skip") -> dict[str, np.ndarray]:
    """Boolean voxel masks of each region.

    Parameters
    ----------
    neural : NeuralData
    roi_set : RoiSet, optional
        Regions resolved from ``neural.rois`` (see :func:`resolve_rois`); default the
        data's own ROIs.
    missing : {"skip", "raise"}

    Returns
    -------
    dict of str to ndarray of bool, shape (n_voxels,)
    """
    rois = neural.rois if roi_set is None else resolve_rois(neural.rois, roi_set, neural.n_voxels, missing=missing)
    masks = {}
    for name, voxels in rois.items():
        mask = np.zeros(neural.n_voxels, dtype=bool)
        mask[voxels] = True
        masks[name] = mask
    return masks


def mask_from_array(neural: NeuralData, mask: np.ndarray, affine: np.ndarray | None = None) -> np.ndarray:
    """A boolean voxel mask of ``neural`` from a user mask.

    Parameters
    ----------
    neural : NeuralData
    mask : ndarray
        Either one value per voxel of ``neural`` (shape ``(n_voxels,)``; non-zero = in), or a 3-D
        image (non-zero = in) on the grid of ``affine``, looked up at each voxel's coordinates.
    affine : ndarray of shape (4, 4), optional
        Voxel-to-mm affine of a 3-D ``mask``; default ``neural.affine``.

    Returns
    -------
    ndarray of bool, shape (n_voxels,)
        Voxels whose coordinates fall outside the image are out of the mask.
    """
    mask = np.asarray(mask)
    if mask.ndim == 1:
        if mask.shape != (neural.n_voxels,):
            raise InputError(f"a 1-D mask needs {neural.n_voxels} values (one per voxel), got {mask.size}")
        return mask.astype(bool) if mask.dtype == bool else np.nan_to_num(mask) != 0
    if mask.ndim != 3:
        raise InputError(f"a mask must be 1-D (one value per voxel) or a 3-D image, got shape {mask.shape}")
    affine = neural.affine if affine is None else np.asarray(affine, dtype=np.float64)
    if affine is None:
        raise InputError("a 3-D mask needs an affine (the data have none and none was given)")
    if neural.coords is None:
        raise InputError(f"subject {neural.subject}: the data have no voxel coordinates to look a 3-D mask up at")
    ijk = _world_to_voxel(np.asarray(neural.coords, dtype=np.float64), affine)
    inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    result = np.zeros(neural.n_voxels, dtype=bool)
    i, j, k = ijk[inside].T
    result[inside] = np.nan_to_num(mask[i, j, k].astype(np.float64)) != 0
    return result


def _world_to_voxel(coords: np.ndarray, affine: np.ndarray) -> np.ndarray:
    homogeneous = np.column_stack([coords, np.ones(len(coords))])
    return np.rint(homogeneous @ np.linalg.inv(affine).T)[:, :3].astype(np.int64)


def mask_from_nifti(neural: NeuralData, path: str | Path) -> np.ndarray:
    """A boolean voxel mask of ``neural`` from a 3-D NIfTI mask (non-zero = in), matched by mm coordinates."""
    from oddoneout.neural.nifti import read_image

    image = read_image(path)
    data = np.asarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path}: a mask must be a 3-D image, got shape {data.shape}")
    return mask_from_array(neural, data, image.affine)


def with_masks(neural: NeuralData, masks: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]) -> NeuralData:
    """A copy of ``neural`` with extra ROIs from boolean voxel masks (e.g. :func:`mask_from_nifti`)."""
    from dataclasses import replace

    rois = dict(neural.rois)
    for name, mask in dict(masks).items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (neural.n_voxels,):
            raise InputError(f"mask {name!r} has shape {mask.shape}, expected ({neural.n_voxels},)")
        if not mask.any():
            raise InputError(f"mask {name!r} holds no voxel of subject {neural.subject}")
        rois[name] = np.flatnonzero(mask)
    return replace(neural, rois=rois)
