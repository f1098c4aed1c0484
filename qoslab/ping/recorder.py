"""Collect PROBES rows from a running back-end: memory, the ``.partial`` journal, progress.

Every outcome goes to the :class:`~qoslab.runs.RunJournal` the moment it is known (one write
to the operating system per probe; the journal fsyncs at least once a second in its own
thread), so a process killed with SIGKILL loses no answered probe: only the probes still in
flight. :meth:`ProbeRecorder.flush` refreshes the progress display.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

from .. import schema
from ..runs import RunJournal

__all__ = ["ProbeRecorder", "EXTRA_COLUMNS"]

#: Columns the ping back-ends add to PROBES (beyond :data:`qoslab.schema.PROBES`).
EXTRA_COLUMNS: dict[str, str] = {
    "send_late_ms": "float64",  # actual minus scheduled send time (NaN: not known)
    "reordered": "boolean",  # answered after a later probe of the same stream
    "detail": "string",  # what an ICMP error or a send failure said
}

Progress = Callable[[int, int | None], None]
#: Receives the rows recorded since its last call (new rows and late replacements).
LiveRows = Callable[[list[dict[str, Any]]], None]


class ProbeRecorder:
    """Gather rows; replace a ``lost`` row when its answer arrives late; journal each one.

    Parameters
    ----------
    journal
        Where rows go while the run lasts (``None``: memory only).
    total
        Probes expected (``None`` when unbounded), for the progress display.
    progress
        ``True`` for a tqdm bar on stderr, a callable ``f(done, total)``, or ``None``/``False``.
    live
        A callable ``f(rows)`` handed, at every :meth:`flush`, the rows recorded since its
        previous call (a replacement row has the ``stream`` and ``seq`` of the row it replaces);
        for live views. It runs in the probe loop: it must only take the rows, quickly.
    """

    def __init__(self, journal: RunJournal | None = None, total: int | None = None,
                 progress: bool | Progress | None = None, live: LiveRows | None = None
                 ) -> None:
        self._live = live
        self._live_rows: list[dict[str, Any]] = []
        self.journal = journal
        self.total = total
        self.rows: list[dict[str, Any]] = []
        self._where: dict[tuple[str, int], int] = {}
        self._bar = None
        self._callback: Progress | None = None
        self._shown = 0
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="probe", file=sys.stderr, dynamic_ncols=True,
                             mininterval=0.5)
        elif callable(progress):
            self._callback = progress

    def add(self, row: dict[str, Any]) -> None:
        """Record a new row (a probe's outcome, or a duplicate answer)."""
        if row["status"] != "duplicate":
            self._where[(row["stream"], row["seq"])] = len(self.rows)
        self.rows.append(row)
        if self.journal is not None:
            self.journal.add_probe(**row)
        if self._live is not None:
            self._live_rows.append(row)

    def replace(self, row: dict[str, Any]) -> None:
        """Replace the earlier row of the same stream and seq (a late answer, a late error)."""
        i = self._where.get((row["stream"], row["seq"]))
        if i is None:
            self.add(row)
            return
        self.rows[i] = row
        if self.journal is not None:
            self.journal.update_probe(**row)
        if self._live is not None:
            self._live_rows.append(row)

    @property
    def done(self) -> int:
        """Probes whose outcome is known."""
        return len(self._where)

    def flush(self, budget: float | None = None) -> bool:
        """Refresh the progress display (rows are journalled as they come).

        Returns
        -------
        bool
            False: nothing is left to do (kept for back-ends that call it in a loop).
        """
        if self._live_rows:
            rows, self._live_rows = self._live_rows, []
            self._live(rows)
        done = self.done
        if self._bar is not None and done != self._shown:
            self._bar.update(done - self._shown)
        elif self._callback is not None and done != self._shown:
            self._callback(done, self.total)
        self._shown = done
        return False

    def close(self) -> None:
        """Flush and close the progress bar (the journal stays open for the caller)."""
        self.flush()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def frame(self) -> pd.DataFrame:
        """All rows as a PROBES frame (plus :data:`EXTRA_COLUMNS`), sorted by send time."""
        if not self.rows:
            df = schema.empty_probes()
            for col, dtype in EXTRA_COLUMNS.items():
                df[col] = pd.Series(dtype=dtype)
            return df
        df = pd.DataFrame(self.rows)
        df = schema.conform(df, "probes")
        for col, dtype in EXTRA_COLUMNS.items():
            df[col] = (df[col] if col in df else pd.Series([None] * len(df))).astype(dtype)
        order = df["t_sent"].fillna(float("inf")).to_numpy().argsort(kind="stable")
        return df.iloc[order].reset_index(drop=True)
