"""Real flent runs (ping, tcp_upload --socket-stats, rrul, udp_flood, voip, rtt_fair) load
completely: per series, the sample counts, medians and means of flent's own raw data.

The committed files were made in lab namespaces (tests/data/flent/README.md); with root a
fresh rrul run is made and checked the same way.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import qoslab
from qoslab.io.flent import MARKINGS

from .conftest import SHARED_FLENT, need_root
from .flent_lab import FLENT_TESTS, missing_tools, run_flent

LAB_FILES = {test: SHARED_FLENT / f"lab-{test}.flent.gz" for test in FLENT_TESTS}


def _doc(path):
    with gzip.open(path) as fh:
        return json.load(fh)


def check_against_flent(path) -> qoslab.Run:
    """Every raw series of a flent file against the RUN qoslab loads from it."""
    doc = _doc(path)
    run = qoslab.load(path)
    raw, smeta = doc["raw_values"], doc["metadata"]["SERIES_META"]
    probes, samples = run.probes, run.samples
    assert run.meta["test"] == doc["metadata"]["NAME"]
    checked = 0
    for name, recs in raw.items():
        if not recs:
            continue
        if name in run.meta["probe_series"]:
            vals = np.array([r["val"] for r in recs if r.get("val") is not None])
            got = probes.loc[(probes.stream == name) & (probes.status == "ok"), "rtt_ms"]
            assert len(got) == len(vals), name
            assert np.median(got) == np.median(vals), name
            assert got.mean() == pytest.approx(vals.mean(), rel=1e-12), name
            if smeta[name].get("MEAN_VALUE") is not None:
                # the tool's own average, as it printed it (fping: 3 significant digits, from
                # unrounded times; the raw values are its per-reply times as printed)
                assert got.mean() == pytest.approx(smeta[name]["MEAN_VALUE"], rel=5e-3,
                                                   abs=6e-3), name
            lost = sum(1 for r in recs if r.get("lost"))
            assert (probes.loc[probes.stream == name, "status"] == "lost").sum() >= lost
            checked += 1
            continue
        rows = samples[(samples.series == name) & ~samples.computed]
        keys = {k for r in recs for k, v in r.items()
                if k not in ("t", "dur", "seq") and isinstance(v, (int, float))}
        assert keys, name
        for key in keys:
            vals = np.array([r[key] for r in recs if isinstance(r.get(key), (int, float))])
            metric = "throughput" if key == "val" else key
            got = rows.loc[rows.metric == metric, "value"]
            assert len(got) == len(vals), (name, key)
            assert np.median(got) == np.median(vals), (name, key)
            assert got.mean() == pytest.approx(vals.mean(), rel=1e-12), (name, key)
            checked += 1
    # series flent computed (sums, averages, VoIP delay/jitter/loss): flent's grid values
    for name in run.meta["sample_series"]:
        if raw.get(name):
            continue
        got = samples.loc[(samples.series == name) & samples.computed]
        want = [(x, y) for x, y in zip(doc["x_values"], doc["results"][name], strict=True)
                if y is not None]
        assert len(got) == len(want), name
        np.testing.assert_allclose(got["value"], [y for _, y in want])
        np.testing.assert_allclose(got["t"], [x for x, _ in want])
        checked += 1
    assert checked >= 1
    return run


@pytest.mark.parametrize("test", list(FLENT_TESTS))
def test_real_flent_files_load_with_flents_own_numbers(test):
    run = check_against_flent(LAB_FILES[test])
    assert run.meta["source"] == "flent"


def test_rrul_streams_carry_their_marking():
    run = qoslab.load(LAB_FILES["rrul"])
    tos = run.probes.groupby("stream")["tos"].first()
    assert tos["Ping (ms) UDP EF"] == MARKINGS["EF"] == 0xB8
    assert tos["Ping (ms) UDP BK"] == MARKINGS["CS1"] == 0x20
    load = run.samples[run.samples.metric == "throughput"].groupby("series")["tos"].first()
    for cls, value in (("BE", 0), ("BK", 0x20), ("CS5", 0xA0), ("EF", 0xB8)):
        assert load[f"TCP upload {cls}"] == value and load[f"TCP download {cls}"] == value
    directions = run.samples.groupby("series")["direction"].first()
    assert directions["TCP upload EF"] == "up" and directions["TCP download EF"] == "down"


def test_load_start_and_stop_are_events():
    run = qoslab.load(LAB_FILES["rrul"])
    ev = run.events
    assert (ev.kind == "load_start").sum() == 8 and (ev.kind == "load_stop").sum() == 8
    thr = run.samples[(run.samples.metric == "throughput") & ~run.samples.computed]
    for _, e in ev.iterrows():
        series = e.detail.split(" (tos")[0]
        t = thr.loc[thr.series == series, "t"]
        if e.kind == "load_stop":
            assert e.t == t.max()
        else:
            assert e.t <= t.min()
    # rrul's load starts after its 5 s of idle pings and ends before the pings do
    assert 4 < ev.loc[ev.kind == "load_start", "t"].min() < 6
    assert ev.t.max() < run.probes.t_sent.max()


def test_socket_stats_of_tcp_upload():
    run = qoslab.load(LAB_FILES["tcp_upload"])
    s = run.samples[run.samples.series == "TCP upload"]
    units = s.groupby("metric")["unit"].first()
    assert units["tcp_rtt"] == "ms" and units["tcp_cwnd"] == "packets"
    assert units["throughput"] == "Mbit/s"
    # the resampled "TCP upload::tcp_rtt" of flent's grid is not loaded a second time
    assert not run.samples.series.str.contains("::tcp_").any()


def test_voip_one_way_delays_jitter_and_loss():
    run = qoslab.load(LAB_FILES["voip"])
    voip = run.probes[run.probes.stream == "VoIP"]
    ok = voip[voip.status == "ok"]
    # irtt's RTT leaves out the server's processing time; the one-way delays include it
    gap = (ok.owd_up_ms + ok.owd_down_ms - ok.rtt_ms).abs()
    assert gap.median() < 0.005 and gap.max() < 0.1
    assert voip.ipdv_ms.notna().sum() >= len(ok) - 1
    derived = set(run.samples.loc[run.samples.computed, "metric"])
    assert {"delay", "jitter", "loss", "induced_delay"} <= derived
    assert (run.samples.loc[run.samples.metric == "delay", "unit"] == "ms").all()


def test_aggregates_are_flagged_computed():
    run = qoslab.load(LAB_FILES["rtt_fair"])
    comp = run.samples[run.samples.computed]
    assert {"TCP upload sum", "TCP download avg", "TCP upload fairness"} <= set(comp.series)
    assert set(comp.loc[comp.series == "TCP upload fairness", "metric"]) == {"fairness"}
    assert len(run.probes.stream.unique()) == 4


def test_samples_survive_a_round_trip(tmp_path):
    run = qoslab.load(LAB_FILES["rrul"])
    back = qoslab.load(run.save(tmp_path / "r.json.gz"))
    import pandas as pd

    pd.testing.assert_frame_equal(back.samples, run.samples)
    pd.testing.assert_frame_equal(back.probes, run.probes)


@pytest.mark.timeout(180)
def test_live_rrul_run_loads_with_flents_own_numbers(tmp_path):
    need_root("network namespaces")
    missing = missing_tools("rrul")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tests/install-system-deps.sh)")
    path, result = run_flent("rrul", tmp_path, length=3)
    run = check_against_flent(path)
    assert len(run.probes.stream.unique()) == 4 and (run.events.kind == "load_start").sum() == 8


@pytest.mark.parametrize("test", list(FLENT_TESTS))
def test_everything_flent_recorded_comes_through(test, tmp_path):
    """flent's RECORDED_SETTINGS, host facts (EGRESS_INFO with the qdiscs, SYSCTLS, ...) and
    every series' own metadata are in META, unchanged, also after a RUN round trip."""
    doc = _doc(LAB_FILES[test])
    run = qoslab.load(LAB_FILES[test])
    want = {k: v for k, v in doc["metadata"].items() if k != "SERIES_META"}
    for setting in ("NAME", "HOST", "HOSTS", "TIME", "LOCAL_HOST", "TITLE", "NOTE", "LENGTH",
                    "TOTAL_LENGTH", "STEP_SIZE", "TEST_PARAMETERS", "FLENT_VERSION",
                    "IP_VERSION", "BATCH_NAME", "DATA_FILENAME", "EGRESS_INFO", "SYSCTLS"):
        assert setting in want, setting  # what flent 2.3 records (resultset.RECORDED_SETTINGS)
    assert run.meta["flent_metadata"] == want
    for name, smeta in doc["metadata"]["SERIES_META"].items():
        assert run.meta["flent_series_meta"][name] == smeta, name
    assert run.meta["ip_version"] == 4 and run.meta["failed_runners"] == 0
    qdiscs = run.meta["flent_metadata"]["EGRESS_INFO"]["qdiscs"]
    assert any(q["name"] == "htb" for q in qdiscs)  # the lab's shaper, as flent saw it
    back = qoslab.load(run.save(tmp_path / "r.json.gz"))
    assert back.meta["flent_metadata"] == want


def test_every_stream_has_the_tos_it_was_sent_with():
    """Unmarked streams of the tools flent runs went out with TOS 0; aggregates have none."""
    run = qoslab.load(LAB_FILES["rrul"])
    tos = run.probes.groupby("stream")["tos"].first()
    assert tos["Ping (ms) ICMP"] == 0 and tos["Ping (ms) UDP BE"] == 0
    computed = run.samples[run.samples.computed]
    assert computed["tos"].isna().all()
    for test, series in (("tcp_upload", "TCP upload"), ("udp_flood", "UDP upload")):
        samples = qoslab.load(LAB_FILES[test]).samples
        measured = samples[samples.series == series]
        assert (measured["tos"] == 0).all(), test  # netperf's DATA_TOS said "unknown"
    voip = qoslab.load(LAB_FILES["voip"]).probes
    assert (voip["tos"] == 0).all()


def test_iperf_marking_is_read_from_its_command(tmp_path):
    # flent marks iperf streams with "--tos 0x.." (runners.IperfCsvRunner)
    doc = _doc(LAB_FILES["udp_flood"])
    smeta = doc["metadata"]["SERIES_META"]["UDP upload"]
    assert "--tos" not in smeta["COMMAND"]
    smeta["COMMAND"] = smeta["COMMAND"].replace(" --udp ", " --tos 0x20 --udp ")
    path = tmp_path / "marked.flent.gz"
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    samples = qoslab.load(path).samples
    assert (samples.loc[samples.series == "UDP upload", "tos"] == 0x20).all()


def test_probes_sit_at_their_send_time_not_at_their_reply():
    """fping and irtt send on a fixed schedule; flent's t of a reply is when it came back.
    Under rrul's load (RTTs up to ~150 ms) only send times stay on the schedule."""
    doc = _doc(LAB_FILES["rrul"])
    run = qoslab.load(LAB_FILES["rrul"])
    step = doc["metadata"]["STEP_SIZE"]
    for stream in ("Ping (ms) ICMP", "Ping (ms) UDP BE", "Ping (ms) UDP EF"):
        ok = run.probes[(run.probes.stream == stream) & (run.probes.status == "ok")]
        assert ok["rtt_ms"].max() > 100  # the load queued them
        slots = (ok["t_sent"] - ok["t_sent"].iloc[0]) / step
        assert (slots - slots.round()).abs().max() < 0.025, stream  # within 5 ms of a slot
        raw = {r["seq"]: r for r in doc["raw_values"][stream]}
        t0 = None
        for _, row in ok.head(3).iterrows():
            r = raw[row["seq"]]
            gap = (r["t"] - r["val"] / 1000) - row["t_sent"]  # the same offset (T0) for all
            if t0 is None:
                t0 = gap
            assert gap == pytest.approx(t0, abs=1e-6)


def test_fping_probes_unanswered_at_either_end_are_lost_rows(tmp_path):
    """fping -c N sends sequence numbers 0..N-1: replies missing before the first and after
    the last answered one are losses too, placed where the probes were sent."""
    doc = _doc(LAB_FILES["rrul"])
    full = qoslab.load(LAB_FILES["rrul"]).probes
    full = full[full.stream == "Ping (ms) ICMP"].set_index("seq")
    recs = doc["raw_values"]["Ping (ms) ICMP"]
    assert [r["seq"] for r in recs] == list(range(80))  # "-c 80" in its command
    doc["raw_values"]["Ping (ms) ICMP"] = recs[2:40] + recs[41:-3]  # as if unanswered
    path = tmp_path / "lost.flent.gz"
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    probes = qoslab.load(path).probes
    icmp = probes[probes.stream == "Ping (ms) ICMP"].set_index("seq")
    assert list(icmp.index) == list(range(80))
    lost = icmp[icmp.status == "lost"]
    assert list(lost.index) == [0, 1, 40, 77, 78, 79]
    # where they were really sent (the untouched file knows): within 5 ms
    np.testing.assert_allclose(lost["t_sent"], full.loc[lost.index, "t_sent"], atol=0.005)


def test_irtt_losses_are_lost_rows_with_their_direction():
    """A real flent ping run whose irtt replies were dropped on the way back."""
    path = SHARED_FLENT / "lab-ping-irtt-loss.flent.gz"
    doc = _doc(path)
    run = check_against_flent(path)
    recs = doc["raw_values"]["Ping (ms) UDP"]
    smeta = doc["metadata"]["SERIES_META"]["Ping (ms) UDP"]
    udp = run.probes[run.probes.stream == "Ping (ms) UDP"].set_index("seq")
    lost = udp[udp.status == "lost"]
    # irtt's own counts, as flent recorded them
    assert len(udp) == smeta["PACKETS_SENT"]
    assert len(lost) == smeta["PACKETS_SENT"] - smeta["PACKETS_RECEIVED"] > 10
    assert set(lost["lost_direction"]) == {"down", "unknown"}
    summary = qoslab.analysis.summarize(run).loc["Ping (ms) UDP"]
    assert summary["loss_pct"] == pytest.approx(100 * smeta["PACKET_LOSS_RATE"])
    for r in recs:
        row = udp.loc[r["seq"]]
        if r.get("lost"):
            # irtt: "true_down" -> flent "down"; "true" (direction unknown) -> flent "true"
            want = {"down": "down", "up": "up", "true": "unknown"}[r["lost_dir"]]
            assert row["status"] == "lost" and row["lost_direction"] == want
            assert np.isnan(row["rtt_ms"]) and np.isnan(row["owd_up_ms"])
        else:
            assert row["rtt_ms"] == r["val"] and row["owd_down_ms"] == r["owd_down"]
    # lost probes keep irtt's send schedule (their t is the send time)
    slots = udp["t_sent"].diff().dropna() / doc["metadata"]["STEP_SIZE"]
    assert (slots - 1).abs().max() < 0.05
