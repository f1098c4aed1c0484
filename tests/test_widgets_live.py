"""qoslab.widgets.live: feeds from callbacks and journals, the view's redraws, Stop, errors."""

from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pytest

import qoslab
from qoslab.errors import ConfigError, QoslabError
from qoslab.runs import Run, RunJournal
from qoslab.widgets import LiveFeed, LiveView
from tests.conftest import need_root


def probe(stream, seq, t, rtt, status="ok"):
    return {"stream": stream, "host": "h", "tos": 0, "size": 56, "seq": seq, "t_sent": t,
            "rtt_ms": rtt, "status": status, "ttl": 64}


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_feed_follows_a_journal_as_it_is_written_and_ends_with_the_final_run(tmp_path):
    path = tmp_path / "lab.json.gz"
    journal = RunJournal(path, {"source": "qoslab-lab", "preset": "toy"})
    feed = LiveFeed()
    feed.follow(path, poll=0.02)
    journal.add_probes([probe("a", 1, 0.0, 1.0), probe("a", 2, 0.1, None, "lost")])
    assert wait_for(lambda: feed.n_rows == 2)
    journal.add_event(0.15, "load_start", "flood 3mbit")
    journal.update_probe(**probe("a", 2, 0.1, 2100.0, "late"))  # the answer came after all
    assert wait_for(lambda: len(feed.snapshot().events) == 1)
    assert wait_for(lambda: feed.snapshot().probes["status"].tolist() == ["ok", "late"])
    assert feed.meta["preset"] == "toy"
    # a torn line (the writer is mid-write) waits for its end
    journal._fh.write(json.dumps({"probe": probe("a", 3, 0.2, 1.5)})[:20])
    journal._fh.flush()
    time.sleep(0.2)
    assert feed.n_rows == 2
    journal._fh.write(json.dumps({"probe": probe("a", 3, 0.2, 1.5)})[20:] + "\n")
    journal._fh.flush()
    assert wait_for(lambda: feed.n_rows == 3)
    final = Run(probes=pd.DataFrame([probe("a", k, 0.1 * (k - 1), 1.0) for k in (1, 2, 3)]),
                meta={"source": "qoslab-lab", "stop_reason": "complete"})
    journal.finish(final)  # the journal becomes the RUN file
    assert feed.finished.wait(5)
    assert feed.error is None and len(feed.run.probes) == 3
    assert feed.snapshot() is feed.run


def test_view_follows_a_journal_without_a_stop_button(tmp_path):
    path = tmp_path / "r.json.gz"
    journal = RunJournal(path, {"source": "x"})
    view = LiveView.follow(path, rate=20)
    assert view.stop_button.layout.display == "none"  # not ours to stop
    for k in range(1, 4):
        journal.add_probe(**probe("s", k, 0.1 * k, 5.0 + k))
        time.sleep(0.15)
    assert wait_for(lambda: view.chart is not None and
                    len(view.chart.spec["series"][0]["x"]) == 3)
    assert view.draws >= 2  # it redrew as rows arrived
    view.stop()  # stops following
    run = view.wait(5)
    assert len(run.probes) == 3 and view.last_error is None
    journal.close()


def test_view_redraws_at_its_rate_and_keeps_the_zoom_key():
    feed = LiveFeed()
    stop = threading.Event()

    def produce(feed, stop):
        k = 0
        while not stop.is_set():
            k += 1
            feed.add_rows([probe("p", k, 0.01 * k, 10.0 + k % 7)])
            if k == 30:
                feed.add_event(0.3, "config_change", "tc qdisc replace …")
            time.sleep(0.01)
        return feed.snapshot()

    view = LiveView.start(produce, rate=10)
    time.sleep(1.2)
    keys = {view.chart.spec["key"]}
    draws = view.draws
    assert draws >= 6  # ~10 per second, whatever drawing costs
    assert view.chart.spec["events"][0]["kind"] == "config_change"  # as it happened
    view.stop()
    run = view.wait(5)
    keys.add(view.chart.spec["key"])
    assert len(keys) == 1  # one key: a zoom the reader chose survives redraws
    assert len(run.probes) == view.feed.n_rows
    assert view.stop_button.disabled and view.stop_button.description == "Stopped"
    del feed, stop


def test_producer_error_is_one_line_and_wait_raises_it():
    def produce(feed, stop):
        feed.add_rows([probe("p", 1, 0.0, 1.0)])
        time.sleep(0.2)
        raise QoslabError("the lab lost its namespace")

    view = LiveView.start(produce, rate=20)
    with pytest.raises(QoslabError, match="lost its namespace"):
        view.wait(5)
    assert wait_for(lambda: view.error_line.layout.display is None)
    assert "the lab lost its namespace" in view.error_line.value
    assert view.output.outputs == ()  # no stale chart beside the error
    assert view.errors.layout.display == "none"  # traceback only when asked
    assert view.progress.bar_style == "danger"


def test_ping_live_hook_and_stop_from_another_thread():
    rows, stop = [], threading.Event()
    box = {}

    def run():  # not the main thread: the engine gets a loop of its own
        box["run"] = qoslab.ping(["127.0.0.1"], interval=0.01, count=None,
                                 live=rows.extend, stop=stop)

    t = threading.Thread(target=run)
    t.start()
    assert wait_for(lambda: len(rows) >= 20)
    stop.set()
    t.join(10)
    result = box["run"]
    assert result.meta["stop_reason"] == "stopped"
    assert len(rows) == len(result.probes) == result.meta["probes_sent"]
    assert sorted(r["seq"] for r in rows) == list(range(1, len(rows) + 1))


def test_view_follows_a_ping_run_another_process_journals(tmp_path):
    """`qoslab ping -w FILE` in another process (as a lab run's runner is): followed live
    through its journal, and the final RUN is the file it wrote."""
    import subprocess
    import sys

    path = tmp_path / "pings.json.gz"
    view = LiveView.follow(path, rate=10, timeout=30)
    proc = subprocess.Popen([sys.executable, "-m", "qoslab", "ping", "127.0.0.1",
                             "-i", "0.02", "-c", "150", "-w", str(path), "--no-plot", "-q",
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert wait_for(lambda: view.draws >= 3, timeout=30), view.draws  # drawn while it ran
    partial_seen = path.with_name(path.name + ".partial").exists() or proc.poll() is None
    run = view.wait(60)
    assert proc.wait(30) == 0, proc.stderr.read()
    assert partial_seen
    assert len(run.probes) == 150 and run.meta["stop_reason"] == "complete"
    assert run.probes["seq"].tolist() == qoslab.load(path).probes["seq"].tolist()
    assert view.stop_button.layout.display == "none" and view.last_error is None


def test_a_scenario_refuses_bad_values_before_anything_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"interval = 0 s: expected 0\.001"):
        LiveView.scenario("bufferbloat", "kernel", path=tmp_path / "r.json.gz", interval=0)
    with pytest.raises(ConfigError, match="backend 'nope' cannot run it"):
        LiveView.scenario("bufferbloat", "nope", path=tmp_path / "r.json.gz")
    (tmp_path / "old.json.gz").write_bytes(b"x")
    with pytest.raises(QoslabError, match="exists; choose another name or pass --force"):
        LiveView.scenario("bufferbloat", "kernel", path=tmp_path / "old.json.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json.gz"]


def test_lab_run_started_from_a_notebook_draws_live_and_stop_keeps_every_probe(tmp_path):
    need_root("the lab builds network namespaces")
    path = tmp_path / "bufferbloat.json.gz"
    view = LiveView.scenario("bufferbloat", "kernel", path=path, duration=30, interval=0.05)
    try:
        assert wait_for(lambda: view.feed.n_rows >= 20 and view.draws >= 3, timeout=40), (
            view.error_line.value, view.feed.n_rows, view.draws)
        seen = view.feed.snapshot().probes
        assert set(seen["status"]) <= {"ok", "late", "lost"}
    finally:
        view.stop()  # as Ctrl-C on the run: it saves the RUN
    run = view.wait(60)
    assert view.process.wait(10) == 130
    saved = qoslab.load(path)
    assert not path.with_name(path.name + ".partial").exists()
    assert len(saved.probes) == len(run.probes) > len(seen)  # the probes in flight are kept
    final = set(zip(run.probes["stream"], run.probes["seq"].astype(int), strict=True))
    assert set(zip(seen["stream"], seen["seq"].astype(int), strict=True)) <= final
    assert "config_change" in set(run.events["kind"])  # EVENTS came with it
    assert view.stop_button.description == "Stopped" and view.last_error is None
