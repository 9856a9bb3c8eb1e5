"""Reporting: the timeline tables, charts and the self-contained `index.html` (`seci timeline`)."""

from pipeline.report.build import TimelineReport, build_timeline

__all__ = ["TimelineReport", "build_timeline"]
