"""Load on ``oddoneout serve``: simulated participants on loopback until a design is answered.

A real server (``oddoneout serve`` in its own process, one SQLite store in WAL mode with
``synchronous=FULL``: every answer is on disk before it is acknowledged) and a crowd of async HTTP
clients in this process (``tests/serve_crowd.py``): ``--concurrency`` participants at a time,
each consenting, then answering its leased trials one after the other without pause, new
participants arriving until no trial is left. Printed per concurrency: sustained answers per
second over the whole run, p50 / p99 latency of an answer request, sessions, and the check that
every acknowledged answer is stored exactly once. The clients share the machine with the server,
so the figures are a floor for a server with cores of its own.

Usage::

    python benchmarks/serve_load.py                          # 50 and 200 participants, 3,000 trials each
    python benchmarks/serve_load.py --concurrency 100 --triplets 1000
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_crowd import run_crowd  # noqa: E402
from serve_study import Server, rows, store_path, write_study  # noqa: E402

from oddoneout.provenance import provenance  # noqa: E402


def measure(work: Path, concurrency: int, n_triplets: int, trials_per_session: int) -> dict:
    config = write_study(work / "study", n_triplets=n_triplets, n_items=60, trials_per_session=trials_per_session)
    out = work / "out"
    with Server(config, out) as server:
        result = run_crowd(server.url, concurrency=concurrency, timeout=1800)
        server.stop(signal.SIGTERM)
    keys = rows(store_path(out), "SELECT design, triplet_index, ordering, repeat FROM judgments")
    latencies = np.array(result.latencies) * 1000
    return {
        "concurrency": concurrency,
        "answers": len(result.answered),
        "sessions": result.sessions,
        "seconds": round(result.seconds, 1),
        "answers_per_s": round(len(result.answered) / result.seconds, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
        "stored": len(keys),
        "stored_once_each": len(keys) == len(set(keys)) == len(result.answered) == n_triplets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--triplets", type=int, default=3000, help="Trials in the design (one run per concurrency).")
    parser.add_argument("--trials-per-session", type=int, default=20)
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    args = parser.parse_args()
    results = []
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory(prefix="oddoneout-serve-load-") as tmp:
            results.append(measure(Path(tmp), concurrency, args.triplets, args.trials_per_session))
        print(json.dumps(results[-1]), flush=True)
    print(f"\n{'participants':>12} {'answers/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'sessions':>9} {'stored once':>12}")
    for row in results:
        print(f"{row['concurrency']:>12} {row['answers_per_s']:>10} {row['p50_ms']:>8} {row['p99_ms']:>8} "
              f"{row['sessions']:>9} {str(row['stored_once_each']):>12}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": results, "provenance": provenance("serve_load", **vars(args))},
                                        default=str))  # fmt: skip


if __name__ == "__main__":
    main()
