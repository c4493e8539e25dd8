"""Neural figures: bars and significance marks, NIfTI volumes and nilearn maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.stats import compare_systems
from oddoneout.report.brain_figures import (
    brain_map_figure,
    roi_bar_figure,
    significance_mark,
    subject_map_figure,
    volume_from_values,
)
from oddoneout.report.figures import to_png


@pytest.fixture
def roi_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    means = {
        "A": {"mllm": 0.30, "llm": 0.10, "human_category": 0.295},
        "B": {"mllm": 0.0, "llm": 0.0, "human_category": 0.0},
    }
    rows = [
        {"subject": f"s{s}", "system": system, "roi": roi, "r": mu + rng.normal(0, 0.01)}
        for s in range(4)
        for roi, by_system in means.items()
        for system, mu in by_system.items()
    ]
    return pd.DataFrame(rows)


def test_significance_mark():
    assert [significance_mark(q) for q in (0.0005, 0.005, 0.04, 0.2, np.nan)] == ["***", "**", "*", "", ""]


def test_bars_and_marks(roi_table):
    comparisons = compare_systems(roi_table)
    figure = roi_bar_figure(roi_table, comparisons, value_label="RSA r")
    ax = figure.axes[0]
    assert isinstance(figure, Figure)
    assert len(ax.patches) == 2 * 3  # one bar per ROI and system
    marks = [t.get_text() for t in ax.texts if t.get_gid() == "significance"]
    best_vs_other = comparisons[(comparisons["roi"] == "A") & (comparisons["system_a"] == "mllm")]
    expected = sorted(significance_mark(q) for q in best_vs_other["q"] if q < 0.05)
    assert expected and sorted(marks) == expected  # mllm vs llm in A; none in B
    assert ax.patches[0].get_height() == pytest.approx(roi_table.query("roi == 'A' and system == 'mllm'")["r"].mean())
    assert to_png(figure).startswith(b"\x89PNG")


def test_no_marks_without_significance(roi_table):
    comparisons = compare_systems(roi_table).assign(q=0.5)
    figure = roi_bar_figure(roi_table, comparisons)
    assert not [t for t in figure.axes[0].texts if t.get_gid() == "significance"]


def test_volume_from_values():
    coords = np.array([[0, 0, 0], [1, 2, 3], [2, 1, 0]])
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-4, -4, -4]
    image = volume_from_values(np.array([1.0, np.nan, 3.0]), coords, affine)
    volume = np.asarray(image.dataobj)
    assert volume.shape == (3, 3, 4) and volume[2, 1, 0] == 3.0 and volume[1, 2, 3] == 0.0
    np.testing.assert_array_equal(image.affine, affine)
    world = coords @ affine[:3, :3].T + affine[:3, 3]
    same = volume_from_values(np.array([1.0, 2.0, 3.0]), world, affine, world=True)
    assert np.asarray(same.dataobj)[1, 2, 3] == 2.0
    with pytest.raises(InputError, match="outside"):
        volume_from_values(np.ones(3), coords, affine, shape=(2, 2, 2))


@pytest.mark.parametrize("kind", ["stat", "glass"])
def test_brain_map_returns_figure(kind):
    coords = np.stack(np.unravel_index(np.arange(6 * 7 * 5), (6, 7, 5)), axis=1)
    values = np.random.default_rng(0).normal(size=len(coords))
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-10, -10, -5]
    figure = brain_map_figure(values, coords, affine, kind=kind, title="voxel r")
    assert isinstance(figure, Figure) and len(figure.axes) >= 2  # views plus the colour bar
    assert len(to_png(figure)) > 5000


def test_subject_map_of_image_data():
    ijk = np.stack(np.unravel_index(np.arange(4 * 4 * 3), (4, 4, 3)), axis=1)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-4.0, -4.0, 0.0]
    mm = ijk @ affine[:3, :3].T + affine[:3, 3]
    rng = np.random.default_rng(0)
    data = NeuralData(
        "sub-01", rng.normal(size=(5, 48)), np.arange(5).astype(str), np.arange(5), {}, coords=mm, affine=affine
    )
    figure = subject_map_figure(np.linspace(-1, 1, 48), data, title="r")
    assert isinstance(figure, Figure) and len(figure.axes) >= 2
    no_coords = NeuralData("sub-02", rng.normal(size=(5, 48)), np.arange(5).astype(str), np.arange(5), {})
    with pytest.raises(InputError, match="coordinates"):
        subject_map_figure(np.zeros(48), no_coords)
