"""Make the committed format-2 triplet store and export that tests read back (test_store_formats, test_cost).

These files were written by the code of commit d4f89be (the last before the store's format 3,
which added the usage columns), run from a separate copy of that commit::

    git archive d4f89be src | tar -x -C /tmp/v2src
    PYTHONPATH=/tmp/v2src/src python tests/golden/make_v2_store.py

It writes ``v2_store.sqlite`` and its export ``v2_export.parquet``: 40 odd-one-out and 10 anchor
judgments of a simulated agent (no tokens) and 4 listed judgments whose answers report their
total tokens (10, 20, 30 and none), each batch asked over a fixed interval, so that the tests can
check what cost an older store shows (totals known, prompt/completion splits and images not).
Run with today's code it would write a format-3 store, so it refuses to.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from oddoneout.agents.base import Answer
from oddoneout.collect.designs import listed_design, random_design
from oddoneout.collect.store import TripletStore
from oddoneout.provenance import format_version
from oddoneout.triplets import ANCHOR

HERE = Path(__file__).resolve().parent
STORE, EXPORT = HERE / "v2_store.sqlite", HERE / "v2_export.parquet"
ITEMS = [f"item{i:02d}" for i in range(12)]


def main() -> None:
    if format_version("triplets") != 2:
        sys.exit("this is not format-2 code: run it from a copy of commit d4f89be (see the docstring)")
    for path in (STORE, EXPORT):
        path.unlink(missing_ok=True)
    choices = np.random.default_rng(4).integers(0, 3, size=40).tolist()
    with TripletStore(STORE, "sim", "simulated-v2", ITEMS) as store:
        odd = random_design(ITEMS, 40, seed=1, name="random")
        store.add(odd, [Answer(c) for c in choices], "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:40+00:00")
        anchor = random_design(ITEMS, 10, seed=2, name="anchor", trial_type=ANCHOR)
        store.add(anchor, [Answer(1 + i % 2) for i in range(10)], "2026-01-01T00:01:00+00:00",
                  "2026-01-01T00:01:05+00:00")  # fmt: skip
        listed = listed_design(ITEMS, [ITEMS[:3], ITEMS[3:6], ITEMS[6:9], ITEMS[9:12]], name="listed")
        answers = [Answer(2, tokens=10), Answer(None, "unparseable", raw="?", tokens=20), Answer(0, tokens=30),
                   Answer(None, "timeout")]  # fmt: skip
        store.add(listed, answers, "2026-01-01T00:02:00+00:00", "2026-01-01T00:02:04+00:00")
        store.export_parquet(EXPORT)
    print(f"wrote {STORE.name}, {EXPORT.name}")


if __name__ == "__main__":
    main()
