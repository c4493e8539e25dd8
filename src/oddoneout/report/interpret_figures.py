"""Figures of the interpretation analyses, returned as matplotlib Figures.

Each function builds a :class:`matplotlib.figure.Figure` directly (no pyplot) under the report's
style (:mod:`oddoneout.report.figures`); render one for the HTML report with
:func:`oddoneout.report.figures.to_png`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from oddoneout.errors import InputError
from oddoneout.interpret.centroid import PAPER_CATEGORIES, dominant_category
from oddoneout.interpret.classify import CLASSES
from oddoneout.interpret.maps import check_coordinates
from oddoneout.report.figures import _style
from oddoneout.report.interactive_map import category_colors
from oddoneout.stimuli.stimulus_set import StimulusSet

#: Colours of the dimension classes.
CLASS_COLORS = {"categorical": "#1f77b4", "hybrid": "#9467bd", "dimensional": "#2ca02c", "unclassified": "#c7c7c7"}

#: Colours of the two kinds of rating scale in the correlation bars.
GROUP_COLORS = {"category": "#1f77b4", "dimension": "#ff7f0e"}


def correlation_bars_figure(
    correlations: pd.DataFrame,
    dims: Sequence[str] | None = None,
    n_top: int = 5,
    columns: int = 4,
    title: str = "",
) -> Figure:
    """Per dimension, its most correlated categories and affective dimensions as ranked bars.

    Parameters
    ----------
    correlations : DataFrame
        Dimensions x prefixed rating scales (``rating_correlations``).
    dims : sequence of str, optional
        Dimensions to draw (default: all, in table order), one panel each.
    n_top : int, default=5
        Bars per group: the ``n_top`` categories with the largest r and the ``n_top`` affective
        dimensions with the largest ``|r|`` (the same criteria as
        :func:`oddoneout.interpret.classify.classify_dimensions`). NaN correlations are skipped.
    columns : int, default=4
        Panels per row.
    title : str
        Figure title (e.g. the system).

    Returns
    -------
    Figure
        One horizontal bar per scale shown, strongest at the top.
    """
    dims = list(correlations.index) if dims is None else list(dims)
    unknown = [d for d in dims if d not in correlations.index]
    if unknown:
        raise InputError(f"correlation_bars_figure: unknown dimension(s) {unknown[:5]}")
    if n_top < 1:
        raise InputError(f"correlation_bars_figure: n_top must be >= 1, got {n_top}")
    if not dims:
        raise InputError("correlation_bars_figure: no dimensions to draw")
    n_cols = max(1, min(columns, len(dims)))
    n_rows = -(-len(dims) // n_cols)
    with _style():
        figure = Figure(figsize=(3.4 * n_cols, (0.22 * 2 * n_top + 0.9) * n_rows + 0.5), layout="constrained")
        axes = np.atleast_1d(figure.subplots(n_rows, n_cols, squeeze=False).ravel())
        for ax, dim in zip(axes, dims):
            row = correlations.loc[dim].dropna()
            bars = []
            for group, absolute in (("category", False), ("dimension", True)):
                values = row[[c for c in row.index if str(c).startswith(f"{group}:")]]
                key = values.abs() if absolute else values
                for column in key.sort_values(ascending=False, kind="stable").index[:n_top]:
                    bars.append((str(column).split(":", 1)[1], float(values[column]), group))
            bars.sort(key=lambda b: abs(b[1]))
            y = np.arange(len(bars))
            ax.barh(y, [b[1] for b in bars], color=[GROUP_COLORS[b[2]] for b in bars], edgecolor="black", lw=0.4)
            ax.set_yticks(y, [b[0] for b in bars], fontsize=7)
            ax.axvline(0, color="black", linewidth=0.6)
            ax.set_xlim(-1, 1)
            ax.set_title(str(dim), fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
        for ax in axes[len(dims) :]:
            ax.set_visible(False)
        figure.legend(
            handles=[Patch(facecolor=c, edgecolor="black", label=f"{g} ratings") for g, c in GROUP_COLORS.items()],
            loc="outside lower center",
            ncols=2,
            frameon=False,
        )
        figure.suptitle(f"{title}: top rating correlations per dimension (Pearson r)" if title else "")
        return figure


def class_shares_figure(shares: pd.DataFrame, paper: Mapping[str, Mapping[str, float]] | None = None) -> Figure:
    """Stacked bars of the share of dimensions in each class, one bar per system.

    Parameters
    ----------
    shares : DataFrame
        Output of :func:`oddoneout.interpret.classify.class_shares` (index systems, columns the
        classes and ``n_dims``).
    paper : mapping, optional
        ``{system: {class: share}}`` published shares, drawn as a thin hatched bar beside ours.

    Returns
    -------
    Figure
        One bar container per class present in ``shares`` (and per class of ``paper``).
    """
    classes = [c for c in CLASSES if c in shares.columns]
    if not classes:
        raise InputError("class_shares_figure: the table has no class columns")
    systems = [str(s) for s in shares.index]
    paper = dict(paper or {})
    with _style():
        figure = Figure(figsize=(max(5.0, 1.3 * len(systems) + 2.5), 4.0), layout="constrained")
        ax = figure.add_subplot()
        x = np.arange(len(systems))
        width = 0.55 if not paper else 0.4
        bottom = np.zeros(len(systems))
        for cls in classes:
            values = shares[cls].to_numpy(dtype=np.float64)
            values = np.nan_to_num(values)
            ax.bar(x, values, width, bottom=bottom, color=CLASS_COLORS[cls], edgecolor="black", lw=0.5, label=cls)
            bottom += values
        if paper:
            bottom = np.zeros(len(systems))
            for cls in classes:
                values = np.array([float((paper.get(s) or {}).get(cls, 0.0)) for s in systems])
                ax.bar(
                    x + width + 0.02, values, 0.18, bottom=bottom, color=CLASS_COLORS[cls], alpha=0.5,
                    hatch="//", edgecolor="black", lw=0.4,
                )  # fmt: skip
                bottom += values
        labels = [f"{s}\n({int(n)} dims)" for s, n in zip(systems, shares.get("n_dims", [0] * len(systems)))]
        ax.set_xticks(x + (0.1 if paper else 0), labels)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("share of dimensions")
        ax.set_title("Dimension classes per system" + (" (hatched: paper)" if paper else ""))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return figure


def map_figure(
    coords: pd.DataFrame,
    stimuli: StimulusSet,
    title: str = "",
    categories: Sequence[str] | None = PAPER_CATEGORIES,
    point_size: float = 6.0,
) -> Figure:
    """Scatter of a 2-D item map (t-SNE/UMAP) coloured by each item's dominant category.

    Parameters
    ----------
    coords : DataFrame
        Columns ``item_id, x, y``; must hold every item of ``stimuli``.
    stimuli : StimulusSet
        Items to draw and their category ratings.
    title : str
    categories : sequence of str or None, default=PAPER_CATEGORIES
        See :func:`oddoneout.interpret.centroid.dominant_category`.
    point_size : float, default=6

    Returns
    -------
    Figure
        One scatter collection holding one point per item.
    """
    ids = list(stimuli.item_ids)
    xy = check_coordinates(coords, ids).loc[ids].to_numpy()
    dominant = dominant_category(stimuli, categories)
    counts = dominant.value_counts()
    legend = sorted(counts.index, key=lambda c: (-counts[c], c))
    colors = category_colors(legend)
    with _style():
        figure = Figure(figsize=(9.5, 7.0), layout="constrained")
        ax = figure.add_subplot()
        ax.scatter(xy[:, 0], xy[:, 1], s=point_size, c=[colors[c] for c in dominant], linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title or "Item map, coloured by dominant category")
        handles = [
            Line2D([], [], marker="o", linestyle="", color=colors[c], markersize=5, label=f"{c} ({counts[c]})")
            for c in legend
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
        return figure


def graph_figure(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    layout: Mapping[str, tuple[float, float]],
    title: str = "Dimension graph",
) -> Figure:
    """Draw a dimension graph: nodes coloured by community, sized by PageRank, edges by r.

    Parameters
    ----------
    nodes, edges : DataFrame
        From :func:`oddoneout.interpret.graph.dimension_graph`.
    layout : mapping
        ``{dim: (x, y)}`` from :func:`oddoneout.interpret.graph.graph_layout`.
    title : str

    Returns
    -------
    Figure
        One scatter collection with one point per node, one line collection with one segment per edge.
    """
    missing = [d for d in nodes["dim"] if d not in layout]
    if missing:
        raise InputError(f"graph_figure: layout lacks node(s) {missing[:5]}")
    xy = np.array([layout[d] for d in nodes["dim"]], dtype=np.float64).reshape(-1, 2)
    communities = sorted(set(nodes["community"]))
    colors = category_colors([str(c) for c in communities])
    pagerank = nodes["pagerank"].to_numpy(dtype=np.float64)
    sizes = 60 + 1500 * pagerank / max(pagerank.max(), 1e-12) if len(pagerank) else []
    with _style():
        figure = Figure(figsize=(8.0, 6.5), layout="constrained")
        ax = figure.add_subplot()
        segments = [(layout[s], layout[t]) for s, t in zip(edges["source"], edges["target"])]
        widths = 0.5 + 3 * np.clip(edges["r"].to_numpy(dtype=np.float64), 0, 1)
        ax.add_collection(LineCollection(segments, colors="0.6", linewidths=widths, zorder=1))
        ax.scatter(
            xy[:, 0], xy[:, 1], s=sizes, c=[colors[str(c)] for c in nodes["community"]],
            edgecolors="black", linewidths=0.6, zorder=2,
        )  # fmt: skip
        for (x, y), dim, label in zip(xy, nodes["dim"], nodes["label"]):
            text = f"{dim}\n{label}" if label else str(dim)
            ax.annotate(text, (x, y), fontsize=6, ha="center", va="center", zorder=3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.margins(0.1)
        ax.set_title(title)
        handles = [
            Line2D([], [], marker="o", linestyle="", color=colors[str(c)], markersize=7, label=f"community {c}")
            for c in communities
        ]
        # many communities (e.g. one per unconnected dimension) would make one legend column
        # taller than the figure and collapse the layout
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7,
            ncol=max(1, math.ceil(len(handles) / 24)),
        )  # fmt: skip
        return figure


def systems_rsa_figure(rsa: pd.DataFrame, systems: Sequence[str] | None = None, title: str = "") -> Figure:
    """Heatmap of the similarity-structure r between every pair of systems.

    Parameters
    ----------
    rsa : DataFrame
        Columns ``system_a, system_b, r`` (``interpret/systems_rsa.csv``); each unordered pair once
        (either order). The diagonal is drawn as 1.
    systems : sequence of str, optional
        Row/column order (default: order of first appearance in ``rsa``).
    title : str

    Returns
    -------
    Figure
        One image of shape (n_systems, n_systems), symmetric, annotated with r.
    """
    missing = [c for c in ("system_a", "system_b", "r") if c not in rsa.columns]
    if missing:
        raise InputError(f"systems_rsa_figure: the table lacks column(s) {missing}")
    if systems is None:
        systems = list(dict.fromkeys([*rsa["system_a"].astype(str), *rsa["system_b"].astype(str)]))
    systems = [str(s) for s in systems]
    if not systems:
        raise InputError("systems_rsa_figure: no systems to draw")
    position = {s: i for i, s in enumerate(systems)}
    matrix = np.full((len(systems), len(systems)), np.nan)
    np.fill_diagonal(matrix, 1.0)
    for a, b, r in zip(rsa["system_a"].astype(str), rsa["system_b"].astype(str), rsa["r"].astype(float)):
        if a in position and b in position:
            matrix[position[a], position[b]] = matrix[position[b], position[a]] = r
    with _style():
        size = 1.0 + 0.9 * len(systems)
        figure = Figure(figsize=(size + 1.6, size), layout="constrained")
        ax = figure.add_subplot()
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu_r", vmin=-1, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            text = "n/a" if not np.isfinite(value) else f"{value:.2f}"
            color = "white" if np.isfinite(value) and abs(value) > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(systems)), systems, rotation=35, ha="right")
        ax.set_yticks(range(len(systems)), systems)
        figure.colorbar(image, ax=ax, label="similarity-structure r")
        ax.set_title(title or "Systems RSA (Pearson r of item similarities)")
        return figure
