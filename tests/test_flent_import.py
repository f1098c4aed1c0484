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


ALL_FILES = sorted(p.name for p in SHARED_FLENT.glob("*.flent.gz"))


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_series_as_flent_itself_reads_it(name):
    """flent's own reader (with its conversions of older formats: UDP_RR rates to ms, HTTP
    seconds to ms, cumulative qdisc drops to per-interval) against qoslab's import: per series
    and field, the same count, median and mean."""
    from flent import resultset

    rs = resultset.load(str(SHARED_FLENT / name))
    run = qoslab.load(SHARED_FLENT / name)
    samples = run.samples[~run.samples.computed.astype(bool)]
    checked = 0
    for series, recs in rs.raw_values.items():
        if not recs:
            continue
        if series in run.meta["probe_series"]:
            want = np.array([r["val"] for r in recs if r.get("val") is not None], dtype=float)
            rows = run.probes[run.probes.stream == series]
            got = rows.loc[rows.status == "ok", "rtt_ms"].to_numpy(dtype=float)
            fields = {"val": (got, want)}
        else:
            mine = samples[samples.series == series]
            keys = {k for r in recs for k, v in r.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and k not in ("t", "dur", "seq")}
            other = set(mine.metric) - keys
            fields = {}
            for key in keys:
                metric = mine.metric.isin(other) if key == "val" else mine.metric == key
                fields[key] = (mine.loc[metric, "value"].to_numpy(dtype=float),
                               np.array([r[key] for r in recs if isinstance(r.get(key), (int, float))
                                         and not isinstance(r.get(key), bool)], dtype=float))
        for key, (got, want) in fields.items():
            assert len(got) == len(want), (series, key)
            if len(want):
                assert np.median(got) == pytest.approx(np.median(want), rel=1e-12), (series, key)
                assert got.mean() == pytest.approx(want.mean(), rel=1e-9), (series, key)
            checked += 1
    assert checked


def test_older_formats_are_converted_as_flent_converts_them():
    run = qoslab.load(SHARED_FLENT / "test-voip-rrul.flent.gz")  # format 2, flent 0.11
    smeta = run.meta["flent_series_meta"]
    udp = run.probes[run.probes.stream == "Ping (ms) UDP BE1"]
    # netperf's UDP_RR mean, as flent printed it in ms, is the mean rate's round trip
    assert udp.rtt_ms.median() == pytest.approx(50.0, rel=1e-3)
    assert smeta["Ping (ms) UDP BE1"]["MEAN_VALUE"] == pytest.approx(50.0, rel=1e-3)
    voip = run.samples[run.samples.series == "VoIP"]
    assert set(voip.metric) == {"owd", "size"}  # D-ITG's one-way delays, not a bit rate
    assert (voip.loc[voip.metric == "owd", "unit"] == "ms").all()
    assert not run.events.detail.str.startswith("VoIP").any()  # not a load
    http = qoslab.load(SHARED_FLENT / "test-http.flent.gz").samples
    assert http.loc[http.series == "HTTP latency", "value"].median() == pytest.approx(0.996)


def test_format_1_without_raw_values_uses_flents_grid(tmp_path):
    doc = _raw("ping-v4-icmp-irtt.flent.gz")
    v1 = {"version": 1, "metadata": {k: v for k, v in doc["metadata"].items()
                                     if k != "SERIES_META"},
          "x_values": doc["x_values"], "results": doc["results"]}
    v1["metadata"]["NETPERF_WRAPPER_VERSION"] = v1["metadata"].pop("FLENT_VERSION")
    path = tmp_path / "v1.flent.gz"
    path.write_bytes(gzip.compress(json.dumps(v1).encode()))
    run = qoslab.load(path)
    assert run.meta["flent_fake_raw_values"] and run.meta["flent_version"] == "2.3.0"
    icmp = run.probes[run.probes.stream == "Ping (ms) ICMP"]
    want = [v for v in doc["results"]["Ping (ms) ICMP"] if v is not None]
    np.testing.assert_allclose(icmp["rtt_ms"], want)  # flent's grid values, none invented
    v1["x_values"] = list(range(400_000))
    v1["results"] = {f"s{i}": [] for i in range(100)}
    path.write_bytes(gzip.compress(json.dumps(v1).encode()))
    with pytest.raises(qoslab.errors.ProbeLimitError, match="grid points"):
        qoslab.load(path)
