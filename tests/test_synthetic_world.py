"""The synthetic world is deterministic, well-formed and carries the structure it claims."""

import numpy as np
import pytest

from oddoneout.neural.data import NeuralData
from oddoneout.stimuli import StimulusSet
from oddoneout.studies.synthetic import CATEGORIES, COMPOSITE_CATEGORIES, DIMENSIONS, ROI_CARRIERS, make_world


@pytest.fixture(scope="module")
def world():
    return make_world(n_items=200, n_subjects=2, voxels_per_roi=30, seed=3)


def test_same_seed_same_world_other_seed_other_world(world):
    again = make_world(n_items=200, n_subjects=2, voxels_per_roi=30, seed=3)
    other = make_world(n_items=200, n_subjects=2, voxels_per_roi=30, seed=4)
    assert world.stimuli.table.equals(again.stimuli.table)
    np.testing.assert_array_equal(world.neural[1].responses, again.neural[1].responses)
    assert not np.allclose(world.truth["z"], other.truth["z"])


def test_ratings_have_the_paper_shapes_and_ranges(world):
    categories = world.stimuli.ratings("category")
    dimensions = world.stimuli.ratings("dimension")
    assert categories.shape == (200, 34) and dimensions.shape == (200, 14)
    assert set(categories.columns) == set(CATEGORIES) | set(COMPOSITE_CATEGORIES)
    assert list(dimensions.columns) == list(DIMENSIONS)
    shares = categories.to_numpy()
    assert shares.min() >= 0 and shares.max() <= 1
    assert 1.0 < shares.sum(axis=1).mean() < 4.0  # several categories ticked per clip, as in the real data
    assert 0.4 < np.mean(shares == 0) < 0.9  # sparse, but not one-hot
    assert dimensions.to_numpy().min() >= 1 and dimensions.to_numpy().max() <= 9


def test_latent_is_a_blend_of_categories_with_gradients(world):
    z = world.truth["z"]
    np.testing.assert_allclose(z.sum(axis=1), 1.0)
    second_largest = np.sort(z, axis=1)[:, -2]
    assert 0.3 < np.mean(second_largest > 0.1) < 0.9  # many, not all, stimuli are blends


def test_category_ratings_track_the_latent(world):
    shares = world.stimuli.ratings("category")[list(CATEGORIES)].to_numpy()
    agreement = np.mean(shares.argmax(axis=1) == world.truth["primary"])
    assert agreement > 0.8


def test_mllm_view_is_closer_to_the_latent_than_llm_view(world):
    upper = np.triu_indices(200, k=1)
    felt = world.truth["intensity"][:, None] * world.truth["z"]
    latent_similarity = (felt @ felt.T)[upper]
    rsa = {}
    for name, view in world.views.items():
        categories = view.filter(like="ategory:" if name == "llm" else "z:").to_numpy()
        assert categories.shape[1] == len(CATEGORIES)
        rsa[name] = np.corrcoef((categories @ categories.T)[upper], latent_similarity)[0, 1]
    assert rsa["mllm"] > 0.9  # it saw the blends and how strong they were
    assert rsa["mllm"] > rsa["llm"] + 0.05  # a caption names only the primary category


def test_captions_name_the_primary_category(world):
    for caption, primary in zip(world.stimuli.table["caption"], world.truth["primary"]):
        assert CATEGORIES[primary].lower() in caption


def test_brain_has_runs_rois_and_coordinates(world):
    data = world.neural[0]
    assert data.responses.shape == (200, 4 * 30)
    assert set(data.rois) == set(ROI_CARRIERS)
    assert sorted(np.unique(data.runs)) == list(range(6))
    assert sorted(data.stimulus_ids) == sorted(world.stimuli.item_ids)
    assert data.coords.shape == (120, 3)
    assert data.metadata["synthetic"] is True


def test_write_round_trips(world, tmp_path):
    paths = world.write(tmp_path)
    stimuli = StimulusSet.load(paths["stimuli"])
    assert stimuli.item_ids == world.stimuli.item_ids
    assert stimuli.table["caption"].tolist() == world.stimuli.table["caption"].tolist()
    data = NeuralData.load(paths["neural_sub-01"])
    np.testing.assert_allclose(data.responses, world.neural[0].responses)
    assert {k: list(v) for k, v in data.rois.items()} == {k: list(v) for k, v in world.neural[0].rois.items()}
