"""What every lab experiment shares: its bed, its files, and saving what it measured.

:class:`Experiment` wraps a :class:`~qoslab.lab.Testbed` with the ping runner's RUN file and
the experiment's own journal, so a preset only describes what to do. :func:`queue_delay_ms`
is the physics every preset predicts its results with.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

from ..errors import QoslabError
from ..io import load
from ..outputs import check_output
from ..runs import Run, RunJournal
from .flood import parse_rate
from .netns import work_dir
from .pings import on_bed_clock
from .testbed import Testbed

__all__ = ["Experiment", "queue_delay_ms", "LINK_HEADER"]

#: Bytes a veth adds to an IP packet in the qdisc's accounting (the Ethernet header).
LINK_HEADER = 14


def queue_delay_ms(packets: float, size: int, rate: str | float) -> float:
    """Time to drain ``packets`` IP packets of ``size`` bytes at ``rate`` (ms), link header
    included.

    >>> round(queue_delay_ms(1000, 500, "2mbit"))
    2056
    """
    return packets * (size + LINK_HEADER) * 8 / parse_rate(rate) * 1000


def stop_reason(exc_type: type, exc: BaseException | None) -> str:
    """What ended an interrupted experiment, in ``meta["stop_reason"]``'s words: the signal's
    name (``SIGINT`` for Ctrl-C, ``SIGTERM`` as the bed's handler raises it), else ``error``.

    >>> stop_reason(KeyboardInterrupt, KeyboardInterrupt()), stop_reason(SystemExit, SystemExit(143))
    ('SIGINT', 'SIGTERM')
    >>> stop_reason(OSError, OSError(28, "No space left on device"))
    'error'
    """
    if issubclass(exc_type, KeyboardInterrupt):
        return "SIGINT"
    code = getattr(exc, "code", None)
    if issubclass(exc_type, SystemExit) and isinstance(code, int) and code > 128:
        try:
            return signal.Signals(code - 128).name
        except ValueError:
            pass
    return "error"


class Experiment:
    """One preset's bed plus its files: the ping runner's RUN, the final RUN and its journal.

    Used as ``with Experiment(path, extra, **bed_kw) as (tb, ping_file): …``; if the body
    is interrupted (error, SIGINT, SIGTERM), the bed is torn down first (which stops the ping
    runner, so it saves what it measured), then whatever was measured is saved to ``path``
    with ``meta["interrupted"]`` naming the cause, and the exception goes on.
    """

    def __init__(self, path: str | os.PathLike | None, extra: dict[str, Any], *,
                 capture: str | os.PathLike | None = None, force: bool = False,
                 **bed_kw: Any) -> None:
        # every output is checked before anything is built: a run never measures, then fails
        if capture is not None:
            check_output(capture, force=force, what="capture")
        self.final = Path(path) if path is not None else None
        self.journal = (RunJournal(self.final, {"source": "qoslab-lab", **extra}, force=force)
                        if self.final is not None else None)
        self.work = Path(work_dir())
        self.ping_file = self.work / "pings.json.gz"
        self.extra = extra
        #: ``transform(run) -> run`` applied before saving (also when interrupted)
        self.transform = None
        self.tb = Testbed(journal=self.journal, **bed_kw)

    def __enter__(self) -> tuple[Testbed, Path]:
        try:
            self.tb.__enter__()
        except BaseException:
            self._discard_journal()
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        return self.tb, self.ping_file

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        try:
            self.tb.__exit__(exc_type, exc, tb)
            if exc_type is not None:
                self._salvage(f"{exc_type.__name__}: {exc}".rstrip(": "),
                              stop_reason(exc_type, exc))
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def _discard_journal(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal.journal_path.unlink(missing_ok=True)

    def _pings_so_far(self) -> Run | None:
        for candidate in (self.ping_file, self.ping_file.with_name(self.ping_file.name
                                                                   + ".partial")):
            if candidate.exists():
                try:
                    run = load(candidate)
                except QoslabError:
                    continue
                return on_bed_clock(run, self.tb.t0_unix)
        return None

    def _salvage(self, cause: str, reason: str) -> None:
        if self.journal is None:
            return
        try:
            run = self.tb.result(self._pings_so_far())
            # the ping runner was stopped by the bed's teardown; the run stopped for ``reason``
            run.meta.update(self.extra, interrupted=cause, stop_reason=reason)
            if self.transform is not None:
                run = self.transform(run)
            self.journal.finish(run)
        except Exception:  # noqa: BLE001 - never hide the original error; the journal stays
            self.journal.close()

    def finish(self, pings: Run | None, transform=None) -> Run:
        """The RUN of a completed experiment (saved to ``path`` when one was given);
        ``transform(run) -> run`` reshapes it first (e.g. onto another time axis)."""
        run = self.tb.result(pings)
        run.meta.update(self.extra)
        transform = transform or self.transform
        if transform is not None:
            run = transform(run)
        if self.journal is not None:
            self.journal.finish(run)
        return run
