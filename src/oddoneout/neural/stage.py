"""The study's brain stage: load each subject, encode every system's embedding, write the results.

Reads ``OUT/neural/<subject>.npz`` (the synthetic brain) or the files ``[neural] subjects`` lists;
writes ``OUT/encoding/roi_r.csv`` (subject, system, roi, r) and ``encoding/<system>_<subject>.npz``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from oddoneout.config import resolve_path
from oddoneout.embedding import Embedding


def neural_files(config: dict[str, Any], out: Path) -> list[Path]:
    """The subjects' data files: the synthetic brain, or those listed in ``[neural] subjects``."""
    settings = config["neural"]
    if settings["source"] == "synthetic":
        return sorted((out / "neural").glob("*.npz"))
    if settings["source"] == "none":
        return []
    return [resolve_path(config, p) for p in settings["subjects"]]


def run_neural_stage(config: dict[str, Any], out: Path, systems: Sequence[str]) -> pd.DataFrame:
    """Voxel-wise encoding of every subject from every system's embedding; writes ``encoding/roi_r.csv``."""
    from oddoneout.neural.data import NeuralData
    from oddoneout.neural.encoding import encode

    settings = config["neural"]
    low, high, n = settings["alphas"]
    alphas = np.logspace(np.log10(low), np.log10(high), int(n))
    rows = []
    for path in neural_files(config, out):
        data = NeuralData.load(path)
        for name in systems:
            embedding = Embedding.load(out / "embeddings" / f"{name}.parquet")
            result = encode(
                embedding.weights,
                embedding.item_ids,
                data,
                n_folds=settings["n_folds"],
                alphas=alphas,
                inner_folds=settings["inner_folds"],
                backend=settings["backend"],
            )
            result.save(out / "encoding" / f"{name}_{data.subject}.npz")
            rows += [{"subject": data.subject, "system": name, "roi": roi, "r": r} for roi, r in result.roi_r.items()]
    table = pd.DataFrame(rows, columns=["subject", "system", "roi", "r"])
    (out / "encoding").mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "encoding" / "roi_r.csv", index=False)
    return table


def neural_summary(out: Path) -> dict[str, Any]:
    """The brain part of ``summary.json``: ``{"encoding": {roi: {system: mean r over subjects}}}``."""
    encoding: dict[str, dict[str, float]] = {}
    roi_path = out / "encoding" / "roi_r.csv"
    if roi_path.is_file():
        table = pd.read_csv(roi_path)
        if len(table):
            means = table.groupby(["roi", "system"], sort=False)["r"].mean()
            for (roi, system), r in means.items():
                encoding.setdefault(roi, {})[system] = round(float(r), 6)
    return {"encoding": encoding}
