"""Public human similarity data sets, fetched with sha256 checks, a cache and offline sources.

:func:`fetch_dataset` returns a :class:`SimilarityDataset`: the trials as
:class:`~oddoneout.triplets.Triplets` of their own trial type (anchor triplets, odd-one-out, or
8-rank-2), meaningful item ids, every further per-trial column of the source (raters, response
times, splits) and the citation and license. Files are found as for the Cowen & Keltner set
(:func:`oddoneout.stimuli.fetch.fetch_file`): an offline folder (``source``, the CLI's
``--from``), else the folder named by ``$ODDONEOUT_<GROUP>`` (:attr:`DatasetSpec.env_var`), else
the cache ``data_home / <group>``, else downloaded; always checksum-verified, then validated.

- :mod:`~oddoneout.datasets.crowd`: food, car, material, musician, nature scene and Vogue cover sets.
- :mod:`~oddoneout.datasets.imagenet`: ImageNet similarity (8-rank-2), versions 0.1 and 0.2.
- :mod:`~oddoneout.datasets.things`: THINGS test triplets (2020) and THINGS-data odd-one-out (2023).
The trial archive ``oddoneout fetch --out`` writes and ``oddoneout fit`` reads is a file format:
:mod:`oddoneout.formats.archive`.

The sets, sizes, sources and licenses are listed in ``docs/datasets.md``.
"""

from __future__ import annotations

from pathlib import Path

from oddoneout.datasets import crowd, imagenet, things
from oddoneout.datasets.base import DatasetSpec, Parsed, SimilarityDataset, fetch
from oddoneout.errors import InputError
from oddoneout.formats.archive import TrialArchive, read_trial_archive, save_trial_archive

#: Every data set by name (tests may replace an entry to point at local files).
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (*crowd.SPECS, *imagenet.SPECS, *things.SPECS)}


def dataset_names() -> list[str]:
    """Names of the registered data sets, sorted."""
    return sorted(DATASETS)


def fetch_dataset(
    dataset: str | DatasetSpec,
    source: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> SimilarityDataset:
    """Fetch (or find offline), verify, read and validate a data set.

    Parameters
    ----------
    dataset : str or DatasetSpec
        A name of :data:`DATASETS` (see :func:`dataset_names`), or a spec.
    source : str or Path, optional
        Offline folder holding the data set's files under their names (read in place, verified). A
        single-file data set also accepts the file itself.
    data_dir : str or Path, optional
        Data home (cache root); default ``$ODDONEOUT_DATA`` or ``~/.cache/oddoneout``. The files
        are cached in ``data_home / DatasetSpec.folder``.
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    SimilarityDataset

    Raises
    ------
    InputError
        An unknown name, a file that is missing offline, fails its checksum or cannot be downloaded,
        a malformed file, or a count other than the documented one; one line naming the file.
    """
    if isinstance(dataset, str):
        if dataset not in DATASETS:
            raise InputError(f"unknown data set {dataset!r}; available: {', '.join(dataset_names())}")
        dataset = DATASETS[dataset]
    return fetch(dataset, source=source, data_dir=data_dir, progress=progress)


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "Parsed",
    "SimilarityDataset",
    "TrialArchive",
    "dataset_names",
    "fetch_dataset",
    "read_trial_archive",
    "save_trial_archive",
]
