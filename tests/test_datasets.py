"""Public similarity data sets: checksummed fetch, cache, offline sources, parsing, validation, trial archive, CLI.

Every file here is a small file made by the test in the layout of the real one (never the real
data), served from a real HTTP server on 127.0.0.1; the registry entries are copied with these
files' addresses and sha256 (``dataclasses.replace``), so the code under test is the real fetch
and the real parsers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from file_server import FileServer

from oddoneout.datasets import DATASETS, DatasetSpec, SimilarityDataset, fetch_dataset, read_trial_archive
from oddoneout.errors import InputError
from oddoneout.stimuli.fetch import RemoteFile
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Ranked, load_triplets

# --- a real HTTP server ---------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    with FileServer(root) as server:
        yield server


# --- mimic files ----------------------------------------------------------------------------------


def zip_of(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass
class Mimic:
    """Small files in a data set's real layout, what reading them must give, and a malformed variant."""

    name: str
    files: dict[str, bytes]  # role -> content (stored under the real file name)
    n_trials: int  # as the file counts them (before a most-central trial becomes two rows)
    n_items: int
    check: Callable[[SimilarityDataset], None]
    malformed: dict[str, bytes] = field(default_factory=dict)  # role -> broken content
    problem: str = ""  # in the one-line error about the malformed file


def food() -> Mimic:
    images = ["apple", "bread", "cake", "donut", "egg"]
    members = {f"food100-dataset/images/{name}.jpg": b"\xff\xd8jpeg" for name in images}

    def archive(rows: list[tuple[str, str, str]]) -> bytes:
        text = "".join(";".join(f"images/{name}.jpg" for name in row) + "\n" for row in rows)
        return zip_of({"food100-dataset/all-triplets.csv": text, **members})

    rows = [("apple", "bread", "cake"), ("cake", "donut", "apple"), ("egg", "apple", "bread"), ("donut", "egg", "cake")]

    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == ANCHOR and t.item_ids == tuple(images)
        assert [[t.item_ids[i] for i in row] for row in t.indices] == [list(row) for row in rows]
        assert data.extra.shape == (4, 0)

    return Mimic(
        "food_similarity",
        {"trials": archive(rows)},
        4,
        5,
        check,
        {"trials": archive([rows[0], ("apple", "zucchini", "cake")])},
        "line 2: unknown item 'zucchini'",
    )


def cars() -> Mimic:
    header = "user,central,car_a,car_b,car_c,rt_ms\n"

    def archive(body: str) -> bytes:
        return zip_of({"60_cars_data/survey_data.csv": header + body, "60_cars_data/images/1.jpg": b"jpg"})

    body = "u1,3,1,2,3,1200\nu2,10,10,60,7,845.5\n"

    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == ANCHOR and t.n_items == 60 and t.item_ids[0] == "car01"
        names = [[t.item_ids[i] for i in row] for row in t.indices]
        # (3 | 1, 2) -> [1, 3, 2], [2, 3, 1]; (10 | 60, 7) -> [60, 10, 7], [7, 10, 60]
        assert names == [
            ["car01", "car03", "car02"],
            ["car02", "car03", "car01"],
            ["car60", "car10", "car07"],
            ["car07", "car10", "car60"],
        ]
        assert data.extra["trial"].tolist() == [0, 0, 1, 1]
        assert data.extra["user"].tolist() == ["u1", "u1", "u2", "u2"]
        assert data.extra["rt_ms"].tolist() == [1200, 1200, 845.5, 845.5]

    return Mimic(
        "car_similarity",
        {"trials": archive(body)},
        2,
        60,
        check,
        {"trials": archive("u1,5,1,2,3,1200\n")},
        "line 2: the central car 5 is not one of the cars shown [1, 2, 3]",
    )


def materials() -> Mimic:
    top = "material-appearance-similarity-master/data/"
    images = {
        f"{top}havran1_ennis_298x298_LDR/{n}.jpg": b"jpg"
        for n in ("nickel", "alum-bronze", "chrome", "brass", "chrome-steel")
    }

    def archive(train: dict, test: dict) -> bytes:
        files = {
            f"{top}answers_processed_train.json": json.dumps(train),
            f"{top}answers_processed_test.json": json.dumps(test),
        }
        return zip_of({**files, **images, "material-appearance-similarity-master/README.md": "readme"})

    train = {"answers": [[0, 1, 2], [2, 3, 0]], "agreement": [[2, 1], [3, 0]], "answers_diff": [], "agreement_diff": []}
    test = {"answers": [[1, 2, 3]], "agreement": [[1, 1]]}

    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        # numbered in the order of the sorted file names: "chrome-steel.jpg" < "chrome.jpg"
        assert t.trial_type == ANCHOR and t.item_ids == ("alum-bronze", "brass", "chrome-steel", "chrome", "nickel")
        assert t.indices.tolist() == [
            [0, 1, 2],
            [0, 1, 2],
            [0, 2, 1],
            [2, 3, 0],
            [2, 3, 0],
            [2, 3, 0],
            [1, 2, 3],
            [1, 3, 2],
        ]
        assert data.extra["split"].tolist() == ["train"] * 6 + ["test"] * 2
        assert data.extra["query"].tolist() == [0, 0, 0, 1, 1, 1, 0, 0]
        assert data.extra["n_responses"].tolist() == [3, 3, 3, 3, 3, 3, 2, 2]

    broken = {"answers": [[0, 1, 2]], "agreement": [[2, 1, 0]]}
    return Mimic(
        "material_similarity",
        {"trials": archive(train, test)},
        8,
        5,
        check,
        {"trials": archive(broken, test)},
        "answers_processed_train.json: query 0: expected an answer [reference, a, b] and counts [n_a, n_b]",
    )


def musicians() -> Mimic:
    text = "1 S u0001 4325 393 1603\n1 S u0001 4325 393\n\n2 G u0002 393 4325 5027\n"

    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == ANCHOR and t.item_ids == ("393", "1603", "4325", "5027")
        assert [[t.item_ids[i] for i in row] for row in t.indices] == [["4325", "393", "1603"], ["393", "4325", "5027"]]
        assert data.extra.to_dict("list") == {"judgment": [1, 2], "source": ["S", "G"], "user": ["u0001", "u0002"]}
        assert data.notes == ("1 lines without another artist (5 fields) left out",)

    return Mimic(
        "musician_similarity",
        {"trials": text.encode()},
        2,
        4,
        check,
        {"trials": b"1 S u0001 4325 393 1603\n2 G u0002 393\n"},
        "line 2: expected 5 or 6 fields, found 4",
    )


def _nature_vogue(nature: str, vogue: str) -> bytes:
    return zip_of({"nature/nature_triplets.txt": nature, "vogue/vogue_triplets.txt": vogue, "nature/art1.jpg": b"x"})


_VOGUE = "cover_may10.jpg cover_apr11.jpg cover_jan09.jpg\ncover_jan09.jpg cover_may10.jpg cover_apr11.jpg\n"


def nature() -> Mimic:
    text = "art114.jpg n344019.jpg n1.jpg\nn1.jpg art114.jpg n344019.jpg\n  \nn2.jpg n1.jpg art114.jpg\n"

    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == ODD_ONE_OUT and t.item_ids == ("art114", "n1", "n2", "n344019")
        # the file is already [kept, kept, odd]
        assert [[t.item_ids[i] for i in row] for row in t.indices][0] == ["art114", "n344019", "n1"]
        assert [t.item_ids[i] for i in t.chosen] == ["n1", "n344019", "art114"]

    broken = _nature_vogue("art114.jpg n1.jpg n1.jpg\n", _VOGUE)
    return Mimic(
        "nature_scene_similarity",
        {"trials": _nature_vogue(text, _VOGUE)},
        3,
        4,
        check,
        {"trials": broken},
        "line 1: an item is shown twice in one trial: ['art114', 'n1', 'n1']",
    )


def vogue() -> Mimic:
    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == ODD_ONE_OUT and t.item_ids == ("cover_apr11", "cover_jan09", "cover_may10")
        assert [t.item_ids[i] for i in t.chosen] == ["cover_jan09", "cover_apr11"]

    broken = _nature_vogue("a.jpg b.jpg c.jpg\n", "cover_may10.jpg cover_apr11.jpg\n")
    return Mimic(
        "vogue_cover_similarity",
        {"trials": _nature_vogue("a.jpg b.jpg c.jpg\n", _VOGUE)},
        2,
        3,
        check,
        {"trials": broken},
        "line 1: expected 3 fields, found 2",
    )


def _hdf5(arrays: dict[str, object]) -> bytes:
    h5py = pytest.importorskip("h5py")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        for name, value in arrays.items():
            handle.create_dataset(name, data=value)
    return buffer.getvalue()


def imagenet() -> Mimic:
    # psiz 0.4.1 layout: a catalog of 12 images (ids 100-111), 3 trials showing 9 of them each
    ids = np.arange(100, 112)
    catalog = _hdf5(
        {
            "stimulus_id": ids,
            "stimulus_filepath": np.array([f"n{k % 3:08d}/ILSVRC2012_val_{k:08d}.JPEG".encode() for k in ids]),
            "class_id": ids % 3 + 1,
            "class_map_class_id": np.arange(4),
            "class_map_label": np.array([b"placeholder", b"n01440764", b"n01443537", b"n01484850"]),
        }
    )
    shown = np.array([[100, 101, 102, 103, 104, 105, 106, 107, 108], [108, 100, 109, 110, 111, 101, 102, 103, 104],
                      [111, 110, 109, 100, 101, 102, 103, 104, 105]])  # fmt: skip

    def observations(stimulus_set: np.ndarray) -> bytes:
        n = len(stimulus_set)
        return _hdf5(
            {
                "trial_type": "RankObservations",
                "stimulus_set": stimulus_set,
                "n_select": np.full(n, 2),
                "is_ranked": np.ones(n, dtype=bool),
                "group_id": np.zeros(n, dtype=int),
                "agent_id": np.arange(n) + 7,
                "session_id": np.array([1, 1, 2]),
                "weight": np.ones(n),
                "rt_ms": np.array([3100.0, 2500.0, 4000.0]),
            }
        )

    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == Ranked(8, 2) and t.n_items == 12
        assert t.item_ids[0] == "n00000001/ILSVRC2012_val_00000100.JPEG"
        assert t.indices[0].tolist() == list(range(9))  # reference, first, second choice, the six others
        assert t.indices[1, :3].tolist() == [8, 0, 9]
        assert data.extra["rt_ms"].tolist() == [3100.0, 2500.0, 4000.0]
        assert data.extra["session_id"].tolist() == [1, 1, 2]
        assert data.items["stimulus_id"].tolist() == list(range(100, 112))
        assert data.items["class_label"].iloc[0] == "n01443537"  # 100 % 3 + 1 = class 2

    broken = shown.copy()
    broken[2, 4] = 999
    return Mimic(
        "imagenet_similarity_v1",
        {"trials": observations(shown), "catalog": catalog},
        3,
        12,
        check,
        {"trials": observations(broken)},
        "obs-118.hdf5: trial 2: stimulus 999 is not in the catalog",
    )


def _things_items() -> bytes:
    header = "Word\tWordnet ID\tWordnet ID2\tWordnet ID3\tWordnet ID4\tuniqueID\tWordnet synonyms\n"
    rows = [f'word {k}\tsynset.n.0{k % 9}\t\t\t\tconcept{k:04d}\tsyn, "quoted"\n' for k in range(1854)]
    return (header + "".join(rows)).encode()


def things_similarity() -> Mimic:
    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == ODD_ONE_OUT and t.n_items == 1854 and t.item_ids[0] == "concept0000"
        assert t.indices.tolist() == [[0, 1, 2], [1853, 17, 5]]  # SPoSE layout: odd one out last
        assert data.items.loc["concept0005", "Word"] == "word 5"
        assert data.items["Wordnet synonyms"].iloc[0] == 'syn, "quoted"'

    return Mimic(
        "things_similarity",
        {"trials": b"0 1 2\n1853 17 5\n", "items": _things_items()},
        2,
        1854,
        check,
        {"trials": b"0 1 2\n4 1854 5\n"},
        "data1854_batch5_test10.txt: line 2: item index out of range [0, 1854): [4, 1854, 5]",
    )


def things_odd_one_out() -> Mimic:
    columns = "image1 image2 image3 choice RT noise_ceiling subject_id HIT_nr trial_nr age gender date time dataset"
    header = "\t".join(columns.split()) + "\n"
    rows = [
        "1\t2\t3\t1\t2300\t0\tSUBJ0001\t1\t1\t34\tFemale\t2019-05-02\t10:01:02\t1\n",
        "1854\t10\t20\t3\t1800\t2\tSUBJ0002\t2\t1\tNaN\tMale\t2020-01-09\t11:00:00\t4\n",
        "5\t6\t7\t2\t900\t0\tSUBJ0001\t1\t2\t34\tFemale\t2019-05-02\t10:01:02\t1\n",
    ]

    def check(data: SimilarityDataset) -> None:
        t = data.triplets
        assert t.trial_type == ODD_ONE_OUT and t.n_items == 1854
        # choice = shown position (1-3) of the odd one out -> [kept, kept, odd], 0-based
        assert t.indices.tolist() == [[1, 2, 0], [1853, 9, 19], [4, 6, 5]]
        assert list(data.extra.columns) == [
            "RT", "noise_ceiling", "subject_id", "HIT_nr", "trial_nr", "age", "gender", "date", "time", "dataset"
        ]  # fmt: skip
        assert data.extra["subject_id"].tolist() == ["SUBJ0001", "SUBJ0002", "SUBJ0001"]
        assert data.extra["noise_ceiling"].tolist() == [0, 2, 0]

    broken = header + rows[0] + rows[1].replace("\t3\t1800", "\t4\t1800")
    return Mimic(
        "things_odd_one_out",
        {"trials": (header + "".join(rows)).encode(), "items": _things_items()},
        3,
        1854,
        check,
        {"trials": broken.encode()},
        "triplets_large_final_correctednc_correctedorder.csv: line 3: choice 4 is not a shown position 1-3",
    )


def _mimic(name: str) -> Mimic:
    builders = {
        "food_similarity": food,
        "car_similarity": cars,
        "material_similarity": materials,
        "musician_similarity": musicians,
        "nature_scene_similarity": nature,
        "vogue_cover_similarity": vogue,
        "imagenet_similarity_v1": imagenet,
        "things_similarity": things_similarity,
        "things_odd_one_out": things_odd_one_out,
    }
    return builders[name]()


#: The data sets with a mimic (imagenet_similarity_v2 shares v1's parser and layout).
NAMES = [
    "food_similarity",
    "car_similarity",
    "material_similarity",
    "musician_similarity",
    "nature_scene_similarity",
    "vogue_cover_similarity",
    "imagenet_similarity_v1",
    "things_similarity",
    "things_odd_one_out",
]


def spec_for(mimic: Mimic, server: FileServer, files: dict[str, bytes] | None = None) -> DatasetSpec:
    """The registry entry of ``mimic.name`` with its files served by ``server``, and their sha256.

    ``files`` (role -> content) replace some of the mimic's own, with their own checksums.
    """
    real = DATASETS[mimic.name]
    contents = mimic.files if files is None else {**mimic.files, **files}
    remotes = {}
    for role, remote in real.files.items():
        data = contents[role]
        (server.root / remote.name).write_bytes(data)
        remotes[role] = RemoteFile(remote.name, server.url(remote.name), hashlib.sha256(data).hexdigest(), len(data))
    return dataclasses.replace(real, files=remotes, expected_trials=mimic.n_trials, expected_items=mimic.n_items)


def offline_folder(mimic: Mimic, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for role, remote in DATASETS[mimic.name].files.items():
        (folder / remote.name).write_bytes(mimic.files[role])
    return folder


# --- the registry ---------------------------------------------------------------------------------


def test_registry_entries_are_complete():
    assert len(DATASETS) == 10
    for name, spec in DATASETS.items():
        assert spec.name == name and "trials" in spec.files
        assert spec.citation and spec.license and spec.url.startswith("http")
        for remote in spec.files.values():
            assert remote.url.startswith(("http://", "https://")) and len(remote.sha256) == 64
    # files from one source share a cache folder and environment variable
    assert DATASETS["nature_scene_similarity"].env_var == DATASETS["vogue_cover_similarity"].env_var
    assert DATASETS["things_similarity"].files["items"] == DATASETS["things_odd_one_out"].files["items"]
    assert DATASETS["food_similarity"].env_var == "ODDONEOUT_FOOD_SIMILARITY"


def test_unknown_name_is_refused():
    with pytest.raises(InputError, match="unknown data set 'food'.*food_similarity"):
        fetch_dataset("food")


# --- fetch, cache, parse --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_download_verifies_parses_and_caches(name, served, tmp_path):
    mimic = _mimic(name)
    spec = spec_for(mimic, served)
    cache = tmp_path / "cache"
    data = fetch_dataset(spec, data_dir=cache, progress=False)
    mimic.check(data)
    assert data.name == name and data.citation == spec.citation and data.license == spec.license
    assert len(data.extra) == len(data.triplets)
    for role, remote in spec.files.items():
        assert data.files[role] == cache / spec.folder / remote.name
        assert served.requests[f"/{remote.name}"] == 1
    again = fetch_dataset(spec, data_dir=cache, progress=False)  # from the cache: no request
    assert all(count == 1 for count in served.requests.values())
    np.testing.assert_array_equal(again.triplets.indices, data.triplets.indices)


def test_checksum_mismatch_is_refused_and_nothing_cached(served, tmp_path):
    mimic = _mimic("nature_scene_similarity")
    spec = spec_for(mimic, served)
    (served.root / "nature_and_vogue_triplets.zip").write_bytes(_nature_vogue("a.jpg b.jpg c.jpg\n", _VOGUE))
    remote = spec.files["trials"]
    spec = dataclasses.replace(spec, files={"trials": dataclasses.replace(remote, size=None)})
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="checksum mismatch for nature_and_vogue_triplets.zip") as info:
        fetch_dataset(spec, data_dir=cache, progress=False)
    assert remote.sha256 in str(info.value)
    assert not any((cache / "nature_vogue").iterdir())


def test_modified_offline_file_is_refused(served, tmp_path):
    mimic = _mimic("food_similarity")
    spec = spec_for(mimic, served)
    folder = offline_folder(mimic, tmp_path / "offline")
    (folder / "food100-dataset.zip").write_bytes(mimic.malformed["trials"])
    with pytest.raises(InputError, match="checksum mismatch|wrong size"):
        fetch_dataset(spec, source=folder)
    assert served.requests == {}


@pytest.mark.parametrize("name", ["things_similarity", "musician_similarity"])
def test_offline_source_and_env_var_are_read_in_place_without_network(name, served, tmp_path, monkeypatch):
    mimic = _mimic(name)
    spec = spec_for(mimic, served)
    folder = offline_folder(mimic, tmp_path / "offline")
    cache = tmp_path / "cache"
    from_source = fetch_dataset(spec, source=folder, data_dir=cache)
    mimic.check(from_source)
    assert all(path.parent == folder for path in from_source.files.values())
    monkeypatch.setenv(spec.env_var, str(folder))
    from_env = fetch_dataset(spec, data_dir=cache)
    mimic.check(from_env)
    assert from_env.files == from_source.files
    assert served.requests == {} and not cache.exists()


def test_missing_offline_file_does_not_fall_back_to_the_network(served, tmp_path):
    mimic = _mimic("things_similarity")
    spec = spec_for(mimic, served)
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "data1854_batch5_test10.txt").write_bytes(mimic.files["trials"])  # the item table is missing
    with pytest.raises(InputError, match="items1854names.tsv not found"):
        fetch_dataset(spec, source=folder, data_dir=tmp_path / "cache")
    assert served.requests == {}


@pytest.mark.parametrize("name", NAMES)
def test_malformed_file_is_refused_with_one_line_naming_the_file(name, served, tmp_path):
    mimic = _mimic(name)
    spec = spec_for(mimic, served, files=mimic.malformed)  # checksums of the malformed files: they pass
    with pytest.raises(InputError) as info:
        fetch_dataset(spec, data_dir=tmp_path / "cache", progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert mimic.problem in message
    assert spec.files["trials"].name in message


def test_count_other_than_documented_is_refused(served, tmp_path):
    mimic = _mimic("food_similarity")
    spec = dataclasses.replace(spec_for(mimic, served), expected_trials=190_376)
    with pytest.raises(InputError, match="food100-dataset.zip: expected 190376 trials, found 4"):
        fetch_dataset(spec, data_dir=tmp_path / "cache", progress=False)
    spec = dataclasses.replace(spec, expected_trials=4, expected_items=100)
    with pytest.raises(InputError, match="expected 100 items, found 5"):
        fetch_dataset(spec, data_dir=tmp_path / "cache", progress=False)


def test_most_central_counts_source_trials(served, tmp_path):
    mimic = _mimic("car_similarity")
    spec = dataclasses.replace(spec_for(mimic, served), expected_trials=4)  # 2 trials, 4 anchor rows
    with pytest.raises(InputError, match="expected 4 trials, found 2"):
        fetch_dataset(spec, data_dir=tmp_path / "cache", progress=False)


def test_not_a_zip_archive(served, tmp_path):
    mimic = _mimic("vogue_cover_similarity")
    spec = spec_for(mimic, served, files={"trials": b"<html>moved</html>"})
    with pytest.raises(InputError, match="nature_and_vogue_triplets.zip: not a readable zip archive"):
        fetch_dataset(spec, data_dir=tmp_path / "cache", progress=False)


def test_things_item_table_with_wrong_count_is_refused(served, tmp_path):
    mimic = _mimic("things_similarity")
    spec = spec_for(mimic, served, files={"items": b"Word\ta\tb\tc\td\tuniqueID\nw\t\t\t\t\tx\n"})
    with pytest.raises(InputError, match="items1854names.tsv: expected 1854 concepts, found 1"):
        fetch_dataset(spec, data_dir=tmp_path / "cache", progress=False)


# --- the trial archive ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["car_similarity", "imagenet_similarity_v1", "things_odd_one_out"])
def test_trial_archive_round_trip(name, served, tmp_path):
    import oddoneout.formats  # noqa: F401  (registers the .npz reader)

    data = fetch_dataset(spec_for(_mimic(name), served), data_dir=tmp_path / "cache", progress=False)
    path = data.save(tmp_path / f"{name}.npz")
    archive = read_trial_archive(path)
    assert archive.triplets.hash() == data.triplets.hash()
    assert archive.triplets.trial_type == data.triplets.trial_type
    assert list(archive.extra.columns) == list(data.extra.columns)
    for column in data.extra.columns:
        expected = data.extra[column]
        if pd.api.types.is_numeric_dtype(expected):
            np.testing.assert_array_equal(archive.extra[column].to_numpy(dtype=float), expected.to_numpy(dtype=float))
        else:
            assert archive.extra[column].tolist() == [str(v) for v in expected]
    assert (archive.items is None) == (data.items is None)
    assert archive.record["dataset"] == name and archive.record["citation"] == data.citation
    assert set(archive.record["source_files"]) == {p.name for p in data.files.values()}
    loaded = load_triplets(path)
    assert loaded.hash() == data.triplets.hash()
    with pytest.raises(InputError, match="--design applies"):
        load_triplets(path, design="random")


def test_archive_reader_refuses_other_npz_files(tmp_path):
    import oddoneout.formats  # noqa: F401
    from oddoneout.provenance import provenance, write_npz

    path = write_npz(tmp_path / "subject.npz", {"responses": np.zeros((2, 2))}, provenance("neural", subject="s1"))
    with pytest.raises(InputError, match="nor a trial archive"):
        load_triplets(path)
    with pytest.raises(InputError, match="a trial archive is a .npz file"):
        from oddoneout.datasets import save_trial_archive
        from oddoneout.triplets import Triplets

        save_trial_archive(tmp_path / "x.parquet", Triplets(("a", "b", "c"), np.array([[0, 1, 2]])))


# --- the command line -----------------------------------------------------------------------------


def _cli(*args):
    from typer.testing import CliRunner

    from oddoneout.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"ODDONEOUT_PROGRESS": "0"})


@pytest.mark.filterwarnings("ignore::oddoneout.errors.FitWarning")  # a 2-epoch fit of 4 trials
def test_cli_fetch_writes_an_archive_that_fit_reads(served, tmp_path, monkeypatch):
    mimic = _mimic("food_similarity")
    spec = spec_for(mimic, served)
    monkeypatch.setitem(DATASETS, "food_similarity", spec)
    folder = offline_folder(mimic, tmp_path / "offline")
    result = _cli("fetch", "food_similarity", "--from", folder, "--out", tmp_path / "food.npz")
    assert result.exit_code == 0, result.output
    assert "food_similarity: 4 anchor trials over 5 items verified" in result.output
    assert "Wilber" in result.output
    archive = read_trial_archive(tmp_path / "food.npz")
    assert archive.triplets.trial_type == ANCHOR and archive.triplets.item_ids[0] == "apple"
    fitted = _cli(
        "fit", tmp_path / "food.npz", "--out", tmp_path / "emb.parquet",
        "--n-dims", "3", "--l1", "0.01", "--max-epochs", "2", "--batch-size", "2",
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    from oddoneout.embedding import Embedding

    assert Embedding.load(tmp_path / "emb.parquet").item_ids == ("apple", "bread", "cake", "donut", "egg")
    scored = _cli("evaluate", tmp_path / "emb.parquet", tmp_path / "food.npz", "--json")
    assert scored.exit_code == 0, scored.output
    assert '"n_triplets": 4' in scored.output


def test_cli_fetch_refuses_unknown_names_wrong_suffix_and_bad_files(served, tmp_path, monkeypatch):
    result = _cli("fetch", "food")
    assert result.exit_code == 2 and "unknown data set 'food'" in result.output
    result = _cli("fetch", "vogue_cover_similarity", "--out", tmp_path / "v.parquet")
    assert result.exit_code == 2 and ".npz trial archive" in result.output
    # the real registry entry: a mimic file fails its real checksum, and nothing is downloaded
    folder = offline_folder(_mimic("vogue_cover_similarity"), tmp_path / "offline")
    result = _cli("fetch", "vogue_cover_similarity", "--from", folder)
    assert result.exit_code == 2 and "checksum mismatch for nature_and_vogue_triplets.zip" in result.output


def test_cli_fetch_help_names_every_data_set():
    result = _cli("fetch", "--help")
    text = " ".join(result.output.replace("│", " ").split())
    assert all(name in text for name in DATASETS), text
