"""The study's brain stage: prepare each subject, encode and compare every system's embedding, write the results.

Steps (settings: the config's ``[neural]`` table, see docs/brain.md):

1. Subjects: the synthetic brain (``OUT/neural/<subject>.npz``, written by the stimuli stage) or the
   files of ``subjects`` (``npz``, ``bdata`` or ``nifti``), loaded once, their per-voxel noise
   ceiling computed while the repeated presentations are still there, repeats handled as
   ``repeats`` says, and written to ``OUT/neural/<subject>.npz``; a rerun reuses that file when
   the source file and the loading settings are unchanged.
2. Voxel-wise encoding of every subject from every system (:func:`oddoneout.neural.encoding.encode`):
   ``encoding/roi_r.csv`` (subject, system, roi, r) and ``encoding/<system>_<subject>.npz``.
3. Searchlight RSA (:func:`oddoneout.neural.searchlight.searchlight_rsa`): ``rsa/roi_r.csv`` (same
   layout) and ``rsa/<subject>.npz`` (every system's per-voxel scores).
4. Statistics across subjects (:mod:`oddoneout.neural.stats`), for encoding and RSA each:
   ``comparisons.csv`` (paired two-tailed t-tests between systems per ROI, BH-FDR over the table),
   ``winners.csv`` and ``against_zero.csv``; they need two subjects or more.
5. Noise ceilings: ``encoding/ceiling.csv`` (ROI means) and ``encoding/ceiling/<subject>.npz``.
6. Variance partitioning of configured pairs of systems: ``encoding/variance_partition.csv``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from oddoneout.config import StudyConfig
from oddoneout.config.sections import NEURAL_SOURCES as SOURCES
from oddoneout.config.sections import NeuralSettings
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError, UnreadableFile
from oddoneout.files import open_npz
from oddoneout.neural.data import NeuralData
from oddoneout.neural.encoding import EncodingResult
from oddoneout.progress import console, make_progress, progress_enabled
from oddoneout.provenance import hash_json, provenance, read_npz, write_npz
from oddoneout.study_folder import (
    ANALYSES,
    CEILING_COLUMNS,
    STATISTICS,
    VARIANCE_PARTITION_COLUMNS,
    Analysis,
    StudyFolder,
    read_roi_table,
    read_table,
    roi_frame,
    write_roi_table,
    write_table,
)

__all__ = [
    "SOURCES",
    "neural_files",
    "neural_summary",
    "prepare_subjects",
    "run_neural_stage",
    "searchlight_radius",
]

log = logging.getLogger(__name__)

#: Minimum number of subjects for the t-tests across subjects.
MIN_SUBJECTS = 2


def _say(message: str) -> None:
    """A log line, also shown on the console during a run."""
    log.info(message)
    if progress_enabled():
        console.print(f"  {message}")


# --- subjects ----------------------------------------------------------------------------------


def neural_files(config: StudyConfig, out: Path | StudyFolder) -> list[Path]:
    """The subjects' prepared data files: ``OUT/neural/*.npz`` (synthetic) or the source files of ``subjects``."""
    settings = config.neural
    if settings.source == "synthetic":
        return StudyFolder.of(out).subject_files()
    if settings.source == "none":
        return []
    return [config.resolve(p) for p in settings.subjects]


def _subject_name(config: StudyConfig, index: int, path: Path) -> str:
    names = config.neural.subject_names
    if names and names[index]:
        return str(names[index])
    return path.name.split(".")[0] if config.neural.source == "nifti" else path.stem


def _load_source(config: StudyConfig, index: int, path: Path, subject: str) -> NeuralData:
    """One subject's source file with every presentation kept."""
    settings = config.neural
    source = settings.source
    if not path.is_file():
        raise InputError(f"[neural] subjects: data file not found: {path}")
    if source == "bdata":
        from oddoneout.neural.bdata import load_bdata

        roi_set = None
        if settings.roi_info:
            from oddoneout.neural.rois import horikawa_rois

            roi_set = horikawa_rois(config.resolve(settings.roi_info))
        return load_bdata(path, subject=subject, roi_set=roi_set, repeats="keep")
    if source == "nifti":
        from oddoneout.neural.nifti import load_nifti

        rois = {str(name): config.resolve(mask) for name, mask in settings.roi_masks} or None
        mask = config.resolve(settings.mask) if settings.mask else None
        table = config.resolve(settings.tables[index])
        return load_nifti(path, table, mask=mask, rois=rois, subject=subject, repeats="keep")
    from dataclasses import replace

    data = NeuralData.load(path)
    return replace(data, subject=subject, metadata={**data.metadata, "source": "npz", "path": str(path)})


def _source_key(config: StudyConfig, index: int, path: Path) -> str:
    """What a prepared subject file was made from: a rerun reuses it only when this is unchanged."""
    settings = config.neural
    stat = path.stat()
    related = {
        "tables": settings.tables[index] if settings.source == "nifti" else "",
        "mask": settings.mask,
        "roi_masks": settings.roi_masks,
        "roi_info": settings.roi_info,
    }
    return hash_json(
        {
            "path": str(path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "source": settings.source,
            "repeats": settings.repeats,
            "noise_ceiling": [settings.noise_ceiling, settings.noise_ceiling_method],
            **related,
        }
    )


def _prepared_from(path: Path) -> str | None:
    """The source key of a prepared subject file, read without decompressing its responses."""
    try:
        with open_npz(path) as arrays:
            return json.loads(str(arrays["provenance"])).get("prepared_from")
    except (UnreadableFile, KeyError):
        return None  # not a prepared file: prepare it again


def _has_repeats(data: NeuralData) -> bool:
    return bool(np.unique(data.stimulus_ids).size < data.stimulus_ids.size)


def _write_ceiling(config: StudyConfig, folder: StudyFolder, data: NeuralData) -> None:
    """Per-voxel noise ceiling of data with every presentation kept (``encoding/ceiling/<subject>.npz``)."""
    from oddoneout.neural.noise_ceiling import noise_ceiling

    settings = config.neural
    path = folder.ceiling_voxels(data.subject)
    if not settings.noise_ceiling:
        path.unlink(missing_ok=True)
        return
    if not _has_repeats(data):
        path.unlink(missing_ok=True)
        _say(f"subject {data.subject}: no repeated presentations: no noise ceiling")
        return
    ceiling = noise_ceiling(
        data.responses, data.stimulus_ids, method=settings.noise_ceiling_method, seed=config.study.seed
    )
    write_npz(
        path,
        {"r": ceiling.r, "snr": ceiling.snr},
        provenance(
            "noise_ceiling",
            subject=data.subject,
            n_average=float(ceiling.n_average),
            n_stimuli=ceiling.n_stimuli,
            n_repeated=ceiling.n_repeated,
            method=ceiling.method,
        ),
    )


def prepare_subjects(config: StudyConfig, out: Path | StudyFolder) -> list[Path]:
    """Write (or reuse) ``OUT/neural/<subject>.npz`` for every subject and return their paths.

    ``synthetic``: the files the stimuli stage wrote. ``npz`` / ``bdata`` / ``nifti``: each file of
    ``subjects`` is loaded with every presentation kept, its noise ceiling written (when stimuli
    repeat and ``noise_ceiling`` is on), the ``repeats`` mode applied, and the result saved; an
    existing prepared file made from the same source file and settings is reused as it is.
    """
    from oddoneout.neural.repeats import apply_repeat_mode

    folder = StudyFolder.of(out)
    settings = config.neural
    if settings.source == "none":
        return []
    if settings.source == "synthetic":
        paths = folder.subject_files()
        for path in paths:
            data = NeuralData.load(path)
            _write_ceiling(config, folder, data)
        return paths
    paths = []
    seen: dict[str, Path] = {}
    for index, source in enumerate(neural_files(config, folder.root)):
        subject = _subject_name(config, index, source)
        if subject in seen:
            raise InputError(f"[neural] subjects: {seen[subject]} and {source} both give subject {subject!r}")
        seen[subject] = source
        if not source.is_file():
            raise InputError(f"[neural] subjects: data file not found: {source}")
        target = folder.subject(subject)
        key = _source_key(config, index, source)
        if target.is_file() and _prepared_from(target) == key:
            _say(f"subject {subject}: reusing {target}")
            paths.append(target)
            continue
        data = _load_source(config, index, source, subject)
        _write_ceiling(config, folder, data)
        data = apply_repeat_mode(data, settings.repeats)
        data.metadata["prepared_from"] = key
        paths.append(data.save(target))
        _say(f"subject {subject}: {len(data.runs)} samples x {data.n_voxels} voxels, {len(data.rois)} ROIs")
    return paths


# --- analyses ----------------------------------------------------------------------------------


def searchlight_radius(settings: NeuralSettings, data: NeuralData) -> float:
    """The searchlight radius in the units of ``data.coords``.

    With ``rsa_radius_unit = "voxels"`` the radius counts grid steps: it is multiplied by the
    voxel spacing, the median distance from a voxel to its nearest neighbour.
    """
    radius = float(settings.rsa_radius)
    if settings.rsa_radius_unit == "coords" or data.coords is None or data.n_voxels < 2:
        return radius
    from scipy.spatial import cKDTree

    points = np.asarray(data.coords, dtype=np.float64)
    distances, _ = cKDTree(points).query(points, k=2)
    spacing = float(np.median(distances[:, 1]))
    return radius * spacing if spacing > 0 else radius


def _alphas(settings: NeuralSettings) -> np.ndarray:
    low, high, n = settings.alphas
    return np.logspace(np.log10(low), np.log10(high), int(n))


def _voxel_batch(settings: NeuralSettings) -> int | None:
    batch = int(settings.voxel_batch)
    return batch if batch > 0 else None


def encode_embedding(settings: NeuralSettings, embedding: Embedding, data: NeuralData) -> EncodingResult:
    """Voxel-wise ridge encoding of one subject from an embedding, with the ``[neural]`` settings.

    The brain stage and ``oddoneout encode`` both call this, so they fit the same model.
    """
    from oddoneout.neural.encoding import encode

    return encode(
        embedding.weights,
        embedding.item_ids,
        data,
        n_folds=settings.n_folds,
        alphas=_alphas(settings),
        inner_folds=settings.inner_folds,
        backend=settings.backend,
        voxel_batch=_voxel_batch(settings),
    )


def _encode_subject(
    config: StudyConfig, folder: StudyFolder, data: NeuralData, embeddings: dict[str, Embedding], bar, task
) -> list[dict[str, Any]]:
    rows = []
    for name, embedding in embeddings.items():
        bar.update(task, info=f"{data.subject} {name}")
        result = encode_embedding(config.neural, embedding, data)
        result.save(folder.encoding_result(name, data.subject))
        rows += [{"subject": data.subject, "system": name, "roi": roi, "r": r} for roi, r in result.roi_r.items()]
        bar.advance(task)
    return rows


def _rsa_subject(
    config: StudyConfig, folder: StudyFolder, data: NeuralData, embeddings: dict[str, Embedding]
) -> pd.DataFrame:
    from oddoneout.neural.searchlight import searchlight_rsa
    from oddoneout.rsm import RSM

    settings = config.neural
    models = {name: RSM.from_embedding(e, settings.rsa_similarity) for name, e in embeddings.items()}
    centres = None
    if settings.rsa_centres == "rois" and data.rois:
        centres = np.unique(np.concatenate(list(data.rois.values())))
    result = searchlight_rsa(
        data,
        models,
        radius=searchlight_radius(settings, data),
        shape=settings.rsa_shape,
        method=settings.rsa_method,
        min_voxels=settings.rsa_min_voxels,
        centres=centres,
        seed=config.study.seed,
        n_jobs=settings.rsa_n_jobs,
    )
    result.metadata["radius_setting"] = {"value": settings.rsa_radius, "unit": settings.rsa_radius_unit}
    result.save(folder.rsa_result(data.subject))
    return result.to_frame()


def _variance_partition_subject(
    config: StudyConfig, data: NeuralData, embeddings: dict[str, Embedding]
) -> list[pd.DataFrame]:
    from oddoneout.neural.banded import variance_partitioning

    settings = config.neural
    stimuli = sorted(set(data.stimulus_ids.tolist()))
    frames = []
    for a, b in settings.variance_partition:
        partition = variance_partitioning(
            embeddings[a].align(stimuli),
            embeddings[b].align(stimuli),
            stimuli,
            data,
            names=(a, b),
            n_folds=settings.n_folds,
            inner_folds=settings.inner_folds,
            alphas=_alphas(settings),
            voxel_batch=_voxel_batch(settings),
        )
        table = partition.roi_table().rename(
            columns={f"r2_{a}": "r2_a", f"r2_{b}": "r2_b", f"unique_{a}": "unique_a", f"unique_{b}": "unique_b"}
        )
        table.insert(1, "system_a", a)
        table.insert(2, "system_b", b)
        frames.append(table[list(VARIANCE_PARTITION_COLUMNS)])
    return frames


def _write_statistics(
    folder: StudyFolder, analysis: Analysis, table: pd.DataFrame, systems: list[str], alpha: float, label: str
) -> None:
    """``comparisons.csv``, ``winners.csv`` and ``against_zero.csv`` of one ROI table (or a log line why not)."""
    from oddoneout.neural.stats import against_zero, compare_systems, winners

    paths = [folder.statistics(analysis, name) for name in STATISTICS]
    for path in paths:
        path.unlink(missing_ok=True)  # never leave the statistics of an earlier run beside new scores
    n_subjects = table["subject"].nunique() if len(table) else 0
    if n_subjects < MIN_SUBJECTS:
        _say(f"{label}: {n_subjects} subject(s): t-tests across subjects need {MIN_SUBJECTS} or more; no statistics")
        return
    present = [s for s in systems if s in set(table["system"])]
    comparisons = compare_systems(table, alpha=alpha, systems=present)
    write_table(comparisons, paths[0], index=False)
    if len(present) >= 2:
        write_table(winners(table, comparisons, alpha=alpha), paths[1], index=False)
    write_table(against_zero(table, alpha=alpha), paths[2], index=False)


def _write_ceiling_table(folder: StudyFolder, datasets: list[NeuralData]) -> None:
    path = folder.ceiling_table
    rows = []
    for data in datasets:
        voxel_file = folder.ceiling_voxels(data.subject)
        if not voxel_file.is_file():
            continue
        arrays, meta = read_npz(voxel_file, "noise ceiling")
        ceiling = arrays["r"]
        if ceiling.shape != (data.n_voxels,):
            continue  # from another preparation of this subject
        for roi, voxels in data.rois.items():
            rows.append(
                {
                    "subject": data.subject,
                    "roi": roi,
                    "ceiling": float(np.mean(ceiling[voxels])),
                    "n_voxels": int(voxels.size),
                    "n_average": float(meta["n_average"]),
                    "method": meta["method"],
                }
            )
    if rows:
        write_table(pd.DataFrame(rows, columns=list(CEILING_COLUMNS)), path, index=False)
    else:
        path.unlink(missing_ok=True)


def run_neural_stage(config: StudyConfig, out: Path | StudyFolder, systems: Sequence[str]) -> pd.DataFrame:
    """Every brain analysis of the study (see the module docstring); returns the encoding ROI table.

    Parameters
    ----------
    config : StudyConfig
        The study config (:func:`oddoneout.config.load_config`); its ``[neural]`` settings drive the stage.
    out : Path
        The study output folder (embeddings in ``embeddings/<system>.parquet``).
    systems : sequence of str
        Systems to encode and compare.

    Returns
    -------
    DataFrame
        ``encoding/roi_r.csv``: ``subject, system, roi, r`` (mean voxel r in the ROI).
    """
    folder = StudyFolder.of(out)
    settings = config.neural
    paths = prepare_subjects(config, folder)
    systems = list(systems)
    for pair in settings.variance_partition:
        unknown = [s for s in pair if s not in systems]
        if unknown:
            raise InputError(f"[neural] variance_partition names system(s) {unknown} not in this run ({systems})")
    embeddings = {name: Embedding.load(folder.system(name).embedding) for name in systems} if paths else {}
    for analysis in ANALYSES:
        folder.analysis_folder(analysis).mkdir(parents=True, exist_ok=True)

    encoding_rows: list[dict[str, Any]] = []
    rsa_frames: list[pd.DataFrame] = []
    vp_frames: list[pd.DataFrame] = []
    datasets = []
    with make_progress() as bar:
        task = bar.add_task("brain", total=len(paths) * (len(systems) + 1), unit="fits", info="")
        for path in paths:
            data = NeuralData.load(path)
            datasets.append(data)
            encoding_rows += _encode_subject(config, folder, data, embeddings, bar, task)
            if settings.rsa and data.coords is not None and systems:
                bar.update(task, info=f"{data.subject} searchlight RSA")
                rsa_frames.append(_rsa_subject(config, folder, data, embeddings))
            elif settings.rsa:
                _say(f"subject {data.subject}: no voxel coordinates: no searchlight RSA")
            if settings.variance_partition:
                bar.update(task, info=f"{data.subject} variance partitioning")
                vp_frames += _variance_partition_subject(config, data, embeddings)
            bar.advance(task)

    table = roi_frame(encoding_rows)
    write_roi_table(table, folder.roi_table("encoding"))
    rsa_table = pd.concat(rsa_frames, ignore_index=True) if rsa_frames else roi_frame()
    rsa_path = folder.roi_table("rsa")
    if rsa_frames:
        write_roi_table(rsa_table, rsa_path)
    else:
        rsa_path.unlink(missing_ok=True)
    alpha = float(settings.fdr_alpha)
    _write_statistics(folder, "encoding", table, systems, alpha, "encoding")
    _write_statistics(folder, "rsa", rsa_table, systems, alpha, "RSA")
    _write_ceiling_table(folder, datasets)
    vp_path = folder.variance_partition
    if vp_frames:
        write_table(pd.concat(vp_frames, ignore_index=True), vp_path, index=False)
    else:
        vp_path.unlink(missing_ok=True)
    return table


# --- summary -----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def _roi_means(path: Path) -> dict[str, dict[str, float | None]]:
    means: dict[str, dict[str, float | None]] = {}
    table = read_roi_table(path)
    if table is not None:
        if len(table):
            for (roi, system), r in table.groupby(["roi", "system"], sort=False)["r"].mean().items():
                means.setdefault(roi, {})[system] = _number(r)
    return means


def _winners(path: Path) -> dict[str, str | None]:
    table = read_table(path, ["roi", "best_system", "wins"])
    if table is None:
        return {}
    return {str(row.roi): (str(row.best_system) if bool(row.wins) else None) for row in table.itertuples()}


def neural_summary(out: Path | StudyFolder) -> dict[str, Any]:
    """The brain part of ``summary.json``.

    Returns
    -------
    dict
        ``{"encoding": {roi: {system: mean r over subjects}}, "rsa": {roi: {system: mean r}},
        "winners": {"encoding": {roi: system or None}, "rsa": {...}}, "noise_ceiling": {roi: mean
        ceiling r}}``; a winner is the best system of an ROI when it beats every other one
        (q < ``fdr_alpha``), else None. Numbers are rounded to 6 decimals (undefined ones: None).
    """
    folder = StudyFolder.of(out)
    ceiling: dict[str, float | None] = {}
    table = read_table(folder.ceiling_table, ["roi", "ceiling"])
    if table is not None:
        ceiling = {roi: _number(r) for roi, r in table.groupby("roi", sort=False)["ceiling"].mean().items()}
    return {
        "encoding": _roi_means(folder.roi_table("encoding")),
        "rsa": _roi_means(folder.roi_table("rsa")),
        "winners": {analysis: _winners(folder.statistics(analysis, "winners")) for analysis in ANALYSES},
        "noise_ceiling": ceiling,
    }
