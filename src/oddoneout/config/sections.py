"""The settings tables of a study config, one dataclass per section, with every default.

``[systems.NAME]`` tables are declared by their agent kinds (:mod:`oddoneout.agents.registry`).
The embedding's estimator settings take their defaults from :class:`~oddoneout.embed.spose.SPoSE`
(those VICE shares have the same defaults in :class:`~oddoneout.embed.vice.VICE`: tests/test_config.py);
with ``method = "vice"`` the keys only SPoSE takes (:data:`SPOSE_ONLY`) keep their defaults.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Any, Iterator

from oddoneout.collect.cost import PRICE_KEYS
from oddoneout.collect.informativeness import CRITERIA
from oddoneout.embed.selection import AUTO
from oddoneout.embed.spose import SPoSE
from oddoneout.embed.vice import VICE
from oddoneout.errors import InputError
from oddoneout.settings import Settings, setting
from oddoneout.triplets import ODD_ONE_OUT, trial_type_from_spec

#: Fewest items the synthetic world (:func:`oddoneout.studies.synthetic.make_world`) can make.
MIN_ITEMS = 10

_SPOSE = inspect.signature(SPoSE.__init__).parameters
#: SPoSE's parameters that VICE lacks: ``[embedding]`` keys that ``method = "vice"`` cannot use.
SPOSE_ONLY = tuple(name for name in _SPOSE if name not in inspect.signature(VICE.__init__).parameters)


def _estimator_default(name: str) -> Any:
    """The SPoSE estimator's default of one of its parameters (one owner for the default)."""
    return _SPOSE[name].default


#: Values of ``[design] selection``.
SELECTIONS = ("random", "adaptive")
#: Values of ``[embedding] method``.
EMBEDDING_METHODS = ("spose", "vice")
#: Values of ``[neural] source``: the synthetic world's OUT/neural/*.npz, none, or files of a format.
NEURAL_SOURCES = ("synthetic", "none", "npz", "bdata", "nifti")
#: Neural sources read from the files of ``subjects``.
NEURAL_FILE_SOURCES = ("npz", "bdata", "nifti")


@dataclass(frozen=True)
class StudySettings(Settings):
    """``[study]``: its name (default: the config file's stem) and the seed of everything."""

    name: str = setting("study", safe_name=True)
    seed: int = setting(0, minimum=0)


@dataclass(frozen=True)
class StimuliSettings(Settings):
    """``[stimuli]``: where the items come from."""

    #: "synthetic" | "cowen_keltner" | a stimulus table (.parquet/.csv)
    source: str = setting("synthetic")
    #: cowen_keltner only: offline folder with its files (else $ODDONEOUT_COWEN_KELTNER, the cache, a download)
    path: str = setting("")
    # synthetic world only (see oddoneout.studies.synthetic.make_world)
    n_items: int = setting(400, minimum=MIN_ITEMS)
    n_subjects: int = setting(3, minimum=1)
    n_runs: int = setting(6, minimum=1)
    voxels_per_roi: int = setting(100, minimum=1)
    #: optional folder of the study's video files (<item_id>.<ext>), for agents that watch frames
    videos: str = setting("")


@dataclass(frozen=True)
class DesignSettings(Settings):
    """``[design]`` (and a system's ``design`` table): which triplets are asked."""

    n_triplets: int = setting(100_000, minimum=0)
    n_orderings: int = setting(1, minimum=1)
    repeated_triplets: int = setting(1_000, minimum=0)
    n_repeats: int = setting(3, minimum=1)
    #: size of the validation subset asked in every triplet (paper: 66)
    exhaustive_items: int = setting(0, minimum=0)
    #: a list of trials to ask instead of random ones (.npy indices, or one trial's ids per line: 3 for
    #: triplets; the reference, then the options, for anchor and ranked trials)
    triplets: str = setting("")
    batch_size: int = setting(20_000, minimum=1)
    #: "odd_one_out" | "anchor" | "ranked:<options>:<ranked>" (e.g. "ranked:8:2"), for every design
    trial_type: str = setting(ODD_ONE_OUT.spec, omit_default=True)
    #: "random" (the main design, split into training and test) | "adaptive": a holdout, a random first
    #: round, then rounds of the most informative trials (docs/collecting.md, oddoneout.collect.adaptive);
    #: n_triplets is the whole budget of base trials, holdout included
    selection: str = setting("random", choices=SELECTIONS, omit_default=True)
    #: adaptive: selected rounds after the random first one
    adaptive_rounds: int = setting(10, minimum=1, omit_default=True)
    #: adaptive: base trials per selected round (0 = what the holdout leaves, in adaptive_rounds + 1 equal parts)
    adaptive_round_size: int = setting(0, minimum=0, omit_default=True)
    #: adaptive: how candidates are scored ("information_gain" | "entropy")
    adaptive_criterion: str = setting("information_gain", choices=tuple(CRITERIA), omit_default=True)
    #: adaptive: random base trials held out as the test set (0 = [embedding] test_fraction of n_triplets)
    holdout_triplets: int = setting(0, minimum=0, omit_default=True)

    def problems(self) -> Iterator[tuple[str, str]]:
        try:
            trial_type_from_spec(self.trial_type)
        except InputError as exc:
            yield "trial_type", str(exc)
        if self.selection == "adaptive" and self.triplets:
            yield "selection", '"adaptive" chooses its own trials: remove `triplets` (a list to ask) or select "random"'
        if self.selection == "adaptive" and self.n_triplets < 1:
            yield "n_triplets", 'selection = "adaptive" needs a budget of n_triplets >= 1'


@dataclass(frozen=True)
class EmbeddingSettings(Settings):
    """``[embedding]``: the estimator and how its ``l1`` and seed are chosen."""

    method: str = setting("spose", choices=EMBEDDING_METHODS)
    n_dims: int = setting(_estimator_default("n_dims"), minimum=1)
    #: "auto" (a grid scaled to the data), a list to choose from by held-out cross-entropy, or one value
    l1: float | list[float] | str = setting(_estimator_default("l1"), minimum=0)
    test_fraction: float = setting(0.1, above=0.0, below=1.0)
    max_epochs: int = setting(_estimator_default("max_epochs"), minimum=1)
    batch_size: int = setting(_estimator_default("batch_size"), minimum=1)
    lr: float = setting(_estimator_default("lr"), above=0.0)
    patience: int = setting(_estimator_default("patience"), minimum=0)
    prune_threshold: float = setting(_estimator_default("prune_threshold"), minimum=0)
    #: SPoSE: refit the kept weights without the penalty (relaxed lasso)
    relax: bool = setting(_estimator_default("relax"))
    #: SPoSE: after the validated fit, fit the kept l1 again on every triplet (its schedule repeated)
    refit: bool = setting(_estimator_default("refit"))
    #: SPoSE: the estimate is the running average of the iterates, not the last one
    averaging: bool = setting(_estimator_default("averaging"))
    device: str = setting(_estimator_default("device"))
    #: choosing l1: the sparsest within this many standard errors of the best (0 = minimum)
    l1_n_se: float = setting(_estimator_default("l1_n_se"), minimum=0)
    #: choosing l1: 1 = the validation split, K >= 2 = K-fold cross-validation
    l1_folds: int = setting(_estimator_default("l1_folds"), minimum=1)
    #: several seeds: fit each, keep the best held-out fit, score each dimension's reproducibility
    seeds: list[int] = setting([])
    #: parallel seed fits
    n_jobs: int = setting(1)
    seed_backend: str = setting("process", choices=("process", "ray"))

    def problems(self) -> Iterator[tuple[str, str]]:
        if isinstance(self.l1, list) and (not self.l1 or min(self.l1) < 0):
            yield "l1", f"{self.l1!r}: a list of l1 values must be non-empty and non-negative"
        if isinstance(self.l1, str) and self.l1 != AUTO:
            yield "l1", f"{self.l1!r}: give a number, a list of numbers or {AUTO!r}"
        if any(seed < 0 for seed in self.seeds):
            yield "seeds", f"{self.seeds!r}: seeds must be non-negative"
        if self.method == "vice":
            for key in (f.name for f in fields(self) if f.name in SPOSE_ONLY):
                if getattr(self, key) != _estimator_default(key):
                    yield key, f'{getattr(self, key)!r}: a SPoSE setting, which method = "vice" does not take'


@dataclass(frozen=True)
class CollectSettings(Settings):
    """``[collect]``: where local agents are asked."""

    #: "local" | "ray" (shards over a Ray cluster; local agents only)
    executor: str = setting("local", choices=("local", "ray"))
    #: "" = a local Ray cluster, "auto" = the running one, or host:port
    ray_address: str = setting("")
    #: 0 = one per Ray CPU
    n_shards: int = setting(0, minimum=0)


@dataclass(frozen=True)
class EvaluationSettings(Settings):
    """``[evaluation]``."""

    n_bootstrap: int = setting(1000, minimum=0)


@dataclass(frozen=True)
class InterpretSettings(Settings):
    """``[interpret]``: the interpretation analyses (docs/interpretation.md)."""

    top_k: int = setting(8, minimum=1)
    map_method: str = setting("tsne", choices=("tsne", "umap", "none"))
    #: edges of the dimension graph: r between dimensions above this
    graph_threshold: float = setting(0.2)
    #: categorical / hybrid / dimensional rule (docs/interpretation.md)
    class_min_r: float = setting(0.3)
    class_balance: float = setting(0.8)
    #: the report stage writes interactive/<system>_map.html from each item map
    interactive: bool = setting(True)


@dataclass(frozen=True)
class NeuralSettings(Settings):
    """``[neural]``: the brain stage, see docs/brain.md."""

    #: "synthetic" (the synthetic world's OUT/neural/*.npz) | "none" | "npz" (NeuralData files) |
    #: "bdata" (Kamitani-lab HDF5, e.g. Horikawa 2020) | "nifti" (4-D images)
    source: str = setting("synthetic", choices=NEURAL_SOURCES)
    #: one file per subject (npz / bdata / nifti), relative to the config file
    subjects: list[str] = setting([])
    #: optional labels, one per file ("" or absent = the file's stem)
    subject_names: list[str] = setting([], safe_name=True)
    #: nifti only: one stimulus_id,run CSV per subject (one row per volume)
    tables: list[str] = setting([])
    #: nifti only: a 3-D brain mask on the images' grid ("" = non-zero finite voxels)
    mask: str = setting("")
    #: nifti only: [[name, 3-D mask image], ...] on the images' grid
    roi_masks: list[list[str]] = setting([])
    #: bdata only: roiInf.mat -> the study's 26 Horikawa ROIs ("" = the file's own ROI columns)
    roi_info: str = setting("")
    #: repeated presentations (oddoneout.neural.repeats)
    repeats: str = setting("average", choices=("average", "run", "keep"))
    n_folds: int = setting(6, minimum=2)
    inner_folds: int = setting(5, minimum=2)
    #: log-spaced grid: [low, high, count]
    alphas: list[float] = setting([0.01, 100000.0, 20])
    backend: str = setting("numpy")
    #: voxels fit at once (bounds memory); 0 = all
    voxel_batch: int = setting(5000, minimum=0)
    #: searchlight RSA (needs voxel coordinates)
    rsa: bool = setting(True)
    rsa_shape: str = setting("cube", choices=("cube", "sphere"))
    #: cube: half side (3 = the paper's 7x7x7 voxels); sphere: radius
    rsa_radius: float = setting(3.0, above=0.0)
    #: "voxels" (grid steps, spacing read from the coords) | "coords" (mm for images)
    rsa_radius_unit: str = setting("voxels", choices=("voxels", "coords"))
    #: "rois" (centres in some ROI: same ROI means, faster) | "all"
    rsa_centres: str = setting("rois", choices=("rois", "all"))
    #: centres with fewer voxels in their neighbourhood are not scored
    rsa_min_voxels: int = setting(10, minimum=1)
    #: model RSM of an embedding
    rsa_similarity: str = setting("pearson", choices=("pearson", "cosine", "dot"))
    #: RSM comparison
    rsa_method: str = setting("pearson", choices=("pearson", "spearman"))
    #: threads over searchlight centres (-1 = all cores)
    rsa_n_jobs: int = setting(1, minimum=-1)
    #: Benjamini-Hochberg level of the paired t-tests across subjects
    fdr_alpha: float = setting(0.05, above=0.0, below=1.0)
    #: per-voxel noise ceiling when stimuli are repeated
    noise_ceiling: bool = setting(True)
    noise_ceiling_method: str = setting("variance", choices=("variance", "split_half"))
    #: pairs of systems, e.g. [["mllm", "human_category"]]
    variance_partition: list[list[str]] = setting([])

    def problems(self) -> Iterator[tuple[str, str]]:
        source, n = self.source, len(self.subjects)
        if source in NEURAL_FILE_SOURCES and not self.subjects:
            yield "subjects", f'source = "{source}" needs `subjects` (one data file per subject)'
        if self.subject_names and len(self.subject_names) != n:
            yield "subject_names", f"has {len(self.subject_names)} entries, subjects has {n}"
        if source == "nifti" and len(self.tables) != n:
            yield (
                "tables",
                (
                    f'source = "nifti" needs `tables`: one stimulus_id,run CSV per subject '
                    f"({n} subjects, {len(self.tables)} tables)"
                ),
            )
        for pair in self.roi_masks:
            if len(pair) != 2:
                yield "roi_masks", f"entries must be [name, mask file] pairs, got {pair!r}"
        for pair in self.variance_partition:
            if len(pair) != 2 or pair[0] == pair[1]:
                yield "variance_partition", f"entries must be pairs of two systems, got {pair!r}"
        low_high_count = self.alphas
        if len(low_high_count) != 3 or not 0 < low_high_count[0] < low_high_count[1] or low_high_count[2] < 1:
            yield "alphas", f"{self.alphas!r} must be [low, high, count] with 0 < low < high and count >= 1"


@dataclass(frozen=True)
class CostSettings(Settings):
    """``[cost]``: the price table of the cost accounting (:mod:`oddoneout.collect.cost`, :data:`PRICE_KEYS`).

    A price not set is not known (the estimated price is then ``None``, never 0). A system's
    ``[cost.systems.NAME]`` table (keys of :data:`PRICE_KEYS`) sets its own prices, over these.
    Prices change no result: the section is left out of the config hash.
    """

    usd_per_million_input_tokens: float | None = setting(None, minimum=0, omit_default=True)
    usd_per_million_output_tokens: float | None = setting(None, minimum=0, omit_default=True)
    usd_per_image: float | None = setting(None, minimum=0, omit_default=True)
    usd_per_gpu_hour: float | None = setting(None, minimum=0, omit_default=True)
    #: system name -> {price key: US dollars}
    systems: dict[str, dict[str, float]] = setting({}, omit_default=True)

    def problems(self) -> Iterator[tuple[str, str]]:
        for name, prices in self.systems.items():
            if not isinstance(prices, dict):
                yield "systems", f"[cost.systems.{name}] must be a table of prices, not {prices!r}"
                continue
            unknown = sorted(set(prices) - set(PRICE_KEYS))
            if unknown:
                yield "systems", f"[cost.systems.{name}] unknown key(s) {unknown}; known: {list(PRICE_KEYS)}"
            for key, value in prices.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                    yield "systems", f"[cost.systems.{name}] {key} = {value!r} must be a number >= 0"

    def prices(self, system: str) -> dict[str, float | None]:
        """The prices of ``system``: its own ``[cost.systems.NAME]`` values over the study's (``None``: not set)."""
        own = self.systems.get(system, {})
        return {key: own.get(key, getattr(self, key)) for key in PRICE_KEYS}


@dataclass(frozen=True)
class ReportSettings(Settings):
    """``[report]``."""

    #: "" = the study's name
    title: str = setting("")


#: Every section of a study config and its settings class, in the order of ``config.toml``;
#: ``systems`` and ``scales`` are read apart.
SECTIONS: dict[str, type] = {
    "study": StudySettings,
    "stimuli": StimuliSettings,
    "design": DesignSettings,
    "embedding": EmbeddingSettings,
    "collect": CollectSettings,
    "evaluation": EvaluationSettings,
    "interpret": InterpretSettings,
    "neural": NeuralSettings,
    "report": ReportSettings,
    "cost": CostSettings,
}
#: Sections the config hash leaves out (they change no result); ``config.toml`` shows them when set.
UNHASHED_SECTIONS = ("cost",)
