"""Analysis of RUN tables: summary statistics, spike detection, alignment with events."""

from .summary import summarize

__all__ = ["summarize"]
