"""Watch a run as it happens: latency drawn as probes arrive, EVENTS as they happen, a Stop.

Two halves:

* :class:`LiveFeed` collects the rows of a running experiment, from any thread. A producer
  feeds it by *calling it* (``feed.add_rows(rows)``, ``feed.add_event(t, kind)``,
  ``feed.set_progress(done, total)``, ``feed.finish(run)`` -- :func:`qoslab.ping` does with its
  ``live=`` hook, see :meth:`LiveView.start`) or by *writing a run journal* (:class:`~qoslab.runs.RunJournal`, the
  ``FILE.partial`` every long run keeps) that :meth:`LiveFeed.follow` tails: a lab run or any
  other process writing ``-w FILE`` can be watched from a notebook that did not start it.
* :class:`LiveView` draws the feed: a zoomable latency chart redrawn a few times a second (the
  reader's zoom survives the redraws), a progress bar, a status line, and a Stop button that
  ends the run cleanly -- every probe sent is in the RUN (and in the journal, when there is
  one). :meth:`LiveView.start` runs a producer (a ping run, say); :meth:`LiveView.scenario`
  starts a lab or datapath run (``qoslab run NAME --backend kernel|userspace -w FILE``) and
  follows its journal, Stop interrupting it as Ctrl-C does; :meth:`LiveView.follow` watches a
  journal another process writes.

The drawing happens in a background thread, so the notebook stays free (the Stop button is a
widget callback: it runs when the kernel is idle). Nothing is printed: errors show in the
view's error line.
"""

from __future__ import annotations

import html
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .. import scenarios, schema
from ..analysis import summarize
from ..children import isolation, qoslab_argv, start_child
from ..errors import ConfigError, QoslabError, RunFormatError
from ..io import load
from ..io.limits import parse_json
from ..outputs import check_output
from ..plots import latency_chart
from ..runs import Run
from ._base import Explorer, html_bundle, table_bundle

__all__ = ["LiveFeed", "LiveView", "REDRAW_INTERVAL"]

#: Seconds between redraws of a live view (2.5 per second).
REDRAW_INTERVAL = 0.4


class LiveFeed:
    """The rows of a run in progress, fed from any thread and read as tables.

    Rows are PROBES rows (dicts with at least ``stream``, ``seq``, ``t_sent``, ``rtt_ms``,
    ``status``); a row with the ``stream`` and ``seq`` of an earlier one replaces it (a late
    answer), except ``duplicate`` rows, which are kept as their own rows -- the same rule as
    :func:`qoslab.load` applies to a journal.

    Examples
    --------
    >>> feed = LiveFeed({"title": "demo"})
    >>> feed.add_rows([{"stream": "a", "seq": 1, "t_sent": 0.0, "rtt_ms": None,
    ...                 "status": "lost"}])
    >>> feed.add_rows([{"stream": "a", "seq": 1, "t_sent": 0.0, "rtt_ms": 2500.0,
    ...                 "status": "late"}])
    >>> feed.add_event(0.5, "load_start", "flood")
    >>> run = feed.snapshot()
    >>> run.probes["status"].tolist(), run.events["kind"].tolist(), feed.version
    (['late'], ['load_start'], 3)
    """

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._where: dict[tuple, int] = {}
        self._events: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = dict(meta or {})
        self.version = 0
        self.done = 0
        self.total: int | None = None
        #: Seconds the producer expects to run (a deadline), for the progress bar; or None.
        self.expected_seconds: float | None = None
        self.started = time.monotonic()
        self.finished = threading.Event()
        self.run: Run | None = None
        self.error: BaseException | None = None

    # ---------------------------------------------------------------- producers
    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """New PROBES rows (or replacements of earlier ones)."""
        with self._lock:
            for row in rows:
                key = (row.get("stream"), row.get("seq"))
                i = self._where.get(key) if row.get("status") != "duplicate" else None
                if i is None:
                    if row.get("status") != "duplicate":
                        self._where[key] = len(self._rows)
                    self._rows.append(dict(row))
                else:
                    self._rows[i] = dict(row)
            self.version += 1

    def add_event(self, t: float, kind: str, detail: str = "") -> None:
        """An EVENTS row, as it happens."""
        with self._lock:
            self._events.append({"t": float(t), "kind": str(kind), "detail": str(detail)})
            self.version += 1

    def set_progress(self, done: int, total: int | None) -> None:
        """Probes (or steps) done, of ``total`` (None: open-ended)."""
        self.done, self.total = int(done), (None if total is None else int(total))

    def finish(self, run: Run | None = None, error: BaseException | None = None) -> None:
        """The producer ended: with its final RUN, or with an error."""
        with self._lock:
            self.run, self.error = run, error
            self.version += 1
        self.finished.set()

    # ---------------------------------------------------------------- readers
    @property
    def n_rows(self) -> int:
        """PROBES rows so far."""
        return len(self._rows)

    def snapshot(self) -> Run:
        """What has arrived so far, as a RUN (the final RUN once the producer finished)."""
        with self._lock:
            if self.run is not None:
                return self.run
            rows, events = list(self._rows), list(self._events)
        probes = pd.DataFrame(rows) if rows else schema.empty_probes()
        for col in schema.PROBES:
            if col not in probes.columns:
                probes[col] = None
        probes = probes[list(schema.PROBES)]
        return Run(probes, pd.DataFrame(events) if events else schema.empty_events(),
                   dict(self.meta))

    # ---------------------------------------------------------------- journals
    def follow(self, path: str | os.PathLike, *, poll: float = 0.2,
               timeout: float | None = None) -> threading.Thread:
        """Tail a run journal (``FILE.partial``) into this feed, in a background thread.

        Every complete line becomes rows or events as it is written; a torn last line waits
        for its end. The feed finishes when the writer finishes the run (the journal is
        replaced by ``FILE``, which is then loaded as the final RUN), when :meth:`stop_following`
        is called, or after ``timeout`` seconds without the journal appearing.

        Parameters
        ----------
        path
            The journal (``FILE.partial``) or the final RUN file ``FILE`` (its journal is
            followed).
        poll
            Seconds between looks at the file.
        timeout
            Seconds to wait for the journal to appear (None: forever).
        """
        path = Path(path)
        final = path.with_name(path.name.removesuffix(".partial")) \
            if path.name.endswith(".partial") else path
        journal = final.with_name(final.name + ".partial")
        self._following = threading.Event()
        thread = threading.Thread(target=self._tail, args=(journal, final, poll, timeout),
                                  name="qoslab-live-follow", daemon=True)
        thread.start()
        return thread

    def stop_following(self) -> None:
        """End :meth:`follow` (the feed finishes with what arrived)."""
        if getattr(self, "_following", None) is not None:
            self._following.set()

    def _tail(self, journal: Path, final: Path, poll: float, timeout: float | None) -> None:
        try:
            waited = 0.0
            while not journal.exists() and not final.exists():
                if self._following.wait(poll):
                    self.finish()
                    return
                waited += poll
                if timeout is not None and waited > timeout:
                    raise QoslabError(f"{journal}: no journal appeared in {timeout:g} s")
            offset, line_no, pending = 0, 0, b""
            while True:
                if journal.exists():
                    with open(journal, "rb") as fh:
                        fh.seek(offset)
                        chunk = fh.read(1 << 20)
                    offset += len(chunk)
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        line_no += 1
                        if raw.strip():
                            self._record(parse_json(raw, f"{journal}: line {line_no}"),
                                         journal, line_no)
                    if chunk:
                        continue
                elif final.exists():  # the writer finished: the RUN replaced its journal
                    self.finish(load(final))
                    return
                if self._following.wait(poll):
                    self.finish()
                    return
        except Exception as exc:  # noqa: BLE001 - reported by the view, never printed
            self.finish(error=exc)

    def _record(self, rec: Any, journal: Path, line_no: int) -> None:
        if line_no == 1:
            if not isinstance(rec, dict) or "meta" not in rec:
                raise RunFormatError(f"{journal}: line 1: expected a journal header")
            self.meta.update(rec.get("meta") or {})
            return
        if not isinstance(rec, dict) or len(rec) != 1:
            raise RunFormatError(f"{journal}: line {line_no}: expected one record")
        (kind, body), = rec.items()
        if kind in ("probe", "probe_update"):
            self.add_rows([body])
        elif kind == "event":
            self.add_event(body.get("t", 0.0), body.get("kind", "note"), body.get("detail", ""))
        elif kind == "meta":
            self.meta.update(body)


class LiveView(Explorer):
    """A live latency chart over a :class:`LiveFeed`, with progress and a Stop button.

    Parameters
    ----------
    feed
        The feed to draw.
    stop
        A :class:`threading.Event` the Stop button sets (the producer watches it); None: no
        Stop button (a journal written by another process cannot be stopped from here).
    kind
        ``"line"`` or ``"scatter"``.
    rate
        Redraws per second at most (default 1 / :data:`REDRAW_INTERVAL`).
    title
        Chart title (default: what the RUN's META says).

    Attributes
    ----------
    feed, chart, run
        The feed, the chart last drawn, and the final RUN once the producer finished.
    draws
        How many times the chart was drawn (distinct contents).
    """

    def __init__(self, feed: LiveFeed, stop: threading.Event | None = None, *,
                 kind: str = "line", rate: float = 1 / REDRAW_INTERVAL,
                 title: str | None = None, logy: bool = False) -> None:
        super().__init__()
        if kind not in ("line", "scatter"):
            raise ConfigError(f"live view kind {kind!r}: expected line or scatter")
        if not rate > 0:
            raise ConfigError(f"live view rate must be positive (redraws per second), not {rate}")
        w = self.w
        self.feed, self._stop, self.kind, self.title, self.logy = feed, stop, kind, title, logy
        self.interval = 1.0 / rate
        self.run: Run | None = None
        self.chart = None
        self.draws = 0
        self._drawn_version = -1
        self._draw_lock = threading.Lock()
        self._key = f"live-{id(self):x}"
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger",
                                    tooltip="stop the run; every probe sent is kept")
        self.stop_button.on_click(lambda _b: self.stop())
        if stop is None:
            self.stop_button.layout.display = "none"
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="running",
                                        bar_style="info", layout=w.Layout(width="24em"))
        self.controls = [self.stop_button, self.progress]
        self._finish_init(observe=[], initial=False)
        self.status.value = "<i>waiting for the first probes…</i>"
        self._thread = threading.Thread(target=self._loop, name="qoslab-live-view", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- constructors
    @classmethod
    def follow(cls, path: str | os.PathLike, *, kind: str = "line",
               rate: float = 1 / REDRAW_INTERVAL, logy: bool = False,
               timeout: float | None = None) -> LiveView:
        """Watch the journal another process writes (``qoslab lab … -w FILE``, say).

        There is no Stop button (the run is not ours to stop); :meth:`stop` stops following.
        """
        feed = LiveFeed({"source": "journal", "title": Path(path).name})
        view = cls(feed, None, kind=kind, rate=rate, logy=logy)
        feed.follow(path, timeout=timeout)
        return view

    @classmethod
    def start(cls, produce: Callable[[LiveFeed, threading.Event], Run], *,
              meta: dict[str, Any] | None = None, expected_seconds: float | None = None,
              **view_args: Any) -> LiveView:
        """Run ``produce(feed, stop)`` in the background and watch its feed.

        ``produce`` feeds the rows it measures (``feed.add_rows``, ``feed.add_event``,
        ``feed.set_progress``), stops when ``stop`` is set, and returns the RUN. A ping run::

            def produce(feed, stop):
                return qoslab.ping(["127.0.0.1"], count=None, live=feed.add_rows, stop=stop,
                                   progress=feed.set_progress)

            watch = LiveView.start(produce)

        Parameters
        ----------
        produce
            The producer, run in a background thread.
        meta
            META known at the start (titles the chart).
        expected_seconds
            How long the run should last (a deadline), for the progress bar.
        **view_args
            ``kind``, ``rate``, ``title``, ``logy`` (see :class:`LiveView`).
        """
        feed = LiveFeed(meta)
        feed.expected_seconds = expected_seconds
        stop = threading.Event()
        view = cls(feed, stop, **view_args)

        def run() -> None:
            try:
                result = produce(feed, stop)
            except BaseException as exc:  # noqa: BLE001 - shown in the view
                feed.finish(error=exc)
                return
            feed.finish(result)

        view._producer = threading.Thread(target=run, name="qoslab-live-producer", daemon=True)
        view._producer.start()
        return view

    @classmethod
    def scenario(cls, name: str, backend: str = "kernel", *, path: str | os.PathLike,
                 force: bool = False, kind: str = "line", logy: bool = False,
                 rate: float = 1 / REDRAW_INTERVAL, **params: Any) -> LiveView:
        """Start a lab or datapath run of a scenario and watch it as it runs.

        Runs ``qoslab run NAME --backend BACKEND -w PATH --PARAM VALUE …`` as a child process
        (isolated: ``python -I`` in ``/``; the ``kernel`` and ``userspace`` backends need root)
        and follows the journal it keeps (``PATH.partial``): probes are drawn as they are
        answered and EVENTS as they happen. Stop interrupts the run as Ctrl-C does; the RUN
        saved at ``PATH`` keeps every probe measured, and :meth:`wait` returns it.

        Parameters
        ----------
        name
            A registered scenario (``qoslab run --list``).
        backend
            ``"kernel"`` (the network-namespace lab), ``"userspace"`` (the datapath) or
            ``"sim"``.
        path
            Where the RUN is saved (checked first: an existing file needs ``force``).
        force
            Replace an existing ``path``.
        kind, logy, rate
            As for :class:`LiveView`.
        **params
            The scenario's parameters (``duration=20``, ``queue_limit=500`` …), checked here
            with the scenario's own messages before anything starts.

        Returns
        -------
        LiveView
            Its ``process`` attribute is the child (:class:`subprocess.Popen`).
        """
        sc = scenarios.get(name)
        if backend not in sc.backends:
            raise ConfigError(f"{name}: backend {backend!r} cannot run it; its backends are "
                              f"{', '.join(sc.backends)}")
        values = scenarios.resolve(sc.params, params, owner=name)
        target = check_output(Path(path).absolute(), force=force, what="run")
        argv = qoslab_argv("run", name, "--backend", backend, "-w", str(target),
                           *(["--force"] if force else []))
        for p in sc.params:
            if p.name in params:
                argv += [p.flag, p.to_text(values[p.name])]
        errors = tempfile.TemporaryFile()
        proc = start_child(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=errors, **isolation())
        feed = LiveFeed({"source": "qoslab-lab" if backend != "sim" else "sim",
                         "scenario": name, "backend": backend})
        feed.expected_seconds = values.get("duration")
        stop = threading.Event()
        view = cls(feed, stop, kind=kind, rate=rate, logy=logy,
                   title=f"{name} on the {backend} backend, live → {target.name}")
        view.process = proc
        view._stop_follows = False  # Stop asks the run to end; the feed ends with its RUN
        journal = target.with_name(target.name + ".partial")

        def supervise() -> None:
            following = False
            while proc.poll() is None:
                if not following and journal.exists():
                    feed.follow(target)  # only now: an old PATH (force) is not this run
                    following = True
                if stop.wait(0.05):
                    proc.send_signal(signal.SIGINT)  # as Ctrl-C: the RUN is saved
                    break
            proc.wait()
            errors.seek(0)
            said = [ln for ln in errors.read().decode("utf-8", "replace").splitlines()
                    if ln.strip()]
            errors.close()
            if proc.returncode not in (0, 130) or not (following or target.exists()):
                feed.stop_following()
                feed.finish(error=QoslabError(
                    said[-1] if said else f"qoslab run {name} ended with status "
                                          f"{proc.returncode}"))
                return
            if not following:
                feed.follow(target)  # the run ended before its journal was seen: its RUN
            if not feed.finished.wait(30):
                feed.stop_following()  # the RUN never replaced the journal: keep what came

        threading.Thread(target=supervise, name="qoslab-live-scenario", daemon=True).start()
        return view

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        """Stop the run (or stop following a journal); the RUN keeps every probe sent."""
        if self._stop is not None:
            self._stop.set()
        if getattr(self, "_stop_follows", True):
            self.feed.stop_following()
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends; return its RUN (raise the producer's error).

        Interrupting the kernel while waiting stops the run (as Stop does).
        """
        try:
            if not self.feed.finished.wait(timeout):
                raise QoslabError(f"the live run did not finish within {timeout:g} s")
        except KeyboardInterrupt:
            self.stop()
            self.feed.finished.wait()
        self._thread.join(timeout=10)
        if self.feed.error is not None:
            raise self.feed.error
        self.update()
        return self.run

    # ---------------------------------------------------------------- drawing
    def update(self) -> None:
        """Draw what has arrived now (raises the producer's error)."""
        if self.feed.error is not None:
            raise self.feed.error
        self._draw(force=True)

    def _loop(self) -> None:
        next_tick = time.monotonic() + self.interval
        while True:  # a fixed rate: the time a draw takes is not added to the interval
            finished = self.feed.finished.wait(max(0.0, next_tick - time.monotonic()))
            next_tick = max(next_tick + self.interval, time.monotonic() + 0.05)
            try:
                if self.feed.error is not None:
                    self._show_error(self.feed.error)
                    self._ended()
                    return
                self._draw()
            except Exception as exc:  # noqa: BLE001 - shown, never printed
                self._show_error(exc)
            if finished:
                self._ended()
                return

    def _ended(self) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopped" if self._stop is not None and \
            self._stop.is_set() else "Done"
        self.progress.bar_style = "danger" if self.feed.error else "success"
        self.progress.description = "error" if self.feed.error else "done"
        if self.feed.error is None:
            self.progress.value = self.progress.max

    def _draw(self, force: bool = False) -> None:
        with self._draw_lock:
            version = self.feed.version
            if version == self._drawn_version and not force:
                self._progress()
                return
            final = self.feed.finished.is_set() and self.feed.error is None
            run = self.feed.snapshot()
            self._progress()
            if final:
                self.run = run
            if not len(run.probes):
                return
            self.chart = latency_chart(run, kind=self.kind, logy=self.logy, key=self._key,
                                       title=self.title, subtitle=self._subtitle(run, final))
            bundles = [html_bundle(self.chart.to_html(), repr(self.chart))]
            if final:
                bundles.append(table_bundle(summarize(run.probes).round(3), caption="summary"))
            self.show(*bundles)
            self._drawn_version = version
            self.draws += 1
            self.status.value = html.escape(self._status(run, final))

    def _subtitle(self, run: Run, final: bool) -> str:
        n = len(run.probes)
        when = "final" if final else f"live, {time.monotonic() - self.feed.started:.1f} s"
        return f"{n} probe{'s' if n != 1 else ''} ({when}); EVENTS drawn as they happen"

    def _status(self, run: Run, final: bool) -> str:
        probes = run.probes
        answered = int(probes["status"].isin(("ok", "late")).sum())
        lost = int((~probes["status"].isin(("ok", "late", "duplicate"))).sum())
        text = f"{len(probes)} probes, {answered} answered, {lost} unanswered"
        if final:
            reason = run.meta.get("stop_reason")
            text = "done: " + text + (f" (stop reason: {reason})" if reason else "")
        return text

    def _progress(self) -> None:
        feed = self.feed
        if feed.expected_seconds and not feed.total:
            elapsed = time.monotonic() - feed.started
            self.progress.value = min(1.0, elapsed / feed.expected_seconds)
            self.progress.description = f"{elapsed:.0f}/{feed.expected_seconds:g} s"
        elif feed.total:
            self.progress.value = min(1.0, feed.done / feed.total)
            self.progress.description = f"{feed.done}/{feed.total}"
        else:
            # open-ended: the bar cycles once a minute, the text says how long
            elapsed = time.monotonic() - feed.started
            self.progress.value = (elapsed % 60) / 60
            self.progress.description = f"{feed.n_rows} in {elapsed:.0f} s"

