"""Provenance records and content hashes written into every output file."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from oddoneout import __version__
from oddoneout.atomic import atomic_open

#: Version of the on-disk formats described in ``docs/formats.md``: that of every kind of file but
#: those whose format changed since (:data:`FORMAT_VERSIONS`).
FORMAT_VERSION = 1
#: Kinds of file whose format changed after version 1, and their version now: the triplet store
#: and its export (``"triplets"``) hold every trial type since version 2, and the usage of each
#: judgment's requests (prompt and completion tokens, images, attempts) since version 3.
FORMAT_VERSIONS: dict[str, int] = {"triplets": 3}


def format_version(kind: str) -> int:
    """The version of the format of files of ``kind`` that this package writes (and the newest it reads)."""
    return FORMAT_VERSIONS.get(kind, FORMAT_VERSION)


def hash_array(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order), as hex."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256()
    digest.update(str(array.dtype).encode())
    digest.update(str(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def hash_text(*parts: str) -> str:
    """SHA-256 of text parts joined with a NUL separator, as hex."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def hash_json(obj: Any) -> str:
    """SHA-256 of the canonical JSON form of ``obj`` (sorted keys)."""
    return hash_text(json.dumps(obj, sort_keys=True, default=str))


def provenance(kind: str, **fields: Any) -> dict[str, Any]:
    """Build the provenance record of one output file.

    Parameters
    ----------
    kind : str
        What the file holds, e.g. ``"embedding"`` or ``"triplets"``.
    **fields
        Anything else that says how the file was made (method, seed, hashes...).

    Returns
    -------
    dict
        ``{"format": "oddoneout", "format_version", "kind", "package_version", "python", **fields}``,
        ``format_version`` that of ``kind`` (:func:`format_version`). No timestamps, so equal
        inputs give equal records.
    """
    return {
        "format": "oddoneout",
        "format_version": format_version(kind),
        "kind": kind,
        "package_version": __version__,
        "python": platform.python_version(),
        **fields,
    }


def write_npz(path: str | Path, arrays: dict[str, np.ndarray], record: dict[str, Any]) -> Path:
    """Write compressed arrays plus a provenance record (JSON in the array ``provenance``), atomically."""
    path = Path(path)
    record_array = np.array(json.dumps(record, sort_keys=True, default=str))
    # an open file, not the temporary's path: numpy would append ".npz" to a path without it
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays, provenance=record_array)
    return path


def read_npz(path: str | Path, what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`write_npz`: its arrays and provenance record.

    Raises :class:`~oddoneout.errors.InputError` naming the file when it is missing or is not
    such a file (``what`` says what was expected, e.g. ``"neural data"``), and
    :class:`~oddoneout.errors.UnreadableFile` when it cannot be read at all.
    """
    from oddoneout.errors import InputError
    from oddoneout.files import open_npz

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    with open_npz(path) as f:
        if "provenance" not in f.files:
            raise InputError(f"{path}: not an oddoneout {what} file (no provenance record)")
        arrays = {name: f[name] for name in f.files if name != "provenance"}
        record = json.loads(str(f["provenance"]))
    return arrays, record
