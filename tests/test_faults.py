"""Faults injected into a whole study run from the command line: kills, a full disk.

The long versions (twenty kills at random moments, concurrent writers, every corrupted file)
are in ``benchmarks/faults.py``.
"""

import resource
import signal
import subprocess
import time

import pytest
from fault_study import ENV, compare, run, run_command, run_killed, stored_answers, summary


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    around = tmp_path_factory.mktemp("reference")
    out = around / "out"
    start = time.perf_counter()
    result = run(out, cwd=around)
    assert result.returncode == 0, result.stderr
    seconds = time.perf_counter() - start
    outside = [path for path in around.rglob("*") if path != out and out not in path.parents]
    assert outside == []  # the run wrote nothing beside its output folder (nor in its working folder)
    return out, seconds


def test_killed_twice_then_resumed_gives_the_uninterrupted_run(reference, tmp_path):
    done, _ = reference
    out = tmp_path / "out"
    stages = []
    for heading, delay in (("collect llm", 0.05), ("fit mllm", 0.5)):
        stages.append(run_killed(out, tmp_path / "log.txt", heading, delay))
        before = stored_answers(out)
        result = run(out)
        assert result.returncode == 0, result.stderr
        counts = compare(before, stored_answers(out), stored_answers(done))
        assert counts["lost"] == counts["changed"] == counts["duplicated"] == 0, counts
        assert counts["missing_vs_reference"] == counts["different_answers"] == 0, counts
        assert summary(out) == summary(done), f"killed in {stages[-1]}"
    assert stages[0].startswith("collect") and stages[1].startswith("fit"), stages  # where the kills landed


def _small_files(limit_bytes: int):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def test_a_full_disk_stops_with_one_line_and_loses_nothing(reference, tmp_path):
    """Files limited to 300 kB: the first store fills up mid-collection; smaller batches, the same answers."""
    done, _ = reference
    out = tmp_path / "out"
    batches = ("--set", "design.batch_size=500")
    limit = _small_files(300_000)
    full = subprocess.run(run_command(out, *batches), capture_output=True, text=True, env=ENV, preexec_fn=limit)
    assert full.returncode == 2, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "run the same command again" in last, last
    assert "mllm.sqlite: the triplet store could not be written" in last
    before = stored_answers(out)
    assert len(before) > 0
    result = run(out, *batches)
    assert result.returncode == 0, result.stderr
    counts = compare(before, stored_answers(out), stored_answers(done))
    assert counts["lost"] == counts["changed"] == counts["different_answers"] == 0, counts
    resumed, expected = summary(out), summary(done)
    assert resumed.pop("provenance")["config_hash"] != expected.pop("provenance")["config_hash"]  # batch size
    assert resumed == expected
