"""A served system's answers as jsPsych data: one JSON array of trial objects, as ``jsPsych.data.get().json()`` gives.

Each answered trial of each participant session is one object (catch trials too, flagged), in the
order the session answered them:

``trial_type``      ``"odd-one-out"``, ``"anchor"`` or ``"ranked"`` (:data:`TRIAL_TYPES`)
``trial_spec``      the trial type as the store names it (``"odd_one_out"``, ``"anchor"``, ``"ranked:4:2"``)
``trial_index``     the trial's place among the session's answered trials (0, 1, ...)
``time_elapsed``    milliseconds from the session's start (consent) to the answer
``rt``              response time in milliseconds, as the page measured it
``response``        the position chosen (0, 1, 2: left, middle, right as shown; anchor and ranked
                    trials: the option, 1 .. n_options, the reference at 0 never; a ranking's first)
``ranking``         a ranked trial's answer: the positions of the options in rank order (else ``null``)
``stimulus``        the item ids in the order shown (anchor and ranked: the reference first)
``odd_one_out``     the id of the item chosen (an odd-one-out trial's odd one; ``null`` for other types)
``chosen``          the id of the item chosen (every trial type)
``input``           ``"click"`` or ``"key"``
``participant``     the salted hash of the participant's platform id (``null``: anonymous)
``session_id``      the server's session id
``platform``, ``study_id``, ``platform_session_id``  the platform and its study and session ids, as stored
``catch``           whether it was a catch trial (an item shown twice beside the odd one)
``correct``         a catch trial: whether the odd item was chosen (``null`` for other trials)
``excluded``        whether the system's exclusion rules leave the session out of fits
``design``, ``triplet_index``, ``ordering``, ``repeat``  the trial's key in the store (catch trials:
                    design ``"(catch)"`` and the catch trial's index)

The participant ids were never stored, so none is exported; the file is written atomically.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oddoneout.atomic import write_text
from oddoneout.collect.leases import CATCH_DESIGN
from oddoneout.collect.quality import excluded_sessions, is_served
from oddoneout.collect.store import connect_read_only
from oddoneout.errors import InputError

if TYPE_CHECKING:
    from oddoneout.agents.registry import HumanSettings

#: The ``trial_type`` of every exported odd-one-out trial.
TRIAL_TYPE = "odd-one-out"
#: The ``trial_type`` of the exported trials, by the store's trial type name.
TRIAL_TYPES = {"odd_one_out": TRIAL_TYPE, "anchor": "anchor", "ranked": "ranked"}

_SESSIONS = """
SELECT session_id, participant, platform, study_ref, session_ref, created_at
FROM serve_sessions ORDER BY created_at, rowid
"""
_TRIALS = """
SELECT r.session_id, r.design, r.triplet_index, r.ordering, r.repeat, r.input, r.rt_ms, r.received_at,
       j.choice, {format_2}, j.item_0, j.item_1, j.item_2
FROM serve_responses AS r
JOIN judgments AS j USING (design, triplet_index, ordering, repeat)
"""
_CATCH = """
SELECT session_id, catch_index, item_same, item_odd, odd_position, choice, input, rt_ms, received_at
FROM serve_catch WHERE choice IS NOT NULL
"""


def _ms_between(start: str, end: str) -> int | None:
    try:
        return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000)
    except ValueError:
        return None


def jspsych_trials(store_path: str | Path, settings: HumanSettings | None = None) -> list[dict[str, Any]]:
    """Every answered trial of a served system's store as a jsPsych trial object (see the module's fields).

    Parameters
    ----------
    store_path : path
        The served system's store (read-only, also beside a running server).
    settings : HumanSettings, optional
        The system's settings, for the exclusion rules (default: none excludes anybody).

    Returns
    -------
    list of dict
        Sessions in order of creation, each session's trials in the order answered.

    Raises
    ------
    InputError
        When the file is missing, not a store, or not a served system's store.
    """
    from oddoneout.agents.registry import HumanSettings

    store_path = Path(store_path)
    settings = HumanSettings() if settings is None else settings
    connection = connect_read_only(store_path)
    try:
        if not is_served(connection):
            raise InputError(f"{store_path}: not the store of a served system (it has no participant sessions)")
        sessions = connection.execute(_SESSIONS).fetchall()
        columns = {str(row[1]) for row in connection.execute("PRAGMA table_info(judgments)")}
        format_2 = "j.trial_type, j.ranking, j.more_items" if "trial_type" in columns else "NULL, NULL, NULL"
        trials = connection.execute(_TRIALS.format(format_2=format_2)).fetchall()
        catch = connection.execute(_CATCH).fetchall()
    finally:
        connection.close()
    excluded = excluded_sessions(store_path, settings)
    answered: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (
        session_id,
        design,
        index,
        ordering,
        repeat,
        input,
        rt_ms,
        received,
        choice,
        spec,
        ranking,
        more,
        *items,
    ) in trials:
        shown = [*items, *(json.loads(more) if more else [])]
        spec = spec or "odd_one_out"  # a format-1 store holds odd-one-out trials only
        trial = {
            "stimulus": shown,
            "response": int(choice),
            "ranking": json.loads(ranking) if ranking else None,
            "spec": spec,
            "catch": False,
            "correct": None,
        }
        key = {"design": design, "triplet_index": index, "ordering": ordering, "repeat": repeat}
        answered.setdefault(session_id, []).append((received, {**trial, "input": input, "rt": rt_ms, **key}))
    for session_id, index, same, odd, odd_position, choice, input, rt_ms, received in catch:
        items = [same, same]
        items.insert(int(odd_position), odd)
        right = int(choice) == odd_position
        trial = {"stimulus": items, "response": int(choice), "ranking": None, "spec": "odd_one_out", "catch": True}
        trial["correct"] = right
        key = {"design": CATCH_DESIGN, "triplet_index": index, "ordering": 0, "repeat": 0}
        answered.setdefault(session_id, []).append((received, {**trial, "input": input, "rt": rt_ms, **key}))
    records = []
    for session_id, participant, platform, study_ref, session_ref, created_at in sessions:
        for trial_index, (received, trial) in enumerate(sorted(answered.get(session_id, []), key=lambda t: t[0])):
            chosen = trial["stimulus"][trial["response"]]
            records.append(
                {
                    "trial_type": TRIAL_TYPES.get(trial["spec"].split(":")[0], trial["spec"]),
                    "trial_spec": trial["spec"],
                    "trial_index": trial_index,
                    "time_elapsed": _ms_between(created_at, received),
                    "rt": float(trial["rt"]),
                    "response": trial["response"],
                    "ranking": trial["ranking"],
                    "stimulus": trial["stimulus"],
                    "odd_one_out": chosen if trial["spec"] == "odd_one_out" else None,
                    "chosen": chosen,
                    "input": trial["input"],
                    "participant": participant,
                    "session_id": session_id,
                    "platform": platform,
                    "study_id": study_ref,
                    "platform_session_id": session_ref,
                    "catch": trial["catch"],
                    "correct": trial["correct"],
                    "excluded": bool(excluded.get(session_id, False)),
                    **{name: trial[name] for name in ("design", "triplet_index", "ordering", "repeat")},
                }
            )
    return records


def served_store(source: str | Path, system: str | None = None) -> tuple[Path, HumanSettings]:
    """The store of a served system and its settings, from a study folder or from the store itself.

    Parameters
    ----------
    source : path
        A study folder (its ``config.toml`` names the system's settings) or a store file (the
        system is its name; its settings are those of the study folder it lies in, when it does,
        else the defaults).
    system : str, optional
        The system (default: the folder's only served one; for a store file, its name).

    Raises
    ------
    InputError
        When the folder has no ``config.toml``, no such served system, or the file is not there.
    """
    from oddoneout.agents.registry import HumanSettings
    from oddoneout.config import load_config
    from oddoneout.serve.experiment import pick_system
    from oddoneout.study_folder import StudyFolder

    source = Path(source)
    if source.is_dir():
        folder = StudyFolder(source)
        if not folder.config.is_file():
            raise InputError(f"{source}: no config.toml, so no study folder: give the system's store (.sqlite)")
        config = load_config(folder.config)
        name = pick_system(config, system)
        return folder.system(name).store, config.systems[name].settings
    if not source.is_file():
        raise InputError(f"not found: {source}")
    name = source.stem
    if system is not None and system != name:
        raise InputError(f"{source} is the store of system {name!r}, not {system!r}")
    config_file = StudyFolder(source.parent.parent).config
    if source.parent.name == "triplets" and config_file.is_file():
        config = load_config(config_file)
        found = config.systems.get(name)
        if found is not None and isinstance(found.settings, HumanSettings):
            return source, found.settings
    return source, HumanSettings()


def export_jspsych(source: str | Path, out: str | Path, system: str | None = None) -> int:
    """Write a served system's answered trials as one jsPsych-style JSON array (atomically); how many trials.

    Parameters
    ----------
    source : path
        A study folder or a served system's store (:func:`served_store`).
    out : path
        The JSON file to write (one trial object per line).
    system : str, optional
        The served system (default: the folder's only one).
    """
    store, settings = served_store(source, system)
    records = jspsych_trials(store, settings)
    lines = ",\n".join(json.dumps(record, allow_nan=False) for record in records)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(out), f"[\n{lines}\n]\n" if records else "[]\n")
    return len(records)
