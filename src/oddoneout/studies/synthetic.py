"""The synthetic emotion world: a known latent affect space, ratings, captions, agent views and a brain.

Everything here is SYNTHETIC. The world is shaped like Cowen & Keltner's (2017) finding: about 27
emotion categories joined by smooth gradients, so that many stimuli are blends of two categories.
Because the truth is known, every stage of the pipeline can be checked against it.

Generative model (per stimulus ``i``, all draws from one seeded generator):

* ``z_i``: category blend on the 27-simplex. A primary category, and with probability
  ``blend_probability`` a share ``t ~ U(0.1, 0.5)`` moved to one of the primary's neighbours in a
  fixed gradient graph, plus a little Dirichlet dust.
* ``u_i``: a 2-d affect deviation that categories do not explain (seen only through the
  dimension ratings).
* ``scene_i``: what the clip shows (one of six scenes), emotion-neutral, described by captions.
* ``visual_i``: 4-d low-level visual nuisance that no agent sees.
* Ratings: 34 category shares, the share of ``n_category_raters`` raters who tick each category
  (the 27 plus seven composite ones; ticks are noisy and saturate), and 14 dimension ratings, each the mean of
  ``n_dimension_raters`` integer 1-9 ratings of ``a_i = z_i P + u_i L`` with rater noise.
* Agent views: the "MLLM-like" view is ``z`` itself (it watched the clip); the "LLM-like" view is
  caption-level, the primary category and the scene (it read a one-line caption).
* Brain: per subject, ROIs whose voxels respond linearly to one source each (``TPJ``: ``z``;
  ``STS``: scene; ``Insula``: ``u``; ``VC``: visual nuisance), plus a global nuisance signal, run
  offsets and noise. :data:`ROI_CARRIERS` says which systems carry each ROI's signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from oddoneout.atomic import atomic_open, atomic_path
from oddoneout.config.sections import MIN_ITEMS
from oddoneout.neural.data import NeuralData
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder

#: The 27 categories Cowen & Keltner found reliable.
CATEGORIES = (
    "Admiration", "Adoration", "Aesthetic Appreciation", "Amusement", "Anger", "Anxiety", "Awe",
    "Awkwardness", "Boredom", "Calmness", "Confusion", "Craving", "Disgust", "Empathic Pain",
    "Entrancement", "Excitement", "Fear", "Horror", "Interest", "Joy", "Nostalgia", "Relief",
    "Romance", "Sadness", "Satisfaction", "Sexual Desire", "Surprise",
)  # fmt: skip
#: The seven other rated categories, each a blend of two of the 27.
COMPOSITE_CATEGORIES = {
    "Contempt": ("Anger", "Disgust"),
    "Disappointment": ("Sadness", "Boredom"),
    "Envy": ("Craving", "Anger"),
    "Guilt": ("Sadness", "Awkwardness"),
    "Pride": ("Admiration", "Joy"),
    "Sympathy": ("Empathic Pain", "Sadness"),
    "Triumph": ("Excitement", "Joy"),
}
#: The 14 affective dimensions rated on a 1-9 scale.
DIMENSIONS = (
    "approach", "arousal", "attention", "certainty", "commitment", "control", "dominance",
    "effort", "fairness", "identity", "obstruction", "safety", "upswing", "valence",
)  # fmt: skip
SCENES = ("people talking", "an animal", "a landscape", "a vehicle", "food", "a sports match")
_NEGATIVE = {
    "Anger",
    "Anxiety",
    "Awkwardness",
    "Boredom",
    "Confusion",
    "Disgust",
    "Empathic Pain",
    "Fear",
    "Horror",
    "Sadness",
}
_AROUSED = {
    "Amusement",
    "Anger",
    "Awe",
    "Excitement",
    "Fear",
    "Horror",
    "Sexual Desire",
    "Surprise",
    "Disgust",
    "Anxiety",
}
#: Probability that a rater ticks a category the clip does not evoke at all.
_SPURIOUS_TICK = 0.02
_CALM = {"Boredom", "Calmness", "Sadness", "Nostalgia", "Aesthetic Appreciation", "Relief", "Satisfaction"}

#: Which systems carry each synthetic ROI's signal (``VC`` is carried by none).
ROI_CARRIERS: dict[str, tuple[str, ...]] = {
    "TPJ": ("mllm",),
    "STS": ("llm",),
    "Insula": ("human_dimension", "human_concat"),
    "VC": (),
}


@dataclass(eq=False)
class SyntheticWorld:
    """A generated synthetic study: stimuli, agent views, brain data and the hidden truth."""

    stimuli: StimulusSet
    views: dict[str, pd.DataFrame]
    neural: list[NeuralData]
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int = 0

    def write(self, out_dir: str | Path | StudyFolder) -> dict[str, Path]:
        """Write the stimulus table, one feature table per agent view, one file per subject and the truth."""
        folder = StudyFolder.of(out_dir)
        how = {"synthetic": True, "seed": self.seed, "generator": "oddoneout.studies.synthetic"}
        paths = {"stimuli": self.stimuli.save(folder.stimuli, **how)}
        for name, view in self.views.items():
            path = folder.world_view(name)
            with atomic_path(path) as temporary:
                view.to_parquet(temporary)
            paths[f"view_{name}"] = path
        for data in self.neural:
            paths[f"neural_{data.subject}"] = data.save(folder.subject(data.subject))
        truth_path = folder.truth
        with atomic_open(truth_path, "wb") as handle:  # a file, not a path: numpy would append ".npz"
            np.savez_compressed(handle, item_ids=np.array(self.stimuli.item_ids), **self.truth)
        paths["truth"] = truth_path
        return paths


def _gradient_graph(rng: np.random.Generator, n: int, degree: int = 3) -> list[np.ndarray]:
    """Each category's neighbours: the categories it blends into."""
    return [rng.choice(np.delete(np.arange(n), c), size=degree, replace=False) for c in range(n)]


def _category_blends(rng: np.random.Generator, n_items: int, blend_probability: float):
    n_cat = len(CATEGORIES)
    neighbours = _gradient_graph(rng, n_cat)
    primary = rng.integers(0, n_cat, n_items)
    z = np.zeros((n_items, n_cat))
    z[np.arange(n_items), primary] = 1.0
    blended = rng.random(n_items) < blend_probability
    share = np.where(blended, rng.uniform(0.1, 0.5, n_items), 0.0)
    secondary = np.array([rng.choice(neighbours[p]) for p in primary])
    z[np.arange(n_items), primary] -= share
    z[np.arange(n_items), secondary] += share
    dust = rng.dirichlet(np.full(n_cat, 0.1), n_items)
    return 0.95 * z + 0.05 * dust, primary, secondary, share


def _dimension_profiles(rng: np.random.Generator) -> np.ndarray:
    """How each category sits on the 14 dimensions (valence and arousal by name, the rest random)."""
    profiles = rng.normal(0.0, 0.6, (len(CATEGORIES), len(DIMENSIONS)))
    valence, arousal = DIMENSIONS.index("valence"), DIMENSIONS.index("arousal")
    for c, name in enumerate(CATEGORIES):
        profiles[c, valence] = -1.5 if name in _NEGATIVE else 1.5
        profiles[c, arousal] = 1.2 if name in _AROUSED else (-1.2 if name in _CALM else 0.0)
    return profiles


def _category_ratings(rng: np.random.Generator, z: np.ndarray, n_raters: int, sensitivity: float) -> pd.DataFrame:
    """Share of raters who tick each of the 34 categories (several may be ticked, as in Cowen & Keltner)."""
    index = {name: c for c, name in enumerate(CATEGORIES)}
    composite = np.column_stack([0.35 * (z[:, index[a]] + z[:, index[b]]) for a, b in COMPOSITE_CATEGORIES.values()])
    tick = _SPURIOUS_TICK + (1 - _SPURIOUS_TICK) * (1 - np.exp(-sensitivity * np.hstack([z, composite])))
    counts = rng.binomial(n_raters, tick)
    names = list(CATEGORIES) + list(COMPOSITE_CATEGORIES)
    shares = pd.DataFrame(counts / n_raters, columns=[f"category:{n}" for n in names])
    return shares[sorted(shares.columns)]  # alphabetical, as in the real rating file


def _dimension_ratings(rng: np.random.Generator, affect: np.ndarray, n_raters: int) -> pd.DataFrame:
    scores = 5.0 + 1.5 * affect[:, :, None] + rng.normal(0.0, 1.0, affect.shape + (n_raters,))
    ratings = np.clip(np.rint(scores), 1, 9).mean(axis=2)
    return pd.DataFrame(ratings, columns=[f"dimension:{d}" for d in DIMENSIONS])


def _captions(primary: np.ndarray, secondary: np.ndarray, share: np.ndarray, scene: np.ndarray) -> list[str]:
    captions = []
    for p, s, t, sc in zip(primary, secondary, share, scene):
        text = f"A clip of {SCENES[sc]}; it evokes {CATEGORIES[p].lower()}"
        if t > 0.3:
            text += f" with some {CATEGORIES[s].lower()}"
        captions.append(text + ".")
    return captions


def _roi_sources(truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    scene_onehot = np.eye(len(SCENES))[truth["scene"]]
    felt = truth["intensity"][:, None] * truth["z"]  # how strongly each category is evoked
    return {"TPJ": felt, "STS": scene_onehot, "Insula": truth["affect_deviation"], "VC": truth["visual"]}


def _subject(
    rng: np.random.Generator,
    subject: str,
    item_ids: np.ndarray,
    sources: dict[str, np.ndarray],
    n_runs: int,
    voxels_per_roi: int,
) -> NeuralData:
    n_items = len(item_ids)
    order = rng.permutation(n_items)
    runs = np.empty(n_items, dtype=np.int64)
    runs[order] = np.arange(n_items) * n_runs // n_items
    blocks, rois, coords = [], {}, []
    for r, (roi, source) in enumerate(sources.items()):
        centred = source - source.mean(axis=0)
        weights = rng.normal(0.0, 1.0, (source.shape[1], voxels_per_roi))
        signal = centred @ weights
        signal /= signal.std(axis=0, keepdims=True)
        blocks.append(signal * rng.uniform(0.4, 1.2, voxels_per_roi))
        rois[roi] = np.arange(r * voxels_per_roi, (r + 1) * voxels_per_roi)
        grid = np.stack(
            np.unravel_index(np.arange(voxels_per_roi), (10, 10, max(1, -(-voxels_per_roi // 100)))), axis=1
        )
        coords.append(grid + np.array([12 * r, 0, 0]))
    signal = np.hstack(blocks)
    n_voxels = signal.shape[1]
    global_nuisance = rng.normal(0.0, 1.0, (n_items, 1)) * rng.uniform(0.3, 0.8, (1, n_voxels))
    run_offsets = rng.normal(0.0, 0.3, (n_runs, n_voxels))[runs]
    responses = signal + global_nuisance + run_offsets + rng.normal(0.0, 1.0, signal.shape)
    shown = order  # presentation order: runs[order] is non-decreasing
    return NeuralData(
        subject=subject,
        responses=responses[shown],
        stimulus_ids=item_ids[shown],
        runs=runs[shown],
        rois=rois,
        coords=np.vstack(coords),
        metadata={"synthetic": True, "roi_carriers": {k: list(v) for k, v in ROI_CARRIERS.items()}},
    )


def make_world(
    n_items: int = 400,
    n_subjects: int = 3,
    n_runs: int = 6,
    voxels_per_roi: int = 100,
    blend_probability: float = 0.7,
    n_category_raters: int = 12,
    category_sensitivity: float = 3.0,
    n_dimension_raters: int = 9,
    mllm_scale: float = 7.0,
    mllm_valence_scale: float = 3.5,
    mllm_noise: float = 0.05,
    llm_category_scale: float = 2.6,
    llm_scene_scale: float = 1.6,
    llm_valence_scale: float = 1.0,
    seed: int = 0,
) -> SyntheticWorld:
    """Generate a synthetic emotion study.

    Parameters
    ----------
    n_items : int
        Number of stimuli ("videos").
    n_subjects, n_runs, voxels_per_roi : int
        Size of the synthetic fMRI data; every stimulus is shown once per subject.
    blend_probability : float
        Share of stimuli that blend two neighbouring categories.
    n_category_raters, category_sensitivity : int, float
        Category ratings: raters per stimulus, each ticking category ``c`` with probability
        ``0.02 + 0.98 * (1 - exp(-sensitivity * share_c))``.
    n_dimension_raters : int
        Raters averaged per 1-9 dimension rating.
    mllm_scale, mllm_valence_scale, mllm_noise : float
        The MLLM-like view is ``mllm_scale * (z + noise)`` beside ``mllm_valence_scale`` times the
        blend's positive and negative shares: larger means more deterministic choices.
    llm_category_scale, llm_scene_scale, llm_valence_scale : float
        Weights of the primary category, the scene and the primary's valence in the LLM-like
        (caption-level) view.
    seed : int
        Seed of everything.

    Returns
    -------
    SyntheticWorld
    """
    if n_items < MIN_ITEMS:
        raise ValueError(f"the synthetic world needs at least {MIN_ITEMS} items")
    rng = np.random.default_rng(seed)
    item_ids = np.array([f"syn{i:04d}" for i in range(n_items)])
    z, primary, secondary, share = _category_blends(rng, n_items, blend_probability)
    intensity = rng.uniform(0.05, 1.0, n_items)
    profiles = _dimension_profiles(rng)
    deviation = rng.normal(0.0, 1.0, (n_items, 2))
    loadings = rng.normal(0.0, 0.8, (2, len(DIMENSIONS)))
    affect = z @ profiles + deviation @ loadings
    scene = rng.integers(0, len(SCENES), n_items)
    visual = rng.normal(0.0, 1.0, (n_items, 4))

    table = pd.concat(
        [
            _category_ratings(rng, z, n_category_raters, category_sensitivity),
            _dimension_ratings(rng, affect, n_dimension_raters),
        ],
        axis=1,
    )
    table.insert(0, "caption", _captions(primary, secondary, share, scene))
    table.insert(0, "item_id", item_ids)
    table.insert(2, "media_path", None)
    stimuli = StimulusSet(table, name="synthetic-emotion")

    negative = np.array([c in _NEGATIVE for c in CATEGORIES])
    valence_shares = np.column_stack([z[:, ~negative].sum(axis=1), z[:, negative].sum(axis=1)])
    primary_onehot = np.eye(len(CATEGORIES))[primary]
    felt = intensity[:, None] * np.clip(z + rng.normal(0.0, mllm_noise, z.shape), 0.0, None)
    mllm = np.hstack([mllm_scale * felt, mllm_valence_scale * intensity[:, None] * valence_shares])
    llm = np.hstack(
        [
            llm_category_scale * primary_onehot,
            llm_scene_scale * np.eye(len(SCENES))[scene],
            llm_valence_scale * np.column_stack([~negative[primary], negative[primary]]).astype(float),
        ]
    )
    valence_columns = ["valence:positive", "valence:negative"]
    index = pd.Index(item_ids, name="item_id")
    views = {
        "mllm": pd.DataFrame(mllm, index=index, columns=[f"z:{c}" for c in CATEGORIES] + valence_columns),
        "llm": pd.DataFrame(
            llm,
            index=index,
            columns=[f"caption_category:{c}" for c in CATEGORIES]
            + [f"caption_scene:{s}" for s in SCENES]
            + valence_columns,
        ),
    }
    truth = {
        "z": z,
        "intensity": intensity,
        "primary": primary,
        "scene": scene,
        "affect_deviation": deviation,
        "affect": affect,
        "visual": visual,
    }
    sources = _roi_sources(truth)
    neural = [_subject(rng, f"sub-{s + 1:02d}", item_ids, sources, n_runs, voxels_per_roi) for s in range(n_subjects)]
    return SyntheticWorld(stimuli=stimuli, views=views, neural=neural, truth=truth, seed=seed)
