"""qoslab.analysis.summarize: definitions checked by hand and against iputils ping itself."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab.analysis import summarize
from qoslab.errors import RunFormatError
from tests.conftest import SHARED_FLENT, need_tool


def _probes(stream, rtts, statuses=None, seqs=None):
    n = len(rtts)
    return pd.DataFrame({
        "stream": [stream] * n,
        "seq": list(range(1, n + 1)) if seqs is None else seqs,
        "t_sent": [0.2 * i for i in range(n)],
        "rtt_ms": rtts,
        "status": statuses or ["ok" if np.isfinite(r) else "lost" for r in rtts],
    })


def test_definitions_by_hand():
    df = _probes("a", [10.0, 20.0, np.nan, 40.0])
    s = summarize(df).loc["a"]
    assert (s["sent"], s["received"]) == (4, 3)
    assert s["loss_pct"] == pytest.approx(25.0)
    assert s["min"] == 10.0 and s["max"] == 40.0 and s["median"] == 20.0
    assert s["mean"] == pytest.approx(70 / 3)
    # population standard deviation, not the sample one
    assert s["mdev"] == pytest.approx(np.std([10, 20, 40]))
    assert s["mdev"] != pytest.approx(np.std([10, 20, 40], ddof=1))
    # consecutive *answered* probes: |20-10|, |40-20|
    assert s["jitter"] == pytest.approx(15.0)


def test_duplicates_count_in_rtt_stats_but_not_in_sent_or_jitter():
    df = _probes("a", [1.0, 3.0, 5.0], ["ok", "ok", "duplicate"], seqs=[1, 2, 2])
    s = summarize(df).loc["a"]
    assert (s["sent"], s["received"], s["loss_pct"]) == (2, 2, 0.0)
    assert s["mean"] == pytest.approx(3.0)  # iputils divides by nreceived + nrepeats
    assert s["max"] == 5.0
    assert s["jitter"] == pytest.approx(2.0)


def test_jitter_follows_seq_order_not_row_order():
    df = _probes("a", [1.0, 9.0, 2.0], seqs=[1, 3, 2])
    assert summarize(df).loc["a", "jitter"] == pytest.approx((1 + 7) / 2)


def test_late_replies_are_received_errors_are_lost():
    df = _probes("a", [5.0, 7.0, np.nan, np.nan], ["ok", "late", "unreachable", "error"])
    s = summarize(df).loc["a"]
    assert (s["sent"], s["received"], s["loss_pct"]) == (4, 2, 50.0)


def test_stream_with_no_reply_has_nan_stats_and_full_loss():
    df = pd.concat([_probes("dead", [np.nan] * 3), _probes("alive", [1.0])])
    out = summarize(df)
    assert list(out.index) == ["dead", "alive"]
    assert out.loc["dead", "loss_pct"] == 100.0
    assert out.loc["dead", ["min", "mean", "mdev", "jitter"]].isna().all()
    assert np.isnan(out.loc["alive", "jitter"])  # needs two answered probes


def test_missing_column_is_a_clear_error():
    with pytest.raises(RunFormatError, match="rtt_ms"):
        summarize(pd.DataFrame({"stream": ["a"], "seq": [1], "t_sent": [0.0], "status": ["ok"]}))


def test_accepts_a_run_and_matches_flent_file_directly():
    run = qoslab.load(SHARED_FLENT / "test-tcp_nup.flent.gz")
    out = summarize(run)
    rtt = run.probes["rtt_ms"].dropna().to_numpy()
    s = out.iloc[0]
    assert s["sent"] == len(run.probes) == 100 and s["received"] == 99
    assert s["median"] == pytest.approx(np.median(rtt))
    assert s["p99"] == pytest.approx(np.percentile(rtt, 99))


def _check_against_iputils(output: str, count: int) -> None:
    replies = re.findall(r"icmp_[rs]eq=(\d+) .*time=([\d.]+) ms", output)
    mn, avg, mx, mdev = map(float, re.search(
        r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", output).groups())
    df = pd.DataFrame({"stream": "lo", "seq": [int(s) for s, _ in replies],
                       "t_sent": [0.05 * i for i in range(len(replies))],
                       "rtt_ms": [float(t) for _, t in replies], "status": "ok"})
    s = summarize(df).loc["lo"]
    assert s["sent"] == count and s["received"] == len(replies) == count
    assert s["min"] == pytest.approx(mn, abs=1e-9)
    assert s["max"] == pytest.approx(mx, abs=1e-9)
    assert s["mean"] == pytest.approx(avg, abs=0.0015)
    assert s["mdev"] == pytest.approx(mdev, abs=0.0015)


def test_matches_iputils_ping_summary_line():
    """Run the real iputils ping on loopback; our figures from its per-reply times must match
    its own ``rtt min/avg/max/mdev`` line (iputils rounds down to whole microseconds)."""
    ping = need_tool("ping")
    proc = subprocess.run([ping, "-n", "-c", "8", "-i", "0.05", "127.0.0.1"],
                          capture_output=True, text=True, timeout=30, env={"LC_ALL": "C"})
    if proc.returncode != 0:
        pytest.skip(f"ping on loopback not permitted here: {proc.stderr.strip()}")
    _check_against_iputils(proc.stdout, 8)


def test_matches_recorded_iputils_output(repo):
    """The same check on iputils output recorded in tests/data (IPv4 and IPv6 loopback)."""
    for name in ("ping-v4-loopback.txt", "ping-v6-loopback.txt"):
        text = (repo / "tests" / "data" / "iputils" / name).read_text()
        sent = int(re.search(r"(\d+) packets transmitted", text).group(1))
        _check_against_iputils(text, sent)
