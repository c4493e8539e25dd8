"""Reading a study config: TOML, a ``[scales.NAME]`` table, overrides, then every value checked."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

from oddoneout.config.sections import SECTIONS, UNHASHED_SECTIONS, DesignSettings
from oddoneout.config.study import StudyConfig, SystemConfig
from oddoneout.errors import InputError
from oddoneout.provenance import hash_json
from oddoneout.settings import SAFE_NAME_RULE, Where, as_table, build, is_safe_name, resolved_table
from oddoneout.triplets import ODD_ONE_OUT, trial_type_from_spec

#: Tables of a config file besides :data:`~oddoneout.config.sections.SECTIONS`.
SYSTEMS, SCALES = "systems", "scales"


def _deep_update(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Update ``target`` in place, merging nested tables instead of replacing them."""
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def _apply(raw: dict[str, Any], settings: Mapping[str, Any], path: Path, label: str) -> None:
    for section, values in settings.items():
        if not isinstance(values, dict):
            raise InputError(f"{path}: {label} {section} must be a table of settings, not {values!r}")
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise InputError(f"{path}: [{section}] must be a table of settings, not {target!r}")
        _deep_update(target, values)


def load_config(
    path: str | Path, overrides: Mapping[str, Mapping[str, Any]] | None = None, scale: str | None = None
) -> StudyConfig:
    """Read and validate a study config.

    Every value is checked here, before any stage runs: unknown sections and keys, wrong types,
    values outside their choices or bounds, names used in output paths, and each agent kind's
    required settings. Missing input files are checked by :func:`~oddoneout.config.check_inputs`
    (only the stages that are run need theirs).

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
    StudyConfig

    Raises
    ------
    InputError
        One line naming the file, the table, the key and what to change.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"study config not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from exc
    scales = raw.pop(SCALES, {})
    _check_scales(scales, path)
    if scale is not None:
        if scale not in scales:
            raise InputError(f"{path}: no [scales.{scale}] table; scales: {sorted(scales)}")
        _apply(raw, scales[scale], path, f"[scales.{scale}]")
    _apply(raw, overrides or {}, path, "override of")
    unknown = sorted(set(raw) - set(SECTIONS) - {SYSTEMS})
    if unknown:
        raise InputError(f"{path}: unknown section(s) {unknown}; known: {sorted(SECTIONS) + [SYSTEMS]}")
    study = dict(raw.get("study", {}))
    if study.get("name", "study") == "study":
        study["name"] = path.stem
    raw["study"] = study
    sections = {name: build(cls, raw.get(name, {}), Where(path, name)) for name, cls in SECTIONS.items()}
    systems = _systems(raw.get(SYSTEMS, {}), sections["design"], path)
    for pair in sections["neural"].variance_partition:
        unknown = [name for name in pair if name not in systems]
        if unknown:
            raise InputError(f"{path}: [neural] variance_partition: system(s) {unknown} are not in [systems]")
    unpriced = sorted(set(sections["cost"].systems) - set(systems))
    if unpriced:
        raise InputError(f"{path}: [cost.systems] system(s) {unpriced} are not in [systems]")
    resolved = {name: resolved_table(s) for name, s in sections.items() if name not in UNHASHED_SECTIONS}
    resolved[SYSTEMS] = {name: system.table() for name, system in systems.items()}
    return StudyConfig(**sections, systems=systems, hash=hash_json(resolved), dir=path.parent.resolve(), file=path)


def _check_scales(scales: Any, path: Path) -> None:
    """Typos in every ``[scales.NAME]`` table, used or not: each names known sections, keys and systems."""
    import dataclasses

    if not isinstance(scales, dict):
        raise InputError(f"{path}: [scales] must hold one table per scale, not {scales!r}")
    for name, tables in scales.items():
        if not isinstance(tables, dict):
            raise InputError(f"{path}: [scales.{name}] must be a table of {{section: {{key: value}}}} settings")
        for section, values in tables.items():
            if section not in SECTIONS and section != SYSTEMS:
                raise InputError(f"{path}: [scales.{name}] unknown section {section!r}; known: {sorted(SECTIONS)}")
            if section in SECTIONS and isinstance(values, dict):
                unknown = sorted(set(values) - {f.name for f in dataclasses.fields(SECTIONS[section])})
                if unknown:
                    raise InputError(f"{path}: [scales.{name}] unknown key(s) {unknown} in {section}")


def _systems(tables: Any, design: DesignSettings, path: Path) -> dict[str, SystemConfig]:
    from oddoneout.agents.registry import AGENT_KINDS, DEFAULT_KIND, SYSTEM_TABLE_KEYS, unused_defaults

    if not tables:
        raise InputError(f"{path}: no [systems.NAME] tables: nothing to collect")
    if not isinstance(tables, dict):
        raise InputError(f"{path}: [systems] must hold one table per system, not {tables!r}")
    systems = {}
    for name, table in tables.items():
        where = Where(path, f"systems.{name}")
        if not is_safe_name(name):
            raise InputError(f"{path}: system name {name!r} is used in output paths: use only {SAFE_NAME_RULE}")
        if not isinstance(table, dict):
            raise InputError(f"{path}: [systems.{name}] must be a table of settings, not {table!r}")
        table = dict(table)
        kind = table.pop("agent", DEFAULT_KIND)
        if kind not in AGENT_KINDS:
            raise where.error("agent", f"{kind!r} is not one of {tuple(AGENT_KINDS)}")
        own_design = table.pop("design", {})
        if not isinstance(own_design, dict):
            raise where.error("design", f"{own_design!r} must be a table of [design] settings")
        settings_class = AGENT_KINDS[kind].settings
        allowed = sorted(set(as_table(settings_class())) | {"agent", "design"})
        # another kind's key at its default is what config.toml shows for every system: ignored
        unused = unused_defaults()
        for key in set(table) & set(SYSTEM_TABLE_KEYS) - set(allowed):
            if table[key] == unused[key] and type(table[key]) is type(unused[key]):
                del table[key]
        misplaced = sorted(set(table) & set(SYSTEM_TABLE_KEYS) - set(allowed))
        if misplaced:
            raise InputError(
                f"{path}: key(s) {misplaced} in [systems.{name}] do not apply to agent {kind!r}; its keys: {allowed}"
            )
        systems[name] = SystemConfig(
            name=name,
            agent=kind,
            settings=build(settings_class, table, where, others=f"keys of agent {kind!r}: {allowed}"),
            design=build(DesignSettings, {**as_table(design), **own_design}, where.inner("design")),
        )
        _check_trial_type(systems[name], "trial_type" in own_design, path)
    return systems


def _check_trial_type(system: SystemConfig, own: bool, path: Path) -> None:
    """Refuse a system whose agent kind cannot answer the trial type of its design (one line)."""
    from oddoneout.agents.registry import AGENT_KINDS

    answered = AGENT_KINDS[system.agent].trial_types
    trial_type = trial_type_from_spec(system.design.trial_type)
    if trial_type.name not in answered:
        where = f"[systems.{system.name}] design.trial_type" if own else f"[design] trial_type (system {system.name!r})"
        raise InputError(
            f"{path}: {where}: agent {system.agent!r} answers {' and '.join(answered)} trials, not "
            f"{trial_type.spec} trials; give the system a design table with another trial_type"
        )
    catch = getattr(system.settings, "catch_trials", 0)
    if catch and trial_type != ODD_ONE_OUT:
        raise InputError(
            f"{path}: [systems.{system.name}] catch_trials = {catch}: catch trials are odd-one-out trials only, "
            f"not for the {trial_type.spec} trials this system asks; set catch_trials = 0"
        )


#: How a TOML basic string writes a backslash, a quote and each control character (texts may have line breaks).
_TOML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\t": "\\t",
    **{chr(c): f"\\u{c:04x}" for c in [*range(0x20), 0x7F] if chr(c) not in "\n\t"},
}


def dump_config(config: StudyConfig) -> str:
    """The resolved config as TOML text (what ``OUT/config.toml`` holds; it loads to the same hash)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + "".join(_TOML_ESCAPES.get(c, c) for c in v) + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    tables = config.tables()
    for section, settings in tables.items():
        if section == SYSTEMS:
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in settings.items()]
        lines.append("")
    for name, settings in tables[SYSTEMS].items():
        lines.append(f"[systems.{name}]")
        lines += [f"{k} = {value(v)}" for k, v in settings.items()]
        lines.append("")
    return "\n".join(lines)
