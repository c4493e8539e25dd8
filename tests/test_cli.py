"""The command line, run as a user runs it: SPoSE-convention files in, embedding and JSON out, clear errors."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from oddoneout.collect.store import check_store
from oddoneout.embedding import Embedding
from oddoneout.triplets import sample_triplets

sys.path.insert(0, str(Path(__file__).parent))
from collector_process import interruptible, stop_with, stored_count, wait_for  # noqa: E402

ENV = {**os.environ, "ODDONEOUT_PROGRESS": "0"}


def oddoneout(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "oddoneout.cli", *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd
    )


@pytest.fixture(scope="module")
def spose_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    weights = np.zeros((60, 3))
    weights[np.arange(60), rng.integers(0, 3, 60)] = rng.uniform(1.5, 3.0, 60)
    triplets = sample_triplets(weights, 24000, seed=1)
    np.save(folder / "train.npy", triplets.indices[:20000])
    np.savetxt(folder / "test.txt", triplets.indices[20000:], fmt="%d")
    (folder / "ids.txt").write_text("\n".join(f"item{i}" for i in range(60)) + "\n")
    return folder


def test_fit_then_evaluate_spose_convention_files(spose_files):
    folder = spose_files
    fit = oddoneout(
        "fit", folder / "train.npy", "--items", folder / "ids.txt", "--out", folder / "emb.parquet", "--n-dims", "10"
    )
    assert fit.returncode == 0, fit.stderr
    embedding = Embedding.load(folder / "emb.parquet")
    assert embedding.item_ids[0] == "item0" and embedding.metadata["method"] == "spose"
    assert embedding.metadata["source_file"].endswith("train.npy")
    result = oddoneout("evaluate", folder / "emb.parquet", folder / "test.txt", "--items", folder / "ids.txt", "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["n_triplets"] == 4000
    assert 0.6 < scores["accuracy"] <= 1.0
    assert scores["accuracy_ci"][0] <= scores["accuracy"] <= scores["accuracy_ci"][1]


def test_fit_spose_options_are_recorded_and_refused_for_vice(spose_files, tmp_path):
    args = ("fit", spose_files / "train.npy", "--items", spose_files / "ids.txt", "--n-dims", "10")
    fit = oddoneout(*args, "--relax", "--no-averaging", "--no-refit", "--out", tmp_path / "relaxed.parquet")
    assert fit.returncode == 0, fit.stderr
    metadata = Embedding.load(tmp_path / "relaxed.parquet").metadata
    assert metadata["hyperparameters"]["relax"] is True
    assert metadata["hyperparameters"]["averaging"] is False
    assert metadata["hyperparameters"]["refit"] is False and "refit" not in metadata
    assert metadata["relaxed_from_epoch"] > 1
    for option in ("--relax", "--no-averaging", "--no-refit"):
        refused = oddoneout(*args, option, "--model", "vice", "--out", tmp_path / "vice.parquet")
        assert refused.returncode == 2 and option in refused.stderr


@pytest.mark.parametrize(
    "rows, message",
    [
        ("0 1 99\n", "out of range"),
        ("0 1 1\n", "repeats an item"),
        ("", "no triplets"),
        ("0 1\n", "N x 3"),
    ],
)
def test_bad_triplet_files_fail_with_one_clear_line(spose_files, tmp_path, rows, message):
    bad = tmp_path / "bad.txt"
    bad.write_text(rows)
    result = oddoneout("fit", bad, "--items", spose_files / "ids.txt", "--out", tmp_path / "emb.parquet")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert str(bad) in result.stderr


def test_unknown_id_and_missing_file(spose_files, tmp_path):
    result = oddoneout("evaluate", tmp_path / "nope.parquet", spose_files / "test.txt")
    assert result.returncode == 2 and "not found" in result.stderr
    (tmp_path / "short_ids.txt").write_text("a\nb\nc\n")
    result = oddoneout(
        "fit", spose_files / "train.npy", "--items", tmp_path / "short_ids.txt", "--out", tmp_path / "e.parquet"
    )
    assert result.returncode == 2 and "out of range [0, 3)" in result.stderr


def test_run_rejects_an_unknown_system(tmp_path):
    from oddoneout.studies import builtin_config

    result = oddoneout("run", builtin_config("synthetic"), "--out", tmp_path, "--system", "telepathy")
    assert result.returncode == 2 and "unknown system" in result.stderr


def test_fetch_verifies_offline_files_and_writes_the_stimulus_table(shared_data, tmp_path):
    result = oddoneout(
        "fetch", "cowen_keltner", "--from", shared_data / "cowen_keltner", "--out", tmp_path / "ck.parquet"
    )
    assert result.returncode == 0, result.stderr
    from oddoneout.stimuli import StimulusSet

    assert len(StimulusSet.load(tmp_path / "ck.parquet")) == 2185
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "CowenKeltnerEmotionalVideos.csv").write_text("Filename,Admiration\n0001.mp4,0.1\n")
    result = oddoneout("fetch", "cowen_keltner", "--from", tmp_path / "broken")
    assert result.returncode == 2 and "CowenKeltnerEmotionalVideos.csv" in result.stderr


def test_set_overrides_config_values_and_rejects_malformed_ones(tmp_path):
    from oddoneout.cli import _overrides
    from oddoneout.errors import InputError

    assert _overrides(3, ["design.n_triplets=7100000", "embedding.l1=[0.005, 0.01]", "study.name=ck"]) == {
        "design": {"n_triplets": 7100000},
        "embedding": {"l1": [0.005, 0.01]},
        "study": {"name": "ck", "seed": 3},
    }
    with pytest.raises(InputError, match="section.key=value"):
        _overrides(None, ["n_triplets=5"])
    from oddoneout.studies import builtin_config

    result = oddoneout("run", builtin_config("synthetic"), "--out", tmp_path, "--set", "design.n_triplet=5")
    assert result.returncode == 2 and "unknown key(s) ['n_triplet']" in result.stderr


def test_status_of_a_collected_store(tmp_path):
    from oddoneout.pipeline import run_study
    from oddoneout.studies import builtin_config

    overrides = {
        "stimuli": {"n_items": 30, "n_subjects": 1},
        "design": {"n_triplets": 500, "repeated_triplets": 0, "exhaustive_items": 0},
    }
    run_study(builtin_config("synthetic"), tmp_path, stages=("collect",), systems=["llm"], overrides=overrides)
    result = oddoneout("status", tmp_path / "triplets" / "llm.sqlite", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["n_judgments"] == 500 and status["counts"]["ok"] == 500
    assert abs(sum(status["position_bias"]["choice_rate"]) - 1) < 1e-9


def test_run_into_a_file_or_with_a_bad_setting_gives_one_line(tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = oddoneout("run", "synthetic", "--out", tmp_path / "taken")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "is a file" in result.stderr
    result = oddoneout("run", "synthetic", "--out", tmp_path / "out", "--set", "study.seed=-1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "[study] seed: -1" in result.stderr
    assert not (tmp_path / "out").exists()


def test_report_runs_the_report_stage_with_the_saved_config(tmp_path):
    from oddoneout.config import dump_config, load_config
    from oddoneout.studies import builtin_config

    out = tmp_path / "study"
    out.mkdir()
    result = oddoneout("report", out)
    assert result.returncode == 0, result.stderr
    assert "<title>study</title>" in (out / "report.html").read_text()  # no config.toml: the defaults
    config = load_config(builtin_config("synthetic"), {"report": {"title": "Saved title"}})
    (out / "config.toml").write_text(dump_config(config))
    result = oddoneout("report", out)
    assert result.returncode == 0, result.stderr
    assert "<title>Saved title</title>" in (out / "report.html").read_text()


# --- bad or damaged files: one line naming the file and what to do, never a traceback -----------

SMALL_COLLECTION = {
    "stimuli": {"n_items": 30, "n_subjects": 1},
    "design": {"n_triplets": 3000, "repeated_triplets": 0, "exhaustive_items": 0},
}


def invoke(*args):
    """The command run in this process (typer's CliRunner): exit code, stdout and stderr apart."""
    from typer.testing import CliRunner

    from oddoneout.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args], env={"ODDONEOUT_PROGRESS": "0"})


def one_error_line(result, *fragments):
    """The result is exit status 2 with one ``error:`` line on stderr holding every fragment."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert str(fragment) in result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A study folder with the llm system's 3,000 judgments collected (store and export)."""
    from oddoneout.pipeline import run_study
    from oddoneout.studies import builtin_config

    out = tmp_path_factory.mktemp("collected")
    run_study(builtin_config("synthetic"), out, stages=("collect",), systems=["llm"], overrides=SMALL_COLLECTION)
    return out


@pytest.fixture
def study(collected, tmp_path):
    """A fresh copy of the collected study folder to damage."""
    return shutil.copytree(collected, tmp_path / "study")


def garble(path, fraction=0.5, n_bytes=8192):
    """Overwrite ``n_bytes`` in the middle of a file with garbage, keeping its size."""
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(int(size * fraction) // 4096 * 4096)
        file.write(b"\xab" * n_bytes)
    assert path.stat().st_size == size


@pytest.mark.parametrize(
    "npy, message",
    [
        (
            lambda path: np.save(path, np.array([["a", "b", "c"]] * 5)),
            "triplets must be integer item indices, got dtype <U1",
        ),
        (lambda path: path.write_text("0 1 2\n"), "not a NumPy .npy file (no .npy header)"),
        (lambda path: path.write_bytes(np.random.default_rng(0).bytes(300)), "not a NumPy .npy file (no .npy header)"),
    ],
)
def test_fit_refuses_an_npy_file_without_item_indices_in_one_line(tmp_path, npy, message):
    npy(tmp_path / "bad.npy")
    (tmp_path / "items.txt").write_text("a\nb\nc\n")
    result = invoke("fit", tmp_path / "bad.npy", "--items", tmp_path / "items.txt", "--out", tmp_path / "e.parquet")
    assert one_error_line(result, tmp_path / "bad.npy", message)
    assert "pickle" not in result.stderr
    assert not (tmp_path / "e.parquet").exists()


@pytest.mark.parametrize(
    "damage, problem",
    [
        (garble, "not a readable triplet store (database disk image is malformed)"),
        (
            lambda path: path.write_bytes(np.random.default_rng(0).bytes(8192)),
            "not a readable triplet store (file is not a database)",
        ),
        (lambda path: path.write_bytes(b""), "an empty file, not a triplet store"),
    ],
    ids=["garbled", "random", "empty"],
)
def test_a_damaged_store_gives_one_line_and_is_never_rebuilt_over(study, damage, problem):
    store = study / "triplets" / "llm.sqlite"
    damage(store)
    damaged = store.read_bytes()
    remedy = "delete it (or move it away) to start this system's collection over"
    one_error_line(invoke("status", store), f"{store}: {problem}: {remedy}")
    one_error_line(invoke("collect", study / "config.toml", "--out", study, "--system", "llm"), f"{store}: {problem}")
    assert store.read_bytes() == damaged  # refused, not rebuilt
    check = invoke("status", study, "--check")
    assert check.exit_code == 1 and check.stdout == f"{store}: corrupt: {problem}\n"


def test_status_check_reports_ok_or_corrupt_for_every_store(study):
    triplets = study / "triplets"
    result = invoke("status", study, "--check")
    assert result.exit_code == 0 and result.stdout == f"{triplets / 'llm.sqlite'}: ok\n"
    shutil.copy(triplets / "llm.sqlite", triplets / "copy.sqlite")
    garble(triplets / "copy.sqlite")
    result = invoke(
        "status", triplets / "llm.sqlite", triplets / "copy.sqlite", triplets / "llm.parquet", "--check", "--json"
    )
    assert result.exit_code == 1
    records = {record["path"]: record for record in json.loads(result.stdout)}
    assert records[str(triplets / "llm.sqlite")] == {"path": str(triplets / "llm.sqlite"), "ok": True, "problems": []}
    assert records[str(triplets / "llm.parquet")]["ok"] is True
    assert records[str(triplets / "copy.sqlite")]["ok"] is False
    assert "malformed" in records[str(triplets / "copy.sqlite")]["problems"][0]


def test_an_unreadable_parquet_of_the_study_names_the_stage_that_writes_it(study):
    (study / "stimuli.parquet").write_bytes(np.random.default_rng(0).bytes(4096))
    result = invoke("collect", study / "config.toml", "--out", study, "--system", "llm")
    message = one_error_line(result, f"{study / 'stimuli.parquet'}: not a readable Parquet file (")
    assert message.endswith("): re-run the stimuli stage or delete it\n")
    export = study / "triplets" / "llm.parquet"
    export.write_bytes(export.read_bytes()[:1000])
    result = invoke("run", study / "config.toml", "--out", study, "--stage", "fit", "--system", "llm")
    message = one_error_line(result, f"{export}: not a readable Parquet file (")
    assert message.endswith("): re-run the collect stage or delete it\n")
    result = invoke("status", export)  # outside a study run: the general advice
    assert one_error_line(result, f"{export}: not a readable Parquet file (").endswith(
        "): re-run the stage or command that writes it, or delete it\n"
    )


# --- Ctrl-C: exit status 130 and one line saying what is kept ----------------------------------


def test_ctrl_c_during_collect_keeps_the_judgments_and_says_how_to_resume(tmp_path):
    out = tmp_path / "study"
    args = ["collect", "synthetic", "--out", out, "--system", "llm"]
    settings = ["stimuli.n_items=60", "stimuli.n_subjects=1", "design.n_triplets=20000"]
    settings += ["design.repeated_triplets=0", "design.exhaustive_items=0"]
    overrides = [part for setting in settings for part in ("--set", setting)]
    command = [sys.executable, "-m", "oddoneout.cli", *map(str, args), *overrides]
    store = out / "triplets" / "llm.sqlite"
    # one judgment per transaction: slow enough to be interrupted midway
    process = subprocess.Popen(
        [*command, "--set", "design.batch_size=1"], stderr=subprocess.PIPE, env=ENV, preexec_fn=interruptible
    )
    wait_for(lambda: stored_count(store) >= 50, process, "50 stored judgments")
    _, err = stop_with(process, signal.SIGINT)
    assert process.returncode == 130, err.decode()
    assert err.decode() == (
        f"interrupted: judgments stored so far are kept in {out / 'triplets'}/; run the same command again to resume\n"
    )
    kept = stored_count(store)
    assert 50 <= kept < 20000 and check_store(store) == []
    resumed = subprocess.run(command, capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert stored_count(store) == 20000


def test_ctrl_c_during_fit_says_nothing_was_written(spose_files, tmp_path):
    out = tmp_path / "e.parquet"
    args = ["fit", spose_files / "train.npy", "--items", spose_files / "ids.txt", "--out", out]
    args += ["--max-epochs", "100000", "--patience", "100000"]
    # "ready" once the command line is about to run: Ctrl-C before that is Python's, not the command's
    script = "import sys; from oddoneout.cli import app; print('ready', file=sys.stderr, flush=True); app()"
    process = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=interruptible,
    )
    assert process.stderr.readline() == "ready\n"
    time.sleep(1.0)
    assert process.poll() is None
    _, err = stop_with(process, signal.SIGINT)
    assert process.returncode == 130, err
    assert err == "interrupted: nothing was written; run the same command again to fit\n"
    assert not out.exists()


def test_serve_without_its_extra_says_how_to_install_it(tmp_path):
    # a Python where uvicorn cannot be imported (as in an install without the serve extra)
    script = "import sys; sys.modules['uvicorn'] = None; from oddoneout.cli import app; app()"
    result = subprocess.run(
        [sys.executable, "-c", script, "serve", "synthetic", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: oddoneout serve needs the serve extra: pip install 'oddoneout[serve]' "
        "(import of uvicorn halted; None in sys.modules)"
    )
    assert not (tmp_path / "out").exists()
