"""The report's interpretation section and the paper-vs-ours reproduction table.

Both read the files the interpretation stage wrote (``OUT/interpret/``, ``OUT/interactive/``)
and ``summary.json``; a missing file gives a short note, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import networkx as nx
import pandas as pd

from oddoneout.errors import InputError
from oddoneout.interpret.stage import NO_DIMENSIONS
from oddoneout.report.figures import to_png
from oddoneout.report.html_parts import Markup, escape, image, integer, num, pct, table
from oddoneout.report.outputs import StudyOutputs
from oddoneout.study_folder import read_class_shares
from oddoneout.study_folder import read_table as _read


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _guarded(what: str, build: Callable[[], list[str]]) -> list[str]:
    """A subsection, or a note saying why it could not be drawn (a malformed file never stops the report)."""
    try:
        return build()
    except (InputError, KeyError, ValueError, TypeError, pd.errors.ParserError) as exc:
        return [_note(f"{what}: could not be shown ({type(exc).__name__}: {exc}).")]


def _paper_shares() -> dict[str, dict[str, float]]:
    from oddoneout.interpret.reproduction import paper_numbers

    numbers = paper_numbers()
    shares: dict[str, dict[str, float]] = {}
    for row in numbers[numbers["quantity"].str.startswith("share_")].itertuples():
        shares.setdefault(row.system, {})[row.quantity.removeprefix("share_")] = float(row.paper)
    return shares


def _class_shares(outputs: StudyOutputs, systems: list[str]) -> list[str]:
    from oddoneout.report.interpret_figures import class_shares_figure

    tables = {s: t for s in systems if (t := read_class_shares(outputs.folder.interpret(s).class_shares)) is not None}
    if not tables:
        return [_note("No dimension classes (interpret/<system>_class_shares.csv): the stimuli may have no ratings.")]
    shares = pd.concat(tables.values())
    paper = {s: v for s, v in _paper_shares().items() if s in tables}
    rows = [[s, *(pct(shares.loc[s, c]) for c in shares.columns if c != "n_dims"), int(shares.loc[s, "n_dims"])]
            for s in shares.index]  # fmt: skip
    return [
        "<h3>Categorical, hybrid or dimensional</h3>",
        image(
            to_png(class_shares_figure(shares, paper=paper or None)),
            "class shares per system",
            "Share of each system's dimensions by class (rule in docs/interpretation.md); thin hatched "
            "bars: the paper's shares where it gives them.",
        ),
        table(["system", *(c for c in shares.columns if c != "n_dims"), "dims"], rows, "numbers"),
    ]


def _centroid(outputs: StudyOutputs, systems: list[str]) -> list[str]:
    rows = []
    for s in systems:
        frame = _read(outputs.folder.interpret(s).centroid)
        if frame is None:
            continue
        by_k = frame.set_index("k")
        cells = []
        for k in (1, 3):
            if k in by_k.index:
                cells += [pct(by_k.loc[k, "accuracy"]), pct(by_k.loc[k, "chance_permutation"])]
            else:
                cells += ["n/a", "n/a"]
        rows.append([s, *cells, int(by_k["n_classes"].iloc[0])])
    if not rows:
        return [_note("No nearest-centroid accuracy (interpret/<system>_centroid.csv).")]
    return [
        "<h3>Nearest-centroid classification</h3>",
        "<p>Each item assigned to the nearest category centroid in embedding space (its own category's "
        "centroid computed without it), over the paper's 27 categories; chance: the same with shuffled labels.</p>",
        table(["system", "top-1", "chance top-1", "top-3", "chance top-3", "categories"], rows, "numbers"),
    ]


def _between(outputs: StudyOutputs) -> list[str]:
    from oddoneout.report.interpret_figures import systems_rsa_figure

    rsa, cross = _read(outputs.folder.systems_rsa), _read(outputs.folder.cross_accuracy)
    parts = ["<h3>Between systems</h3>"]
    if rsa is not None and len(rsa):
        kind = str(rsa["similarity"].iloc[0]) if "similarity" in rsa.columns else "dot"
        order = [s for s in outputs.systems if s in set(rsa["system_a"]) | set(rsa["system_b"])]
        rows = [[r.system_a, r.system_b, f"{num(r.r)} [{num(r.ci_low)}, {num(r.ci_high)}]", int(r.n_items)]
                for r in rsa.itertuples()]  # fmt: skip
        parts += [
            f"<p>Pearson r between two systems' item-by-item similarity ({escape(kind)} similarity of the "
            "embeddings) over all pairs of distinct items, 95% CI from resampling items.</p>",
            image(
                to_png(systems_rsa_figure(rsa, systems=order or None)),
                "systems RSA matrix",
                "Similarity-structure r between every pair of systems (diagonal: 1).",
            ),  # fmt: skip
            table(["system", "system", "similarity-structure r [95% CI]", "items"], rows, "numbers"),
        ]
    else:
        parts.append(_note("No systems RSA (interpret/systems_rsa.csv): fewer than two embeddings, or not run."))
    if cross is not None and len(cross):
        cross["cell"] = [
            pct(r.accuracy, [r.ci_low, r.ci_high]) if hasattr(r, "ci_low") else pct(r.accuracy)
            for r in cross.itertuples()
        ]
        pivot = cross.pivot(index="embedding", columns="triplets", values="cell")
        order = [s for s in outputs.systems if s in set(pivot.index) | set(pivot.columns)]
        order += sorted((set(pivot.index) | set(pivot.columns)) - set(order))
        pivot = pivot.reindex(
            index=[s for s in order if s in pivot.index], columns=[s for s in order if s in pivot.columns]
        )
        rows = [[e, *(pivot.loc[e, t] if isinstance(pivot.loc[e, t], str) else "n/a" for t in pivot.columns)]
                for e in pivot.index]  # fmt: skip
        parts += [
            "<p>Held-out odd-one-out accuracy [95% CI] of one system's embedding (rows) on another system's "
            "held-out judgments (columns); the diagonal is each system's own test accuracy; chance 33.3%.</p>",
            table(["embedding \\ judgments", *pivot.columns], rows, "numbers"),
        ]
    else:
        parts.append(_note("No cross-prediction (interpret/cross_accuracy.csv)."))
    return parts


def _graph_figure_from_tables(nodes: pd.DataFrame, edges: pd.DataFrame, title: str) -> bytes | None:
    from oddoneout.interpret.graph import graph_layout
    from oddoneout.report.interpret_figures import graph_figure

    if nodes is None or not len(nodes):
        return None
    graph = nx.Graph()
    graph.add_nodes_from(nodes["dim"].astype(str))
    if edges is not None and len(edges):
        graph.add_weighted_edges_from(
            (str(r.source), str(r.target), float(r.r)) for r in edges.itertuples() if math.isfinite(r.r)
        )
    return to_png(graph_figure(nodes, edges, graph_layout(graph), title=title))


def _system(outputs: StudyOutputs, system: str) -> list[str]:
    from oddoneout.report.interpret_figures import correlation_bars_figure, map_figure

    files = outputs.folder.interpret(system)
    parts = [f'<h3 id="interpretation-{escape(system)}">{escape(system)}</h3>']
    embedding = outputs.embeddings.get(system)
    if embedding is not None and embedding.n_dims == 0:
        return [*parts, _note(f"{system}: {NO_DIMENSIONS}")]
    if not files.interactive.is_file():
        parts.append(_note(f"No interactive map (interactive/{system}_map.html)."))
    else:
        link = files.interactive.relative_to(outputs.folder.root).as_posix()
        parts.append(
            f'<p><a href="{escape(link)}">Interactive map of {escape(system)}</a> '
            "(a separate self-contained page: hover a point for the item's captions, top dimensions and ratings).</p>"
        )
    coords = _read(files.map)
    if coords is None or outputs.stimuli is None:
        parts.append(_note(f"No item map (interpret/{system}_map.csv and stimuli.parquet are both needed)."))
    else:
        parts.append(
            image(
                to_png(map_figure(coords, outputs.stimuli, title=f"{system}: item map")),
                f"{system} item map",
                "2-D map of the items (t-SNE or UMAP of the embedding), coloured by dominant category.",
            )
        )
    correlations = outputs.correlations.get(system)
    if correlations is not None and correlations.size:
        dims = list(correlations.index[:8])
        parts.append(
            image(
                to_png(correlation_bars_figure(correlations, dims=dims)),
                f"{system} dimension correlations",
                "The rating scales most correlated with each of the first dimensions (Pearson r).",
            )
        )
    nodes, edges = _read(files.graph_nodes), _read(files.graph_edges)
    figure = _graph_figure_from_tables(nodes, edges, f"{system}: dimensions")
    if figure is None:
        parts.append(_note(f"No dimension graph (interpret/{system}_graph_nodes.csv)."))
    else:
        parts.append(
            image(figure, f"{system} dimension graph",
                  "Dimensions linked where their weights correlate above the threshold across items; colours: "
                  "Louvain communities; size: PageRank.")
        )  # fmt: skip
    return parts


def render(outputs: StudyOutputs, colors: dict[str, str]) -> str:
    """The interpretation section."""
    parts = ['<h2 id="interpretation">Interpretation</h2>']
    systems = [s for s in outputs.systems if s in outputs.embeddings]
    if not outputs.folder.interpret_folder.is_dir() or not systems:
        parts.append('<p class="note">No interpretation files (interpret/): run the interpret stage.</p>')
        return "".join(parts)
    parts += _guarded("Dimension classes", lambda: _class_shares(outputs, systems))
    parts += _guarded("Nearest-centroid classification", lambda: _centroid(outputs, systems))
    parts += _guarded("Between systems", lambda: _between(outputs))
    for system in systems:
        parts += _guarded(system, lambda system=system: _system(outputs, system))
    return "".join(parts)


def _judgments_statement(frame: pd.DataFrame) -> str:
    """How many judgments each system of this run used, beside the paper's (the rows ``n_judgments``)."""
    rows = frame[(frame["quantity"] == "n_judgments") & frame["run"]]
    pieces = []
    for row in rows.itertuples():
        if math.isfinite(row.ours):
            share = row.ours / row.paper if row.paper else math.nan
            pieces.append(
                f"{escape(row.system)}: {integer(row.ours)} judgments here vs ~{integer(row.paper)} in the paper"
                + (f" ({share:.2%})" if math.isfinite(share) else "")
            )
    if not pieces:
        return ""
    return (
        "<p>Judgments per system: " + "; ".join(pieces) + ". Accuracy CIs, dimensionality and interpretation "
        "of a run with fewer judgments are not expected to match the paper's.</p>"
    )


def render_reproduction(outputs: StudyOutputs) -> str:
    """The table of the paper's numbers beside this run's (section ``id="reproduction"``)."""
    from oddoneout.interpret.reproduction import reproduction_table

    parts = ['<h2 id="reproduction">Paper vs ours</h2>']
    if not outputs.summary.get("systems"):
        parts.append(_note("No summary.json systems: nothing to compare."))
        return "".join(parts)
    if outputs.summary.get("synthetic"):
        parts.append(_note("This is the synthetic study: the comparison shows the format only."))
    frame = reproduction_table(outputs.summary)
    rows = []
    for row in frame.itertuples():
        ours = "" if not math.isfinite(row.ours) else num(row.ours)
        if ours and math.isfinite(row.ours_ci_low) and math.isfinite(row.ours_ci_high):
            ours += f" [{num(row.ours_ci_low)}, {num(row.ours_ci_high)}]"
        if not row.run:
            ours = ""
        elif not ours:
            ours = "not measured"
        paper = ("~" if row.approx else "") + (f"{row.paper:,.0f}" if row.paper >= 100 else num(row.paper))
        source = Markup(
            f'<details><summary title="{escape(row.source)}">source</summary>{escape(row.source)}</details>'
        )
        rows.append([row.quantity, row.system, paper, ours, source])
    parts.append(
        "<p>Every number the study description gives, beside this run's value. Blank: the system was not run "
        "here; <em>not measured</em>: it was run but this run lacks the number. Proportions are fractions "
        "(0.771 = 77.1%).</p>"
    )
    parts.append(_judgments_statement(frame))
    parts.append(table(["quantity", "system", "paper", "ours [95% CI]", "source"], rows, "numbers"))
    return "".join(parts)
