"""The study's interpretation stage: every analysis of one system's embedding, written to ``interpret/``.

Files per system (``OUT/interpret/``): ``<s>_ratings.csv`` (dimension x rating-scale r),
``<s>_top_items.csv``, ``<s>_classes.csv`` (categorical / hybrid / dimensional) and
``<s>_class_shares.csv`` (the share of each class),
``<s>_centroid.csv`` (top-1/top-3 nearest-centroid accuracy and chance), ``<s>_map.csv``
(2-D item map) and ``<s>_graph_nodes.csv`` / ``<s>_graph_edges.csv`` (dimension graph); the
report stage turns the map into ``OUT/interactive/<s>_map.html``. Analyses that need ratings
are skipped, with a logged note, for stimulus sets without them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from oddoneout.config.sections import InterpretSettings
from oddoneout.embedding import Embedding
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder, read_class_shares, write_table

logger = logging.getLogger(__name__)

#: What is said of a system whose embedding kept no dimension (the log here, the report's note).
NO_DIMENSIONS = "the embedding has no dimensions (its fit predicts chance): nothing to interpret."


def interpret_embedding(
    settings: InterpretSettings,
    out: Path | StudyFolder,
    name: str,
    embedding: Embedding,
    stimuli: StimulusSet,
    seed: int = 0,
) -> dict[str, Path]:
    """Run every interpretation analysis of one system and write its files.

    Parameters
    ----------
    settings : InterpretSettings
        The config's ``[interpret]`` settings (``top_k``, ``map_method``, ``graph_threshold``,
        ``class_min_r``, ``class_balance``).
    out : Path
        The study output folder.
    name : str
        The system.
    embedding : Embedding
        Its embedding.
    stimuli : StimulusSet
        The study's items (captions, ratings).
    seed : int
        Seed of the map and the graph layout.

    Returns
    -------
    dict of str to Path
        The files written; none for an embedding without dimensions (its fit warned that it
        predicts chance), which is logged instead.
    """
    from oddoneout.interpret.classify import class_shares, classify_dimensions
    from oddoneout.interpret.graph import dimension_graph
    from oddoneout.interpret.maps import item_map
    from oddoneout.interpret.ratings import (
        dimension_labels,
        rating_columns,
        rating_correlations,
        top_items,
        write_rating_correlations,
        write_top_items,
    )

    paths = StudyFolder.of(out).interpret(name).as_dict()
    if embedding.n_dims == 0:
        logger.warning("%s: %s", name, NO_DIMENSIONS)
        for stale in paths.values():  # from an earlier fit of this system
            stale.unlink(missing_ok=True)
        return {}
    paths["ratings"].parent.mkdir(parents=True, exist_ok=True)
    written = {}
    write_top_items(top_items(embedding, stimuli, k=settings.top_k), paths["top_items"])
    written["top_items"] = paths["top_items"]
    labels = None
    if rating_columns(stimuli):
        from oddoneout.interpret.centroid import nearest_centroid_accuracy

        correlations = rating_correlations(embedding, stimuli)
        write_rating_correlations(correlations, paths["ratings"])
        classes = classify_dimensions(correlations, min_r=settings.class_min_r, balance=settings.class_balance)
        write_table(classes, paths["classes"], index=False)
        write_table(class_shares({name: classes}), paths["class_shares"])
        centroid = nearest_centroid_accuracy(embedding, stimuli, seed=seed)
        write_table(centroid, paths["centroid"], index=False)
        labels = {
            dim: ", ".join(scale.split(":", 1)[-1] for scale, _ in pairs[:2])
            for dim, pairs in dimension_labels(correlations).items()
        }
        written.update(
            ratings=paths["ratings"],
            classes=paths["classes"],
            class_shares=paths["class_shares"],
            centroid=paths["centroid"],
        )
    else:
        logger.info("%s: the stimuli have no ratings: no rating correlations, classes or centroid accuracy", name)
    nodes, edges, _ = dimension_graph(embedding, threshold=settings.graph_threshold, labels=labels, seed=seed)
    write_table(nodes, paths["graph_nodes"], index=False)
    write_table(edges, paths["graph_edges"], index=False)
    written.update(graph_nodes=paths["graph_nodes"], graph_edges=paths["graph_edges"])
    if settings.map_method != "none":
        coords = item_map(embedding, stimuli, method=settings.map_method, seed=seed)
        write_table(coords, paths["map"], index=False)
        written["map"] = paths["map"]
    return written


def interpretation_summary(out: Path | StudyFolder, systems: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per system: class shares and top-1/top-3 nearest-centroid accuracy (for ``summary.json``)."""
    folder = StudyFolder.of(out)
    summary: dict[str, dict[str, Any]] = {}
    for name in systems:
        files = folder.interpret(name)
        entry: dict[str, Any] = {}
        if (shares := read_class_shares(files.class_shares)) is not None:
            row = shares.iloc[0]
            entry["class_shares"] = {column: float(row[column]) for column in shares.columns if column != "n_dims"}
        if files.centroid.is_file():
            centroid = pd.read_csv(files.centroid).set_index("k")
            for k in centroid.index:
                entry[f"centroid_top{k}"] = float(centroid.loc[k, "accuracy"])
                entry[f"centroid_chance_top{k}"] = float(centroid.loc[k, "chance_permutation"])
        if files.graph_nodes.is_file():
            nodes = pd.read_csv(files.graph_nodes)
            entry["graph_communities"] = int(nodes["community"].nunique()) if len(nodes) else 0
        if entry:
            summary[name] = entry
    return summary
