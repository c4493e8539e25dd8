"""The study output folder: where every file of a study run lives, and how its tables are read and written.

:class:`StudyFolder` is the one owner of the layout documented in ``docs/formats.md``: every stage
and the report ask it for a path (one property or method per file) instead of joining names by
hand, and read or write the folder's JSON and CSV files with the functions below, so a file's
name and columns are declared once. Parquet files (stimuli, embeddings, triplet exports) and
``.npz`` files keep their own readers and writers (:class:`~oddoneout.stimuli.StimulusSet`,
:class:`~oddoneout.embedding.Embedding`, ...); the folder only says where they go.

Every writer, here and there, writes through :mod:`oddoneout.atomic`: a temporary
``.<name>.<random>.tmp`` beside the file, renamed onto it when complete, so a reader never sees
half a file. Readers here look only for the folder's own names and suffixes, so a temporary left
by a killed process is never taken for a result.

Every path is resolved and checked to lie inside the folder, and one folder object never hands
the same file out under two names (e.g. the encoding file of system ``a_b`` and subject ``c``
and that of system ``a`` and subject ``b_c``): both are :class:`~oddoneout.errors.InputError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
import pandas as pd

from oddoneout.atomic import atomic_path, write_text
from oddoneout.errors import InputError

__all__ = [
    "ANALYSES",
    "CEILING_COLUMNS",
    "ROI_COLUMNS",
    "STATISTICS",
    "VARIANCE_PARTITION_COLUMNS",
    "InterpretFiles",
    "StudyFolder",
    "SystemFiles",
    "json_default",
    "nan_to_none",
    "read_class_shares",
    "read_json",
    "read_roi_table",
    "read_table",
    "roi_frame",
    "write_json",
    "write_roi_table",
    "write_table",
]

#: Columns of ``encoding/roi_r.csv`` and ``rsa/roi_r.csv`` (mean voxel r of a system in an ROI).
ROI_COLUMNS = ("subject", "system", "roi", "r")
#: Columns of ``encoding/ceiling.csv`` (mean noise ceiling of an ROI).
CEILING_COLUMNS = ("subject", "roi", "ceiling", "n_voxels", "n_average", "method")
#: Columns of ``encoding/variance_partition.csv``.
VARIANCE_PARTITION_COLUMNS = (
    "subject", "system_a", "system_b", "roi", "r2_a", "r2_b", "r2_joint", "unique_a", "unique_b", "shared",
)  # fmt: skip
#: The brain analyses with an ROI table and statistics each (a subfolder of the study folder).
ANALYSES = ("encoding", "rsa")
#: The statistics tables of each analysis.
STATISTICS = ("comparisons", "winners", "against_zero")
#: Columns that hold ids or names: read as text, so ``"0001"`` never becomes the number 1.
TEXT_COLUMNS = (
    "subject", "system", "system_a", "system_b", "roi", "item_id", "dim", "source", "target", "embedding",
    "triplets", "best_system", "runner_up",
)  # fmt: skip

Analysis = Literal["encoding", "rsa"]
Statistic = Literal["comparisons", "winners", "against_zero"]


@dataclass(frozen=True)
class SystemFiles:
    """The files of one system, from collection to evaluation."""

    store: Path  #: ``triplets/<s>.sqlite``: the triplet store while collecting
    export: Path  #: ``triplets/<s>.parquet``: its Parquet export
    train: Path  #: ``split/<s>_train.npy``: training triplets (SPoSE convention)
    test: Path  #: ``split/<s>_test.npy``: held-out triplets
    items: Path  #: ``split/<s>_items.txt``: the item ids the split's indices point to
    embedding: Path  #: ``embeddings/<s>.parquet``
    dims: Path  #: ``embeddings/<s>_dims.csv``: per-dimension reproducibility across seeds
    evaluation: Path  #: ``evaluation/<s>.json``


@dataclass(frozen=True)
class InterpretFiles:
    """The interpretation files of one system (``interpret/`` and ``interactive/``)."""

    ratings: Path
    top_items: Path
    classes: Path
    class_shares: Path
    centroid: Path
    map: Path
    graph_nodes: Path
    graph_edges: Path
    interactive: Path

    def as_dict(self) -> dict[str, Path]:
        """``{file name: path}``, e.g. ``{"ratings": ..., "top_items": ...}``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class StudyFolder:
    """The output folder of one study run: a path for every file, each checked to lie inside it.

    Parameters
    ----------
    root : path
        The folder (it need not exist yet).

    Raises
    ------
    InputError
        From any path method, when a name would put the file outside the folder (``..``, a path
        separator, an absolute name) or on a file already handed out under another name.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._base = self.root.resolve()
        self._owners: dict[Path, str] = {}

    def __repr__(self) -> str:
        return f"StudyFolder({str(self.root)!r})"

    @classmethod
    def of(cls, where: str | Path | StudyFolder) -> StudyFolder:
        """``where`` itself when it is a folder object already (so a run shares one), else a new one."""
        return where if isinstance(where, StudyFolder) else cls(where)

    # --- the guard ----------------------------------------------------------------------------

    @staticmethod
    def _names(what: str, *names: str) -> None:
        """Refuse a system, subject or view name that is not one plain file-name part."""
        for name in names:
            if not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0"):
                raise InputError(f"{what}: {name!r} cannot name a file in the study folder")

    def _path(self, what: str, *parts: str) -> Path:
        self._names(what, *parts)
        path = self.root.joinpath(*parts)
        resolved = path.resolve()
        if resolved == self._base or not resolved.is_relative_to(self._base):
            raise InputError(f"{what}: {path} resolves to {resolved}, outside the study folder {self._base}")
        owner = self._owners.setdefault(resolved, what)
        if owner != what:
            raise InputError(f"{what} and {owner} would share one file: {path}")
        return path

    # --- the whole study ----------------------------------------------------------------------

    @property
    def config(self) -> Path:
        """``config.toml``: the resolved study config."""
        return self._path("config", "config.toml")

    @property
    def lock(self) -> Path:
        """``.oddoneout.lock``: the writer lock, recording its holder (:mod:`oddoneout.folder_lock`)."""
        return self._path("lock", ".oddoneout.lock")

    @property
    def stimuli(self) -> Path:
        """``stimuli.parquet``: the stimulus table."""
        return self._path("stimuli", "stimuli.parquet")

    @property
    def summary(self) -> Path:
        """``summary.json``: the study's headline numbers."""
        return self._path("summary", "summary.json")

    @property
    def timings(self) -> Path:
        """``timings.json``: wall time of each stage."""
        return self._path("timings", "timings.json")

    @property
    def report(self) -> Path:
        """``report.html``."""
        return self._path("report", "report.html")

    @property
    def cache(self) -> Path:
        """``cache/``: the folder of cached caption embeddings."""
        return self._path("cache", "cache")

    def world_view(self, view: str) -> Path:
        """``world/view_<view>.parquet``: a feature table of the synthetic world."""
        self._names("world view", view)
        return self._path(f"world view {view!r}", "world", f"view_{view}.parquet")

    @property
    def truth(self) -> Path:
        """``world/truth.npz``: the synthetic world's hidden truth."""
        return self._path("truth", "world", "truth.npz")

    @property
    def triplets_folder(self) -> Path:
        """``triplets/``: every system's store and its export."""
        return self._path("triplets folder", "triplets")

    # --- one system ---------------------------------------------------------------------------

    def system(self, name: str) -> SystemFiles:
        """The collection, split, embedding and evaluation files of system ``name``."""
        self._names("system", name)
        what = f"system {name!r}"
        return SystemFiles(
            store=self._path(f"{what} store", "triplets", f"{name}.sqlite"),
            export=self._path(f"{what} export", "triplets", f"{name}.parquet"),
            train=self._path(f"{what} training split", "split", f"{name}_train.npy"),
            test=self._path(f"{what} test split", "split", f"{name}_test.npy"),
            items=self._path(f"{what} split items", "split", f"{name}_items.txt"),
            embedding=self._path(f"{what} embedding", "embeddings", f"{name}.parquet"),
            dims=self._path(f"{what} dimension reproducibility", "embeddings", f"{name}_dims.csv"),
            evaluation=self._path(f"{what} evaluation", "evaluation", f"{name}.json"),
        )

    def interpret(self, name: str) -> InterpretFiles:
        """The interpretation files of system ``name``."""
        self._names("system", name)
        what = f"system {name!r} interpretation"
        files = {
            f.name: self._path(f"{what} {f.name}", "interpret", f"{name}_{f.name}.csv")
            for f in fields(InterpretFiles)
            if f.name != "interactive"
        }
        interactive = self._path(f"{what} interactive map", "interactive", f"{name}_map.html")
        return InterpretFiles(**files, interactive=interactive)

    @property
    def interpret_folder(self) -> Path:
        """``interpret/``."""
        return self._path("interpret folder", "interpret")

    @property
    def systems_rsa(self) -> Path:
        """``interpret/systems_rsa.csv``: similarity-structure r between every pair of systems."""
        return self._path("systems RSA", "interpret", "systems_rsa.csv")

    @property
    def cross_accuracy(self) -> Path:
        """``interpret/cross_accuracy.csv``: each embedding on each system's held-out triplets."""
        return self._path("cross accuracy", "interpret", "cross_accuracy.csv")

    @property
    def between_systems(self) -> Path:
        """``interpret/between_systems.json``: the two tables above as in ``summary.json``."""
        return self._path("between systems", "interpret", "between_systems.json")

    # --- the brain ----------------------------------------------------------------------------

    @property
    def neural_folder(self) -> Path:
        """``neural/``: the prepared subjects."""
        return self._path("neural folder", "neural")

    def subject(self, subject: str) -> Path:
        """``neural/<subject>.npz``: one prepared subject."""
        self._names("subject", subject)
        return self._path(f"subject {subject!r}", "neural", f"{subject}.npz")

    def subject_files(self) -> list[Path]:
        """Every prepared subject file (``neural/*.npz``), sorted."""
        folder = self.neural_folder
        return [self.subject(p.stem) for p in sorted(folder.glob("*.npz"))] if folder.is_dir() else []

    def analysis_folder(self, analysis: Analysis) -> Path:
        """``encoding/`` or ``rsa/``."""
        return self._path(f"{analysis} folder", _analysis(analysis))

    def roi_table(self, analysis: Analysis) -> Path:
        """``<analysis>/roi_r.csv``: :data:`ROI_COLUMNS`, one row per subject, system and ROI."""
        return self._path(f"{analysis} ROI table", _analysis(analysis), "roi_r.csv")

    def statistics(self, analysis: Analysis, table: Statistic) -> Path:
        """``<analysis>/<table>.csv`` (``comparisons``, ``winners`` or ``against_zero``)."""
        if table not in STATISTICS:
            raise InputError(f"unknown statistics table {table!r} (known: {list(STATISTICS)})")
        return self._path(f"{analysis} {table}", _analysis(analysis), f"{table}.csv")

    def encoding_result(self, system: str, subject: str) -> Path:
        """``encoding/<system>_<subject>.npz``: per-voxel encoding scores."""
        self._names("encoding result", system, subject)
        return self._path(f"encoding of system {system!r}, subject {subject!r}", "encoding", f"{system}_{subject}.npz")

    def rsa_result(self, subject: str) -> Path:
        """``rsa/<subject>.npz``: every system's per-voxel searchlight scores."""
        self._names("searchlight result", subject)
        return self._path(f"searchlight RSA of subject {subject!r}", "rsa", f"{subject}.npz")

    @property
    def ceiling_table(self) -> Path:
        """``encoding/ceiling.csv``: :data:`CEILING_COLUMNS`."""
        return self._path("noise ceiling table", "encoding", "ceiling.csv")

    def ceiling_voxels(self, subject: str) -> Path:
        """``encoding/ceiling/<subject>.npz``: per-voxel noise ceiling."""
        self._names("noise ceiling", subject)
        return self._path(f"noise ceiling of subject {subject!r}", "encoding", "ceiling", f"{subject}.npz")

    @property
    def variance_partition(self) -> Path:
        """``encoding/variance_partition.csv``: :data:`VARIANCE_PARTITION_COLUMNS`."""
        return self._path("variance partition", "encoding", "variance_partition.csv")

    # --- what a folder holds ------------------------------------------------------------------

    def found(self, kind: Literal["evaluation", "embedding", "ratings", "top_items"]) -> dict[str, Path]:
        """``{system: path}`` of the files of one kind present in the folder, sorted by system."""
        folder, suffix = _FOUND[kind]
        directory = self.root / folder
        if not directory.is_dir():
            return {}
        names = sorted(p.name[: -len(suffix)] for p in directory.iterdir() if p.is_file() and p.name.endswith(suffix))
        if kind in ("evaluation", "embedding"):
            return {name: getattr(self.system(name), kind) for name in names}
        return {name: getattr(self.interpret(name), kind) for name in names}


_FOUND = {
    "evaluation": ("evaluation", ".json"),
    "embedding": ("embeddings", ".parquet"),
    "ratings": ("interpret", "_ratings.csv"),
    "top_items": ("interpret", "_top_items.csv"),
}


def _analysis(analysis: str) -> str:
    if analysis not in ANALYSES:
        raise InputError(f"unknown brain analysis {analysis!r} (known: {list(ANALYSES)})")
    return analysis


# --- JSON ----------------------------------------------------------------------------------------


def json_default(value: Any) -> Any:
    """JSON for numpy scalars and arrays; any other object as its string."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def nan_to_none(value: Any) -> Any:
    """Strict JSON has no NaN: an undefined number (e.g. a ceiling without repeats) becomes null."""
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON with sorted keys (equal objects give equal bytes), atomically.

    The whole text is made before the file is touched, and it replaces ``path`` in one rename
    (:func:`oddoneout.atomic.atomic_path`): an object that cannot be serialised leaves the
    previous file as it was.
    """
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def read_json(path: Path, missing_ok: bool = False) -> dict[str, Any]:
    """A JSON object file (``{}`` for an absent file when ``missing_ok``).

    Raises
    ------
    InputError
        If the file is absent (unless ``missing_ok``), not valid JSON or not an object.
    """
    if missing_ok and not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


# --- CSV -----------------------------------------------------------------------------------------


def read_table(path: Path, columns: Iterable[str] = ()) -> pd.DataFrame | None:
    """A CSV table of the folder with its id columns as text, or None when the file is absent.

    Parameters
    ----------
    path : Path
        The file.
    columns : iterable of str
        Columns it must have.

    Raises
    ------
    InputError
        If the file is malformed or lacks one of ``columns``.
    """
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from exc
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise InputError(f"{path}: missing column(s) {absent}")
    return frame


def write_table(frame: pd.DataFrame, path: Path, **options: Any) -> Path:
    """Write a CSV table of the folder atomically (:func:`oddoneout.atomic.atomic_path`).

    Parameters
    ----------
    frame : DataFrame
        The table.
    path : Path
        The file (parent folders are created).
    **options
        Passed to :meth:`pandas.DataFrame.to_csv` (``index=False``, ``float_format``, ...).

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, **options)
    return path


def read_class_shares(path: Path) -> pd.DataFrame | None:
    """``interpret/<s>_class_shares.csv``: index ``system``, a share per dimension class and ``n_dims``.

    None when the file is absent.
    """
    table = read_table(path, ["system", "n_dims"])
    return None if table is None else table.set_index("system")


def read_roi_table(path: Path) -> pd.DataFrame | None:
    """An ROI table (``encoding/roi_r.csv`` or ``rsa/roi_r.csv``: :data:`ROI_COLUMNS`), None when absent.

    Raises
    ------
    InputError
        If the file is malformed, lacks a column or has a non-numeric ``r``.
    """
    frame = read_table(path, ROI_COLUMNS)
    if frame is None:
        return None
    r = pd.to_numeric(frame["r"], errors="coerce")
    bad = frame.index[r.isna() & frame["r"].notna()].tolist()
    if bad:
        raise InputError(f"{path}: non-numeric r in row(s) {[b + 2 for b in bad[:5]]}")
    frame["r"] = r
    return frame[list(ROI_COLUMNS)]


def roi_frame(rows: Iterable[Any] = ()) -> pd.DataFrame:
    """An ROI table (:data:`ROI_COLUMNS`) of ``rows`` (dicts or tuples in column order)."""
    return pd.DataFrame(list(rows), columns=list(ROI_COLUMNS))


def write_roi_table(table: pd.DataFrame, path: Path) -> Path:
    """Write an ROI table with exactly :data:`ROI_COLUMNS`, in that order."""
    absent = [c for c in ROI_COLUMNS if c not in table.columns]
    if absent:
        raise InputError(f"ROI table for {path} lacks column(s) {absent}")
    return write_table(table[list(ROI_COLUMNS)], path, index=False)
