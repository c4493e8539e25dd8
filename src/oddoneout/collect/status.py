"""How a collection stands: counts by status, design and trial type, throughput, tokens, cost and position bias."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.agents.base import STATUSES
from oddoneout.collect.cost import cost_record, format_cost, read_runs, span_seconds
from oddoneout.collect.quality import is_served, judged_sessions, position_bias
from oddoneout.collect.store import check_store, read_judgments
from oddoneout.errors import InputError, UnreadableFile
from oddoneout.triplets import ODD_ONE_OUT, trial_type_from_spec

if TYPE_CHECKING:
    from oddoneout.agents.registry import HumanSettings

#: Suffixes of triplet stores (their exports are ``.parquet``).
STORE_SUFFIXES = (".sqlite", ".db")


def _single_or_list(values: pd.Series) -> str | list[str] | None:
    unique = sorted({str(v) for v in values.dropna().unique()})
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else unique


def _throughput(frame: pd.DataFrame) -> tuple[float | None, float | None]:
    """Judgments per second over the span from the first start to the last finish, and the span."""
    span = span_seconds(frame)
    if span is None:
        return None, None
    if span <= 0:
        return None, span
    return len(frame) / span, span


def store_status(
    path: str | Path,
    min_rt_ms: float | None = None,
    settings: HumanSettings | None = None,
    prices: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """Summarise the judgments of a triplet store (``.sqlite``/``.db``) or export (``.parquet``).

    The store is opened read-only, so this can run while a collection writes to it.

    Parameters
    ----------
    path : path
        The store or export.
    min_rt_ms : float, optional
        Response times counted as too fast in ``sessions``, over ``settings``' (for a quick look).
    settings : HumanSettings, optional
        The served system's settings: its ``min_rt_ms`` and exclusion rules judge the sessions
        (default: :class:`~oddoneout.agents.registry.HumanSettings`' defaults, the rules a
        system gets when its table sets none).
    prices : mapping, optional
        The system's prices (:meth:`~oddoneout.config.sections.CostSettings.prices`) for ``cost``.

    Returns
    -------
    dict
        - ``path``: the file read;
        - ``n_judgments``: judgments stored (all statuses);
        - ``counts``: judgments by status, every status of :data:`~oddoneout.agents.base.STATUSES`;
        - ``designs``: judgments by design name;
        - ``trial_types``: judgments by trial type (``odd_one_out``, ``anchor``, ``ranked:8:2``...);
        - ``agent``, ``model``: as recorded (a list when the file mixes several, ``None`` when empty);
        - ``prompt_hashes``: distinct prompt hashes recorded;
        - ``span_s``: seconds from the first request's start to the last one's finish;
        - ``throughput_per_s``: ``n_judgments / span_s`` (``None`` without timestamps);
        - ``mean_latency_s``: mean seconds per judgment (``None`` without latencies);
        - ``tokens``: total tokens (``None`` when no judgment recorded any);
        - ``cost``: the cost record of :func:`~oddoneout.collect.cost.cost_record` (requests,
          retries, tokens in and out, images, wall, CPU and GPU seconds, price at ``prices``);
        - ``position_bias``: :func:`position_bias` of the ``ok`` judgments (of the odd-one-out ones
          when the file holds several trial types; of the only type's over the positions it can choose);
        - ``position_bias_by_trial_type`` (only when the file holds several trial types): the
          position bias of each;
        - ``sessions`` (a served system's store only): one record per participant session of
          :func:`~oddoneout.collect.quality.judged_sessions` (its quality, ``excluded`` and
          ``exclusion_reason``), with ``session_id`` and ``min_rt_ms``;
        - ``rules`` (a served system's store only): the ``min_rt_ms``, ``exclude_max_fast_fraction``
          and ``exclude_min_catch_accuracy`` the sessions were judged by.

    Raises
    ------
    InputError
        When the file is missing or is not a triplet store or export.
    """
    frame = read_judgments(path)
    statuses = frame["status"].astype(str)
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({str(k): int(v) for k, v in statuses.value_counts().items()})
    designs = {str(k): int(v) for k, v in frame["design"].value_counts().sort_index().items()}
    throughput, span = _throughput(frame)
    latency = frame["latency_s"].dropna()
    tokens = frame["tokens"].dropna()
    ok = (statuses == "ok").to_numpy()
    kinds = frame["trial_type"].astype(str)
    trial_types = {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()}
    biases = {spec: _position_bias(frame.loc[ok & (kinds == spec).to_numpy(), "choice"], spec) for spec in trial_types}
    main_type = ODD_ONE_OUT.spec if ODD_ONE_OUT.spec in biases or not biases else next(iter(biases))
    status = {
        "path": str(path),
        "n_judgments": int(len(frame)),
        "counts": counts,
        "designs": designs,
        "trial_types": trial_types,
        "agent": _single_or_list(frame["agent"]),
        "model": _single_or_list(frame["model"]),
        "prompt_hashes": sorted({str(h) for h in frame["prompt_hash"].dropna().unique()}),
        "span_s": span,
        "throughput_per_s": throughput,
        "mean_latency_s": float(latency.mean()) if len(latency) else None,
        "tokens": int(tokens.sum()) if len(tokens) else None,
        "cost": cost_record(frame, read_runs(path), prices),
        "position_bias": biases.get(main_type) or position_bias(np.zeros(0, dtype=np.int64)),
    }
    if len(biases) > 1:
        status["position_bias_by_trial_type"] = biases
    if Path(path).suffix in STORE_SUFFIXES:
        judged = _sessions(Path(path), min_rt_ms, settings)
        if judged is not None:
            status["sessions"], status["rules"] = judged
    return status


def _position_bias(choices: pd.Series, spec: str) -> dict[str, Any]:
    """:func:`position_bias` of the choices of trials of one type, over the positions that type can choose."""
    kind = trial_type_from_spec(spec)
    positions = range(kind.n_shown) if kind == ODD_ONE_OUT else range(1, kind.n_shown)
    return position_bias(choices.dropna().to_numpy(dtype=np.int64), positions)


def _sessions(
    path: Path, min_rt_ms: float | None, settings: HumanSettings | None
) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """Per-session quality records of a served store and the rules they were judged by (``None``: not served)."""
    import dataclasses

    from oddoneout.agents.registry import HumanSettings
    from oddoneout.collect.store import connect_read_only

    connection = connect_read_only(path)
    try:
        if not is_served(connection):
            return None
    finally:
        connection.close()
    settings = HumanSettings() if settings is None else settings
    if min_rt_ms is not None:
        settings = dataclasses.replace(settings, min_rt_ms=float(min_rt_ms))
    quality = judged_sessions(path, settings).reset_index()
    records = quality.astype(object).where(quality.notna(), None).to_dict(orient="records")
    rules = {
        "min_rt_ms": float(settings.min_rt_ms),
        "exclude_max_fast_fraction": float(settings.exclude_max_fast_fraction),
        "exclude_min_catch_accuracy": float(settings.exclude_min_catch_accuracy),
    }
    return [{**record, "min_rt_ms": rules["min_rt_ms"]} for record in records], rules


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def format_status(status: dict[str, Any]) -> str:
    """A readable multi-line text of a :func:`store_status` result."""
    n = status["n_judgments"]
    agent = status["agent"] if not isinstance(status["agent"], list) else ", ".join(status["agent"])
    model = status["model"] if not isinstance(status["model"], list) else ", ".join(status["model"])
    lines = [
        f"{status.get('path', 'triplet store')}",
        f"  agent: {agent or 'n/a'}    model: {model or 'n/a'}",
        f"  judgments: {n}",
    ]
    for name, count in status["counts"].items():
        if count or name == "ok":
            share = f" ({100 * count / n:.1f}%)" if n else ""
            lines.append(f"    {name:<12} {count}{share}")
    if status["designs"]:
        lines.append("  designs:")
        lines.extend(f"    {name:<12} {count}" for name, count in status["designs"].items())
    if set(status.get("trial_types", {})) - {ODD_ONE_OUT.spec}:
        lines.append("  trial types:")
        lines.extend(f"    {name:<12} {count}" for name, count in status["trial_types"].items())
    throughput = status["throughput_per_s"]
    span = status.get("span_s")
    line = f"  throughput: {_number(throughput)} judgments/s"
    if span is not None:
        line += f" over {span:.1f} s"
    if status.get("mean_latency_s") is not None:
        line += f", mean latency {_number(status['mean_latency_s'])} s/judgment"
    lines.append(line)
    tokens = status["tokens"]
    lines.append(f"  tokens: {'n/a' if tokens is None else f'{tokens:,}'}")
    if "cost" in status:
        lines.extend(format_cost(status["cost"]))
    by_type = status.get("position_bias_by_trial_type") or {"": status["position_bias"]}
    for spec, bias in by_type.items():
        label = f"  position bias{f' ({spec})' if spec else ''}"
        if bias["choice_rate"] is None:
            lines.append(f"{label}: n/a (no ok judgment)")
            continue
        rates = ", ".join(f"{rate:.3f}" for rate in bias["choice_rate"])
        lines.append(
            f"{label}: choice rate by shown position [{rates}] "
            f"(chi2 = {bias['chi2']:.2f}, p = {bias['p_value']:.3g}, n = {bias['n']})"
        )
    if "sessions" in status:
        lines.extend(_format_sessions(status["sessions"], status.get("rules")))
    return "\n".join(lines)


def _format_rules(rules: dict[str, Any]) -> str:
    """One line: the exclusion rules sessions were judged by, and where they come from."""
    parts = [f"too fast under {rules['min_rt_ms']:g} ms"]
    if rules["exclude_max_fast_fraction"] < 1:
        parts.append(f"excluded above {100 * rules['exclude_max_fast_fraction']:g}% too fast")
    if rules["exclude_min_catch_accuracy"] > 0:
        parts.append(f"excluded under {100 * rules['exclude_min_catch_accuracy']:g}% of catch trials right")
    if len(parts) == 1:
        parts.append("no exclusion rule")
    source = rules.get("source")
    return f"  rules: {'; '.join(parts)}" + (f" (from {source})" if source else "")


def _format_sessions(sessions: Sequence[dict[str, Any]], rules: dict[str, Any] | None = None) -> list[str]:
    """Lines of the per-participant quality of a served store (``store_status``'s ``sessions`` and ``rules``)."""
    head = [_format_rules(rules)] if rules else []
    if not sessions:
        return [*head, "  participants: none yet"]
    min_rt = sessions[0]["min_rt_ms"]
    judged = "excluded" in sessions[0]
    lines = [
        *head,
        f"  participants: {len(sessions)}"
        + (f", {sum(bool(s['excluded']) for s in sessions)} excluded" if judged else ""),
        f"    {'session':<14} {'platform':<10} {'answered':>9} {'median rt':>10} "
        f"{'fast<' + f'{min_rt:g}ms':>10} {'choice rate by position':<24} {'p':>8} {'catch':>6}"
        + ("  excluded" if judged else ""),
    ]
    for s in sessions:
        answered = f"{s['n_answered']}/{s['n_trials']}" + ("" if s["finished"] else "*")
        rt = "n/a" if s["median_rt_ms"] is None else f"{s['median_rt_ms']:.0f} ms"
        fast = "n/a" if s["fast_fraction"] is None else f"{100 * s['fast_fraction']:.0f}%"
        # every shown position's rate; "-" where none can be chosen (an anchor or ranked trial's reference)
        rates = [value for name, value in s.items() if str(name).startswith("choice_rate_")]
        rate = "n/a" if all(r is None for r in rates) else " ".join("-" if r is None else f"{r:.2f}" for r in rates)
        p = "n/a" if s["position_p"] is None else f"{s['position_p']:.3g}"
        catch = "n/a" if s["catch_accuracy"] is None else f"{100 * s['catch_accuracy']:.0f}%"
        verdict = ""
        if judged:
            verdict = f"  yes: {s['exclusion_reason']}" if s["excluded"] else "  no"
        lines.append(
            f"    {str(s['session_id'])[:14]:<14} {s['platform']:<10} {answered:>9} {rt:>10} {fast:>10} "
            f"{rate:<24} {p:>8} {catch:>6}{verdict}"
        )
    lines.append("    (* not finished; fast: share of answers faster than the minimum response time)")
    return lines


def find_stores(paths: Sequence[str | Path]) -> list[Path]:
    """The files named, each folder standing for every store in it (``*.sqlite``/``*.db``, in subfolders too).

    Raises
    ------
    InputError
        If a path does not exist, or a folder holds no store.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            stores = sorted(p for p in path.rglob("*") if p.suffix in STORE_SUFFIXES and p.is_file())
            if not stores:
                raise InputError(f"{path}: no triplet store (*.sqlite, *.db) in this folder")
            found.extend(stores)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"triplet store not found: {path}")
    return found


def check_file(path: str | Path) -> list[str]:
    """What is wrong with a store or an export; nothing when it is intact.

    A store (``.sqlite``/``.db``) gets SQLite's integrity check (:func:`~oddoneout.collect.store.check_store`);
    an export (``.parquet``) is read whole.

    Returns
    -------
    list of str
        The problems found, one line each.

    Raises
    ------
    InputError
        If the file is missing, or readable but not a store or an export.
    """
    path = Path(path)
    if path.suffix in STORE_SUFFIXES:
        return check_store(path)
    try:
        read_judgments(path)
    except UnreadableFile as exc:
        return [exc.problem]
    return []


def format_check(path: str | Path, problems: Sequence[str], shown: int = 3) -> str:
    """One line: ``"<path>: ok"`` or ``"<path>: corrupt: <the first problems>"``."""
    if not problems:
        return f"{path}: ok"
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return f"{path}: corrupt: {'; '.join(problems[:shown])}{more}"
