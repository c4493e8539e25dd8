"""Study configuration: a TOML file naming the stimuli, the design, the systems and each stage's settings."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from oddoneout.errors import InputError
from oddoneout.provenance import hash_json

#: Every section and key a study config may have, with its default. ``systems`` is free-form
#: (one table per system, see :data:`SYSTEM_DEFAULTS`).
DEFAULTS: dict[str, dict[str, Any]] = {
    "study": {"name": "study", "seed": 0},
    "stimuli": {
        "source": "synthetic",  # "synthetic" | "cowen_keltner" | a stimulus table (.parquet/.csv)
        # cowen_keltner only: offline folder with its files (else $ODDONEOUT_COWEN_KELTNER, the cache, a download)
        "path": "",
        # synthetic world only (see oddoneout.studies.synthetic.make_world)
        "n_items": 400,
        "n_subjects": 3,
        "n_runs": 6,
        "voxels_per_roi": 100,
        # optional folder of the study's video files (<item_id>.<ext>), for agents that watch frames
        "videos": "",
    },
    "design": {
        "n_triplets": 100_000,
        "n_orderings": 1,
        "repeated_triplets": 1_000,
        "n_repeats": 3,
        "exhaustive_items": 0,  # size of the validation subset asked in every triplet (paper: 66)
        "triplets": "",  # a list of triplets to ask instead of random ones (.npy indices, or 3 ids per line)
        "batch_size": 20_000,
    },
    "embedding": {
        "method": "spose",
        "n_dims": 100,
        "l1": 0.005,
        "test_fraction": 0.1,
        "max_epochs": 500,
        "batch_size": 2048,
        "lr": 0.05,
        "patience": 10,
        "prune_threshold": 0.1,
        "relax": False,  # SPoSE: refit the kept weights without the penalty (relaxed lasso)
        "averaging": True,  # SPoSE: the estimate is the running average of the iterates, not the last one
        "device": "cpu",
        "l1_n_se": 1.0,  # l1 from a list: the sparsest within this many standard errors of the best (0 = minimum)
        "l1_folds": 1,  # l1 from a list: 1 = one held-out split, K >= 2 = K-fold cross-validation
        "seeds": [],  # several seeds: fit each, keep the best held-out fit, score each dimension's reproducibility
        "n_jobs": 1,  # parallel seed fits
        "seed_backend": "process",  # "process" | "ray"
    },
    "collect": {
        "executor": "local",  # "local" | "ray" (shards over a Ray cluster; local agents only)
        "ray_address": "",  # "" = a local Ray cluster, "auto" = the running one, or host:port
        "n_shards": 0,  # 0 = one per Ray CPU
    },
    "evaluation": {"n_bootstrap": 1000},
    "interpret": {
        "top_k": 8,
        "map_method": "tsne",  # "tsne" | "umap" | "none"
        "graph_threshold": 0.2,  # edges of the dimension graph: r between dimensions above this
        "class_min_r": 0.3,  # categorical / hybrid / dimensional rule (docs/interpretation.md)
        "class_balance": 0.8,
        "interactive": True,  # write interactive/<system>_map.html
    },
    "neural": {
        # Brain stage, see docs/brain.md. "synthetic" (the synthetic world's OUT/neural/*.npz) | "none" |
        # "npz" (NeuralData files) | "bdata" (Kamitani-lab HDF5, e.g. Horikawa 2020) | "nifti" (4-D images)
        "source": "synthetic",
        "subjects": [],  # one file per subject (npz / bdata / nifti), relative to the config file
        "subject_names": [],  # optional labels, one per file ("" or absent = the file's stem)
        "tables": [],  # nifti only: one stimulus_id,run CSV per subject (one row per volume)
        "mask": "",  # nifti only: a 3-D brain mask on the images' grid ("" = non-zero finite voxels)
        "roi_masks": [],  # nifti only: [[name, 3-D mask image], ...] on the images' grid
        "roi_info": "",  # bdata only: roiInf.mat -> the study's 26 Horikawa ROIs ("" = the file's own ROI columns)
        "repeats": "average",  # "average" | "run" | "keep": repeated presentations (oddoneout.neural.repeats)
        "n_folds": 6,
        "inner_folds": 5,
        "alphas": [0.01, 100000.0, 20],  # log-spaced grid: [low, high, count]
        "backend": "numpy",
        "voxel_batch": 5000,  # voxels fit at once (bounds memory); 0 = all
        "rsa": True,  # searchlight RSA (needs voxel coordinates)
        "rsa_shape": "cube",  # "cube" | "sphere"
        "rsa_radius": 3.0,  # cube: half side (3 = the paper's 7x7x7 voxels); sphere: radius
        "rsa_radius_unit": "voxels",  # "voxels" (grid steps, spacing read from the coords) | "coords" (mm for images)
        "rsa_centres": "rois",  # "rois" (centres in some ROI: same ROI means, faster) | "all"
        "rsa_min_voxels": 10,  # centres with fewer voxels in their neighbourhood are not scored
        "rsa_similarity": "pearson",  # model RSM of an embedding: "pearson" | "cosine" | "dot"
        "rsa_method": "pearson",  # RSM comparison: "pearson" | "spearman"
        "rsa_n_jobs": 1,  # threads over searchlight centres (-1 = all cores)
        "fdr_alpha": 0.05,  # Benjamini-Hochberg level of the paired t-tests across subjects
        "noise_ceiling": True,  # per-voxel noise ceiling when stimuli are repeated
        "noise_ceiling_method": "variance",  # "variance" | "split_half"
        "variance_partition": [],  # pairs of systems, e.g. [["mllm", "human_category"]]
    },
    "report": {"title": ""},
}

#: Keys of one ``[systems.NAME]`` table and their defaults.
SYSTEM_DEFAULTS: dict[str, Any] = {
    "agent": "simulated",  # one of AGENT_KINDS
    "features": "",  # "synthetic:<view>" or a feature table (Parquet/CSV with an item_id column)
    "ratings": [],  # rating groups for agent = "ratings": ["category"], ["dimension"] or both
    "center": False,
    "standardize": False,
    "temperature": 1.0,
    "model": "",
    "design": {},  # this system's [design] settings that differ from the study's, e.g. {n_triplets = 2000}
    # language-model agents ("openai", "llama")
    "prompt": "",  # "paper_llm" | "paper_mllm" | a prompt file; default: paper_llm (captions) or paper_mllm (frames)
    "input": "captions",  # "captions" | "frames"
    "llm_temperature": 0.01,  # sampling temperature of the model (the authors used 0.01)
    "answer_tokens": 512,  # most tokens per answer (the paper's prompts ask for a description first)
    # "openai": any OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, hosted APIs)
    "base_url": "",
    "api_key_env": "",  # name of the environment variable holding the key ("" = no key)
    "constrained": "auto",  # "auto" | "guided_choice" | "json" | "none"
    "logprobs": True,
    "concurrency": 16,
    "timeout": 60.0,
    "max_retries": 5,
    "rate_limit": 0.0,  # requests/s, 0 = none
    "max_requests": 0,  # budget cap per run, 0 = none
    "max_tokens": 0,  # token budget per run, 0 = none
    "n_frames": 4,
    "frame_size": 336,
    # "llama": a local GGUF file through llama-cpp-python ("" = the packaged Gemma 3 270M)
    "gguf": "",
    # "vllm": the offline engine on local GPUs; keyword arguments of vllm.LLM
    "engine": {},
    # "minilm": captions per item embedded (0 = all; the first ones in the file's order)
    "max_captions": 0,
    "n_threads": 0,  # 0 = llama.cpp's default
}

AGENT_KINDS = ("simulated", "similarity", "ratings", "minilm", "llama", "openai", "vllm")


def _merge(section: str, given: dict[str, Any], defaults: dict[str, Any], source: Path) -> dict[str, Any]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {unknown} in [{section}]; known: {sorted(defaults)}")
    merged = copy.deepcopy(defaults)
    merged.update(given)
    return merged


def _deep_update(target: dict[str, Any], values: dict[str, Any]) -> None:
    """Update ``target`` in place, merging nested tables instead of replacing them."""
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def resolve_path(config: dict[str, Any], value: str) -> Path:
    """A path from the config, relative to the config file's folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(config["_dir"]) / path


def load_config(
    path: str | Path, overrides: dict[str, dict[str, Any]] | None = None, scale: str | None = None
) -> dict[str, Any]:
    """Read and validate a study config.

    Parameters
    ----------
    path : path
        A TOML file.
    overrides : dict, optional
        ``{section: {key: value}}`` applied on top of the file (e.g. from command-line flags).
    scale : str, optional
        Name of a ``[scales.NAME]`` table of the file: its ``{section: {key: value}}`` settings
        are applied before ``overrides`` (e.g. ``paper`` for the paper's number of judgments).

    Returns
    -------
    dict
        Every section with defaults filled in, ``systems`` as ``{name: settings}``, plus
        ``_dir`` (the config's folder) and ``_hash`` (hash of the resolved settings).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"study config not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from exc
    scales = raw.pop("scales", {})
    if scale is not None:
        if scale not in scales:
            raise InputError(f"{path}: no [scales.{scale}] table; scales: {sorted(scales)}")
        for section, values in scales[scale].items():
            if not isinstance(values, dict):
                raise InputError(f"{path}: [scales.{scale}] {section} must be a table of settings")
            _deep_update(raw.setdefault(section, {}), values)
    for section, values in (overrides or {}).items():
        _deep_update(raw.setdefault(section, {}), values)
    unknown = sorted(set(raw) - set(DEFAULTS) - {"systems"})
    if unknown:
        raise InputError(f"{path}: unknown section(s) {unknown}; known: {sorted(DEFAULTS) + ['systems']}")
    config: dict[str, Any] = {s: _merge(s, raw.get(s, {}), d, path) for s, d in DEFAULTS.items()}
    systems = raw.get("systems", {})
    if not systems:
        raise InputError(f"{path}: no [systems.NAME] tables: nothing to collect")
    config["systems"] = {}
    for name, settings in systems.items():
        system = _merge(f"systems.{name}", settings, SYSTEM_DEFAULTS, path)
        if system["agent"] not in AGENT_KINDS:
            raise InputError(f"{path}: [systems.{name}] agent {system['agent']!r} is not one of {AGENT_KINDS}")
        if system["agent"] in ("simulated", "similarity") and not system["features"]:
            raise InputError(f"{path}: [systems.{name}] needs `features` for agent {system['agent']!r}")
        if system["agent"] == "ratings" and not system["ratings"]:
            raise InputError(f"{path}: [systems.{name}] needs `ratings` (e.g. [\"category\"]) for agent 'ratings'")
        if system["agent"] == "openai" and not system["base_url"]:
            raise InputError(f'{path}: [systems.{name}] needs `base_url` (e.g. "http://127.0.0.1:8000/v1")')
        if system["agent"] in ("openai", "vllm") and not system["model"]:
            raise InputError(f"{path}: [systems.{name}] needs `model` (the name the server knows the model by)")
        system["design"] = _merge(f"systems.{name}.design", system["design"], config["design"], path)
        if system["input"] not in ("captions", "frames"):
            raise InputError(f"{path}: [systems.{name}] input must be 'captions' or 'frames', not {system['input']!r}")
        if system["input"] == "frames" and system["agent"] not in ("openai", "vllm"):
            raise InputError(f"{path}: [systems.{name}] input = 'frames' needs agent = 'openai' or 'vllm'")
        config["systems"][name] = system
    if config["study"]["name"] == "study":
        config["study"]["name"] = path.stem
    config["_hash"] = hash_json(config)
    config["_dir"] = str(path.parent.resolve())
    return config


def dump_config(config: dict[str, Any]) -> str:
    """The resolved config as TOML text (private ``_`` keys left out)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    for section, settings in config.items():
        if section.startswith("_") or section == "systems":
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in settings.items()]
        lines.append("")
    for name, settings in config["systems"].items():
        lines.append(f"[systems.{name}]")
        lines += [f"{k} = {value(v)}" for k, v in settings.items()]
        lines.append("")
    return "\n".join(lines)
