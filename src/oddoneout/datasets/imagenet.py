"""ImageNet similarity judgments (Roads & Love 2021): 8-rank-2 trials on ImageNet validation images.

A participant saw a reference image and 8 others and picked, in order, the 2 most similar to the
reference; :class:`~oddoneout.triplets.Ranked` ``(8, 2)`` is that trial type. The data are psiz 0.4.1
HDF5 files in the psiz-datasets OSF project (https://osf.io/cn2s3/, storage project ``7f96y``,
``data/deprecated/psiz0.4.1/``): ``obs-118.hdf5`` (version 0.1: one image per ImageNet class,
25,273 trials), ``obs-195.hdf5`` (version 0.2: 50 images per class, 384,277 trials) and
``catalog.hdf5`` (the 50,000 images). OSF file ids and sha256 checksums are those recorded by
cblearn's ``_imagenet_similarity.py`` (the newer version that fetches single files); trial counts
from cblearn's description.

An observation file holds ``stimulus_set`` (trials x 9: the reference, the first and second choice,
then the six unchosen images; psiz 0.4 pads with -1, which these 8-rank-2 trials never need),
``n_select`` (2), ``is_ranked`` (true) and per-trial columns (``rt_ms``, ``session_id``,
``agent_id``, ``group_id``, ``weight``). The catalog maps ``stimulus_id`` to ``stimulus_filepath``
and ``class_id``. Reading them needs ``h5py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from oddoneout.datasets.base import DatasetSpec, Parsed, fail, make_triplets, osf_file
from oddoneout.triplets import Ranked

#: The trial type: a reference, 8 options, the 2 most similar ranked.
RANKED_8_2 = Ranked(8, 2)

OBSERVATIONS_V1 = osf_file("obs-118.hdf5", "ej6sz", "d8a51e689ebd10c7c8a22eb9a52b16a7f18a8d205f4bce434bdaea5ad0d4fe61")
OBSERVATIONS_V2 = osf_file("obs-195.hdf5", "x6dht", "2b4b22c1c5f425eea774e88fded389e188adc4424ba4eb9ca307a5ea732a3d76")
CATALOG = osf_file("catalog.hdf5", "bf3e2", "920d3c577308b256fce2599726bb5eacd433a6250f710dc011048abf20cb85e4")

#: Observation arrays that describe the trial rather than add a column to ``extra``.
_TRIAL_ARRAYS = {"stimulus_set", "n_select", "is_ranked", "n_reference", "trial_type", "class_name"}


def read_hdf5_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every top-level dataset of an HDF5 file as an array.

    Raises
    ------
    InputError
        h5py is not installed, or the file is not HDF5.
    """
    try:
        import h5py
    except ImportError:
        fail(path, "reading HDF5 files needs the h5py package: pip install h5py")
    try:
        with h5py.File(path, "r") as handle:
            return {name: np.asarray(item[()]) for name, item in handle.items() if isinstance(item, h5py.Dataset)}
    except OSError as exc:
        fail(path, f"not a readable HDF5 file ({exc})")


def _text(values: np.ndarray) -> list[str]:
    return [value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in np.ravel(values)]


def parse_imagenet(paths: Mapping[str, Path]) -> Parsed:
    """8-rank-2 trials over the catalog images they show (see the module docstring).

    The vocabulary is the catalog images that appear in the trials, in catalog order; item ids
    are their ``stimulus_filepath`` (e.g. ``n01440764/ILSVRC2012_val_00000293.JPEG``). ``items``
    holds each image's ``stimulus_id`` and ``class_id`` (and ``class_label``, the WordNet id, when
    the catalog maps classes to labels).
    """
    path, catalog_path = paths["trials"], paths["catalog"]
    observations = read_hdf5_arrays(path)
    catalog = read_hdf5_arrays(catalog_path)
    shown = observations.get("stimulus_set")
    width = RANKED_8_2.n_shown
    if shown is None or shown.ndim != 2 or shown.shape[1] != width:
        found = None if shown is None else shown.shape
        fail(path, f"expected a stimulus_set of trials x {width} (reference, 8 options), found {found}")
    n_trials = len(shown)
    name = lambda row: f"trial {row}"  # noqa: E731
    n_select = observations.get("n_select")
    if n_select is not None and (np.ravel(n_select) != RANKED_8_2.n_ranked).any():
        row = int(np.flatnonzero(np.ravel(n_select) != RANKED_8_2.n_ranked)[0])
        fail(path, f"{name(row)}: {np.ravel(n_select)[row]} options chosen, not {RANKED_8_2.n_ranked}")
    is_ranked = observations.get("is_ranked")
    if is_ranked is not None and not np.ravel(is_ranked).astype(bool).all():
        fail(path, f"{name(int(np.flatnonzero(~np.ravel(is_ranked).astype(bool))[0]))}: the choices are not ranked")
    if "stimulus_filepath" not in catalog:
        fail(catalog_path, "no stimulus_filepath array (not a psiz catalog?)")
    filepaths = _text(catalog["stimulus_filepath"])
    stimulus_ids = np.ravel(catalog.get("stimulus_id", np.arange(len(filepaths))))
    if len(stimulus_ids) != len(filepaths):
        fail(catalog_path, f"{len(stimulus_ids)} stimulus ids for {len(filepaths)} file paths")
    rows = pd.Index(stimulus_ids).get_indexer(shown.ravel()).reshape(shown.shape)
    if (rows < 0).any():
        row, column = (int(k) for k in np.argwhere(rows < 0)[0])
        fail(path, f"{name(row)}: stimulus {shown[row, column]} is not in the catalog {catalog_path.name}")
    used = np.unique(rows)
    triplets = make_triplets([filepaths[k] for k in used], np.searchsorted(used, rows), RANKED_8_2, path, name)
    extra = {}
    for key, values in sorted(observations.items()):
        if key in _TRIAL_ARRAYS or values.ndim == 0 or len(values) != n_trials:
            continue
        if values.ndim == 1:
            extra[key] = _text(values) if values.dtype.kind in "SO" else values
        else:
            for k in range(int(np.prod(values.shape[1:]))):
                extra[f"{key}_{k}"] = values.reshape(n_trials, -1)[:, k]
    items = pd.DataFrame({"stimulus_id": stimulus_ids[used]}, index=pd.Index(triplets.item_ids, name="item_id"))
    if "class_id" in catalog and len(np.ravel(catalog["class_id"])) == len(filepaths):
        class_id = np.ravel(catalog["class_id"])[used]
        items["class_id"] = class_id
        if "class_map_class_id" in catalog and "class_map_label" in catalog:
            labels = dict(zip(np.ravel(catalog["class_map_class_id"]).tolist(), _text(catalog["class_map_label"])))
            items["class_label"] = [labels.get(int(k), "") for k in class_id]
    return Parsed(triplets, pd.DataFrame(extra, index=pd.RangeIndex(n_trials)), items=items)


_V1 = DatasetSpec(
    name="imagenet_similarity_v1",
    title="ImageNet similarity v0.1: 25,273 8-rank-2 trials over 1,000 validation images (one per class)",
    files={"trials": OBSERVATIONS_V1, "catalog": CATALOG},
    parse=parse_imagenet,
    citation=(
        "Roads, B. D., & Love, B. C. (2021). Enriching ImageNet with human similarity judgments and psychological "
        "embeddings. CVPR 2021 (arXiv:2011.11015)."
    ),
    license="CC BY 4.0 (Brett D. Roads)",
    url="https://osf.io/cn2s3/",
    expected_trials=25_273,
    group="imagenet_similarity",
)

#: Version 0.2 differs from 0.1 only in its observations file (the catalog, source and license are one).
SPECS = (
    _V1,
    dataclasses.replace(
        _V1,
        name="imagenet_similarity_v2",
        title="ImageNet similarity v0.2: 384,277 8-rank-2 trials over the 50,000 validation images",
        files={"trials": OBSERVATIONS_V2, "catalog": CATALOG},
        expected_trials=384_277,
    ),
)
