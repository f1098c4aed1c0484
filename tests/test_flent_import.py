"""flent files (format versions 2-4) load into RUN, cross-checked against flent's own metadata."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import qoslab

from .conftest import SHARED_FLENT


def _raw(name):
    with gzip.open(SHARED_FLENT / name) as fh:
        return json.load(fh)


@pytest.fixture(params=["ping-v4-icmp-irtt.flent.gz", "test-rtt-fair.flent.gz",
                        "test-tcp_nup.flent.gz"])
def flent_file(request):
    path = SHARED_FLENT / request.param
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def test_every_answered_sample_and_flents_summary(flent_file):
    doc = _raw(flent_file.name)
    run = qoslab.load(flent_file)
    assert run.meta["source"] == "flent"
    assert run.meta["flent_format_version"] == doc["version"]
    for stream in run.streams:
        raw = [r for r in doc["raw_values"][stream] if "val" in r]
        got = run.probes[(run.probes.stream == stream) & (run.probes.status == "ok")]
        assert len(got) == len(raw)
        np.testing.assert_allclose(np.sort(got["rtt_ms"]), np.sort([r["val"] for r in raw]))
        smeta = doc["metadata"]["SERIES_META"][stream]
        if "MEAN_VALUE" in smeta and "RUNNER" in smeta:
            # flent >= 1.0 summarises the raw samples (0.x summarised a trimmed, interpolated
            # series, which no per-sample import can reproduce)
            assert got["rtt_ms"].mean() == pytest.approx(smeta["MEAN_VALUE"], abs=2e-3)


def test_sequence_gaps_become_lost_rows():
    run = qoslab.load(SHARED_FLENT / "test-tcp_nup.flent.gz")
    lost = run.probes[run.probes.status == "lost"]
    seqs = run.probes["seq"].to_numpy()
    assert len(lost) == 1
    assert sorted(seqs) == list(range(seqs.min(), seqs.max() + 1))


def test_zoneless_v2_times_start_at_the_first_sample():
    doc = _raw("test-rtt-fair.flent.gz")
    run = qoslab.load(SHARED_FLENT / "test-rtt-fair.flent.gz")
    # flent's clock starts at the first reply of any series; each probe was sent one RTT
    # before its reply's time
    t0 = min(recs[0]["t"] for recs in doc["raw_values"].values() if recs)
    want = sorted(r["t"] - t0 - r["val"] / 1000 for name in run.meta["probe_series"]
                  for r in doc["raw_values"][name] if "val" in r)
    ok = run.probes[run.probes.status == "ok"]
    np.testing.assert_allclose(np.sort(ok["t_sent"]), want, atol=1e-6)
    # its four destinations (10 to 499 ms away) were pinged together: sent within ~20 ms
    firsts = ok.groupby("stream")["t_sent"].min()
    assert firsts.max() - firsts.min() < 0.02
    assert run.probes["t_sent"].max() == pytest.approx(609.9, abs=0.5)


def test_irtt_one_way_delays_are_kept():
    run = qoslab.load(SHARED_FLENT / "ping-v4-icmp-irtt.flent.gz")
    udp = run.probes[run.probes.stream == "Ping (ms) UDP"]
    assert udp["owd_up_ms"].notna().all()
    np.testing.assert_allclose(udp["owd_up_ms"] + udp["owd_down_ms"], udp["rtt_ms"], atol=0.5)


def test_file_without_ping_series_has_no_probes():
    run = qoslab.load(SHARED_FLENT / "test-tcp_1up_noping-cpu_stats.flent.gz")
    assert run.probes.empty and "TCP upload" in run.meta["sample_series"]
    cpu = run.samples[run.samples.series.str.startswith("cpu_stats")]
    assert {"cpu0", "load"} <= set(cpu.metric)


def test_bad_flent_record_is_named(tmp_path):
    doc = _raw("ping-v4-icmp-irtt.flent.gz")
    doc["raw_values"]["Ping (ms) ICMP"][3]["val"] = "slow"
    p = tmp_path / "bad.flent.gz"
    p.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(qoslab.RunFormatError, match=r"Ping \(ms\) ICMP'\]\[3\]\.val"):
        qoslab.load(p)
    doc["version"] = 9
    p.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(qoslab.RunFormatError, match="flent format 9"):
        qoslab.load(p)
