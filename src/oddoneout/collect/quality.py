"""Quality of a served system's participant sessions, from its store's lease book.

Each session of a served system (``agent = "human"``, :mod:`oddoneout.collect.leases`) leaves its
responses (response time, input) in ``serve_responses`` and its judgments (the choice) in
``judgments``. :func:`session_quality` measures each session from these rows; :func:`flag_exclusions`
applies a system's exclusion rules (:class:`~oddoneout.agents.registry.HumanSettings`) to them, and
:func:`excluded_keys` names the trials a fit leaves out (their judgments stay in the store and export).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from oddoneout.collect.designs import encode_keys
from oddoneout.collect.store import connect_read_only, has_table

if TYPE_CHECKING:
    from oddoneout.agents.registry import HumanSettings

logger = logging.getLogger(__name__)

#: The columns of :func:`session_quality`, in order (the index is ``session_id``); a store of ranked trials
#: of more than two options has more ``choice_rate_<position>`` columns, before ``position_chi2``.
QUALITY_COLUMNS = (
    "participant",
    "platform",
    "n_trials",
    "n_answered",
    "finished",
    "median_rt_ms",
    "fast_fraction",
    "choice_rate_0",
    "choice_rate_1",
    "choice_rate_2",
    "position_chi2",
    "position_p",
    "n_catch",
    "catch_accuracy",
)

_RESPONSES = """
SELECT r.session_id, r.rt_ms, j.choice, {trial_type} AS trial_type
FROM serve_responses AS r
LEFT JOIN judgments AS j
  ON j.design = r.design AND j.triplet_index = r.triplet_index AND j.ordering = r.ordering AND j.repeat = r.repeat
ORDER BY r.session_id, r.position
"""


def position_bias(choices: np.ndarray, positions: Sequence[int] = (0, 1, 2)) -> dict[str, Any]:
    """Choice rate by shown position and a chi-square test against choosing uniformly.

    Parameters
    ----------
    choices : array of int
        Chosen positions of the ``ok`` judgments.
    positions : sequence of int
        The positions that can be chosen: 0, 1, 2 of odd-one-out trials; the options of anchor
        and ranked trials (1 .. n_options, the reference at 0 never chosen).

    Returns
    -------
    dict
        ``{"n", "choice_rate": [one rate per position], "chi2", "p_value"}``; rates and test
        are ``None`` without any judgment. With counterbalanced orderings an unbiased agent
        gives rates near ``1 / len(positions)`` whatever the stimuli.
    """
    choices = np.asarray(choices, dtype=np.int64)
    counts = np.bincount(choices, minlength=max(positions) + 1)[list(positions)]
    n = int(counts.sum())
    if n == 0:
        return {"n": 0, "choice_rate": None, "chi2": None, "p_value": None}
    test = stats.chisquare(counts)
    return {
        "n": n,
        "choice_rate": (counts / n).tolist(),
        "chi2": float(test.statistic),
        "p_value": float(test.pvalue),
    }


def choosable_positions(trial_types: Sequence[str]) -> tuple[int, ...]:
    """The shown positions a participant can choose in trials of these types (by spec, e.g. ``"ranked:4:2"``).

    0, 1, 2 for odd-one-out; the options 1 .. n_options for anchor and ranked trials (the reference,
    at 0, is never chosen); the union over several types. Odd-one-out's without any type.
    """
    from oddoneout.triplets import ODD_ONE_OUT, trial_type_from_spec

    positions: set[int] = set()
    for spec in trial_types or [ODD_ONE_OUT.spec]:
        kind = trial_type_from_spec(spec)
        positions.update(range(0 if kind == ODD_ONE_OUT else 1, kind.n_shown))
    return tuple(sorted(positions))


def _stored_trial_types(connection: sqlite3.Connection) -> list[str]:
    """The trial types of a store's judgments (odd-one-out for a format-1 store, which has no such column)."""
    columns = {str(row[1]) for row in connection.execute("PRAGMA table_info(judgments)")}
    if "trial_type" not in columns:
        return []
    return sorted(str(t) for (t,) in connection.execute("SELECT DISTINCT trial_type FROM judgments") if t is not None)


def _catch_answers(connection: sqlite3.Connection) -> dict[str, list[bool]]:
    """Whether each answered catch trial was answered right, by session (none in a store without catch trials)."""
    if not has_table(connection, "serve_catch"):
        return {}
    answers: dict[str, list[bool]] = {}
    rows = connection.execute(
        "SELECT session_id, choice = odd_position FROM serve_catch WHERE choice IS NOT NULL ORDER BY catch_index"
    )
    for session_id, right in rows:
        answers.setdefault(str(session_id), []).append(bool(right))
    return answers


def is_served(connection: sqlite3.Connection) -> bool:
    """Whether the store open on ``connection`` holds a lease book (a served system's store)."""
    return has_table(connection, "serve_sessions")


def session_quality(store_path: str | Path, min_rt_ms: float) -> pd.DataFrame:
    """Per-session quality measures of a served system's store, read read-only.

    Parameters
    ----------
    store_path : path
        The system's store (``.sqlite``/``.db``), e.g. ``OUT/triplets/people.sqlite``.
    min_rt_ms : float
        Answers with a response time below this are counted as too fast (the system's
        :class:`~oddoneout.agents.registry.HumanSettings` ``min_rt_ms``).

    Returns
    -------
    DataFrame
        One row per session (index ``session_id``, in order of creation), columns
        :data:`QUALITY_COLUMNS`:

        - ``participant``: the salted hash of the participant's platform id (``None``: anonymous);
        - ``platform``, ``n_trials`` (trials it was to answer), ``finished`` (bool);
        - ``n_answered``: answers stored;
        - ``median_rt_ms``: median response time (NaN without answers);
        - ``fast_fraction``: share of answers with ``rt_ms < min_rt_ms`` (NaN without answers);
        - ``choice_rate_0..2``, ``position_chi2``, ``position_p``: choice rate by shown position and
          the chi-square test against uniform choice over the positions that can be chosen
          (:func:`position_bias` over :func:`choosable_positions`; the first choice of a ranking).
          Anchor and ranked trials: ``choice_rate_0`` (the reference) is NaN, and a ranked trial of
          more than two options has a column per option (``choice_rate_0..n_options``);
        - ``n_catch``, ``catch_accuracy``: catch trials answered and the share answered right
          (the odd item chosen; 0 and NaN without any answered catch trial).

        Empty (with these columns) when the store is not a served system's.

    Raises
    ------
    InputError
        If the file is missing; :class:`~oddoneout.errors.UnreadableFile` if it is not a store.
    """
    connection = connect_read_only(Path(store_path))
    try:
        if not is_served(connection):
            return pd.DataFrame(columns=list(QUALITY_COLUMNS), index=pd.Index([], name="session_id"))
        sessions = connection.execute(
            "SELECT session_id, participant, platform, n_trials, finished_at FROM serve_sessions "
            "ORDER BY created_at, rowid"
        ).fetchall()
        trial_types = _stored_trial_types(connection)
        query = _RESPONSES.format(trial_type="j.trial_type" if trial_types else "NULL")
        responses = pd.DataFrame(
            connection.execute(query).fetchall(), columns=["session_id", "rt_ms", "choice", "trial_type"]
        )
        catch = _catch_answers(connection)
    finally:
        connection.close()
    by_session = dict(tuple(responses.groupby("session_id", sort=False)))
    positions = choosable_positions(trial_types)
    rate_columns = [f"choice_rate_{p}" for p in range(max(3, max(positions) + 1))]
    rows = []
    for session_id, participant, platform, n_trials, finished_at in sessions:
        answered = by_session.get(session_id, responses.iloc[:0])
        right = catch.get(str(session_id), [])
        rt = answered["rt_ms"].to_numpy(dtype=float)
        bias = position_bias(answered["choice"].dropna().to_numpy(dtype=np.int64), positions)
        rates = dict(zip(positions, bias["choice_rate"] or [np.nan] * len(positions)))
        rows.append(
            {
                "session_id": str(session_id),
                "participant": None if participant is None else str(participant),
                "platform": str(platform),
                "n_trials": int(n_trials),
                "n_answered": len(rt),
                "finished": finished_at is not None,
                "median_rt_ms": float(np.median(rt)) if len(rt) else np.nan,
                "fast_fraction": float(np.mean(rt < min_rt_ms)) if len(rt) else np.nan,
                **{name: float(rates.get(p, np.nan)) for p, name in enumerate(rate_columns)},
                "position_chi2": np.nan if bias["chi2"] is None else bias["chi2"],
                "position_p": np.nan if bias["p_value"] is None else bias["p_value"],
                "n_catch": len(right),
                "catch_accuracy": float(np.mean(right)) if right else np.nan,
            }
        )
    columns = [c for c in QUALITY_COLUMNS if not c.startswith("choice_rate_")]
    at = columns.index("position_chi2")
    frame = pd.DataFrame(rows, columns=["session_id", *columns[:at], *rate_columns, *columns[at:]])
    return frame.set_index("session_id")


def exclusion_reasons(
    quality: pd.DataFrame,
    max_fast_fraction: float = 1.0,
    min_catch_accuracy: float = 0.0,
) -> pd.Series:
    """Why an exclusion rule leaves each session out: more too-fast answers, or fewer right catch trials, than allowed.

    Parameters
    ----------
    quality : DataFrame
        :func:`session_quality` of a store.
    max_fast_fraction : float
        Sessions with a larger ``fast_fraction`` are excluded (1.0: none is, for this rule).
    min_catch_accuracy : float
        Sessions with catch trials and a smaller ``catch_accuracy`` are excluded (0.0: none is); a
        session without catch trials is not judged by this rule.

    Returns
    -------
    Series of str
        The reasons of each excluded session joined by ``"; "`` (e.g. ``"too fast: 0.80 of answers
        (most allowed 0.50)"``), ``""`` for a session kept; indexed like ``quality``. A session
        without answers is never excluded (it has nothing to leave out).
    """
    fast = quality["fast_fraction"].astype(float)
    catch = quality["catch_accuracy"].astype(float)
    reasons = []
    for fast_share, accuracy in zip(fast, catch):
        found = []
        if fast_share > max_fast_fraction:  # NaN compares False
            found.append(f"too fast: {fast_share:.2f} of answers (most allowed {max_fast_fraction:.2f})")
        if accuracy < min_catch_accuracy:
            found.append(f"catch trials: {accuracy:.2f} right (fewest allowed {min_catch_accuracy:.2f})")
        reasons.append("; ".join(found))
    return pd.Series(reasons, index=quality.index, name="exclusion_reason", dtype=object)


def flag_exclusions(
    quality: pd.DataFrame,
    max_fast_fraction: float = 1.0,
    min_catch_accuracy: float = 0.0,
) -> pd.Series:
    """Which sessions an exclusion rule leaves out (:func:`exclusion_reasons` gives why).

    Parameters
    ----------
    quality : DataFrame
        :func:`session_quality` of a store.
    max_fast_fraction, min_catch_accuracy : float
        The rules, as :func:`exclusion_reasons` applies them.

    Returns
    -------
    Series of bool
        ``True`` for an excluded session, indexed like ``quality``.
    """
    reasons = exclusion_reasons(quality, max_fast_fraction, min_catch_accuracy)
    return (reasons != "").astype(bool).rename("excluded")


def judged_sessions(store_path: str | Path, settings: HumanSettings) -> pd.DataFrame:
    """Each session's quality and the verdict of a served system's exclusion rules on it.

    Parameters
    ----------
    store_path : path
        The system's store.
    settings : HumanSettings
        Its ``min_rt_ms``, ``exclude_max_fast_fraction`` and ``exclude_min_catch_accuracy``.

    Returns
    -------
    DataFrame
        :func:`session_quality` (with ``settings.min_rt_ms``) and two more columns: ``excluded``
        (bool) and ``exclusion_reason`` (:func:`exclusion_reasons`, ``""`` when kept).
    """
    quality = session_quality(store_path, min_rt_ms=settings.min_rt_ms)
    reasons = exclusion_reasons(
        quality,
        max_fast_fraction=settings.exclude_max_fast_fraction,
        min_catch_accuracy=settings.exclude_min_catch_accuracy,
    )
    return quality.assign(excluded=(reasons != "").astype(bool), exclusion_reason=reasons)


def excluded_sessions(store_path: str | Path, settings: HumanSettings) -> pd.Series:
    """The ``excluded`` column (bool, by ``session_id``) of :func:`judged_sessions`, with its parameters."""
    return judged_sessions(store_path, settings)["excluded"]


def excludes_any(settings: HumanSettings) -> bool:
    """Whether the settings' exclusion rules can exclude a session at all (else the store need not be read)."""
    return settings.exclude_max_fast_fraction < 1 or settings.exclude_min_catch_accuracy > 0


def excluded_keys(store_path: str | Path, settings: HumanSettings) -> dict[str, np.ndarray]:
    """The trials answered in excluded sessions, as packed keys by design (for ``read_judgments_as_triplets``).

    Their judgments stay in the store and its export (they count as collected); a fit leaves them out.
    """
    excluded = excluded_sessions(store_path, settings)
    sessions = [str(s) for s in excluded.index[excluded.to_numpy(dtype=bool)]]
    if not sessions:
        return {}
    connection = connect_read_only(Path(store_path))
    try:
        marks = ", ".join("?" * len(sessions))
        rows = connection.execute(
            f"SELECT design, triplet_index, ordering, repeat FROM serve_responses WHERE session_id IN ({marks})",
            sessions,
        ).fetchall()
    finally:
        connection.close()
    keys: dict[str, list[tuple[int, int, int]]] = {}
    for design, *key in rows:
        keys.setdefault(str(design), []).append(tuple(int(k) for k in key))
    return {design: encode_keys(*np.array(found, dtype=np.int64).T) for design, found in keys.items()}


def fit_exclusions(store_path: str | Path, settings: object) -> dict[str, np.ndarray] | None:
    """The judgments a fit of this system leaves out: :func:`excluded_keys` for a served system whose
    exclusion rules can exclude anyone, else ``None`` (every judgment is used).

    Parameters
    ----------
    store_path : path
        The system's store.
    settings : Settings
        The system's settings; only a served system's (:class:`~oddoneout.agents.registry.HumanSettings`)
        have exclusion rules.
    """
    from oddoneout.agents.registry import HumanSettings

    if not (isinstance(settings, HumanSettings) and excludes_any(settings)):
        return None
    excluded = excluded_keys(store_path, settings)
    n_left_out = sum(len(codes) for codes in excluded.values())
    if n_left_out:
        logger.info("%s: %d judgment(s) of excluded participant sessions left out", store_path, n_left_out)
    return excluded
