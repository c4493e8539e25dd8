"""Atomic writes: a reader sees the previous complete file or the new one, never half of one.

Real files only: the writers fail for real (a value that cannot be serialised partway through a
file, a killed process), and the tests look at what is left on disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oddoneout.atomic import TEMP_SUFFIX, atomic_open, atomic_path, write_bytes, write_text
from oddoneout.embedding import Embedding
from oddoneout.provenance import read_npz, write_npz
from oddoneout.studies.synthetic import make_world
from oddoneout.study_folder import StudyFolder, read_json, read_table, write_json, write_table

SRC = Path(__file__).resolve().parents[1] / "src"


class Unprintable:
    """A value whose text form cannot be made: serialising it raises."""

    def __str__(self) -> str:
        raise RuntimeError("cannot serialise this value")

    __repr__ = __str__


def leftovers(folder: Path) -> list[str]:
    """Every temporary file under ``folder``."""
    return sorted(p.name for p in folder.rglob(f"*{TEMP_SUFFIX}"))


# --- the helper ----------------------------------------------------------------------------------


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    write_text(target, "old\n")
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent
        assert temporary.name.startswith(".file.txt.") and temporary.name.endswith(TEMP_SUFFIX)
        temporary.write_text("new\n")
        assert target.read_text() == "old\n"  # untouched until the block ends
    assert target.read_text() == "new\n"
    assert leftovers(tmp_path) == []


def test_a_body_that_raises_midway_leaves_the_old_content(tmp_path):
    target = tmp_path / "file.bin"
    write_bytes(target, b"complete old version")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_open(target, "wb") as handle:
            handle.write(b"half of the new ")
            handle.flush()
            raise RuntimeError("killed midway")
    assert target.read_bytes() == b"complete old version"
    assert leftovers(tmp_path) == []


def test_a_failed_first_write_leaves_no_file(tmp_path):
    target = tmp_path / "new" / "file.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as handle:
            handle.write("partial")
            raise KeyboardInterrupt
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_written_files_get_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    target = write_text(tmp_path / "file.txt", "text")
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0o600


def test_atomic_open_refuses_modes_that_do_not_write_a_whole_file(tmp_path):
    for mode in ("a", "r", "r+", "w+"):
        with pytest.raises(ValueError, match="whole new file"):
            with atomic_open(tmp_path / "file.txt", mode):
                pass
    assert list(tmp_path.iterdir()) == []


def test_two_threads_writing_one_file_both_succeed_with_one_complete_version(tmp_path):
    target = tmp_path / "shared.txt"
    versions = {name: "".join(f"{name} line {i}\n" for i in range(20_000)) for name in ("first", "second")}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with atomic_open(target) as handle:
                barrier.wait()  # both are writing at once, each to its own temporary
                for line in versions[name].splitlines(keepends=True):
                    handle.write(line)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_text() in versions.values()
    assert leftovers(tmp_path) == []


# --- the study folder's writers ------------------------------------------------------------------


def test_json_that_cannot_be_serialised_leaves_the_previous_file(tmp_path):
    path = StudyFolder(tmp_path).system("mllm").evaluation
    write_json(path, {"accuracy": 0.6})
    with pytest.raises(RuntimeError, match="cannot serialise"):
        write_json(path, {"accuracy": 0.7, "model": Unprintable()})
    assert read_json(path) == {"accuracy": 0.6}
    assert leftovers(tmp_path) == []


def test_csv_that_fails_partway_through_leaves_the_previous_table(tmp_path):
    path = StudyFolder(tmp_path).interpret("mllm").top_items
    good = pd.DataFrame({"dim": ["d0", "d1"], "item_id": ["0001", "0002"]})
    write_table(good, path, index=False)
    bad = pd.DataFrame({"dim": ["d0", "d1", "d2", "d3"], "item_id": ["0001", "0002", "0003", Unprintable()]})
    with pytest.raises(RuntimeError, match="cannot serialise"):
        write_table(bad, path, index=False, chunksize=1)  # the first rows are on disk when it fails
    pd.testing.assert_frame_equal(read_table(path), good)
    assert leftovers(tmp_path) == []


def test_npz_that_fails_partway_through_leaves_the_previous_file(tmp_path):
    path = StudyFolder(tmp_path).encoding_result("mllm", "sub-01")
    write_npz(path, {"r": np.arange(5.0)}, {"kind": "encoding", "run": 1})
    unpicklable = np.array([threading.Lock()], dtype=object)
    with pytest.raises(TypeError, match="pickle"):
        write_npz(path, {"r": np.arange(50_000.0), "z": unpicklable}, {"kind": "encoding", "run": 2})
    arrays, record = read_npz(path, "encoding result")
    np.testing.assert_array_equal(arrays["r"], np.arange(5.0))
    assert record["run"] == 1
    assert leftovers(tmp_path) == []


def test_embedding_save_that_fails_leaves_the_previous_embedding(tmp_path):
    path = StudyFolder(tmp_path).system("mllm").embedding
    good = Embedding(["a", "b", "c"], np.eye(3), metadata={"fit": 1})
    good.save(path)
    with pytest.raises(RuntimeError, match="cannot serialise"):
        Embedding(["a", "b", "c"], 2 * np.eye(3), metadata={"fit": Unprintable()}).save(path)
    # a write whose final rename fails (a folder stands where the file goes) leaves that folder
    blocked = tmp_path / "blocked.parquet"
    (blocked / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        good.save(blocked)
    assert [p.name for p in blocked.iterdir()] == ["inside"]
    loaded = Embedding.load(path)
    np.testing.assert_array_equal(loaded.weights, np.eye(3))
    assert loaded.metadata["fit"] == 1
    assert leftovers(tmp_path) == []


def test_a_synthetic_world_whose_truth_fails_to_save_keeps_the_previous_truth(tmp_path):
    world = make_world(n_items=60, n_subjects=1, n_runs=2, voxels_per_roi=5, seed=0)
    folder = StudyFolder(tmp_path)
    world.write(folder)
    before = dict(np.load(folder.truth))
    world.truth["broken"] = np.array([threading.Lock()], dtype=object)
    with pytest.raises(TypeError, match="pickle"):
        world.write(folder)
    after = np.load(folder.truth)
    assert sorted(after.files) == sorted(before)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)
    assert leftovers(tmp_path) == []


# --- a killed writer ---------------------------------------------------------------------------

_SLOW_WRITER = """
import sys, time
from oddoneout.atomic import atomic_open
with atomic_open(sys.argv[1], "wb") as handle:
    handle.write(b"half of a new version")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_a_killed_writer_leaves_the_last_complete_version_and_its_temporary_is_ignored(tmp_path):
    folder = StudyFolder(tmp_path)
    path = folder.system("mllm").evaluation
    write_json(path, {"accuracy": 0.6})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout.readline() == "writing\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert read_json(path) == {"accuracy": 0.6}
    (left,) = leftovers(tmp_path)  # the killed writer's temporary stays behind ...
    assert left.startswith(".mllm.json.")
    assert folder.found("evaluation") == {"mllm": path}  # ... and no reader takes it for a result
    write_json(path, {"accuracy": 0.7})
    assert json.loads(path.read_text()) == {"accuracy": 0.7}
    assert leftovers(tmp_path) == [left]  # a later write removes its own temporary only
