"""What the sessions of one served system are shown: its designs, each item's caption or media, the practice trials."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from oddoneout.agents.registry import HumanSettings, human_model
from oddoneout.collect.designs import TripletDesign
from oddoneout.config import StudyConfig
from oddoneout.errors import InputError
from oddoneout.serve.media import Medium, item_media, media_folder
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.triplets import ODD_ONE_OUT, TrialType

if TYPE_CHECKING:
    from oddoneout.collect.store import TripletStore


@dataclass(frozen=True)
class Experiment:
    """One served system.

    Attributes
    ----------
    title : str
        Shown as the page title (the study's name).
    system : str
        The system whose store the answers go to.
    model : str
        The model name stored with each judgment.
    settings : HumanSettings
        The system's ``[systems.NAME]`` settings.
    designs : list of TripletDesign
        The trials to ask, leased in this order.
    item_ids : tuple of str
        The study's items (the store's vocabulary).
    texts : dict of str to str
        Each item's caption (shown for the items without media).
    practice : tuple of tuple of str
        The practice trials' items, as shown (not stored).
    media : dict of str to Medium
        The media file of each item that has one (:func:`~oddoneout.serve.media.item_media`).
    trial_type : TrialType
        The kind of trial asked (every design of a system asks the same): odd-one-out, anchor or ranked.
    """

    title: str
    system: str
    model: str
    settings: HumanSettings
    designs: list[TripletDesign]
    item_ids: tuple[str, ...]
    texts: dict[str, str]
    practice: tuple[tuple[str, ...], ...]
    media: dict[str, Medium] = field(default_factory=dict)
    trial_type: TrialType = ODD_ONE_OUT

    @property
    def layout(self) -> dict[str, Any]:
        """What the page needs to know of the trial type: its ``trial_type`` name, ``spec``, items shown
        (``n_shown``, the reference first unless odd-one-out) and options ranked (``n_ranked``)."""
        kind = self.trial_type
        return {"trial_type": kind.name, "spec": kind.spec, "n_shown": kind.n_shown, "n_ranked": kind.n_ranked}

    @cached_property
    def numbers(self) -> dict[str, int]:
        """Each item's number: its place in :attr:`item_ids` (what the page's media URLs name)."""
        return {item: number for number, item in enumerate(self.item_ids)}

    def shown(self, items: tuple[str, ...]) -> list[str]:
        """The texts of a trial's items, in the order shown: each caption, ``""`` for an item shown as media."""
        return ["" if item in self.media else self.texts[item] for item in items]

    def medium(self, number: int) -> Medium | None:
        """The media file of item number ``number`` (its place in :attr:`item_ids`), if it has one."""
        if not 0 <= number < len(self.item_ids):
            return None
        return self.media.get(self.item_ids[number])

    def display(self, items: tuple[str, ...]) -> dict[str, list[Any]]:
        """What the page shows of a trial's items, in the order shown.

        Returns
        -------
        dict
            ``texts`` (:meth:`shown`) and ``media``: per item ``None`` (shown as its text) or
            ``{"kind", "url"}`` (``"/media/<item number>"``: neither the item id nor the file
            name), a video with ``autoplay``, ``loop`` and ``muted`` as the settings say.
        """
        media: list[dict[str, Any] | None] = []
        for item in items:
            found = self.media.get(item)
            if found is None:
                media.append(None)
                continue
            shown: dict[str, Any] = {"kind": found.kind, "url": f"/media/{self.numbers[item]}"}
            if found.kind == "video":
                settings = self.settings
                shown.update(autoplay=settings.video_autoplay, loop=settings.video_loop, muted=settings.video_muted)
            media.append(shown)
        return {"texts": self.shown(items), "media": media}

    def practice_trials(self) -> list[dict[str, list[Any]]]:
        """What the page shows of each practice trial (:meth:`display`)."""
        return [self.display(items) for items in self.practice]


def served_systems(config: StudyConfig) -> list[str]:
    """The config's systems that people answer (``agent = "human"`` and any other served kind)."""
    from oddoneout.agents.registry import agent_kind

    return [name for name, system in config.systems.items() if agent_kind(system.agent).served]


def pick_system(config: StudyConfig, name: str | None) -> str:
    """The system to serve: ``name``, or the config's only served system."""
    served = served_systems(config)
    if name is not None:
        if name not in config.systems:
            raise InputError(f"unknown system {name!r}; the config has {sorted(config.systems)}")
        if name not in served:
            raise InputError(f"system {name!r} is asked of agent {config.systems[name].agent!r}, not served to people")
        return name
    if len(served) != 1:
        which = f"one of {served}" if served else 'a [systems.NAME] table with agent = "human"'
        raise InputError(f"{config.file}: say which system to serve with --system ({which})")
    return served[0]


def build_experiment(config: StudyConfig, name: str, stimuli: StimulusSet, store: Path | None = None) -> Experiment:
    """The experiment of system ``name`` over the study's stimuli, with the designs the collect stage would ask.

    An adaptive system's ``adaptive`` design holds the rounds recorded in its ``store``
    (``oddoneout adapt``) when it is given.

    Raises
    ------
    InputError
        When an item's media file is missing, outside the media folder or of an unknown type
        (:func:`~oddoneout.serve.media.item_media`): the server does not start.
    """
    from oddoneout.agents.inputs import captions
    from oddoneout.pipeline.collect import study_designs

    settings = config.systems[name].settings
    if not isinstance(settings, HumanSettings):
        raise InputError(f"system {name!r} is not served to people")
    item_ids = tuple(stimuli.item_ids)
    texts = captions(stimuli)
    media = item_media(stimuli, media_folder(config, settings))
    designs = study_designs(config, list(item_ids), name, store)
    kinds = {design.trial_type for design in designs}
    if len(kinds) > 1:
        raise InputError(f"system {name!r} asks trials of several types ({sorted(k.spec for k in kinds)}): serve one")
    trial_type = kinds.pop() if kinds else ODD_ONE_OUT
    rng = np.random.default_rng([config.study.seed, 17])  # practice trials: drawn apart from every design
    width = trial_type.n_shown
    practice = tuple(
        tuple(item_ids[i] for i in rng.choice(len(item_ids), width, replace=False))
        for _ in range(settings.practice_trials)
    )
    return Experiment(
        title=config.study.name,
        system=name,
        model=human_model(settings),
        settings=settings,
        designs=designs,
        item_ids=item_ids,
        texts=texts,
        practice=practice,
        media=media,
        trial_type=trial_type,
    )


def design_refresh(
    config: StudyConfig, name: str, stimuli: StimulusSet, store: TripletStore
) -> Callable[[], list[TripletDesign] | None] | None:
    """For an adaptive system, the served designs again whenever another round has been recorded.

    ``oddoneout adapt`` records a round in the store while the server runs; the lease book calls
    this before each lease (one ``COUNT`` query) and leases the new round's trials from then on.
    ``None`` for a system with random designs (they never change while serving).
    """
    from oddoneout.collect.adaptive import n_recorded_rounds
    from oddoneout.pipeline.collect import study_designs

    if config.systems[name].design.selection != "adaptive":
        return None
    seen = [n_recorded_rounds(store.connection)]

    def refresh() -> list[TripletDesign] | None:
        count = n_recorded_rounds(store.connection)
        if count == seen[0]:
            return None
        seen[0] = count
        return study_designs(config, list(stimuli.item_ids), name, store.path)  # the designs build_experiment serves

    return refresh
