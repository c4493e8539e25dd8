"""A graph of embedding dimensions: edges between dimensions whose item weights correlate.

Nodes are dimensions (of one system, or of several systems together, named
``<system>/<dim>``). Two dimensions are joined when the Pearson correlation of their weights
across items exceeds a threshold (the study: r > 0.2); the edge weight is that r. Communities
come from Louvain modularity optimisation (``networkx.community.louvain_communities``, seeded),
centrality from PageRank on the weighted graph.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.scoring import pearson_matrix
from oddoneout.stimuli.stimulus_set import StimulusSet

#: Columns of the node table of :func:`dimension_graph`.
NODE_COLUMNS = ("dim", "system", "community", "pagerank", "degree", "label")

#: Columns of the edge table of :func:`dimension_graph`.
EDGE_COLUMNS = ("source", "target", "r")


def _weights_table(
    embeddings: Embedding | pd.DataFrame | Mapping[str, Embedding | pd.DataFrame], stimuli: StimulusSet | None
) -> tuple[pd.DataFrame, list[str]]:
    """Items x dimensions table of every system, and each column's system."""
    single = isinstance(embeddings, (Embedding, pd.DataFrame))
    systems = {"": embeddings} if single else dict(embeddings)
    if not systems:
        raise InputError("dimension_graph: no embeddings given")
    frames, owners = [], []
    for system, source in systems.items():
        if isinstance(source, Embedding):
            frame = pd.DataFrame(source.weights, index=list(source.item_ids), columns=source.dim_names)
        else:
            frame = source.set_index("item_id") if "item_id" in source.columns else source.copy()
            frame = frame.select_dtypes("number")
            frame.index = frame.index.astype(str)
        if stimuli is not None:
            missing = [i for i in stimuli.item_ids if i not in frame.index]
            if missing:
                raise InputError(f"weights of {system or 'the embedding'!r} lack item(s) {missing[:5]}")
            frame = frame.loc[list(stimuli.item_ids)]
        if not single:
            frame = frame.add_prefix(f"{system}/")
        frames.append(frame)
        owners += [system] * frame.shape[1]
    table = pd.concat(frames, axis=1, join="inner")
    if len(table) < 3:
        raise InputError(f"dimension_graph: the systems share {len(table)} item(s); need at least 3")
    return table, owners


def dimension_graph(
    embeddings: Embedding | pd.DataFrame | Mapping[str, Embedding | pd.DataFrame],
    stimuli: StimulusSet | None = None,
    threshold: float = 0.2,
    labels: Mapping[str, str] | None = None,
    seed: int = 0,
    resolution: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame, nx.Graph]:
    """Build the dimension graph, its Louvain communities and PageRank.

    Parameters
    ----------
    embeddings : Embedding, DataFrame or mapping of str to either
        One system (an Embedding, or an items x dimensions weights table indexed by, or with a
        column, ``item_id``) or ``{system: ...}`` for a graph across systems (node names
        ``<system>/<dim>``; only items every system has are used).
    stimuli : StimulusSet, optional
        Restrict the correlation to these items.
    threshold : float, default=0.2
        An edge joins two dimensions when their r is strictly greater.
    labels : mapping, optional
        ``{node: label}`` text for the nodes (e.g. from
        :func:`~oddoneout.interpret.ratings.dimension_labels`); default empty.
    seed : int, default=0
        Seed of Louvain.
    resolution : float, default=1
        Louvain resolution (above 1: smaller communities).

    Returns
    -------
    nodes : DataFrame
        Columns ``dim, system, community, pagerank, degree, label``; communities are numbered
        0, 1, ... by decreasing size (ties by first node), isolated dimensions form their own.
        A constant (dead) dimension has no correlations and is isolated.
    edges : DataFrame
        Columns ``source, target, r``, one row per edge (source before target in node order).
    graph : networkx.Graph
        The weighted graph (edge attribute ``weight`` = r).
    """
    if not -1 <= threshold < 1:
        raise InputError(f"dimension_graph: threshold must be in [-1, 1), got {threshold!r}")
    table, owners = _weights_table(embeddings, stimuli)
    names = [str(c) for c in table.columns]
    if len(set(names)) != len(names):
        raise InputError("dimension_graph: repeated dimension names")
    values = table.to_numpy(dtype=np.float64)
    r = pearson_matrix(values, values)
    graph = nx.Graph()
    graph.add_nodes_from(names)
    sources, targets = np.nonzero(np.triu(np.nan_to_num(r, nan=-np.inf) > threshold, k=1))
    edges = pd.DataFrame(
        {
            "source": [names[i] for i in sources],
            "target": [names[j] for j in targets],
            "r": r[sources, targets],
        },
        columns=list(EDGE_COLUMNS),
    )
    # PageRank and Louvain need positive weights; with a negative threshold clip at a tiny value.
    graph.add_weighted_edges_from((s, t, max(float(w), 1e-9)) for s, t, w in edges.itertuples(index=False))
    communities = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    position = {name: i for i, name in enumerate(names)}
    ordered = sorted(communities, key=lambda c: (-len(c), min(position[n] for n in c)))
    community_of = {node: k for k, members in enumerate(ordered) for node in members}
    pagerank = nx.pagerank(graph, weight="weight") if graph.number_of_edges() else {n: 1 / len(names) for n in names}
    labels = labels or {}
    nodes = pd.DataFrame(
        {
            "dim": names,
            "system": owners,
            "community": [community_of[n] for n in names],
            "pagerank": [float(pagerank[n]) for n in names],
            "degree": [int(graph.degree[n]) for n in names],
            "label": [str(labels.get(n, "")) for n in names],
        },
        columns=list(NODE_COLUMNS),
    )
    return nodes, edges, graph


def graph_layout(graph: nx.Graph, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Seeded spring layout of a dimension graph (``networkx.spring_layout``, weight = r)."""
    if graph.number_of_nodes() == 0:
        return {}
    layout = nx.spring_layout(graph, weight="weight", seed=seed)
    return {str(node): (float(xy[0]), float(xy[1])) for node, xy in layout.items()}
