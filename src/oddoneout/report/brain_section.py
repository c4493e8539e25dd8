"""The report's brain section: encoding and RSA per ROI and system, with statistics, noise ceilings and maps.

Reads what the brain stage (:mod:`oddoneout.neural.stage`) wrote under the study folder:
``encoding/`` and ``rsa/`` (``roi_r.csv``, ``comparisons.csv``, ``winners.csv``, per-voxel
``.npz``), ``encoding/ceiling.csv``, ``encoding/variance_partition.csv`` and ``neural/<subject>.npz``.
Every part that is absent is skipped with a short note.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.report.figures import to_png
from oddoneout.report.html_parts import escape, image, notes, num, table
from oddoneout.report.outputs import StudyOutputs
from oddoneout.study_folder import Analysis, StudyFolder, read_table, roi_frame

_ANALYSES = {
    "encoding": {
        "title": "Voxel-wise encoding",
        "value": "encoding r",
        "what": "Mean voxel-wise encoding r (ridge regression from each system's embedding, cross-validated "
        "over blocks of runs) in each ROI",
    },
    "rsa": {
        "title": "Searchlight RSA",
        "value": "RSA r",
        "what": "Mean searchlight RSA r (correlation of the neighbourhood's response RSM with the system's "
        "embedding RSM, upper triangles) over the searchlight centres of each ROI",
    },
}


def _mark(q: Any) -> str:
    from oddoneout.report.brain_figures import significance_mark

    try:
        return significance_mark(float(q))
    except (TypeError, ValueError):
        return ""


def _roi_table(roi_r: pd.DataFrame, systems: list[str], ceiling: pd.Series | None = None) -> str:
    stats = roi_r.groupby(["roi", "system"], sort=False)["r"].agg(["mean", "std", "count"])
    rows = []
    for roi in dict.fromkeys(roi_r["roi"]):
        row: list[Any] = [roi]
        for system in systems:
            if (roi, system) not in stats.index:
                row.append("n/a")
                continue
            mean, std, count = stats.loc[(roi, system)]
            row.append(f"{mean:.3f} ± {std:.3f} (n={int(count)})" if count > 1 else num(mean))
        if ceiling is not None:
            row.append(num(ceiling.get(roi)))
        rows.append(row)
    header = ["ROI", *systems] + (["noise ceiling r"] if ceiling is not None else [])
    return table(header, rows, "numbers")


def _winners_table(winners: pd.DataFrame) -> str:
    rows = []
    for row in winners.itertuples(index=False):
        wins = str(row.wins).strip().lower() == "true"
        rows.append(
            [
                row.roi,
                row.best_system,
                num(row.mean_r),
                row.runner_up if isinstance(row.runner_up, str) else "n/a",
                f"{int(row.n_beaten)} of {int(row.n_others)}",
                num(row.max_q, 4),
                f"{row.best_system} {_mark(row.max_q)}".strip() if wins else "none",
            ]
        )
    return table(["ROI", "best system", "mean r", "runner-up", "beats (q < α)", "max q", "winner"], rows, "numbers")


def _comparisons_table(comparisons: pd.DataFrame) -> str:
    rows = [
        [
            row.roi,
            row.system_a,
            row.system_b,
            int(row.n_subjects),
            num(row.mean_diff),
            num(row.t, 2),
            num(row.q, 4),
            _mark(row.q),
        ]
        for row in comparisons.itertuples(index=False)
    ]
    return table(["ROI", "system A", "system B", "subjects", "mean r A − B", "t", "q (FDR)", ""], rows, "numbers")


def _against_zero_table(tests: pd.DataFrame, systems: list[str]) -> str:
    cells = {(row.roi, row.system): row for row in tests.itertuples(index=False)}
    rows = []
    for roi in dict.fromkeys(tests["roi"]):
        row: list[Any] = [roi]
        for system in systems:
            test = cells.get((roi, system))
            row.append("n/a" if test is None else f"{num(test.mean_r)} {_mark(test.q)}".strip())
        rows.append(row)
    return table(["ROI", *systems], rows, "numbers")


def _variance_partition(frame: pd.DataFrame) -> str:
    parts = ['<h3 id="brain-variance">Variance partitioning</h3>']
    columns = ["r2_a", "r2_b", "r2_joint", "unique_a", "unique_b", "shared"]
    for (a, b), pair in frame.groupby(["system_a", "system_b"], sort=False):
        means = pair.groupby("roi", sort=False)[columns].mean()
        n_subjects = pair["subject"].nunique()
        parts.append(
            f"<p>{escape(a)} (A) and {escape(b)} (B): held-out R² of each alone and of the joint banded ridge "
            f"model, split into the variance unique to each and shared; mean over {n_subjects} subject(s).</p>"
        )
        rows = [[roi, *(num(v) for v in values)] for roi, values in zip(means.index, means.to_numpy())]
        parts.append(
            table(["ROI", f"R² {a}", f"R² {b}", "R² joint", f"unique {a}", f"unique {b}", "shared"], rows, "numbers")
        )
    return "".join(parts)


def _load_subject(folder: StudyFolder, subject: str) -> NeuralData | None:
    path = folder.subject(subject)
    if not path.is_file():
        return None
    try:
        return NeuralData.load(path)
    except InputError:
        return None


def _map_figure(values: np.ndarray, data: NeuralData, title: str) -> bytes:
    """A voxel map of one subject: on the image grid (affine), or on the grid read from the coordinates."""
    from oddoneout.report.brain_figures import brain_map_figure, subject_map_figure

    coords = np.asarray(data.coords, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn warns about flat volumes (e.g. the one-slice synthetic brain)
        if data.affine is not None or (np.all(coords >= 0) and np.allclose(coords, np.rint(coords))):
            figure = subject_map_figure(values, data, title=title)
        else:
            # Coordinates in mm without an affine (e.g. BData): a grid of the voxels' spacing.
            from oddoneout.config.sections import NeuralSettings
            from oddoneout.neural.stage import searchlight_radius

            spacing = searchlight_radius(NeuralSettings(rsa_radius=1.0, rsa_radius_unit="voxels"), data)
            origin = coords.min(axis=0)
            affine = np.diag([spacing, spacing, spacing, 1.0])
            affine[:3, 3] = origin
            index = np.rint((coords - origin) / spacing)
            figure = brain_map_figure(values, index, affine, kind="glass", title=title)
        return to_png(figure)


def _maps(
    outputs: StudyOutputs,
    analysis: Analysis,
    subjects: list[str],
    systems: list[str],
    voxel_values: Callable[[str, str], Any],
) -> str:
    """Maps of the first subject with prepared data and per-voxel scores."""
    for subject in subjects:
        data = _load_subject(outputs.folder, subject)
        if data is None or data.coords is None:
            continue
        parts = []
        for system in systems:
            values = voxel_values(system, subject)
            if values is None or np.asarray(values).shape != (data.n_voxels,):
                continue
            label = _ANALYSES[analysis]["value"]
            parts.append(
                image(
                    _map_figure(np.asarray(values, dtype=np.float64), data, f"{system} {label}, {subject}"),
                    f"{analysis} map {system} {subject}",
                    f"{label} of {system} at each voxel of subject {subject}"
                    + (" (searchlight centres)" if analysis == "rsa" else "")
                    + ".",
                )
            )
        if parts:
            return (
                f"<details><summary>Maps of subject {escape(subject)} ({len(parts)} systems)</summary>"
                f"{''.join(parts)}</details>"
            )
    return '<p class="note">No brain maps: no subject data with voxel coordinates (neural/*.npz) and voxel scores.</p>'


def _encoding_values(folder: StudyFolder) -> Callable[[str, str], Any]:
    from oddoneout.neural.encoding import EncodingResult

    def values(system: str, subject: str) -> Any:
        path = folder.encoding_result(system, subject)
        try:
            return EncodingResult.load(path).voxel_r if path.is_file() else None
        except InputError:
            return None

    return values


def _rsa_values(folder: StudyFolder) -> Callable[[str, str], Any]:
    from oddoneout.neural.searchlight import SearchlightResult

    cache: dict[str, Any] = {}

    def values(system: str, subject: str) -> Any:
        if subject not in cache:
            path = folder.rsa_result(subject)
            try:
                cache[subject] = SearchlightResult.load(path) if path.is_file() else None
            except InputError:
                cache[subject] = None
        result = cache[subject]
        return None if result is None else result.voxel_r.get(system)

    return values


def _analysis(outputs: StudyOutputs, analysis: Analysis, roi_r: pd.DataFrame | None, colors: dict[str, str]) -> str:
    from oddoneout.report.brain_figures import roi_bar_figure

    info = _ANALYSES[analysis]
    folder = outputs.folder
    parts = [f'<h3 id="brain-{analysis}">{info["title"]}</h3>']
    if roi_r is None or roi_r.empty:
        parts.append(f'<p class="note">No {info["title"].lower()} results ({analysis}/roi_r.csv).</p>')
        return "".join(parts)
    systems = [s for s in outputs.systems if s in set(roi_r["system"])]
    systems += [s for s in dict.fromkeys(roi_r["system"]) if s not in systems]
    subjects = list(dict.fromkeys(roi_r["subject"]))
    comparisons = read_table(folder.statistics(analysis, "comparisons"))
    winners = read_table(folder.statistics(analysis, "winners"))
    figure = roi_bar_figure(
        roi_r, comparisons, systems=systems, colors={s: colors.get(s, "#888888") for s in systems},
        value_label=info["value"],
    )  # fmt: skip
    parts.append(
        image(
            to_png(figure),
            f"{info['value']} per ROI",
            f"{info['what']}; bars: mean over subjects ({len(subjects)}), error bars: SEM. Brackets from the "
            "best system of each ROI: paired two-tailed t-tests across subjects, FDR-corrected "
            "(* q < .05, ** q < .01, *** q < .001).",
        )
    )
    ceiling = None
    if analysis == "encoding":
        ceiling_table = read_table(folder.ceiling_table)
        if ceiling_table is not None and len(ceiling_table):
            ceiling = ceiling_table.groupby("roi", sort=False)["ceiling"].mean()
    parts.append(
        f"<p>Mean {escape(info['value'])} per ROI and system (± sd over subjects when there are several)"
        + ("; noise ceiling: the largest r a model can reach given the repeat reliability (mean voxel)." if ceiling
           is not None else ".")
        + "</p>"
    )  # fmt: skip
    parts.append(_roi_table(roi_r, systems, ceiling))
    if analysis == "encoding" and ceiling is None:
        parts.append(
            '<p class="note">No noise ceiling (encoding/ceiling.csv): it needs stimuli shown more than once.</p>'
        )
    if winners is not None and len(winners):
        parts.append(
            "<p>Winner of each ROI: the best system when it beats every other one (q &lt; α, FDR over all "
            "tests of the table); marks: the largest of those q-values.</p>"
        )
        parts.append(_winners_table(winners))
    elif comparisons is None and len(subjects) < 2:
        parts.append(
            f'<p class="note">No statistics ({analysis}/comparisons.csv): t-tests across subjects need '
            "at least two subjects.</p>"
        )
    elif comparisons is None:
        parts.append(
            f'<p class="note">{analysis}/comparisons.csv is missing (run the encode stage): no significance marks.</p>'
        )
    if comparisons is not None and len(comparisons):
        parts.append(
            f"<details><summary>Paired t-tests between systems ({len(comparisons)} tests)</summary>"
            + _comparisons_table(comparisons)
            + "</details>"
        )
    tests = read_table(folder.statistics(analysis, "against_zero"))
    if tests is not None and len(tests):
        parts.append(
            "<details><summary>Each system against zero (one-sample t-tests, FDR)</summary>"
            + _against_zero_table(tests, systems)
            + "</details>"
        )
    values = _encoding_values(folder) if analysis == "encoding" else _rsa_values(folder)
    if folder.neural_folder.is_dir():
        parts.append(_maps(outputs, analysis, subjects, systems, values))
    return "".join(parts)


def _summary_roi_r(summary: dict[str, Any], key: str) -> pd.DataFrame | None:
    means = summary.get(key) or {}
    if not means:
        return None
    frame = roi_frame(
        ("mean over subjects", system, roi, value)
        for roi, by_system in means.items()
        for system, value in (by_system or {}).items()
    )
    frame["r"] = pd.to_numeric(frame["r"], errors="coerce")
    return frame


def render(outputs: StudyOutputs, colors: dict[str, str]) -> str:
    """The brain section of the report."""
    parts = ['<h2 id="brain">Brain</h2>']
    parts.append(notes(outputs, "brain"))
    encoding = outputs.roi_r if outputs.roi_r is not None else _summary_roi_r(outputs.summary, "encoding")
    rsa = outputs.rsa_r if outputs.rsa_r is not None else _summary_roi_r(outputs.summary, "rsa")
    if (encoding is None or encoding.empty) and (rsa is None or rsa.empty):
        return "".join(parts)
    parts.append('<nav><a href="#brain-encoding">Encoding</a><a href="#brain-rsa">RSA</a></nav>')
    parts.append(_analysis(outputs, "encoding", encoding, colors))
    variance = read_table(outputs.folder.variance_partition)
    if variance is not None and len(variance):
        parts.append(_variance_partition(variance))
    parts.append(_analysis(outputs, "rsa", rsa, colors))
    return "".join(parts)
