"""A self-contained interactive HTML map of the items: one SVG point per item, a tooltip on hover.

The page needs no network: the points are inline SVG ``<circle>`` elements, the item details are
inline JSON, and a few lines of vanilla JavaScript show a tooltip with the item's captions, its
strongest embedding dimensions (with their rating-scale labels) and its most distinctive ratings.
Points are coloured by the item's dominant category
(:func:`oddoneout.interpret.centroid.dominant_category`). The same inputs always give the same bytes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from oddoneout.atomic import write_text
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.interpret.centroid import PAPER_CATEGORIES, dominant_category
from oddoneout.interpret.maps import check_coordinates
from oddoneout.interpret.ratings import dimension_labels, read_rating_correlations
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder, read_table

#: Side of the square SVG canvas in user units; points are scaled into it with a margin.
_CANVAS = 1000.0
_MARGIN = 20.0


def category_colors(categories: Sequence[str]) -> dict[str, str]:
    """A distinct colour per category (tab20, then tab20b, tab20c), in the order given."""
    palette = [to_hex(c) for name in ("tab20", "tab20b", "tab20c") for c in mpl.colormaps[name].colors]
    return {category: palette[i % len(palette)] for i, category in enumerate(categories)}


def _script_json(data) -> str:
    """JSON safe to inline in a ``<script>`` element (no ``</script>`` or HTML comment can appear)."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), sort_keys=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _item_details(
    stimuli: StimulusSet, embedding: Embedding, top_k: int, max_captions: int, correlations: pd.DataFrame | None
) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Captions, top-dimension lines and top-rating lines of every item, in stimulus order."""
    ids = list(stimuli.item_ids)
    weights = embedding.align(ids)
    labels = {} if correlations is None else dimension_labels(correlations, n=2)
    names = embedding.dim_names
    k_dims = min(top_k, embedding.n_dims)
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k_dims]
    dims_lines = []
    for row, dims in enumerate(order):
        lines = []
        for d in dims:
            if weights[row, d] <= 0:
                continue
            scales = ", ".join(scale.split(":", 1)[-1] for scale, _ in labels.get(names[d], []))
            lines.append(f"{names[d]} ({weights[row, d]:.2f})" + (f": {scales}" if scales else ""))
        dims_lines.append(lines)
    rating_lines: list[list[str]] = [[] for _ in ids]
    for group in ("category", "dimension"):
        columns = stimuli.rating_columns_of(stimuli.table, group)
        if not columns:
            continue
        values = stimuli.table[columns].to_numpy(dtype=np.float64)
        if group == "category":
            key = values  # shares of raters: the largest are the item's categories
        else:
            spread = values.std(axis=0)
            key = np.abs(values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)  # most atypical scales
        top = np.argsort(-key, axis=1, kind="stable")[:, : min(top_k, len(columns))]
        for row, cols in enumerate(top):
            rating_lines[row] += [f"{columns[c].split(':', 1)[1]} {values[row, c]:.2f}" for c in cols]
    captions = [stimuli.captions(item)[:max_captions] for item in ids]
    return captions, dims_lines, rating_lines


def render_interactive_map(
    coords: pd.DataFrame,
    stimuli: StimulusSet,
    embedding: Embedding,
    top_k: int = 3,
    title: str = "Item map",
    max_captions: int = 5,
    categories: Sequence[str] | None = PAPER_CATEGORIES,
    correlations: pd.DataFrame | None = None,
) -> str:
    """The HTML text of a self-contained page mapping every item, with a hover tooltip.

    Parameters
    ----------
    coords : DataFrame
        Columns ``item_id, x, y`` (e.g. from :func:`oddoneout.interpret.maps.item_map`); must hold
        every item of ``stimuli`` (extra rows are ignored).
    stimuli : StimulusSet
        Items to draw, their captions and ratings.
    embedding : Embedding
        Source of each item's top dimensions; must hold every item.
    top_k : int, default=3
        Dimensions, categories and affective dimensions listed per item.
    title : str, default="Item map"
    max_captions : int, default=5
        Captions shown per item (keeps the page small: 2,185 items x 20 captions is ~3 MB).
    categories : sequence of str or None, default=PAPER_CATEGORIES
        Categories that colour the points (dominant category among these).
    correlations : DataFrame or None, default=None
        Dimensions x rating scales (``interpret/<system>_ratings.csv``, from
        :func:`oddoneout.interpret.ratings.rating_correlations`): each top dimension is labelled
        with its two most correlated scales. None: no labels.

    Returns
    -------
    str
        The page. It has one ``circle.point`` per item; the tooltip is ``#tooltip``.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise InputError(f"interactive map: top_k must be a positive integer, got {top_k!r}")
    if max_captions < 1:
        raise InputError(f"interactive map: max_captions must be >= 1, got {max_captions!r}")
    ids = list(stimuli.item_ids)
    if not ids:
        raise InputError(f"stimulus set {stimuli.name!r} has no items to map")
    xy = check_coordinates(coords, ids).loc[ids].to_numpy()
    if stimuli.rating_columns_of(stimuli.table, "category"):
        dominant = dominant_category(stimuli, categories).tolist()
    else:
        dominant = ["(no category ratings)"] * len(ids)
    legend = sorted(set(dominant), key=lambda c: (-dominant.count(c), c))
    colors = category_colors(legend)
    captions, dims_lines, rating_lines = _item_details(stimuli, embedding, top_k, max_captions, correlations)

    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = _MARGIN + (xy - low) / span * (_CANVAS - 2 * _MARGIN)
    scaled[:, 1] = _CANVAS - scaled[:, 1]  # SVG y grows downwards
    circles = "\n".join(
        f'<circle class="point" data-i="{i}" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colors[dominant[i]]}"/>'
        for i, (x, y) in enumerate(scaled)
    )
    legend_items = "".join(
        f'<li><span class="swatch" style="background:{colors[c]}"></span>{html.escape(c)} ({dominant.count(c)})</li>'
        for c in legend
    )
    data = {
        "ids": ids,
        "category": dominant,
        "captions": captions,
        "dims": dims_lines,
        "ratings": rating_lines,
    }
    return _PAGE.format(
        title=html.escape(title),
        n_items=len(ids),
        canvas=f"{_CANVAS:g}",
        circles=circles,
        legend=legend_items,
        data=_script_json(data),
        script=_SCRIPT,
    )


def write_interactive_map(
    path: str | Path, coords: pd.DataFrame, stimuli: StimulusSet, embedding: Embedding, **options: Any
) -> Path:
    """Write the page of :func:`render_interactive_map` (same arguments and ``options``) to ``path``.

    Parameters
    ----------
    path : str or Path
        Output ``.html`` file (parent folders are created).

    Returns
    -------
    Path
        ``path``.
    """
    return write_text(path, render_interactive_map(coords, stimuli, embedding, **options))


def write_interactive_maps(folder: StudyFolder) -> list[Path]:
    """Write ``interactive/<system>_map.html`` for every system whose item map and embedding exist.

    The report stage calls this: the interpretation stage writes the map's coordinates
    (``interpret/<system>_map.csv``) and the rating correlations that label the dimensions
    (``interpret/<system>_ratings.csv``; without it the dimensions go unlabelled), the page that
    shows them is presentation.

    Parameters
    ----------
    folder : StudyFolder
        The study folder (``stimuli.parquet``, ``embeddings/``, ``interpret/``).

    Returns
    -------
    list of Path
        The pages written, by system name.
    """
    if not folder.stimuli.is_file():
        return []
    stimuli = StimulusSet.load(folder.stimuli)
    written = []
    for name, embedding_path in folder.found("embedding").items():
        files = folder.interpret(name)
        coords = read_table(files.map)
        if coords is None:
            continue
        embedding = Embedding.load(embedding_path)
        correlations = read_rating_correlations(files.ratings) if files.ratings.is_file() else None
        written.append(
            write_interactive_map(
                files.interactive, coords, stimuli, embedding, title=f"{name}: item map", correlations=correlations
            )
        )
    return written


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1em; color: #222; }}
#wrap {{ display: flex; gap: 1em; align-items: flex-start; }}
#map {{ width: min(80vh, 70vw); height: min(80vh, 70vw); border: 1px solid #ccc; background: #fff; }}
.point {{ stroke: #333; stroke-width: 0.5; opacity: 0.85; cursor: pointer; }}
.point.active {{ stroke: #000; stroke-width: 2.5; opacity: 1; }}
#legend {{ list-style: none; padding: 0; margin: 0; font-size: 12px; max-height: 80vh; overflow-y: auto; }}
.swatch {{ display: inline-block; width: 10px; height: 10px; margin-right: 5px; border: 1px solid #555; }}
#tooltip {{ position: fixed; display: none; max-width: 420px; background: rgba(255,255,255,0.97);
  border: 1px solid #555; border-radius: 4px; padding: 6px 8px; font-size: 12px; pointer-events: none;
  box-shadow: 0 2px 6px rgba(0,0,0,0.25); z-index: 10; }}
#tooltip h4 {{ margin: 0 0 4px 0; font-size: 13px; }}
#tooltip ul {{ margin: 2px 0 4px 0; padding-left: 16px; }}
#tooltip .section {{ font-weight: bold; }}
</style>
</head>
<body>
<h2>{title}</h2>
<p>{n_items} items, coloured by dominant category. Hover a point for its captions, top dimensions and ratings.</p>
<div id="wrap">
<svg id="map" viewBox="0 0 {canvas} {canvas}" xmlns="http://www.w3.org/2000/svg" role="img">
{circles}
</svg>
<ul id="legend">{legend}</ul>
</div>
<div id="tooltip" role="tooltip"></div>
<script type="application/json" id="map-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var tooltip = document.getElementById("tooltip");
  var active = null;
  function add(parent, tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    parent.appendChild(node);
    return node;
  }
  function list(title, lines) {
    if (!lines.length) return;
    add(tooltip, "div", title, "section");
    var ul = add(tooltip, "ul");
    lines.forEach(function (line) { add(ul, "li", line); });
  }
  function show(point, x, y) {
    var i = Number(point.getAttribute("data-i"));
    if (active) active.classList.remove("active");
    active = point;
    point.classList.add("active");
    tooltip.textContent = "";
    add(tooltip, "h4", data.ids[i] + " \\u2014 " + data.category[i]);
    list("Captions", data.captions[i]);
    list("Top dimensions", data.dims[i]);
    list("Top ratings", data.ratings[i]);
    tooltip.style.display = "block";
    var left = Math.min(x + 14, window.innerWidth - tooltip.offsetWidth - 8);
    var top = Math.min(y + 14, window.innerHeight - tooltip.offsetHeight - 8);
    tooltip.style.left = Math.max(0, left) + "px";
    tooltip.style.top = Math.max(0, top) + "px";
  }
  var svg = document.getElementById("map");
  svg.addEventListener("mouseover", function (event) {
    var point = event.target.closest ? event.target.closest(".point") : null;
    if (point) show(point, event.clientX, event.clientY);
  });
  svg.addEventListener("mouseout", function (event) {
    if (event.target.classList && event.target.classList.contains("point")) {
      tooltip.style.display = "none";
      event.target.classList.remove("active");
      active = null;
    }
  });
})();
"""
