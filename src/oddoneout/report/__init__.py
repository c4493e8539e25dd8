"""The study report: figures and one self-contained HTML file."""

from oddoneout.report.html import StudyOutputs, load_study_outputs, render_report, write_report

__all__ = ["StudyOutputs", "load_study_outputs", "render_report", "write_report"]
