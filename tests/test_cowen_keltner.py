"""Cowen & Keltner loader: the real files (when present) and small corrupted files written here."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from oddoneout.errors import InputError
from oddoneout.stimuli.cowen_keltner import (
    CAPTION_REPEATS,
    CATEGORIES,
    DIMENSIONS,
    ENV_VAR,
    N_CLIPS,
    caption_video_ids,
    load_captions,
    load_cowen_keltner,
    load_ratings,
)

FREE_TERMS = ("arousal", "awe", "zeal")  # "arousal" repeats a dimension name, as in the real file


def write_ratings(path: Path, n_rows: int = N_CLIPS, edit=None) -> Path:
    """A valid ratings CSV (seeded values), optionally edited row by row: ``edit(row_number, row) -> row``."""
    rng = np.random.default_rng(0)
    header = ["Filename", *CATEGORIES, *DIMENSIONS, *FREE_TERMS]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for clip in range(1, n_rows + 1):
            row = [f"{clip:04d}.mp4"]
            row += [f"{v:.5g}" for v in rng.uniform(0, 1, len(CATEGORIES))]
            row += [f"{v:.5g}" for v in rng.uniform(1, 9, len(DIMENSIONS))]
            row += [f"{v:.5g}" for v in rng.uniform(0, 1, len(FREE_TERMS))]
            writer.writerow(edit(clip, row) if edit else row)
    return path


def write_captions(path: Path, per_clip: int = 2, extra_rows: tuple = ()) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "description"])
        for video_id in [*range(1, N_CLIPS + 1), *CAPTION_REPEATS]:
            for k in range(per_clip):
                writer.writerow([video_id, f"clip {video_id}, caption {k}"])
        writer.writerows(extra_rows)
    return path


# --- the real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ck_folder(shared_data):
    folder = shared_data / "cowen_keltner"
    if not (folder / "CowenKeltnerEmotionalVideos.csv").is_file():
        pytest.skip(f"Cowen & Keltner data not found in {folder}")
    return folder


@pytest.fixture(scope="module")
def stimuli(ck_folder):
    return load_cowen_keltner(source=ck_folder)


def test_real_set_counts(stimuli):
    assert len(stimuli) == N_CLIPS == 2185
    assert stimuli.item_ids[:2] == ("0001", "0002") and stimuli.item_ids[-1] == "2185"
    assert list(stimuli.ratings("category").columns) == list(CATEGORIES) and len(CATEGORIES) == 34
    assert list(stimuli.ratings("dimension").columns) == list(DIMENSIONS) and len(DIMENSIONS) == 14
    assert len(stimuli.rating_columns_of(stimuli.table)) == 48
    assert not any(c.startswith("free:") for c in stimuli.table.columns)
    assert stimuli.table["media_path"].isna().all()


def test_real_set_values(stimuli):
    categories = stimuli.ratings("category").to_numpy()
    dimensions = stimuli.ratings("dimension").to_numpy()
    assert categories.min() >= 0 and categories.max() <= 1
    assert dimensions.min() >= 1 and dimensions.max() <= 9
    # First row of the file: Aesthetic Appreciation 0.083333, approach 1.6667.
    assert stimuli.table.loc["0001", "category:Aesthetic Appreciation"] == pytest.approx(0.083333)
    assert stimuli.table.loc["0001", "dimension:approach"] == pytest.approx(1.6667)


def test_real_captions_and_repeats(stimuli, ck_folder):
    counts = stimuli.table["captions"].map(len)
    repeated_clips = [f"{clip:04d}" for clip in range(1, 12)]
    assert (counts.drop(repeated_clips) == 20).all()
    assert (counts[repeated_clips] == 40).all()  # 20 own + 20 from ids 2186-2196
    assert stimuli.table.loc["0001", "caption_video_ids"] == [1, 2186]
    assert stimuli.table.loc["0012", "caption_video_ids"] == [12]
    assert stimuli.table.loc["0001", "caption"].startswith("A set of buildings suffers an electric shock")
    assert (stimuli.table["caption"] == stimuli.table["captions"].map(lambda c: c[0])).all()
    assert stimuli.captions("0011")[-1] == "A dog flips into the air and catches a frisbee thrown by a man."
    captions = load_captions(ck_folder / "caption_ck20.csv")
    assert sum(map(len, captions.values())) == 2196 * 20


def test_real_free_responses(ck_folder):
    ratings = load_ratings(ck_folder / "CowenKeltnerEmotionalVideos.csv", free_responses=True)
    free = [c for c in ratings.columns if c.startswith("free:")]
    assert len(free) == 600
    assert "free:arousal" in free and "dimension:arousal" in ratings.columns


def test_env_var_source_and_roundtrip(ck_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(ck_folder))
    stimuli = load_cowen_keltner(data_dir=tmp_path / "cache")
    assert len(stimuli) == N_CLIPS
    assert not (tmp_path / "cache").exists()  # read in place, not copied
    saved = stimuli.save(tmp_path / "stimuli.parquet")
    again = type(stimuli).load(saved)
    assert again.captions("0001") == stimuli.captions("0001")
    assert np.allclose(again.ratings("dimension"), stimuli.ratings("dimension"))


def test_modified_real_file_fails_checksum(ck_folder, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "caption_ck20.csv").write_bytes((ck_folder / "caption_ck20.csv").read_bytes())
    text = (ck_folder / "CowenKeltnerEmotionalVideos.csv").read_bytes()
    (folder / "CowenKeltnerEmotionalVideos.csv").write_bytes(text.replace(b"0.083333", b"0.083334", 1))
    with pytest.raises(InputError, match="checksum mismatch for CowenKeltnerEmotionalVideos.csv"):
        load_cowen_keltner(source=folder)


# --- ratings validation on small written files -----------------------------------------------


def test_synthetic_ratings_load(tmp_path):
    ratings = load_ratings(write_ratings(tmp_path / "r.csv"))
    assert ratings.shape == (N_CLIPS, 48)
    assert ratings.index.name == "item_id" and ratings.index[0] == "0001"
    assert ratings.columns[0] == "category:Admiration" and ratings.columns[-1] == "dimension:valence"
    assert load_ratings(tmp_path / "r.csv", free_responses=True).shape == (N_CLIPS, 51)


def test_truncated_ratings(tmp_path):
    path = write_ratings(tmp_path / "r.csv")
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match=r"expected 2185 rows .* found 109\d"):
        load_ratings(path)


def test_missing_category_column(tmp_path):
    path = write_ratings(tmp_path / "r.csv")
    rows = list(csv.reader(path.open()))
    drop = rows[0].index("Awe")
    path.write_text("\n".join(",".join(r[:drop] + r[drop + 1 :]) for r in rows))
    with pytest.raises(InputError, match=r"missing column\(s\) \['Awe'\]"):
        load_ratings(path)


def test_nan_rating_names_row_and_column(tmp_path):
    path = write_ratings(tmp_path / "r.csv", edit=lambda clip, row: row[:5] + ["NaN"] + row[6:] if clip == 7 else row)
    with pytest.raises(InputError, match=r"row 8 \(item 0007\), column 'category:Anger'.*missing or not numeric"):
        load_ratings(path)


def test_non_numeric_and_empty_ratings(tmp_path):
    def garble(clip, row):
        if clip == 3:
            row[35] = "high"  # dimension:approach
        return row

    with pytest.raises(InputError, match=r"row 4 \(item 0003\), column 'dimension:approach': rating 'high'"):
        load_ratings(write_ratings(tmp_path / "a.csv", edit=garble))
    blank = write_ratings(tmp_path / "b.csv", edit=lambda clip, row: row[:-1] + [""] if clip == 2185 else row)
    with pytest.raises(InputError, match=r"row 2186 .*'free:zeal'"):
        load_ratings(blank, free_responses=True)


def test_out_of_range_rating(tmp_path):
    path = write_ratings(tmp_path / "r.csv", edit=lambda clip, row: row[:40] + ["12"] + row[41:] if clip == 1 else row)
    with pytest.raises(InputError, match=r"item 0001.*'dimension:control'.*outside \[1, 9\]"):
        load_ratings(path)


def test_duplicate_and_malformed_filenames(tmp_path):
    duplicate = write_ratings(tmp_path / "d.csv", edit=lambda clip, row: ["0005.mp4", *row[1:]] if clip == 6 else row)
    with pytest.raises(InputError, match=r"repeated Filename\(s\) \['0005.mp4'\]"):
        load_ratings(duplicate)
    malformed = write_ratings(tmp_path / "m.csv", edit=lambda clip, row: ["clip9.avi", *row[1:]] if clip == 9 else row)
    with pytest.raises(InputError, match=r"row 10: Filename 'clip9.avi'"):
        load_ratings(malformed)


def test_wrong_row_count_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="expected 2185 rows"):
        load_ratings(write_ratings(tmp_path / "r.csv", n_rows=10))
    with pytest.raises(InputError, match="not found"):
        load_ratings(tmp_path / "absent.csv")


# --- captions validation ---------------------------------------------------------------------


def test_synthetic_captions_merge_repeats(tmp_path):
    captions = load_captions(write_captions(tmp_path / "c.csv"))
    assert len(captions) == N_CLIPS
    assert captions["0001"] == [
        "clip 1, caption 0",
        "clip 1, caption 1",
        "clip 2186, caption 0",
        "clip 2186, caption 1",
    ]
    assert captions["0011"][-1] == "clip 2196, caption 1"
    assert captions["0012"] == ["clip 12, caption 0", "clip 12, caption 1"]
    assert caption_video_ids("0011") == [11, 2196] and caption_video_ids("2185") == [2185]


def test_unknown_caption_id(tmp_path):
    path = write_captions(tmp_path / "c.csv", per_clip=1, extra_rows=[(2197, "a clip that does not exist")])
    with pytest.raises(InputError, match=r"row \d+: unknown video id 2197"):
        load_captions(path)
    path = write_captions(tmp_path / "z.csv", per_clip=1, extra_rows=[("seven", "text")])
    with pytest.raises(InputError, match="video id 'seven' is not an integer"):
        load_captions(path)


def test_captions_missing_column_clip_or_text(tmp_path):
    no_column = tmp_path / "a.csv"
    no_column.write_text("video,description\n1,text\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['video_id'\]"):
        load_captions(no_column)
    partial = tmp_path / "b.csv"
    partial.write_text("video_id,description\n1,text\n")
    with pytest.raises(InputError, match=r"no captions for clip\(s\) \['0002'"):
        load_captions(partial)
    empty_text = write_captions(tmp_path / "c.csv", per_clip=1, extra_rows=[(5, "  ")])
    with pytest.raises(InputError, match="empty caption for video id 5"):
        load_captions(empty_text)
