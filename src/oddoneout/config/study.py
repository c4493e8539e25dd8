"""The loaded study config: one typed settings object per section, one per system, the hash and the folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oddoneout.config.sections import (
    SECTIONS,
    UNHASHED_SECTIONS,
    CollectSettings,
    CostSettings,
    DesignSettings,
    EmbeddingSettings,
    EvaluationSettings,
    InterpretSettings,
    NeuralSettings,
    ReportSettings,
    StimuliSettings,
    StudySettings,
)
from oddoneout.settings import Settings, as_table, resolved_table


@dataclass(frozen=True)
class SystemConfig:
    """One ``[systems.NAME]`` table.

    Attributes
    ----------
    name : str
        The system (a safe name: it names the system's output files).
    agent : str
        Its agent kind (:data:`oddoneout.agents.registry.AGENT_KINDS`).
    settings : Settings
        The kind's settings (e.g. :class:`~oddoneout.agents.registry.OpenAISettings`).
    design : DesignSettings
        The study's ``[design]`` with this system's ``design`` table applied.
    """

    name: str
    agent: str
    settings: Settings
    design: DesignSettings

    def table(self) -> dict[str, Any]:
        """The resolved table as ``config.toml`` shows it and the config hash covers it."""
        from oddoneout.agents.registry import table_keys, unused_defaults

        values = {
            **unused_defaults(),
            **as_table(self.settings),
            "agent": self.agent,
            "design": resolved_table(self.design),
        }
        return {key: values[key] for key in table_keys(self.agent)}


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config (:func:`oddoneout.config.load_config`).

    Attributes
    ----------
    study, stimuli, design, embedding, collect, evaluation, interpret, neural, report, cost
        The sections' settings, defaults filled in.
    systems : dict of str to SystemConfig
        The systems, in the file's order.
    hash : str
        SHA-256 of the resolved settings (:meth:`tables`).
    dir : Path
        The config file's folder: relative paths of the config are relative to it.
    file : Path
        The config file.
    """

    study: StudySettings
    stimuli: StimuliSettings
    design: DesignSettings
    embedding: EmbeddingSettings
    collect: CollectSettings
    evaluation: EvaluationSettings
    interpret: InterpretSettings
    neural: NeuralSettings
    report: ReportSettings
    cost: CostSettings
    systems: dict[str, SystemConfig]
    hash: str
    dir: Path
    file: Path

    def tables(self) -> dict[str, Any]:
        """Every resolved setting as plain tables: ``{section: {key: value}, "systems": {name: table}}``.

        A section of :data:`~oddoneout.config.sections.UNHASHED_SECTIONS` is left out while nothing in it is set.
        """
        tables: dict[str, Any] = {section: resolved_table(getattr(self, section)) for section in SECTIONS}
        for section in UNHASHED_SECTIONS:
            if not tables[section]:
                del tables[section]
        tables["systems"] = {name: system.table() for name, system in self.systems.items()}
        return tables

    def resolve(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.dir / path
