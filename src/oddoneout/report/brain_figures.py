"""Figures of the neural analyses: per-ROI bars with significance marks, and voxel maps on the brain.

Functions return :class:`matplotlib.figure.Figure` objects built without pyplot state; render
them with :func:`oddoneout.report.figures.to_png` or ``figure.savefig``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import nibabel as nib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from oddoneout.errors import InputError
from oddoneout.report.figures import system_colors
from oddoneout.study_folder import ROI_COLUMNS

__all__ = ["roi_bar_figure", "significance_mark", "volume_from_values", "brain_map_figure", "subject_map_figure"]

_RC = {"text.parse_math": False, "font.size": 10, "axes.spines.top": False, "axes.spines.right": False}


def significance_mark(q: float) -> str:
    """``***`` for q < 0.001, ``**`` for q < 0.01, ``*`` for q < 0.05, else ``""``."""
    if not np.isfinite(q):
        return ""
    return "***" if q < 0.001 else "**" if q < 0.01 else "*" if q < 0.05 else ""


def roi_bar_figure(
    roi_table: pd.DataFrame,
    comparisons: pd.DataFrame | None = None,
    systems: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
    value_label: str = "encoding r",
    title: str | None = None,
) -> Figure:
    """Bars of each system's mean score per ROI (error bars: SEM over subjects), with significance marks.

    In each ROI the best system (highest mean) is compared with every other one; above each other
    system's bar a bracket from the best bar carries ``*`` / ``**`` / ``***`` when the FDR q-value of
    their paired t-test is below 0.05 / 0.01 / 0.001.

    Parameters
    ----------
    roi_table : DataFrame
        Columns ``subject, system, roi, r`` (encoding r, or RSA r from a searchlight).
    comparisons : DataFrame, optional
        The brain stage's paired t-tests (``<analysis>/comparisons.csv``, the output of
        :func:`oddoneout.neural.stats.compare_systems`); without them the figure has no marks.
    systems : sequence of str, optional
        Order of the bars within an ROI (default: order of first appearance).
    colors : mapping, optional
        ``{system: colour}`` (default :func:`oddoneout.report.figures.system_colors`).
    value_label : str
        Y-axis label.
    title : str, optional

    Returns
    -------
    Figure
        One axes; bar ``patches`` ordered by ROI, then system; marks are texts with gid ``"significance"``.
    """
    for column in ROI_COLUMNS:
        if column not in roi_table.columns:
            raise InputError(f"ROI table lacks column {column!r}")
    systems = list(dict.fromkeys(roi_table["system"])) if systems is None else list(systems)
    colors = dict(colors) if colors is not None else system_colors(systems)
    rois = list(dict.fromkeys(roi_table["roi"]))
    grouped = roi_table.groupby(["roi", "system"], sort=False)["r"]
    means, sems = grouped.mean(), grouped.sem()
    width = 0.8 / max(len(systems), 1)
    with mpl.rc_context(_RC):
        figure = Figure(figsize=(max(6.0, 0.9 + len(rois) * (0.25 * len(systems) + 0.4)), 4.2), layout="constrained")
        ax = figure.add_subplot()
        centres: dict[tuple[str, str], float] = {}
        for i, roi in enumerate(rois):
            for j, system in enumerate(systems):
                x = i - 0.4 + width * (j + 0.5)
                centres[(roi, system)] = x
                mean = means.get((roi, system), np.nan)
                sem = sems.get((roi, system), np.nan)
                ax.bar(
                    x,
                    mean,
                    width,
                    yerr=None if not np.isfinite(sem) else sem,
                    color=colors[system],
                    edgecolor="black",
                    linewidth=0.4,
                    error_kw={"elinewidth": 0.8, "capsize": 2},
                )
        tops = (means + sems.fillna(0)).groupby(level=0).max()
        span = float(np.nanmax(np.abs((means + sems.fillna(0)).to_numpy()))) or 1.0
        for roi in rois:
            roi_means = means.loc[roi].reindex(systems)
            if roi_means.isna().all():
                continue
            best = str(roi_means.idxmax())
            level = float(tops.loc[roi]) + 0.06 * span
            if comparisons is None or comparisons.empty:
                continue
            rows = comparisons[
                (comparisons["roi"] == roi) & ((comparisons["system_a"] == best) | (comparisons["system_b"] == best))
            ]
            for _, row in rows.iterrows():
                other = row.system_b if row.system_a == best else row.system_a
                mark = significance_mark(row.q)
                if not mark or other not in systems:
                    continue
                x0, x1 = sorted((centres[(roi, best)], centres[(roi, other)]))
                ax.plot(
                    [x0, x0, x1, x1],
                    [level - 0.02 * span, level, level, level - 0.02 * span],
                    color="black",
                    linewidth=0.7,
                )
                ax.text((x0 + x1) / 2, level, mark, ha="center", va="bottom", fontsize=9, gid="significance")
                level += 0.09 * span
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(rois)), rois)
        ax.set_xlim(-0.6, len(rois) - 0.4)
        ax.set_ylabel(value_label)
        n_subjects = roi_table["subject"].nunique()
        ax.set_title(
            title or f"{value_label} per ROI (mean of {n_subjects} subjects, SEM; * q<.05 ** q<.01 *** q<.001)"
        )
        handles = [Patch(facecolor=colors[s], edgecolor="black", label=s) for s in systems]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure


def volume_from_values(
    values: np.ndarray,
    coords: np.ndarray,
    affine: np.ndarray,
    shape: tuple[int, int, int] | None = None,
    world: bool = False,
    fill: float = 0.0,
) -> nib.Nifti1Image:
    """A NIfTI image holding one value per voxel at the voxels' positions.

    Parameters
    ----------
    values : ndarray of shape (n_voxels,)
        NaN values are written as ``fill``.
    coords : ndarray of shape (n_voxels, 3)
        Voxel indices (i, j, k) of the volume, or world (mm) coordinates with ``world=True``
        (mapped to indices through the inverse of ``affine`` and rounded).
    affine : ndarray of shape (4, 4)
        Voxel-to-world transform of the image.
    shape : (int, int, int), optional
        Volume shape (default: the smallest that holds every voxel).
    world : bool
    fill : float
        Value of voxels without data.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    coords = np.asarray(coords, dtype=np.float64)
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise InputError(f"affine must be 4 x 4, got {affine.shape}")
    if coords.shape != (values.size, 3):
        raise InputError(f"coords of shape {coords.shape} do not match {values.size} values")
    if world:
        coords = (coords - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    index = np.rint(coords).astype(np.int64)
    if np.any(index < 0):
        raise InputError("voxel coordinates map to negative indices of the volume")
    shape = tuple(int(s) for s in (index.max(axis=0) + 1 if shape is None else shape))
    if np.any(index >= np.array(shape)):
        raise InputError(f"voxel coordinates fall outside the volume shape {shape}")
    volume = np.full(shape, fill, dtype=np.float32)
    volume[tuple(index.T)] = np.where(np.isfinite(values), values, fill)
    return nib.Nifti1Image(volume, affine)


def brain_map_figure(
    values: np.ndarray,
    coords: np.ndarray,
    affine: np.ndarray,
    kind: str = "glass",
    title: str | None = None,
    threshold: float | None = None,
    vmax: float | None = None,
    world: bool = False,
) -> Figure:
    """A voxel map (e.g. encoding or searchlight r) drawn by nilearn.

    Parameters
    ----------
    values, coords, affine, world
        See :func:`volume_from_values`.
    kind : {"glass", "stat"}
        ``plot_glass_brain`` (maximum projections in MNI space) or ``plot_stat_map`` (slices, on
        the image itself as background, so it also works for volumes not in MNI space).
    title : str, optional
    threshold : float, optional
        Values with smaller absolute value are not drawn (default: none hidden but zeros).
    vmax : float, optional
        Colour scale limit (default: largest absolute value).

    Returns
    -------
    Figure
    """
    from nilearn import plotting

    if kind not in ("glass", "stat"):
        raise InputError(f"unknown brain map kind {kind!r}; expected 'glass' or 'stat'")
    image = volume_from_values(values, coords, affine, world=world)
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    vmax = float(np.abs(finite).max()) if vmax is None and finite.size else vmax
    vmax = vmax or 1.0
    threshold = 1e-6 if threshold is None else threshold
    with mpl.rc_context(_RC):
        figure = Figure(figsize=(8.0, 3.2))
        common = dict(figure=figure, title=title, threshold=threshold, vmax=vmax, colorbar=True, cmap="RdBu_r")
        if kind == "glass":
            plotting.plot_glass_brain(image, plot_abs=False, symmetric_cbar=True, **common)
        else:
            plotting.plot_stat_map(image, bg_img=None, draw_cross=False, black_bg=False, **common)
    return figure


def subject_map_figure(values: np.ndarray, data, kind: str = "stat", title: str | None = None, **kwargs) -> Figure:
    """:func:`brain_map_figure` of per-voxel values of a :class:`oddoneout.neural.data.NeuralData`.

    With ``data.affine`` set (images), ``data.coords`` are world coordinates on that grid. Without
    it (e.g. the synthetic brain) the coordinates are taken as voxel indices of a 1 mm grid, and
    only ``kind="stat"`` is meaningful. Other keyword arguments go to :func:`brain_map_figure`.
    """
    if data.coords is None:
        raise InputError(f"subject {data.subject}: no voxel coordinates to draw a map")
    affine = getattr(data, "affine", None)
    if affine is None:
        return brain_map_figure(values, data.coords, np.eye(4), kind=kind, title=title, **kwargs)
    return brain_map_figure(values, data.coords, affine, kind=kind, title=title, world=True, **kwargs)
