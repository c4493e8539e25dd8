"""Other tools' triplet files (salmon, cblearn, psiz, SPoSE): round trips, the tools' own conventions, one-line
errors, and the command line fitting and evaluating each (acceptance)."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from oddoneout.embed.evaluate import evaluate_embedding
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.formats import (
    SalmonResponses,
    read_cblearn,
    read_psiz,
    read_salmon,
    read_spose,
    read_triplets,
    write_cblearn,
    write_psiz,
    write_salmon,
    write_spose,
    write_triplets,
)
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Ranked, load_triplets, sample_triplets

IDS = tuple(f"item{i:02d}" for i in range(12))
WEIGHTS = np.random.default_rng(0).uniform(0.0, 1.0, (12, 3))


def same(read, written):
    assert read.trial_type == written.trial_type
    assert read.item_ids == written.item_ids
    np.testing.assert_array_equal(read.indices, written.indices)


@pytest.fixture(scope="module")
def anchor():
    return sample_triplets(WEIGHTS, 300, seed=1, trial_type=ANCHOR, item_ids=IDS)


@pytest.fixture(scope="module")
def ranked():
    return sample_triplets(WEIGHTS, 300, seed=2, trial_type=Ranked(5, 2), item_ids=IDS)


# --- round trips, and each tool's own reading of the written files ---------------------------------------------


def test_salmon_round_trip_keeps_the_answers_columns_and_sides(tmp_path, anchor):
    rng = np.random.default_rng(3)
    columns = pd.DataFrame(
        {
            "sampler": np.where(rng.random(300) < 0.5, "ARR", "Random"),
            "puid": [f"00{i % 17}" for i in range(300)],
            "response_time": rng.uniform(0.5, 4.0, 300),
            "network_latency": rng.uniform(0.01, 0.2, 300),
        }
    )
    responses = SalmonResponses(anchor, columns, rng.random(300) < 0.5)
    path = write_salmon(tmp_path / "responses.csv", responses)
    back = read_salmon(path)
    same(back.triplets, anchor)
    pd.testing.assert_frame_equal(back.columns, columns)
    np.testing.assert_array_equal(back.winner_left, responses.winner_left)
    assert back.columns["puid"][0] == "000"  # participant ids stay text
    # salmon's own reading: df[["head", "winner", "loser"]] is the triplet, the winner is left or right
    frame = pd.read_csv(path)
    np.testing.assert_array_equal(frame[["head", "winner", "loser"]].to_numpy(), anchor.indices)
    on_left = frame["winner"] == frame["left"]
    assert (on_left | (frame["winner"] == frame["right"])).all()
    np.testing.assert_array_equal(on_left, responses.winner_left)
    first = path.read_bytes()
    write_salmon(path, back)
    assert path.read_bytes() == first
    # a subset keeps its columns row by row
    part = back.subset(np.arange(300) % 3 == 0)
    assert len(part) == 100 and part.columns["puid"].tolist() == columns["puid"][::3].tolist()


def test_salmon_ids_come_from_the_filename_columns_or_an_items_list(tmp_path, anchor):
    path = write_salmon(tmp_path / "responses.csv", anchor)
    assert read_salmon(path).triplets.item_ids == IDS
    reversed_ids = tuple(reversed(IDS))
    same(read_salmon(path, items=reversed_ids).triplets, anchor.reindex(reversed_ids))
    bare = pd.read_csv(path)[["head", "left", "right", "winner"]]
    bare.to_csv(tmp_path / "bare.csv", index=False)
    assert read_salmon(tmp_path / "bare.csv").triplets.item_ids == tuple(str(i) for i in range(12))
    same(read_salmon(tmp_path / "bare.csv", items=IDS).triplets, anchor)
    same(load_triplets(tmp_path / "bare.csv", IDS), anchor)  # .csv by its header


@pytest.mark.parametrize("response_format", ["order", "boolean", "count"])
@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".txt"])
def test_cblearn_round_trip(tmp_path, anchor, response_format, suffix):
    if suffix == ".npy" and response_format != "order":
        with pytest.raises(InputError, match="list-order triplets only"):
            write_cblearn(tmp_path / f"t{suffix}", anchor, response_format)
        return
    path = write_cblearn(tmp_path / f"t{suffix}", anchor, response_format)
    same(read_cblearn(path, IDS), anchor)
    same(read_triplets(path, "cblearn", IDS), anchor)
    if suffix == ".npz":
        same(read_cblearn(path), anchor)  # the archive names its items
        same(load_triplets(path), anchor)  # .npz by its arrays


def test_cblearn_files_follow_cblearns_conventions(tmp_path, anchor):
    """list-order rows are (anchor, near, far); a response says whether (i, j, k) holds: True / 1, else False / -1."""
    order = np.load(write_cblearn(tmp_path / "order.npy", anchor))
    np.testing.assert_array_equal(order, anchor.indices)
    with np.load(write_cblearn(tmp_path / "boolean.npz", anchor, "boolean")) as arrays:
        triplet, response = arrays["triplet"], arrays["response"]
    assert response.dtype == bool and (triplet[:, 1] < triplet[:, 2]).all()  # cblearn's canonical form
    np.testing.assert_array_equal(np.where(response[:, None], triplet, triplet[:, [0, 2, 1]]), anchor.indices)
    count = np.loadtxt(write_cblearn(tmp_path / "count.csv", anchor, "count"), delimiter=",", dtype=int)
    assert set(np.unique(count[:, 3])) == {-1, 1}
    np.testing.assert_array_equal(np.where(count[:, 3:] == 1, count[:, :3], count[:, [0, 2, 1]]), anchor.indices)
    text = write_cblearn(tmp_path / "boolean.csv", anchor, "boolean").read_text().splitlines()
    assert text[0].split(",")[3] in ("True", "False")


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".txt"])
@pytest.mark.parametrize("one_based", [False, True])
def test_psiz_round_trip(tmp_path, ranked, suffix, one_based):
    path = write_psiz(tmp_path / f"s{suffix}", ranked, one_based=one_based)
    same(read_psiz(path, IDS, n_ranked=2, one_based=one_based), ranked)
    same(read_psiz(path, IDS, trial_type=Ranked(5, 2), one_based=one_based), ranked)
    if suffix == ".npz":
        same(read_psiz(path, one_based=one_based), ranked)  # n_select and item_ids from the archive
        with np.load(path) as arrays:
            np.testing.assert_array_equal(arrays["stimulus_set"], ranked.indices + one_based)
            assert (arrays["n_select"] == 2).all()
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(path), ranked.indices + one_based)


def test_psiz_two_options_one_ranked_is_the_anchor_triplet(tmp_path, anchor):
    path = write_psiz(tmp_path / "s.csv", anchor)
    same(read_psiz(path, IDS), anchor)
    same(read_triplets(path, "psiz", IDS, trial_type="anchor"), anchor)


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".txt"])
def test_spose_round_trip(tmp_path, suffix):
    triplets = sample_triplets(WEIGHTS, 200, seed=4, item_ids=IDS)
    path = write_triplets(tmp_path / f"t{suffix}", triplets, "spose")
    same(read_spose(path, IDS), triplets)
    same(read_triplets(path, "spose", IDS, trial_type="odd_one_out"), triplets)


def test_writers_refuse_trials_their_format_cannot_hold(tmp_path, anchor, ranked):
    odd = sample_triplets(WEIGHTS, 10, seed=5)
    for write, trials in ((write_salmon, odd), (write_cblearn, ranked), (write_psiz, odd), (write_spose, anchor)):
        with pytest.raises(InputError, match="files hold|not"):
            write(tmp_path / "x.csv", trials)
    assert not (tmp_path / "x.csv").exists()


def test_readers_refuse_another_trial_type(tmp_path, anchor):
    path = write_salmon(tmp_path / "r.csv", anchor)
    with pytest.raises(InputError, match="anchor triplets"):
        read_triplets(path, "salmon", trial_type="ranked:8:2")
    with pytest.raises(InputError, match="unknown format"):
        read_triplets(path, "next")


# --- malformed input: one line naming the file, the row and the problem -----------------------------------------

SALMON_HEADER = "head,left,right,winner\n"


def one_line_error(call, *needles):
    with pytest.raises(InputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize(
    "text, items, needles",
    [
        ("head,left,right\n0,1,2\n", None, ["line 1 (header)", "missing column(s) winner"]),
        (SALMON_HEADER + "0,1,2,1\n0,x,2,2\n", None, ["data row 2", "left is not an integer: 'x'"]),
        (SALMON_HEADER + "0,1,2,1\n0,1,2.5,1\n", None, ["data row 2", "right is not an integer"]),
        (SALMON_HEADER + "0,1,2,1\n0,,2,2\n", None, ["data row 2", "left is missing"]),
        (SALMON_HEADER + "0,1,2,1\n0,1,NaN,1\n", None, ["data row 2", "right is missing"]),
        (SALMON_HEADER + "0,1,2,1\n0,1,7,1\n", ["a", "b", "c"], ["data row 2", "item index 7 out of range [0, 3)"]),
        (SALMON_HEADER + "0,-1,2,2\n", None, ["data row 1", "item index -1 out of range"]),
        (SALMON_HEADER + "0,1,2,1\n0,1,2,0\n", None, ["data row 2", "winner 0 is neither left (1) nor right (2)"]),
        (SALMON_HEADER + "0,1,2,1\n0,2,2,2\n", None, ["data row 2", "repeated item in one trial: [0, 2, 2]"]),
        ("head,left,right,winner,loser\n0,1,2,1,0\n", None, ["data row 1", "loser 0 is not the option not chosen"]),
        ("", None, ["empty file"]),
        (SALMON_HEADER, None, ["empty file"]),
        (
            SALMON_HEADER + "0,1,2,1\n0,1,2,1,9\n",
            None,
            ["data row 2 (line 3)", "wrong width: 5 fields, the header has 4"],
        ),
    ],
)
def test_salmon_reader_refuses_malformed_files(tmp_path, text, items, needles):
    path = tmp_path / "responses.csv"
    path.write_text(text)
    one_line_error(lambda: read_salmon(path, items), str(path), *needles)


def test_salmon_reader_refuses_unknown_and_inconsistent_item_names(tmp_path):
    path = tmp_path / "responses.csv"
    path.write_text(
        "head,left,right,winner,head_filename,left_filename,right_filename\n"
        "0,1,2,1,a.png,b.png,c.png\n"
        "0,1,3,3,a.png,b.png,d.png\n"
        "0,1,2,2,a.png,b.png,x.png\n"
    )
    one_line_error(
        lambda: read_salmon(path), str(path), "data row 3", "item index 2 is named 'x.png'", "'c.png'", "data row 1"
    )
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")
    one_line_error(lambda: read_salmon(path, ["a.png", "b.png", "c.png"]), "data row 2", "unknown item id 'd.png'")
    assert read_salmon(path).triplets.item_ids == ("a.png", "b.png", "c.png", "d.png")


@pytest.mark.parametrize(
    "name, content, items, needles",
    [
        ("t.csv", "0,1,2\n0,1,x\n", None, ["line 2 (data row 2)", "column 2 is not an integer: 'x'"]),
        ("t.csv", "0,1,2\n0,1,\n", None, ["line 2", "column 2 is missing"]),
        ("t.csv", "0,1,2\n0,1,5\n", ["a", "b", "c"], ["line 2", "item index 5 out of range [0, 3)"]),
        ("t.csv", "# a comment\n0,1,2\n1,1,2\n", None, ["line 3 (data row 2)", "repeated item"]),
        ("t.csv", "0,1,2\n0,1\n", None, ["line 2", "wrong width: 2 columns, expected 3"]),
        ("t.csv", "0,1\n", None, ["line 1", "wrong width: 2 columns, expected 3 or 4"]),
        ("t.csv", "", None, ["empty file"]),
        ("t.csv", "0,1,2,1\n0,1,2,0\n", None, ["line 2", "response undecided (0)"]),
        ("t.csv", "0,1,2,1\n0,1,2,3\n", None, ["line 2", "response 3"]),
        ("t.csv", "0,1,2,True\n0,1,2,1\n", None, ["line 2", "is not True or False: '1'"]),
        ("t.npy", np.array([[0, 1, 2], [0, 1, 2]], dtype=float) * [[1], [np.nan]], None, ["row 1 (0-based)", "NaN"]),
        ("t.npy", np.array([[0, 1, 2.5]]), None, ["row 0 (0-based)", "not an integer"]),
        ("t.npy", np.zeros((2, 4), dtype=int), None, ["wrong width", "(2, 4)"]),
        ("t.npy", np.zeros((0, 3), dtype=int), None, ["empty file"]),
        ("t.npz", {"triplets": np.array([[0, 1, 2]])}, None, ["missing array 'triplet'"]),
        ("t.npz", {"triplet": np.array([[0, 1, 2]]), "response": np.array([1, 1])}, None, ["'response' has shape"]),
    ],
)
def test_cblearn_reader_refuses_malformed_files(tmp_path, name, content, items, needles):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    else:
        np.save(path, content)
    one_line_error(lambda: read_cblearn(path, items), str(path), *needles)


@pytest.mark.parametrize(
    "content, options, needles",
    [
        ("0,1,2,3\n", {}, ["reference and 3 options", "--n-ranked"]),
        ("0,1,2,3\n0,1,2,-1\n", {"n_ranked": 1}, ["line 2", "item index -1 out of range", "pads shorter trials"]),
        ("0,1,2,3\n", {"trial_type": Ranked(8, 2)}, ["wrong width: 4 columns", "ranked:8:2"]),
        ("0,1,2,3\n", {"trial_type": ODD_ONE_OUT}, ["not odd_one_out trials"]),
        ("1,2,3,4\n1,0,3,4\n", {"n_ranked": 2, "one_based": True}, ["line 2", "0 is psiz's empty slot"]),
        ("0,1,2,3\n0,3,2,3\n", {"n_ranked": 2}, ["line 2", "repeated item"]),
        ("0,1\n", {}, ["line 1", "wrong width: 2 columns"]),
        ("\n\n", {}, ["empty file"]),
    ],
)
def test_psiz_reader_refuses_malformed_files(tmp_path, content, options, needles):
    path = tmp_path / "stimulus_set.csv"
    path.write_text(content)
    one_line_error(lambda: read_psiz(path, **options), str(path), *needles)


def test_psiz_npz_n_select_must_agree(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, stimulus_set=np.array([[0, 1, 2, 3]]), n_select=np.array([1]))
    one_line_error(lambda: read_psiz(path, n_ranked=2), "n_select is 1 in the file")
    assert read_psiz(path).trial_type == Ranked(3, 1)


def test_a_csv_without_salmons_header_is_spose_text_as_before(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("0 1 2\n")
    assert load_triplets(path).indices.tolist() == [[0, 1, 2]]
    path.write_text("0,1,2\n")
    one_line_error(lambda: load_triplets(path), "read as SPoSE text", "--format cblearn")
    assert read_triplets(path, "spose").indices.tolist() == [[0, 1, 2]]


# --- acceptance: the real command line fits and evaluates each tool's files ---------------------------------------

ENV = {**os.environ, "ODDONEOUT_PROGRESS": "0"}
N_ITEMS = 30


def oddoneout(*args):
    return subprocess.run(
        [sys.executable, "-m", "oddoneout.cli", *map(str, args)], capture_output=True, text=True, env=ENV
    )


@pytest.fixture(scope="module")
def planted():
    """A sparse non-negative embedding of 30 items in 4 dimensions: the judge the files come from."""
    rng = np.random.default_rng(0)
    weights = np.zeros((N_ITEMS, 4))
    weights[np.arange(N_ITEMS), rng.integers(0, 4, N_ITEMS)] = rng.uniform(1.0, 2.0, N_ITEMS)
    weights[np.arange(N_ITEMS), rng.integers(0, 4, N_ITEMS)] += rng.uniform(0.3, 1.0, N_ITEMS)
    return Embedding(tuple(f"obj{i:02d}" for i in range(N_ITEMS)), weights)


def fit_and_evaluate(folder, train, heldout, fit_options, evaluate_options):
    fit = oddoneout("fit", train, "--out", folder / "emb.parquet", "--n-dims", "8", *fit_options)
    assert fit.returncode == 0, fit.stderr
    result = oddoneout("evaluate", folder / "emb.parquet", heldout, "--json", "--n-bootstrap", "50", *evaluate_options)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_close_to_the_judge(scores, planted, heldout_trials, chance):
    judge = evaluate_embedding(planted, heldout_trials, n_bootstrap=10)
    assert scores["n_triplets"] == len(heldout_trials)
    assert scores["trial_type"] == heldout_trials.trial_type.spec
    assert scores["accuracy"] > chance + 0.15
    assert abs(scores["accuracy"] - judge["accuracy"]) < 0.05, (scores["accuracy"], judge["accuracy"])


def test_cli_fits_and_evaluates_salmon_responses(tmp_path, planted):
    ids = planted.item_ids
    train = sample_triplets(planted.weights, 6000, seed=1, trial_type=ANCHOR, item_ids=ids)
    heldout = sample_triplets(planted.weights, 2000, seed=2, trial_type=ANCHOR, item_ids=ids)
    rng = np.random.default_rng(7)
    columns = pd.DataFrame({"puid": rng.integers(0, 50, 6000).astype(str), "response_time": rng.uniform(1, 3, 6000)})
    write_salmon(tmp_path / "answers.csv", SalmonResponses(train, columns, rng.random(6000) < 0.5))
    write_salmon(tmp_path / "heldout.csv", heldout)
    scores = fit_and_evaluate(tmp_path, tmp_path / "answers.csv", tmp_path / "heldout.csv", ["--format", "salmon"], [])
    assert_close_to_the_judge(scores, planted, heldout, chance=0.5)
    assert Embedding.load(tmp_path / "emb.parquet").item_ids == ids  # the file's names are the items
    by_format = oddoneout(
        "evaluate", tmp_path / "emb.parquet", tmp_path / "heldout.csv", "--format", "salmon", "--json"
    )
    assert json.loads(by_format.stdout)["accuracy"] == scores["accuracy"]


def test_cli_fits_and_evaluates_cblearn_arrays(tmp_path, planted):
    ids = planted.item_ids
    (tmp_path / "items.txt").write_text("\n".join(ids) + "\n")
    train = sample_triplets(planted.weights, 6000, seed=3, trial_type=ANCHOR, item_ids=ids)
    heldout = sample_triplets(planted.weights, 2000, seed=4, trial_type=ANCHOR, item_ids=ids)
    write_cblearn(tmp_path / "train.npy", train)
    write_cblearn(tmp_path / "heldout.csv", heldout, "count")
    items = ["--items", tmp_path / "items.txt"]
    options = ["--format", "cblearn", *items]
    scores = fit_and_evaluate(tmp_path, tmp_path / "train.npy", tmp_path / "heldout.csv", options, options)
    assert_close_to_the_judge(scores, planted, heldout, chance=0.5)


def test_cli_fits_and_evaluates_psiz_ranked_trials(tmp_path, planted):
    ids = planted.item_ids
    (tmp_path / "items.txt").write_text("\n".join(ids) + "\n")
    kind = Ranked(8, 2)
    train = sample_triplets(planted.weights, 6000, seed=5, trial_type=kind, item_ids=ids)
    heldout = sample_triplets(planted.weights, 2000, seed=6, trial_type=kind, item_ids=ids)
    write_psiz(tmp_path / "train.csv", train)
    write_psiz(tmp_path / "heldout.npy", heldout)
    items = ["--items", tmp_path / "items.txt"]
    scores = fit_and_evaluate(
        tmp_path,
        tmp_path / "train.csv",
        tmp_path / "heldout.npy",
        ["--format", "psiz", "--n-ranked", "2", *items],
        ["--format", "psiz", "--trial-type", "ranked:8:2", *items],
    )
    assert_close_to_the_judge(scores, planted, heldout, chance=1 / 8)


def test_cli_refuses_a_malformed_file_in_one_line(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text(SALMON_HEADER + "0,1,2,1\n0,1,2,5\n")
    result = oddoneout("fit", path, "--format", "salmon", "--out", tmp_path / "emb.parquet")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(path) in result.stderr and "data row 2" in result.stderr and "winner 5" in result.stderr
    result = oddoneout("fit", path, "--n-ranked", "2", "--out", tmp_path / "emb.parquet")
    assert result.returncode == 2 and "need --format" in result.stderr
