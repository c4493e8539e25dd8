"""Tests of the study folder: every path inside it, the guard, and the round trip of its table schemas."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from oddoneout.errors import InputError
from oddoneout.study_folder import (
    ANALYSES,
    CEILING_COLUMNS,
    ROI_COLUMNS,
    STATISTICS,
    InterpretFiles,
    StudyFolder,
    SystemFiles,
    nan_to_none,
    read_class_shares,
    read_json,
    read_roi_table,
    read_table,
    roi_frame,
    write_json,
    write_roi_table,
)


def every_path(folder: StudyFolder) -> list:
    """One path of every kind the folder hands out."""
    paths = [
        folder.config, folder.stimuli, folder.summary, folder.timings, folder.report, folder.cache,
        folder.world_view("mllm"), folder.truth, folder.systems_rsa, folder.cross_accuracy, folder.between_systems,
        folder.subject("sub-01"), folder.ceiling_table, folder.ceiling_voxels("sub-01"), folder.variance_partition,
        folder.encoding_result("mllm", "sub-01"), folder.rsa_result("sub-01"),
    ]  # fmt: skip
    system, interpret = folder.system("mllm"), folder.interpret("mllm")
    paths += [getattr(system, f.name) for f in fields(SystemFiles)]
    paths += [getattr(interpret, f.name) for f in fields(InterpretFiles)]
    for analysis in ANALYSES:
        paths += [folder.roi_table(analysis), *(folder.statistics(analysis, table) for table in STATISTICS)]
    return paths


def test_every_path_lies_inside_the_folder_and_none_is_shared(tmp_path):
    folder = StudyFolder(tmp_path / "out")
    paths = every_path(folder)
    assert all(p.resolve().is_relative_to((tmp_path / "out").resolve()) for p in paths)
    assert len(set(paths)) == len(paths)
    # asking again gives the same paths (and is no clash)
    assert every_path(folder) == paths


def test_the_layout_of_docs_formats(tmp_path):
    folder = StudyFolder(tmp_path)
    relative = {str(p.relative_to(tmp_path)) for p in every_path(folder)}
    for name in ("triplets/mllm.sqlite", "split/mllm_test.npy", "embeddings/mllm_dims.csv", "evaluation/mllm.json",
                 "interpret/mllm_class_shares.csv", "interactive/mllm_map.html", "encoding/mllm_sub-01.npz",
                 "encoding/ceiling/sub-01.npz", "rsa/winners.csv", "world/view_mllm.parquet"):  # fmt: skip
        assert name in relative, name


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "a\\b", "/abs"])
def test_names_that_would_leave_the_folder_are_refused(tmp_path, name):
    folder = StudyFolder(tmp_path)
    with pytest.raises(InputError, match="study folder"):
        folder.system(name)
    with pytest.raises(InputError, match="study folder"):
        folder.subject(name)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "evaluation").symlink_to(outside)
    with pytest.raises(InputError, match="outside the study folder"):
        StudyFolder(tmp_path / "out").system("mllm")


def test_two_files_sharing_one_path_are_refused(tmp_path):
    folder = StudyFolder(tmp_path)
    folder.encoding_result("a_b", "c")
    with pytest.raises(InputError, match="would share one file"):
        folder.encoding_result("a", "b_c")


def test_found_lists_the_systems_with_a_file(tmp_path):
    folder = StudyFolder(tmp_path)
    assert folder.found("evaluation") == {}
    for name in ("b", "a"):
        write_json(folder.system(name).evaluation, {"accuracy": 0.5})
    (tmp_path / "evaluation" / "notes.txt").write_text("not an evaluation")
    assert list(folder.found("evaluation")) == ["a", "b"]
    assert folder.subject_files() == []


def test_json_round_trip_is_sorted_strict_and_byte_stable(tmp_path):
    path = StudyFolder(tmp_path).summary
    obj = {"b": np.float64(0.5), "a": [np.int64(3), np.arange(2)], "c": nan_to_none({"x": math.nan, "y": [math.inf]})}
    write_json(path, obj)
    first = path.read_bytes()
    assert read_json(path) == {"a": [3, [0, 1]], "b": 0.5, "c": {"x": None, "y": [None]}}
    write_json(path, read_json(path))
    assert path.read_bytes() == first
    assert first.index(b'"a"') < first.index(b'"b"')


def test_read_json_errors(tmp_path):
    path = tmp_path / "x.json"
    assert read_json(path, missing_ok=True) == {}
    with pytest.raises(InputError, match="not found"):
        read_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        read_json(path)
    path.write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        read_json(path)


def test_roi_table_round_trip_keeps_ids_as_text(tmp_path):
    path = StudyFolder(tmp_path).roi_table("encoding")
    table = roi_frame([("0001", "mllm", "007", 0.25), ("0002", "llm", "007", -0.5)])
    write_roi_table(table.assign(extra=1), path)
    assert path.read_text().splitlines()[0] == ",".join(ROI_COLUMNS)
    again = read_roi_table(path)
    pd.testing.assert_frame_equal(again, table.astype({"r": float}))
    assert again["subject"].tolist() == ["0001", "0002"]
    assert read_roi_table(tmp_path / "absent.csv") is None


def test_roi_table_errors(tmp_path):
    path = tmp_path / "roi_r.csv"
    path.write_text("subject,system,roi\ns,a,VC\n")
    with pytest.raises(InputError, match=r"\['r'\]"):
        read_roi_table(path)
    path.write_text("subject,system,roi,r\ns,a,VC,high\n")
    with pytest.raises(InputError, match="non-numeric r in row"):
        read_roi_table(path)
    with pytest.raises(InputError, match="lacks column"):
        write_roi_table(pd.DataFrame({"subject": ["s"]}), path)


def test_tables_round_trip(tmp_path):
    folder = StudyFolder(tmp_path)
    ceiling = pd.DataFrame([("01", "VC", 0.4, 10, 2.0, "split_half")], columns=list(CEILING_COLUMNS))
    folder.ceiling_table.parent.mkdir(parents=True)
    ceiling.to_csv(folder.ceiling_table, index=False)
    pd.testing.assert_frame_equal(read_table(folder.ceiling_table, CEILING_COLUMNS), ceiling)
    with pytest.raises(InputError, match="missing column"):
        read_table(folder.ceiling_table, ["absent"])
    shares = pd.DataFrame({"categorical": [0.25], "n_dims": [4]}, index=pd.Index(["007"], name="system"))
    path = folder.interpret("007").class_shares
    path.parent.mkdir(parents=True)
    shares.to_csv(path)
    pd.testing.assert_frame_equal(read_class_shares(path), shares)
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="malformed"):
        read_table(tmp_path / "bad.csv")
