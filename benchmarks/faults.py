"""Fault injection into whole study runs from the command line: kills, concurrent writers, bad files, a full disk.

Everything runs ``oddoneout`` in subprocesses on a small synthetic study (``tests/fault_study.py``:
60 items, five systems, every stage; about 20 s a run on 2 cores) and counts what happened:

1. **kills**: ``--kills`` runs SIGKILLed in every stage in turn (stimuli, collect, fit, evaluate,
   interpret, compare, encode, report): once the run prints the heading of a randomly drawn step
   of the stage, after a delay drawn uniformly over that step's duration in the uninterrupted
   run; each resumed by running the same command again. Per kill: the step it hit, judgments stored at the kill, lost or
   changed by the resume, duplicated keys, answers unlike the uninterrupted run's, and whether
   ``summary.json`` is identical to the uninterrupted run's;
2. **writers**: ``--pairs`` times, a second ``oddoneout run`` on a folder a first one is writing:
   whether it stopped with the lock message, and whether the first finished with the reference
   summary;
3. **bad files**: each corrupted, stale or foreign file a stage reads (store, export, stimuli,
   embedding, split, neural data), bad triplet and embedding files given to ``fit`` and
   ``evaluate``, and bad config values: a clear one-line error (exit 2, no traceback), a
   traceback, or silently accepted;
4. **full disk**: two file-size limits (``RLIMIT_FSIZE``) that the collection runs into early
   and later: a one-line error, nothing stored lost, and the resumed run equal to the reference.

Usage::

    python benchmarks/faults.py                        # 20 kills, 5 writer pairs (about 12 min on 2 cores)
    python benchmarks/faults.py --kills 3 --pairs 1    # a quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fault_study import ENV, compare, run, run_command, run_killed, stored_answers, summary, wait_for_lock  # noqa: E402

from oddoneout.provenance import provenance  # noqa: E402


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "oddoneout.cli", *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd
    )


def outcome(result: subprocess.CompletedProcess) -> str:
    """``clear`` (exit 2, the last line an ``error:`` line, no traceback), ``traceback``, ``accepted`` or ``other``."""
    lines = result.stderr.strip().splitlines()
    if "Traceback" in result.stderr:
        return "traceback"
    if result.returncode == 0:
        return "accepted"
    if result.returncode == 2 and lines and lines[-1].startswith("error: "):
        return "clear"
    return "other"


# --- 1. kills ---------------------------------------------------------------------------------


def kills(work: Path, reference: Path, n_kills: int, seed: int) -> list[dict[str, Any]]:
    """Kill ``n_kills`` runs, cycling over the stages: a random moment within a random step of the stage."""
    rng = np.random.default_rng(seed)
    expected, answers = summary(reference), stored_answers(reference)
    timings = json.loads((reference / "timings.json").read_text())
    steps = [label for label in timings if label != "total"]  # e.g. "collect mllm", "report"
    stages = list(dict.fromkeys(label.split()[0] for label in steps))
    rows = []
    for number in range(n_kills):
        stage = stages[number % len(stages)]
        heading = str(rng.choice([label for label in steps if label.split()[0] == stage]))
        delay = float(rng.uniform(0, timings[heading]))
        out = work / f"kill{number}"
        hit = run_killed(out, work / f"kill{number}.log", heading, delay)
        before = stored_answers(out)
        resumed = run(out)
        row = {"kill": number, "after_heading": heading, "delay_s": round(delay, 2), "hit": hit or "(finished first)"}
        row.update(compare(before, stored_answers(out), answers))
        row["resumed"] = resumed.returncode == 0
        row["summary_identical"] = resumed.returncode == 0 and summary(out) == expected
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(out)
    return rows


# --- 2. concurrent writers --------------------------------------------------------------------


def writers(work: Path, reference: Path, n_pairs: int) -> list[dict[str, Any]]:
    rows = []
    for number in range(n_pairs):
        out = work / f"pair{number}"
        first = subprocess.Popen(
            run_command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV
        )
        try:
            wait_for_lock(out, first)
            second = subprocess.run(run_command(out), capture_output=True, text=True, env=ENV)
            _, first_err = first.communicate(timeout=900)
        finally:
            first.kill()
        lines = second.stderr.strip().splitlines()
        row = {
            "pair": number,
            "second_stopped_by_lock": second.returncode == 2 and len(lines) == 1 and "being written by" in lines[0],
            "first_finished": first.returncode == 0,
            "first_summary_identical": first.returncode == 0 and summary(out) == summary(reference),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(out)
    return rows


# --- 3. bad files and configs -----------------------------------------------------------------


def garble(path: Path) -> None:
    """Overwrite 4 kB in the middle of a file with random bytes (same size)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = np.random.default_rng(0).bytes(min(4096, len(data) - middle))
    path.write_bytes(bytes(data))


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(5000))


def truncate(path: Path) -> None:
    path.write_bytes(b"")


def older_split(out: Path) -> None:
    test = out / "split" / "mllm_test.npy"
    np.save(test, np.load(test)[1:])


def older_store(out: Path) -> None:
    """The export of an earlier collection beside a store that has gone on (the store of a bigger design)."""
    shutil.copy(out / "triplets" / "mllm.parquet", out / "mllm.parquet.old")
    result = run(out, "--stage", "collect", "--system", "mllm", "--set", "design.n_triplets=6500")
    assert result.returncode == 0, result.stderr
    shutil.move(out / "mllm.parquet.old", out / "triplets" / "mllm.parquet")


def in_folder(change: Callable[[Path], None], relative: str) -> Callable[[Path], None]:
    return lambda out: change(out / relative)


#: (case, how the study folder is damaged, the command run on it)
FOLDER_CASES: list[tuple[str, Callable[[Path], None], tuple[str, ...]]] = [
    ("store garbled mid-file: fit", in_folder(garble, "triplets/mllm.sqlite"), ("--stage", "fit")),
    ("store garbled mid-file: collect", in_folder(garble, "triplets/mllm.sqlite"), ("--stage", "collect")),
    ("store random bytes: fit", in_folder(random_bytes, "triplets/mllm.sqlite"), ("--stage", "fit")),
    ("store truncated to 0 bytes: collect", in_folder(truncate, "triplets/mllm.sqlite"), ("--stage", "collect")),
    ("export random bytes: fit", in_folder(random_bytes, "triplets/mllm.parquet"), ("--stage", "fit")),
    ("export truncated: evaluate", in_folder(truncate, "triplets/mllm.parquet"), ("--stage", "evaluate")),
    ("export older than its store: fit", older_store, ("--stage", "fit")),
    ("export of a smaller design: fit", lambda out: None, ("--stage", "fit", "--set", "design.n_triplets=9000")),
    ("export of another seed: fit", lambda out: None, ("--stage", "fit", "--seed", "3")),
    ("stimuli.parquet random bytes: fit", in_folder(random_bytes, "stimuli.parquet"), ("--stage", "fit")),
    ("embedding random bytes: evaluate", in_folder(random_bytes, "embeddings/mllm.parquet"), ("--stage", "evaluate")),
    ("split from another fit: evaluate", older_split, ("--stage", "evaluate")),
    ("neural data random bytes: encode", in_folder(random_bytes, "neural/sub-01.npz"), ("--stage", "encode")),
    ("feature table random bytes: collect", in_folder(random_bytes, "world/view_mllm.parquet"), ("--stage", "collect")),
]


def bad_triplet_files(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Bad files for ``oddoneout fit`` and ``evaluate`` (written into ``folder``)."""
    items = folder / "ids.txt"
    items.write_text("\n".join(f"i{k}" for k in range(6)) + "\n")
    good = folder / "good.npy"
    np.save(good, np.array([[0, 1, 2], [1, 2, 3], [3, 4, 5], [0, 4, 5]] * 20))
    files = {
        "string dtype .npy": lambda p: np.save(p, np.array([["a", "b", "c"]] * 5)),
        "text saved as .npy": lambda p: p.write_text("hello, this is text\n"),
        "random bytes as .npy": random_bytes,
        "float .npy with NaN": lambda p: np.save(p, np.array([[0.0, 1.0, np.nan]] * 5)),
        "negative index": lambda p: np.save(p, np.array([[0, 1, -2]] * 5)),
        "index past the items": lambda p: np.save(p, np.array([[0, 1, 60]] * 5)),
        "repeated item in a row": lambda p: np.save(p, np.array([[0, 1, 1]] * 5)),
        "two columns": lambda p: np.save(p, np.array([[0, 1]] * 5)),
        "malformed text file": lambda p: p.write_text("0 1 2\n1 2\nx y z\n"),
    }
    cases = []
    for name, make in files.items():
        suffix = ".txt" if "text file" in name else ".npy"
        path = folder / (name.replace(" ", "_").replace(".", "") + suffix)
        make(path)
        cases.append((f"fit: {name}", ("fit", path, "--items", items, "--out", folder / "e.parquet", "--l1", "0.01")))
    cases.append(("fit: missing file", ("fit", folder / "nope.npy", "--items", items, "--out", folder / "e.parquet")))
    assert cli("fit", good, "--items", items, "--out", folder / "emb.parquet", "--l1", "0.01").returncode == 0
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(folder / "emb.parquet")
    ids = table.column(0).to_pylist()
    ids[1] = ids[0]
    pq.write_table(table.set_column(0, table.schema.field(0), pa.array(ids)), folder / "dup.parquet")
    for case, embedding in (("a duplicated id", "dup.parquet"), ("random bytes", "garbage.parquet")):
        cases.append((f"evaluate: embedding with {case}", ("evaluate", folder / embedding, good, "--items", items)))
    random_bytes(folder / "garbage.parquet")
    unknown = folder / "unknown_ids.txt"
    unknown.write_text("\n".join(f"j{k}" for k in range(6)) + "\n")
    cases.append(("evaluate: unknown ids", ("evaluate", folder / "emb.parquet", good, "--items", unknown)))
    return cases


#: Bad config values, each given with ``--set`` to ``run synthetic``.
BAD_SETTINGS = [
    "stimuli.n_items=2", "stimuli.n_items=0", "stimuli.n_items=-3", 'study.seed="x"', "study.seed=-1",
    "design.n_triplets=true", "design.n_repeats=-1", "design.repeated_triplets=-2", "design.exhaustive_items=-4",
    "design.n_triplets=0", "embedding.l1=-1", "embedding.n_dims=0", "embedding.method=\"pca\"",
    "design.n_tripletz=5", "evaluation.n_bootstrap=-1",
]  # fmt: skip


def bad_files(work: Path, reference: Path) -> list[dict[str, Any]]:
    rows = []

    def record(case: str, result: subprocess.CompletedProcess) -> None:
        lines = result.stderr.strip().splitlines()
        last = lines[-1] if lines else ""
        row = {"case": case, "outcome": outcome(result), "exit": result.returncode, "last_line": last}
        rows.append(row)
        print(json.dumps(row), flush=True)

    for case, damage, args in FOLDER_CASES:
        out = work / "damaged"
        shutil.copytree(reference, out)
        damage(out)
        record(case, run(out, *args))
        shutil.rmtree(out)
    folder = work / "files"
    folder.mkdir()
    for case, args in bad_triplet_files(folder):
        record(case, cli(*args))
    for setting in BAD_SETTINGS:
        record(f"config: {setting}", cli("run", "synthetic", "--out", work / "bad-config", "--set", setting))
    afile = work / "a-file"
    afile.write_text("")
    record("config: --out names a file", cli("run", "synthetic", "--out", afile))
    return rows


# --- 4. full disk -----------------------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), it does not kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def full_disk(work: Path, reference: Path) -> list[dict[str, Any]]:
    rows = []
    batches = ("--set", "design.batch_size=500")
    expected = summary(reference)
    expected.pop("provenance")
    for limit in (300_000, 1_500_000):  # the first store (or its write-ahead log) fills up early, or later
        out = work / f"full{limit}"
        full = subprocess.run(
            run_command(out, *batches), capture_output=True, text=True, env=ENV, preexec_fn=_file_size_limit(limit)
        )
        before = stored_answers(out)
        resumed = run(out, *batches)
        counts = compare(before, stored_answers(out), stored_answers(reference))
        result = summary(out) if resumed.returncode == 0 else {}
        result.pop("provenance", None)
        lines = full.stderr.strip().splitlines()
        row = {
            "file_size_limit": limit,
            "outcome": outcome(full),
            "last_line": lines[-1] if lines else "",
            **counts,
            "resumed": resumed.returncode == 0,
            "summary_identical": result == expected,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(out)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write every row and the counts here.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="oddoneout-faults-") as tmp:
        work = Path(tmp)
        reference = work / "reference"
        start = time.perf_counter()
        result = run(reference)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"the reference run failed:\n{result.stderr}")
        print(f"reference run: {seconds:.1f} s, {len(stored_answers(reference))} judgments", flush=True)
        results = {
            "kills": kills(work, reference, args.kills, args.seed),
            "writers": writers(work, reference, args.pairs),
            "bad_files": bad_files(work, reference),
            "full_disk": full_disk(work, reference),
        }
    counts = summarize(results)
    print(json.dumps(counts, indent=1))
    if args.json:
        args.json.write_text(
            json.dumps({"counts": counts, **results, "provenance": provenance("faults", **vars(args))}, default=str)
        )


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    killed = results["kills"]
    stages: dict[str, int] = {}
    for row in killed:
        stage = row["hit"].split()[0]
        stages[stage] = stages.get(stage, 0) + 1
    outcomes: dict[str, int] = {}
    for row in results["bad_files"]:
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    return {
        "kills": len(killed),
        "stages_hit": stages,
        "judgments_at_kills": sum(row["stored_at_kill"] for row in killed),
        "lost": sum(row["lost"] + row["missing_vs_reference"] for row in killed),
        "changed": sum(row["changed"] for row in killed),
        "duplicated": sum(row["duplicated"] for row in killed),
        "different_answers": sum(row["different_answers"] for row in killed),
        "summary_identical": sum(row["summary_identical"] for row in killed),
        "writer_pairs": len(results["writers"]),
        "second_writer_stopped": sum(row["second_stopped_by_lock"] for row in results["writers"]),
        "first_writer_unharmed": sum(row["first_summary_identical"] for row in results["writers"]),
        "bad_file_cases": len(results["bad_files"]),
        "bad_file_outcomes": outcomes,
        "full_disk_runs": len(results["full_disk"]),
        "full_disk_clear": sum(row["outcome"] == "clear" for row in results["full_disk"]),
        "full_disk_lost": sum(row["lost"] for row in results["full_disk"]),
        "full_disk_resumed_identical": sum(row["summary_identical"] for row in results["full_disk"]),
    }


if __name__ == "__main__":
    main()
