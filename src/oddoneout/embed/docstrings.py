"""Docstring entries shared by the triplet embedding estimators, and :func:`fill_doc` to insert them.

A line of a docstring that holds only ``%(name)s`` is replaced by the entry ``name`` of
:data:`SHARED_DOCS`, indented as the placeholder was; so every parameter that SPoSE and VICE
share is described once, here.
"""

from __future__ import annotations

import re
from typing import Callable, TypeVar

T = TypeVar("T", bound=Callable)

SHARED_DOCS: dict[str, str] = {
    "lr": """\
lr : float
    Adam learning rate.""",
    "batch_size": """\
batch_size : int
    Triplets per optimiser step.""",
    "max_epochs": """\
max_epochs : int
    Upper limit on passes over the training triplets.""",
    "lr_decay": """\
lr_decay : float
    Factor applied to the learning rate at a plateau, in (0, 1].""",
    "n_lr_decays": """\
n_lr_decays : int
    Plateaus met by a learning-rate decay; the next one stops training.""",
    "validation_fraction": """\
validation_fraction : float
    Share of the triplets held out (a seeded split), in [0, 1), for the validation metrics of
    ``history_`` and, where the monitored objective uses them, for choosing the kept epoch.
    With 0 the validation metrics are NaN and the training cross-entropy is monitored instead.""",
    "tol": """\
tol : float
    Minimum decrease of the monitored objective that counts as an improvement.""",
    "soft_labels": """\
soft_labels : bool
    Fit the soft labels ``triplets.probs`` when present; otherwise the hard choices.""",
    "device": """\
device : str
    Torch device, e.g. ``"cpu"`` or ``"cuda"``.""",
    "n_threads": """\
n_threads : int or None
    CPU threads torch may use during :meth:`fit` (restored afterwards); ``None`` keeps
    torch's setting. The default 1 is deliberate: the per-step tensors are small, so
    more threads gain little, and on a busy machine torch's spinning worker threads
    made fits 10-20 times slower in our measurements.""",
    "item_ids_": """\
item_ids_ : tuple of str
    Row ids of ``weights_`` (the vocabulary of the fitted triplets).""",
    "unseen_item_ids_": """\
unseen_item_ids_ : tuple of str
    Items with no training triplet.""",
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)


def fill_doc(obj: T) -> T:
    """Replace every ``%(name)s`` line of ``obj.__doc__`` by the shared entry ``name``, at the line's indent.

    Raises
    ------
    KeyError
        If a placeholder names no entry of :data:`SHARED_DOCS`.
    """

    def entry(match: re.Match[str]) -> str:
        indent = match["indent"]
        return "\n".join(indent + line if line else line for line in SHARED_DOCS[match["name"]].splitlines())

    if obj.__doc__:
        obj.__doc__ = _PLACEHOLDER.sub(entry, obj.__doc__)
    return obj
