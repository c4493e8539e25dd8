"""A real check of triplet I/O on the THINGS triplets shipped in shared/ (humans, GPT-4)."""

import numpy as np

from oddoneout.triplets import load_triplets


def _concepts(shared_data, tmp_path):
    names = [
        line.split(" (", 1)[0] for line in (shared_data / "things" / "image_descriptions.txt").read_text().splitlines()
    ]
    ids = [f"{i:04d}_{name}" for i, name in enumerate(names)]  # concept names repeat (homonyms): keep unique
    path = tmp_path / "things_ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return path


def test_things_human_and_gpt4_triplets_load_against_1854_concepts(shared_data, tmp_path):
    items = _concepts(shared_data, tmp_path)
    humans = load_triplets(shared_data / "things" / "2171trials_humans.txt", items)
    gpt4 = load_triplets(shared_data / "things" / "2171trials_GPT_4.txt", items)
    assert humans.n_items == 1854 and len(humans) == 2171 and len(gpt4) == 2171
    assert humans.item_ids[0].endswith("_aardvark")
    # same trials asked of both: the unordered triplets match row by row
    np.testing.assert_array_equal(np.sort(humans.indices, axis=1), np.sort(gpt4.indices, axis=1))
    agreement = np.mean(humans.indices[:, 2] == gpt4.indices[:, 2])
    assert 1 / 3 < agreement < 1.0  # GPT-4 agrees with people well above chance, not perfectly
