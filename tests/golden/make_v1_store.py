"""Make the committed format-1 triplet store and export that tests/test_store_formats.py reads back.

These files were written by the code of commit 24ea7b4 (the last before the store's format 2),
run from a separate checkout of that commit::

    git worktree add /tmp/v1src 24ea7b4
    PYTHONPATH=/tmp/v1src/src python tests/golden/make_v1_store.py
    git worktree remove /tmp/v1src

It writes ``v1_store.sqlite``, its export ``v1_export.parquet`` and ``v1_expected.json``: what
that code read from them (the hash of the triplets of every design together and of each design,
their number, the counts by status). Run with today's code it would write a format-2 store, so
it refuses to: the point of the files is that an older version wrote them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from oddoneout import __version__
from oddoneout.agents.base import Answer
from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.designs import listed_design, random_design, repeated_design
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore, read_judgments_as_triplets, utc_now
from oddoneout.provenance import FORMAT_VERSION

HERE = Path(__file__).resolve().parent
STORE, EXPORT, EXPECTED = HERE / "v1_store.sqlite", HERE / "v1_export.parquet", HERE / "v1_expected.json"
ITEMS = [f"item{i:02d}" for i in range(12)]


def main() -> None:
    if FORMAT_VERSION != 1:
        sys.exit(f"this is format {FORMAT_VERSION} code: run it from a checkout of commit 24ea7b4 (see the docstring)")
    for path in (STORE, EXPORT, EXPECTED):
        path.unlink(missing_ok=True)
    features = np.random.default_rng(7).gamma(1.0, 1.0, size=(len(ITEMS), 3))
    agent = SimulatedAgent(features, ITEMS, "sim", model="simulated-v1", seed=3, return_probs=True)
    with TripletStore(STORE, "sim", "simulated-v1", ITEMS) as store:
        collect(random_design(ITEMS, 150, seed=1, n_orderings=2), agent, store, batch_size=64, progress=False)
        collect(repeated_design(ITEMS, 20, 3, seed=2), agent, store, batch_size=64, progress=False)
        listed = listed_design(ITEMS, [ITEMS[:3], ITEMS[3:6], ITEMS[6:9], ITEMS[9:12]], name="listed")
        answers = [Answer(2), Answer(None, "unparseable", raw="no idea"), Answer(0), Answer(None, "timeout")]
        store.add(listed, answers, utc_now(), utc_now(), agent="sim", model="simulated-v1")
        store.export_parquet(EXPORT)
    designs = ("random", "repeats", "listed")
    expected = {
        "made_by": f"oddoneout {__version__} at commit 24ea7b4 (tests/golden/make_v1_store.py)",
        "format_version": FORMAT_VERSION,
        "triplets_hash": read_judgments_as_triplets(STORE).hash(),
        "n_ok": len(read_judgments_as_triplets(STORE)),
        "design_hashes": {name: read_judgments_as_triplets(STORE, design=name).hash() for name in designs},
        "export_triplets_hash": read_judgments_as_triplets(EXPORT).hash(),
        "n_judgments": 150 * 2 + 20 * 3 + 4,
    }
    EXPECTED.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {STORE.name}, {EXPORT.name}, {EXPECTED.name}")


if __name__ == "__main__":
    main()
