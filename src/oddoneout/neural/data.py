"""One subject's stimulus-evoked responses: samples x voxels with stimulus ids, runs and ROIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oddoneout.errors import InputError
from oddoneout.provenance import provenance, read_npz, write_npz


@dataclass(eq=False)
class NeuralData:
    """Responses of one subject.

    Parameters
    ----------
    subject : str
        Subject label.
    responses : ndarray of shape (n_samples, n_voxels), float32
        One row per presentation (or per averaged stimulus).
    stimulus_ids : ndarray of shape (n_samples,), str
        Item id shown in each sample.
    runs : ndarray of shape (n_samples,), int
        Run of each sample; cross-validation folds are blocks of runs.
    rois : dict of str to ndarray of int
        Voxel indices of each region of interest.
    coords : ndarray of shape (n_voxels, 3), optional
        Voxel coordinates (for searchlights and maps), in mm when ``affine`` is given.
    metadata : dict
        Provenance of the data.
    affine : ndarray of shape (4, 4), optional
        Voxel-to-world (mm) affine of the image grid the voxels came from (NIfTI data);
        ``coords`` are then ``affine @ [i, j, k, 1]`` of each voxel.
    """

    subject: str
    responses: np.ndarray
    stimulus_ids: np.ndarray
    runs: np.ndarray
    rois: dict[str, np.ndarray]
    coords: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    affine: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.responses = np.asarray(self.responses, dtype=np.float32)
        self.stimulus_ids = np.asarray(self.stimulus_ids).astype(str)
        self.runs = np.asarray(self.runs, dtype=np.int64)
        n_samples, n_voxels = self.responses.shape
        if self.stimulus_ids.shape != (n_samples,) or self.runs.shape != (n_samples,):
            raise InputError(
                f"subject {self.subject}: stimulus_ids and runs must have one entry per sample ({n_samples})"
            )
        if not np.all(np.isfinite(self.responses)):
            raise InputError(f"subject {self.subject}: responses contain NaN or infinite values")
        for name, voxels in self.rois.items():
            voxels = np.asarray(voxels, dtype=np.int64)
            if voxels.size == 0 or voxels.min() < 0 or voxels.max() >= n_voxels:
                raise InputError(f"subject {self.subject}: ROI {name!r} is empty or has voxel indices out of range")
            self.rois[name] = voxels
        if self.affine is not None:
            self.affine = np.asarray(self.affine, dtype=np.float64)
            if self.affine.shape != (4, 4) or not np.all(np.isfinite(self.affine)):
                raise InputError(f"subject {self.subject}: affine must be a finite 4 x 4 matrix")

    @property
    def n_voxels(self) -> int:
        return int(self.responses.shape[1])

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz`` (arrays plus a JSON provenance record)."""
        arrays = {
            "responses": self.responses,
            "stimulus_ids": self.stimulus_ids,
            "runs": self.runs,
            "roi_names": np.array(list(self.rois), dtype=str),
        }
        for i, voxels in enumerate(self.rois.values()):
            arrays[f"roi_{i}"] = voxels
        if self.coords is not None:
            arrays["coords"] = self.coords
        if self.affine is not None:
            arrays["affine"] = self.affine
        return write_npz(path, arrays, provenance("neural", subject=self.subject, **self.metadata))

    @classmethod
    def load(cls, path: str | Path) -> "NeuralData":
        """Read a file written by :meth:`save`."""
        arrays, meta = read_npz(path, "neural data")
        try:
            rois = {str(name): arrays[f"roi_{i}"] for i, name in enumerate(arrays["roi_names"])}
            subject = meta.pop("subject")
            for key in ("format", "format_version", "kind", "package_version", "python"):
                meta.pop(key, None)
            return cls(
                subject,
                arrays["responses"],
                arrays["stimulus_ids"],
                arrays["runs"],
                rois,
                arrays.get("coords"),
                meta,
                affine=arrays.get("affine"),
            )
        except KeyError as exc:
            raise InputError(f"{path}: not an oddoneout neural data file (no {exc})") from exc
