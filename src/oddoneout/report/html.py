"""The study report: one self-contained HTML file built from a study output folder.

The report reads whatever the pipeline has written so far (:func:`~oddoneout.report.outputs.load_study_outputs`:
``summary.json``, ``evaluation/``, ``embeddings/``, ``interpret/``, ``encoding/``, ``rsa/``,
``stimuli.parquet``, ``config.toml``), shows it, and says which parts are missing; it computes
no analysis of its own. Figures are PNGs embedded as base64, the styles are inline,
and nothing depends on the time of writing, so the same folder always gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from oddoneout import __version__
from oddoneout.atomic import write_text
from oddoneout.errors import OddoneoutError
from oddoneout.interpret.ratings import dimension_labels
from oddoneout.provenance import hash_text
from oddoneout.report import brain_section, figures, interpret_section
from oddoneout.report.html_parts import Markup
from oddoneout.report.html_parts import escape as _e
from oddoneout.report.html_parts import finite as _finite
from oddoneout.report.html_parts import image as _image
from oddoneout.report.html_parts import integer as _int
from oddoneout.report.html_parts import notes as _notes
from oddoneout.report.html_parts import num as _num
from oddoneout.report.html_parts import pct as _pct
from oddoneout.report.html_parts import table as _table
from oddoneout.report.outputs import StudyOutputs, load_study_outputs
from oddoneout.study_folder import StudyFolder

# --------------------------------------------------------------------------------------------
# HTML helpers
# --------------------------------------------------------------------------------------------


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;
padding:0 24px 48px;color:#222;line-height:1.45}
h1{margin-top:24px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}
.banner{background:#b00020;color:#fff;font-weight:700;font-size:1.3em;text-align:center;padding:12px;
letter-spacing:.08em;border-radius:4px}
nav a{margin-right:16px}
table{border-collapse:collapse;margin:12px 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
table.numbers td{text-align:right}table.numbers td:first-child{text-align:left}
figure{margin:16px 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.note{background:#fff7d6;border-left:4px solid #e0b000;padding:6px 10px;margin:8px 0}
.warning{background:#fde2e1;border-left:4px solid #c0392b;padding:6px 10px;margin:8px 0;font-weight:600}
pre{background:#f7f7f7;padding:10px;overflow-x:auto;font-size:.85em}
summary{cursor:pointer;font-weight:600;margin:8px 0}
ol{margin:0;padding-left:20px}.muted{color:#777}
img.thumb{height:40px;width:auto;vertical-align:middle;margin-right:6px;border:0}
"""


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _header(outputs: StudyOutputs, title: str) -> str:
    summary = outputs.summary
    provenance = summary.get("provenance") or {}
    parts = [f"<h1>{_e(title)}</h1>"]
    if summary.get("synthetic") is True:
        parts.append(
            '<div class="banner">SYNTHETIC DATA: simulated stimuli, judgments and brain responses; '
            "no result here is evidence about people or models</div>"
        )
    config_hash = provenance.get("config_hash") or summary.get("config_hash")
    if config_hash is None and outputs.config_text is not None:
        config_hash = f"{hash_text(outputs.config_text)} (sha256 of config.toml, computed by the report)"
    rows = [
        ["study", summary.get("study", "n/a")],
        ["synthetic", summary.get("synthetic", "n/a")],
        ["package version", provenance.get("package_version", summary.get("package_version", "n/a"))],
        ["seed", summary.get("seed", provenance.get("seed", "n/a"))],
        ["config hash", config_hash or "n/a"],
        ["report written by", f"oddoneout {__version__}"],
    ]
    shown = {"package_version", "seed", "config_hash"}
    rows += [
        [key, json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else value]
        for key, value in sorted(provenance.items())
        if key not in shown
    ]
    parts.append('<h2 id="provenance">Provenance</h2>')
    parts.append(_table(["field", "value"], rows))
    parts.append(_notes(outputs, "header"))
    if outputs.config_text is not None:
        parts.append(
            f"<details><summary>Configuration (config.toml)</summary><pre>{_e(outputs.config_text)}</pre></details>"
        )
    return "".join(parts)


def _system_results(outputs: StudyOutputs) -> dict[str, dict[str, Any]]:
    """Per system: summary entry completed by the evaluation file and the embedding."""
    results: dict[str, dict[str, Any]] = {}
    summary_systems = outputs.summary.get("systems") or {}
    for system in outputs.systems:
        row = dict(outputs.evaluations.get(system, {}))
        row.update({k: v for k, v in (summary_systems.get(system) or {}).items() if v is not None})
        if "n_dims" not in row and system in outputs.embeddings:
            row["n_dims"] = outputs.embeddings[system].n_dims
        if system in summary_systems or system in outputs.evaluations:
            results[system] = row
    return results


def _behaviour(outputs: StudyOutputs, colors: dict[str, str]) -> str:
    parts = ['<h2 id="behaviour">Behaviour</h2>']
    results = _system_results(outputs)
    if not results:
        parts.append(
            '<p class="note">No behavioural results: summary.json has no systems and evaluation/*.json is missing.</p>'
        )
        return "".join(parts)
    rows = []
    for system, row in results.items():
        judgments, failed = _finite(row.get("n_judgments")), _finite(row.get("n_failed"))
        failures = _int(failed)
        if judgments and failed is not None:
            failures += f" ({failed / judgments:.1%})"
        rows.append(
            [
                system,
                _int(judgments),
                failures,
                _int(row.get("n_dims")),
                _pct(row.get("accuracy"), row.get("accuracy_ci")),
                _pct(row.get("noise_ceiling"), row.get("noise_ceiling_ci")),
                _num(row.get("cross_entropy")),
            ]
        )
    parts.append(
        _table(
            [
                "system",
                "judgments",
                "failed",
                "dims",
                "held-out accuracy [95% CI]",
                "noise ceiling [95% CI]",
                "cross-entropy",
            ],
            rows,
            "numbers",
        )
    )
    if any(
        _finite(r.get("accuracy")) is not None or _finite(r.get("noise_ceiling")) is not None for r in results.values()
    ):
        parts.append(
            _image(
                figures.accuracy_figure(results, colors),
                "held-out accuracy per system",
                "Held-out accuracy (solid) beside the noise ceiling (hatched), 95% bootstrap CIs; "
                "dashed lines: chance for each system's trial type (1/3 for odd-one-out, 1/2 for anchor "
                "triplets, 1/n for ranked trials of n options).",
            )
        )
    histories = {
        s: e["history"]
        for s, e in outputs.evaluations.items()
        if isinstance(e.get("history"), dict) and (e["history"].get("val_loss") or e["history"].get("val_accuracy"))
    }
    if histories:
        ordered = {s: histories[s] for s in outputs.systems if s in histories}
        parts.append(
            _image(
                figures.training_curves_figure(ordered, colors),
                "training curves",
                "Loss (validation solid, training dashed) and validation accuracy per epoch.",
            )
        )
    elif outputs.evaluations:
        parts.append('<p class="note">No training history in evaluation/*.json: no training curves.</p>')
    curves = {
        s: e["dimensionality"] for s, e in outputs.evaluations.items() if isinstance(e.get("dimensionality"), dict)
    }
    if curves:
        ordered = {s: curves[s] for s in outputs.systems if s in curves}
        parts.append(
            _image(
                figures.dimensionality_figure(ordered, colors),
                "dimensionality curves",
                "Held-out accuracy and validation-subset similarity r using only each embedding's k "
                "strongest dimensions; where accuracy reaches 99% of its full value is the saturation point.",
            )
        )
        rows = [
            [s, _int(r.get("n_dims")), _int(r.get("saturation_dims")), _int(r.get("components_95")),
             _int(r.get("components_99"))]
            for s, r in results.items()
        ]  # fmt: skip
        parts.append(
            _table(
                ["system", "dims", "dims for 99% of accuracy", "PCs for 95% of accuracy", "PCs for 99% of accuracy"],
                rows,
                "numbers",
            )
        )
    parts.append(_notes(outputs, "behaviour"))
    return "".join(parts)


def _usd(value: Any) -> str:
    value = _finite(value)
    return "n/a" if value is None else f"${value:,.4f}"


def _cost(outputs: StudyOutputs) -> str:
    """The cost of each system's collection (``summary.json``'s ``cost``); nothing when it has none."""
    costs = outputs.summary.get("cost")
    if not isinstance(costs, dict) or not costs:
        return ""
    rows = []
    for system, record in costs.items():
        record = record if isinstance(record, dict) else {}
        rows.append(
            [
                system,
                _int(record.get("judgments")),
                _int(record.get("requests")),
                _int(record.get("retries")),
                _int(record.get("tokens_in")),
                _int(record.get("tokens_out")),
                _int(record.get("images")),
                _num(record.get("wall_s"), 1),
                _num(record.get("cpu_s"), 1),
                _num(record.get("gpu_s"), 1),
                _usd(record.get("price_usd")),
            ]
        )
    header = ["system", "judgments", "requests", "retries", "tokens in", "tokens out", "images", "wall s", "CPU s"]
    return (
        '<h2 id="cost">Cost</h2>'
        + _table([*header, "GPU s", "price (USD)"], rows, "numbers")
        + '<p class="note">From each system\'s store: tokens as the server (or local model) counted them, wall '
        "time from the first request to the last answer, CPU seconds of the collecting process, GPU seconds "
        "of a local model on a GPU; the price at the study's [cost] prices. n/a: not recorded, or no price set "
        "(oddoneout status names which).</p>"
    )


def _thumbnail(path: Any) -> str:
    """A small inline JPEG of a video's middle frame, or nothing when there is no readable video."""
    if not isinstance(path, str) or not path:
        return ""
    try:
        from oddoneout.media.frames import FrameSpec, frames_as_data_urls

        url = frames_as_data_urls(path, FrameSpec(n_frames=1, size=96))[0]
    except (ImportError, OddoneoutError):
        return ""
    return f'<img class="thumb" src="{url}" alt="">'


def _items_cell(items: pd.DataFrame, media: dict[str, Any] | None = None) -> Markup:
    entries = []
    for row in items.itertuples(index=False):
        caption = f"{_e(row.caption)} " if row.caption else ""
        thumb = _thumbnail((media or {}).get(str(row.item_id)))
        entries.append(f'<li>{thumb}{caption}<span class="muted">[{_e(row.item_id)}, w={row.weight:.2f}]</span></li>')
    return Markup(f"<ol>{''.join(entries)}</ol>")


def _embedding_system(outputs: StudyOutputs, system: str) -> str:
    parts = [f'<h3 id="embedding-{_e(system)}">{_e(system)}</h3>']
    embedding = outputs.embeddings.get(system)
    if embedding is not None:
        parts.append(f"<p>{len(embedding.item_ids):,} items x {embedding.n_dims} dimensions.</p>")
        for problem in embedding.metadata.get("fit_warnings") or []:
            parts.append(f'<p class="warning">Warning: {_e(problem)}</p>')
        parts.append(_l1_selection(embedding.metadata))
    correlations = outputs.correlations.get(system)
    labels = dimension_labels(correlations) if correlations is not None and correlations.shape[1] else {}
    if correlations is not None and correlations.size:
        parts.append(
            _image(
                figures.correlation_heatmap(correlations, system, labels),
                f"{system} dimension by rating correlations",
                f"{system}: Pearson r of each dimension with each rating scale (categories, then "
                "dimensions); grey: undefined (constant dimension or scale). Row labels: the two "
                "most positively correlated scales.",
            )
        )
    else:
        parts.append('<p class="note">No rating correlations for this system.</p>')
    items = outputs.top_items.get(system)
    media = None
    if outputs.stimuli is not None and "media_path" in outputs.stimuli.table.columns:
        media = outputs.stimuli.table["media_path"].dropna().to_dict()
    dims = list(dict.fromkeys([*(labels or {}), *([] if items is None else items["dim"].tolist())]))
    if dims:
        rows = []
        for dim in dims:
            dim_labels = labels.get(dim, [])
            label_text = ", ".join(f"{scale} ({r:+.2f})" for scale, r in dim_labels) or "none positive"
            if items is None:
                cell: Any = "n/a"
            else:
                cell = _items_cell(items[items["dim"] == dim].sort_values("rank", kind="stable"), media)
            rows.append([dim, label_text, cell])
        parts.append(
            f"<details><summary>Dimension labels and top items ({len(dims)} dimensions)</summary>"
            + _table(["dimension", "top correlated scales (r)", "top items: caption [id, weight]"], rows)
            + "</details>"
        )
    return "".join(parts)


def _l1_selection(metadata: dict[str, Any]) -> str:
    """The table of the l1 candidates an embedding was chosen from (empty if it records none)."""
    selection = metadata.get("l1_selection")
    if not isinstance(selection, list) or not selection:
        return ""
    scheme = str(metadata.get("l1_scheme") or "held-out triplets")
    relaxed = " after the relaxed refit" if (metadata.get("hyperparameters") or {}).get("relax") else ""
    rows = [
        [
            f"{row.get('l1', float('nan')):g}",
            _num(row.get("n_dims"), 1).removesuffix(".0"),
            _num(row.get("cross_entropy"), 4),
            f"{_num(row.get('excess'), 4)} ± {_num(row.get('excess_se'), 4)}",
            _pct(row.get("accuracy")),
            "chosen" if row.get("chosen") else "",
        ]
        for row in selection
    ]
    return (
        f"<details><summary>Sparsity l1 = {_l1_text(metadata.get('l1'))}: {len(rows)} candidate(s) scored on "
        f"{_e(scheme)}{relaxed}</summary>"
        + _table(["l1", "dims", "held-out cross-entropy", "excess over the best ± SE", "accuracy", ""], rows)
        + '<p class="note">Chosen: the largest l1 whose paired excess is within the rule\'s standard errors '
        "of the best (one-standard-error rule).</p></details>"
    )


def _l1_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _embeddings(outputs: StudyOutputs) -> str:
    parts = ['<h2 id="embeddings">Embeddings</h2>']
    systems = [
        s for s in outputs.systems if s in outputs.embeddings or s in outputs.correlations or s in outputs.top_items
    ]
    if not systems:
        parts.append(
            '<p class="note">No embeddings (embeddings/*.parquet) or interpretation files (interpret/*.csv).</p>'
        )
    else:
        links = "".join(f'<a href="#embedding-{_e(s)}">{_e(s)}</a>' for s in systems)
        parts.append(f"<nav>{links}</nav>")
    parts.append(_notes(outputs, "embeddings"))
    parts.extend(_embedding_system(outputs, system) for system in systems)
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def render_report(outputs: StudyOutputs, title: str | None = None) -> str:
    """The report of already-read study outputs as an HTML string."""
    title = title or outputs.summary.get("study") or outputs.out_dir.name
    colors = figures.system_colors(outputs.systems)
    cost = _cost(outputs)
    nav = (
        '<nav><a href="#provenance">Provenance</a><a href="#behaviour">Behaviour</a>'
        + ('<a href="#cost">Cost</a>' if cost else "")
        + '<a href="#embeddings">Embeddings</a><a href="#interpretation">Interpretation</a>'
        '<a href="#brain">Brain</a><a href="#reproduction">Paper vs ours</a></nav>'
    )
    body = "".join(
        [
            _header(outputs, str(title)),
            nav,
            _behaviour(outputs, colors),
            cost,
            _embeddings(outputs),
            interpret_section.render(outputs, colors),
            brain_section.render(outputs, colors),
            interpret_section.render_reproduction(outputs),
        ]
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def write_report(out_dir: str | Path | StudyFolder, title: str | None = None, interactive: bool = True) -> Path:
    """Write ``out_dir/report.html`` (and the interactive maps) from the study outputs found in ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Study output folder (``summary.json``, ``evaluation/``, ``embeddings/``, ``interpret/``,
        ``encoding/roi_r.csv``, ``stimuli.parquet``, ``config.toml``); any part may be absent,
        and the report says which.
    title : str, optional
        Page title; default the study name of ``summary.json``, else the folder name.
    interactive : bool
        Also write ``interactive/<system>_map.html`` for every system with an item map
        (:func:`~oddoneout.report.interactive_map.write_interactive_maps`); the report links them.

    Returns
    -------
    Path
        The written ``report.html``: one self-contained file, identical for identical inputs.

    Raises
    ------
    InputError
        If ``out_dir`` is not a folder or an existing file is malformed.
    """
    if interactive:
        from oddoneout.report.interactive_map import write_interactive_maps

        write_interactive_maps(StudyFolder.of(out_dir))
    outputs = load_study_outputs(out_dir)
    return write_text(outputs.folder.report, render_report(outputs, title))
