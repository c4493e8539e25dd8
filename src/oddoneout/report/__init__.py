"""The study report: figures and one self-contained HTML file."""

from oddoneout.report.html import render_report, write_report
from oddoneout.report.outputs import StudyOutputs, load_study_outputs

__all__ = ["StudyOutputs", "load_study_outputs", "render_report", "write_report"]
