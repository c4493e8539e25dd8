"""What the sessions of one served system are shown: its designs, each item's text, the practice trials."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oddoneout.agents.registry import HumanSettings, human_model
from oddoneout.collect.designs import TripletDesign
from oddoneout.config import StudyConfig
from oddoneout.errors import InputError
from oddoneout.stimuli.stimulus_set import StimulusSet


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
        What is shown for each item (its caption, for now).
    practice : tuple of (str, str, str)
        The practice trials' texts (not stored).
    """

    title: str
    system: str
    model: str
    settings: HumanSettings
    designs: list[TripletDesign]
    item_ids: tuple[str, ...]
    texts: dict[str, str]
    practice: tuple[tuple[str, str, str], ...]

    def shown(self, items: tuple[str, str, str]) -> list[str]:
        """The texts of a trial's items, in the order shown."""
        return [self.texts[item] for item in items]


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


def build_experiment(config: StudyConfig, name: str, stimuli: StimulusSet) -> Experiment:
    """The experiment of system ``name`` over the study's stimuli, with the designs the collect stage would ask."""
    from oddoneout.agents.inputs import captions
    from oddoneout.pipeline.collect import study_designs

    settings = config.systems[name].settings
    if not isinstance(settings, HumanSettings):
        raise InputError(f"system {name!r} is not served to people")
    item_ids = tuple(stimuli.item_ids)
    texts = captions(stimuli)
    rng = np.random.default_rng([config.study.seed, 17])  # practice trials: drawn apart from every design
    practice = tuple(
        tuple(texts[item_ids[i]] for i in rng.choice(len(item_ids), 3, replace=False))
        for _ in range(settings.practice_trials)
    )
    return Experiment(
        title=config.study.name,
        system=name,
        model=human_model(settings),
        settings=settings,
        designs=study_designs(config, list(item_ids), name),
        item_ids=item_ids,
        texts=texts,
        practice=practice,
    )
