"""Small SPoSE and VICE fits whose fingerprints are committed (tests/golden/estimator_fits.json).

Each case fits a few hundred triplets for a few dozen epochs and covers one branch of the
training loop (plateau decays, stopping, relaxed refit, the refit on all triplets or none,
warm-up cut short, soft labels, no validation split, unseen items, ...). The fingerprint hashes
the learned arrays, the per-epoch history and the provenance, so a refactor of the loop that
changes any bit of a fit shows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from oddoneout.embed.spose import SPoSE
from oddoneout.embed.vice import VICE
from oddoneout.triplets import Triplets, sample_triplets

REFERENCE = Path(__file__).resolve().parent / "golden" / "estimator_fits.json"

_SPOSE = {"n_dims": 10, "l1": 0.03, "max_epochs": 60, "patience": 3, "tol": 1e-3, "batch_size": 256, "monitor": "train"}
_VICE = {"n_dims": 8, "max_epochs": 25, "patience": 3, "batch_size": 256, "n_samples_eval": 4}

#: name -> (estimator class, parameters, data variant)
CASES: dict[str, tuple[type, dict[str, Any], str]] = {
    "spose": (SPoSE, _SPOSE, "hard"),
    "spose_iterate": (SPoSE, {**_SPOSE, "averaging": False}, "hard"),
    "spose_relax": (SPoSE, {**_SPOSE, "relax": True}, "hard"),
    "spose_no_refit": (SPoSE, {**_SPOSE, "refit": False}, "hard"),
    "spose_monitor_validation": (SPoSE, {**_SPOSE, "monitor": "validation"}, "hard"),
    "spose_no_validation": (SPoSE, {**_SPOSE, "validation_fraction": 0.0}, "hard"),
    "spose_soft": (SPoSE, _SPOSE, "soft"),
    "spose_within_warmup": (SPoSE, {**_SPOSE, "max_epochs": 3}, "hard"),
    "spose_unseen_item": (SPoSE, {**_SPOSE, "seed": 3}, "unseen"),
    "vice": (VICE, _VICE, "hard"),
    "vice_two_draws": (VICE, {**_VICE, "n_samples_train": 2, "init_sigma": 0.01}, "hard"),
    "vice_no_validation": (VICE, {**_VICE, "validation_fraction": 0.0}, "hard"),
    "vice_soft": (VICE, _VICE, "soft"),
}


def _planted(n_items: int = 30, n_dims: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    weights = np.zeros((n_items, n_dims))
    for item in range(n_items):
        dims = rng.choice(n_dims, size=rng.integers(1, 3), replace=False)
        weights[item, dims] = rng.uniform(1.0, 2.5, size=len(dims))
    return weights


def case_data(variant: str) -> Triplets:
    """The triplets of a case: ``"hard"`` choices, ``"soft"`` labels, or ``"unseen"`` (an extra, unused item)."""
    data = sample_triplets(_planted(), 3000, seed=1, with_probs=variant == "soft")
    if variant == "unseen":
        data = Triplets((*data.item_ids, "unused"), data.indices, data.probs)
    return data


def _digest(value: Any) -> str:
    if isinstance(value, np.ndarray):
        payload = np.ascontiguousarray(value, dtype=np.float64).tobytes() + str(value.shape).encode()
    else:
        payload = json.dumps(value, sort_keys=True, default=repr).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def fingerprint(name: str) -> dict[str, Any]:
    """Fit case ``name`` and summarise the fit: hashes of its arrays, history and provenance."""
    estimator, params, variant = CASES[name]
    data = case_data(variant)
    model = estimator(**params).fit(data)
    metadata = {k: v for k, v in model.to_embedding().metadata.items() if k != "torch_version"}
    record = {
        "n_epochs": model.n_epochs_,
        "best_epoch": model.best_epoch_,
        "n_dims_kept": int(model.weights_.shape[1]),
        "weights": _digest(model.weights_),
        "history": _digest(model.history_),
        "metadata": _digest(metadata),
        "predict_proba": _digest(model.predict_proba(data.subset(np.arange(200)))),
    }
    if estimator is VICE:
        record["mu"], record["sigma"] = _digest(model.mu_), _digest(model.sigma_)
    return record


if __name__ == "__main__":  # regenerate the reference (only with the code that made it)
    import sys
    import warnings

    import torch

    warnings.simplefilter("ignore")
    fits = {name: fingerprint(name) for name in CASES}
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REFERENCE
    capability = str(torch.backends.cpu.get_cpu_capability())
    out.write_text(json.dumps({"cpu_capability": capability, "fits": fits}, indent=1) + "\n")
