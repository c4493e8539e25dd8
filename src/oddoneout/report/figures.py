"""Figures of the study report, drawn with matplotlib's Agg renderer and returned as PNG bytes.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot state, no backend
switch) and renders it under matplotlib's default style, so the output depends only on the data.
Text is never parsed as mathtext: labels are user data and may contain ``$``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from oddoneout.triplets import ODD_ONE_OUT, trial_type_from_spec

#: Colours of the systems of the shipped studies; any other system gets the next free tab10 colour.
KNOWN_SYSTEM_COLORS = {
    "mllm": "#d62728",
    "llm": "#ff7f0e",
    "human_category": "#1f77b4",
    "human_dimension": "#2ca02c",
    "human_concat": "#9467bd",
}

#: Widest panel of the encoding figure, in inches; more ROIs wrap onto further rows.
_MAX_PANEL_WIDTH = 14.0

_RC = {
    "text.parse_math": False,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
}


def system_colors(systems: Sequence[str]) -> dict[str, str]:
    """One colour per system, the same in every figure of a report.

    Known system names keep a fixed colour; the others take the unused ``tab10`` colours in
    the order given.
    """
    colors: dict[str, str] = {}
    palette = [to_hex(c) for c in mpl.colormaps["tab10"].colors]
    free = [c for c in palette if c not in KNOWN_SYSTEM_COLORS.values()]
    extra = 0
    for system in systems:
        if system in KNOWN_SYSTEM_COLORS:
            colors[system] = KNOWN_SYSTEM_COLORS[system]
        else:
            pool = free or palette
            colors[system] = pool[extra % len(pool)]
            extra += 1
    return colors


@contextmanager
def _style() -> Iterator[None]:
    """Matplotlib defaults plus the report's settings, whatever the user's matplotlibrc says."""
    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update(_RC)
        yield


def to_png(figure: Figure) -> bytes:
    """Render a figure as PNG bytes without the software/date metadata (deterministic)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None}, bbox_inches="tight", pad_inches=0.15)
    return buffer.getvalue()


def _nan_to_none(value) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(value) else value


def _ci_error(value: float | None, ci) -> tuple[float, float]:
    """Asymmetric error bar lengths from a [lo, hi] interval (0 when unknown)."""
    if value is None or ci is None or len(ci) != 2:
        return 0.0, 0.0
    lo, hi = _nan_to_none(ci[0]), _nan_to_none(ci[1])
    if lo is None or hi is None:
        return 0.0, 0.0
    return max(value - lo, 0.0), max(hi - value, 0.0)


def _labelled_bar(ax, x: float, width: float, row: Mapping, key: str, **style) -> None:
    """One bar of ``row[key]`` with its ``row[key + "_ci"]`` error bar and a percentage label; none if missing."""
    value = _nan_to_none(row.get(key))
    if value is None:
        return
    err = np.array(_ci_error(value, row.get(f"{key}_ci"))).reshape(2, 1)
    ax.bar(
        x,
        value,
        width,
        edgecolor="black",
        linewidth=0.6,
        yerr=err,
        capsize=4,
        error_kw={"linewidth": 1.2},
        **style,
    )
    ax.text(x, value + err[1, 0] + 0.015, f"{value:.1%}", ha="center", va="bottom", fontsize=8)


def chance_accuracy(result: Mapping) -> float:
    """Accuracy of guessing for the trial type of an evaluation (``trial_type``; odd-one-out if absent)."""
    return 1.0 / trial_type_from_spec(result.get("trial_type") or ODD_ONE_OUT.spec).n_choices


def _chance_label(chances: Sequence[float]) -> str:
    """The legend entry of the chance line(s)."""
    if len(set(chances)) == 1:
        return "chance (1/3)" if chances[0] == 1 / 3 else f"chance ({chances[0]:.0%})"
    return "chance (each system's trial type)"


def accuracy_figure(results: Mapping[str, Mapping], colors: Mapping[str, str]) -> bytes:
    """Held-out odd-one-out accuracy beside the noise ceiling, per system, with 95% CIs.

    Parameters
    ----------
    results : mapping
        ``{system: {"accuracy", "accuracy_ci", "noise_ceiling", "noise_ceiling_ci"}}``; missing
        or NaN values leave their bar out.
    colors : mapping
        ``{system: colour}`` from :func:`system_colors`.
    """
    systems = list(results)
    with _style():
        figure = Figure(figsize=(max(5.5, 1.25 * len(systems) + 2.0), 4.2))
        ax = figure.add_subplot()
        x = np.arange(len(systems))
        width = 0.38
        for i, system in enumerate(systems):
            row = results[system]
            color = colors[system]
            _labelled_bar(ax, x[i] - width / 2, width, row, "accuracy", color=color)
            _labelled_bar(ax, x[i] + width / 2, width, row, "noise_ceiling", color=color, alpha=0.35, hatch="//")
        chances = [chance_accuracy(results[system]) for system in systems]
        for i, chance in enumerate(chances):  # each system's trial type has its own chance
            ax.hlines(chance, x[i] - 0.5, x[i] + 0.5, color="0.3", linestyle="--", linewidth=1)
        ax.set_xticks(x, systems, rotation=20 if len(systems) > 4 else 0, ha="right" if len(systems) > 4 else "center")
        ax.set_ylim(0, 1.08)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("accuracy" if len(set(chances)) > 1 or chances[0] != 1 / 3 else "odd-one-out accuracy")
        ax.set_title("Held-out accuracy and noise ceiling (95% CI)")
        ax.legend(
            handles=[
                Patch(facecolor="0.55", edgecolor="black", label="held-out accuracy"),
                Patch(facecolor="0.55", alpha=0.35, hatch="//", edgecolor="black", label="noise ceiling"),
                Line2D([], [], color="0.3", linestyle="--", label=_chance_label(chances)),
            ],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
        )
        return to_png(figure)


def training_curves_figure(histories: Mapping[str, Mapping[str, Sequence[float]]], colors: Mapping[str, str]) -> bytes:
    """Validation loss and validation accuracy per epoch, one line per system.

    Training loss, when present, is drawn dashed in the loss panel.

    Parameters
    ----------
    histories : mapping
        ``{system: {"epoch": [...], "train_loss": [...], "val_loss": [...], "val_accuracy": [...]}}``.
    colors : mapping
        ``{system: colour}``.
    """
    with _style():
        figure = Figure(figsize=(11, 4.0), layout="constrained")
        loss_ax, acc_ax = figure.subplots(1, 2)
        any_train = False
        for system, history in histories.items():
            epochs = np.asarray(history.get("epoch") or [], dtype=float)
            color = colors[system]
            for key, ax, style in (
                ("val_loss", loss_ax, "-"),
                ("train_loss", loss_ax, "--"),
                ("val_accuracy", acc_ax, "-"),
            ):
                values = np.asarray(history.get(key) or [], dtype=float)
                if values.size == 0:
                    continue
                x = epochs if epochs.size == values.size else np.arange(1, values.size + 1)
                ax.plot(
                    x,
                    values,
                    style,
                    color=color,
                    linewidth=1.6 if style == "-" else 1.0,
                    label=system if key != "train_loss" else None,
                )
                any_train |= key == "train_loss"
        loss_ax.set(title="Loss per epoch", xlabel="epoch", ylabel="cross-entropy")
        acc_ax.set(title="Validation accuracy per epoch", xlabel="epoch", ylabel="accuracy")
        acc_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        for ax in (loss_ax, acc_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        acc_ax.axhline(1 / 3, color="0.3", linestyle=":", linewidth=1)
        handles = [Line2D([], [], color=colors[s], linewidth=2, label=s) for s in histories]
        if any_train:
            handles += [
                Line2D([], [], color="0.3", linestyle="-", label="validation"),
                Line2D([], [], color="0.3", linestyle="--", label="training"),
            ]
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="chance (1/3)"))
        acc_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        return to_png(figure)


def dimensionality_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], colors: Mapping[str, str]) -> bytes:
    """Held-out accuracy (and RSM r) keeping only the top-k dimensions, one line per system.

    Parameters
    ----------
    curves : mapping
        ``{system: {"n_dims": [...], "accuracy": [...], "rsm_r": [...] (optional)}}``.
    colors : mapping
        ``{system: colour}``.
    """
    with _style():
        figure = Figure(figsize=(11, 4.0), layout="constrained")
        acc_ax, rsm_ax = figure.subplots(1, 2)
        for system, curve in curves.items():
            n_dims = np.asarray(curve.get("n_dims") or [], dtype=float)
            for key, ax in (("accuracy", acc_ax), ("rsm_r", rsm_ax)):
                values = np.asarray([np.nan if v is None else v for v in curve.get(key) or []], dtype=float)
                if values.size == n_dims.size and values.size:
                    ax.plot(n_dims, values, "-o", markersize=3, color=colors[system], label=system)
        acc_ax.set(title="Held-out accuracy with the top-k dimensions", xlabel="dimensions kept (by L1 norm)")
        acc_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        acc_ax.axhline(1 / 3, color="0.3", linestyle=":", linewidth=1)
        rsm_ax.set(title="Validation-subset similarity r with the top-k dimensions", xlabel="dimensions kept")
        for ax in (acc_ax, rsm_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        acc_ax.legend(loc="lower right", frameon=False)
        return to_png(figure)


def correlation_heatmap(
    correlations: pd.DataFrame,
    title: str,
    labels: Mapping[str, Sequence[tuple[str, float]]] | None = None,
) -> bytes:
    """Heatmap of dimension x rating-scale Pearson r.

    Parameters
    ----------
    correlations : DataFrame
        Dimensions x prefixed rating columns. Columns are drawn categories first, then dimensions,
        with a separator and a group name above each block; NaN cells are grey.
    title : str
        Figure title (e.g. the system name).
    labels : mapping, optional
        ``{dim: [(scale, r), ...]}``; the first two scales are appended to the row labels.
    """
    columns = list(correlations.columns)
    groups = [c.split(":", 1)[0] if ":" in c else "" for c in columns]
    order = [i for group in ("category", "dimension") for i, g in enumerate(groups) if g == group]
    order += [i for i, g in enumerate(groups) if g not in ("category", "dimension")]
    columns = [columns[i] for i in order]
    groups = [groups[i] for i in order]
    values = correlations[columns].to_numpy(dtype=float)
    n_dims, n_scales = values.shape
    row_labels = []
    for dim in correlations.index:
        top = [scale.split(":", 1)[-1] for scale, _ in (labels or {}).get(str(dim), [])[:2]]
        row_labels.append(f"{dim}  ({', '.join(top)})" if top else str(dim))
    with _style():
        figure = Figure(figsize=(max(7.0, 0.2 * n_scales + 4.5), max(3.5, 0.24 * n_dims + 2.6)), layout="constrained")
        ax = figure.add_subplot()
        cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="0.8")
        image = ax.imshow(
            np.ma.masked_invalid(values), cmap=cmap, vmin=-1, vmax=1, aspect="auto", interpolation="nearest"
        )
        ax.set_xticks(np.arange(n_scales), [c.split(":", 1)[-1] for c in columns], rotation=90, fontsize=8)
        ax.set_yticks(np.arange(n_dims), row_labels, fontsize=8)
        for spine in ax.spines.values():
            spine.set_visible(True)
        # Separators and names of the rating groups.
        start = 0
        for end in range(1, n_scales + 1):
            if end == n_scales or groups[end] != groups[start]:
                if end < n_scales:
                    ax.axvline(end - 0.5, color="black", linewidth=1.5)
                ax.text(
                    (start + end - 1) / 2,
                    1.005,
                    f"{groups[start]} ratings" if groups[start] else "other",
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    va="bottom",
                    fontsize=10,
                    fontweight="bold",
                )
                start = end
        ax.set_ylim(n_dims - 0.5, -0.5)
        colorbar = figure.colorbar(image, ax=ax, shrink=0.8, pad=0.01)
        colorbar.set_label("Pearson r")
        ax.set_title(f"{title}: dimension x rating-scale correlation", pad=22)
        return to_png(figure)


def encoding_figure(roi_r: pd.DataFrame, colors: Mapping[str, str], systems: Sequence[str] | None = None) -> bytes:
    """Mean voxel-wise encoding r per ROI, grouped bars by system, with per-subject points.

    Parameters
    ----------
    roi_r : DataFrame
        Long table with columns ``subject, system, roi, r``. Bars show the mean over subjects; when
        there are several subjects each subject's value is drawn as a point on its bar.
    colors : mapping
        ``{system: colour}``.
    systems : sequence of str, optional
        Order of the systems within a group (default: order of first appearance).
    """
    systems = list(systems) if systems is not None else list(dict.fromkeys(roi_r["system"]))
    systems = [s for s in systems if s in set(roi_r["system"])]
    rois = list(dict.fromkeys(roi_r["roi"]))
    subjects = list(dict.fromkeys(roi_r["subject"]))
    means = roi_r.groupby(["roi", "system"], sort=False)["r"].mean()
    several = len(subjects) > 1
    # Wrap the ROIs over several rows of panels so that a bar stays about 0.22 in wide.
    group_width = 0.22 * len(systems) + 0.4
    per_row = max(1, min(len(rois), int(_MAX_PANEL_WIDTH // group_width)))
    n_rows = -(-len(rois) // per_row)
    width = 0.8 / max(len(systems), 1)
    # Fixed, evenly spread offsets of the subject points inside a bar (no random jitter).
    offsets = np.linspace(-0.25, 0.25, len(subjects)) * width if several else np.zeros(1)
    subject_offset = dict(zip(subjects, offsets))
    with _style():
        figure = Figure(figsize=(max(7.0, group_width * per_row + 2.5), 0.6 + 3.3 * n_rows), layout="constrained")
        axes = np.atleast_1d(figure.subplots(n_rows, 1, sharey=True, squeeze=False)[:, 0])
        for row, ax in enumerate(axes):
            panel_rois = rois[row * per_row : (row + 1) * per_row]
            x = np.arange(len(panel_rois))
            for j, system in enumerate(systems):
                centre = x - 0.4 + width * (j + 0.5)
                heights = [means.get((roi, system), np.nan) for roi in panel_rois]
                ax.bar(centre, heights, width, color=colors[system], edgecolor="black", linewidth=0.4)
                if several:
                    rows = roi_r[(roi_r["system"] == system) & roi_r["roi"].isin(panel_rois)]
                    position = dict(zip(panel_rois, centre))
                    ax.scatter(
                        [position[r] + subject_offset[s] for r, s in zip(rows["roi"], rows["subject"])],
                        rows["r"],
                        s=9,
                        color="black",
                        zorder=3,
                        linewidths=0,
                    )
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xticks(x, panel_rois)
            ax.set_xlim(-0.6, per_row - 0.4)
            ax.set_ylabel("mean voxel encoding r")
        subtitle = f"mean of {len(subjects)} subjects; points: subjects" if several else str(subjects[0])
        axes[0].set_title(f"Voxel-wise encoding accuracy per ROI ({subtitle})")
        handles = [Patch(facecolor=colors[s], edgecolor="black", label=s) for s in systems]
        if several:
            handles.append(Line2D([], [], marker="o", color="black", linestyle="", markersize=4, label="subject"))
        axes[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return to_png(figure)
