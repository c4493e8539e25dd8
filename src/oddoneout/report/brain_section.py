"""The report's brain section: encoding (and RSA) results per ROI and system, with statistics and maps."""

from __future__ import annotations

from typing import Any

import pandas as pd

from oddoneout.report import figures
from oddoneout.report.html import ROI_R_COLUMNS
from oddoneout.report.html_parts import image, notes, table


def _roi_table(roi_r: pd.DataFrame, systems: list[str]) -> str:
    stats = roi_r.groupby(["roi", "system"], sort=False)["r"].agg(["mean", "std", "count"])
    rois = list(dict.fromkeys(roi_r["roi"]))
    rows = []
    for roi in rois:
        row: list[Any] = [roi]
        for system in systems:
            if (roi, system) not in stats.index:
                row.append("n/a")
                continue
            mean, std, count = stats.loc[(roi, system)]
            row.append(f"{mean:.3f} ± {std:.3f} (n={int(count)})" if count > 1 else f"{mean:.3f}")
        rows.append(row)
    return table(["ROI", *systems], rows, "numbers")


def render(outputs: Any, colors: dict[str, str]) -> str:
    """The brain section of the report (``outputs``: a :class:`~oddoneout.report.html.StudyOutputs`)."""
    parts = ['<h2 id="brain">Brain</h2>']
    roi_r = outputs.roi_r
    if roi_r is None and outputs.summary.get("encoding"):
        roi_r = pd.DataFrame(
            [
                ("mean over subjects", system, roi, value)
                for roi, means in outputs.summary["encoding"].items()
                for system, value in (means or {}).items()
            ],
            columns=list(ROI_R_COLUMNS),
        )
        roi_r["r"] = pd.to_numeric(roi_r["r"], errors="coerce")
    parts.append(notes(outputs, "brain"))
    if roi_r is None or roi_r.empty:
        return "".join(parts)
    systems = [s for s in outputs.systems if s in set(roi_r["system"])]
    n_subjects = roi_r["subject"].nunique()
    parts.append(
        image(
            figures.encoding_figure(roi_r, colors, systems),
            "encoding r per ROI",
            "Mean voxel-wise encoding r (ridge, cross-validated) in each ROI; bars: mean over "
            f"subjects ({n_subjects}); points: individual subjects.",
        )
    )
    parts.append("<p>Mean encoding r per ROI and system (± sd over subjects when there are several).</p>")
    parts.append(_roi_table(roi_r, systems))
    return "".join(parts)
