"""qoslab.plots.compare: several runs on one figure, and the CLI's multi-file plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab import plots
from qoslab.cli import main
from qoslab.errors import ConfigError
from qoslab.runs import Run

BUNDLED = "flent/ping-v4-icmp-irtt.flent.gz"


def one_stream(name: str, base: float, n: int = 50, lost: int = 0) -> Run:
    rtt = base + np.arange(n) % 5
    status = np.array(["ok"] * n, dtype=object)
    status[:lost] = "lost"
    rtt = np.where(status == "lost", np.nan, rtt)
    return Run(probes={"stream": "ping", "host": "h", "tos": 0, "size": 56, "seq": np.arange(n),
                       "t_sent": np.arange(n) * 0.2, "rtt_ms": rtt, "status": status,
                       "ttl": 64}, meta={"title": name})


def test_cdf_one_line_per_run_in_the_run_colour_lossy_run_tops_out_below_one():
    fig = plots.compare({"fifo": one_stream("fifo", 100.0, lost=10),
                         "fq": one_stream("fq", 5.0)}, "cdf")
    lines = fig.axes[0].lines
    assert [ln.get_gid() for ln in lines] == ["run:fifo", "run:fq"]
    assert [ln.get_label() for ln in lines] == ["fifo", "fq"]
    assert lines[0].get_color() != lines[1].get_color()
    assert lines[0].get_ydata()[-1] == pytest.approx(0.8) and lines[1].get_ydata()[-1] == 1.0
    assert "fifo vs fq" in fig.axes[0].get_title()


def test_box_one_box_per_run_and_stream_with_quartiles():
    run = qoslab.load(qoslab.data_path(BUNDLED))
    fig = plots.compare({"A": run, "B": one_stream("B", 40.0)}, "box")
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if (p.get_gid() or "").startswith("run:")]
    assert [b.get_gid() for b in boxes] == ["run:A", "run:A", "run:B"]
    medians = [ln.get_ydata()[0] for ln in ax.lines if (ln.get_gid() or "").startswith("median:")]
    assert medians[2] == pytest.approx(np.median(40.0 + np.arange(50) % 5))


def test_timeseries_overlays_runs_and_streams_filter():
    run = qoslab.load(qoslab.data_path(BUNDLED))
    fig = plots.compare([run, run], "timeseries", streams=["Ping (ms) UDP"])
    assert [ln.get_label() for ln in fig.axes[0].lines] == ["qa-ping-test", "qa-ping-test (2)"]
    with pytest.raises(ConfigError, match="no stream 'nope'"):
        plots.compare([run], "cdf", streams=["nope"])
    with pytest.raises(ConfigError, match="unknown compare kind"):
        plots.compare([run], "violin")


def test_combine_runs_keeps_samples_and_prefixes_them():
    a = qoslab.load(qoslab.data_path(BUNDLED))
    a.samples = pd.DataFrame({"series": ["up"], "metric": ["throughput"], "t": [1.0],
                              "value": [5.0], "unit": ["Mbit/s"], "span_s": [0.2],
                              "direction": ["up"], "tos": [0], "host": ["h"],
                              "computed": [False]})
    both = plots.combine_runs({"x": a, "y": a})
    assert both.samples["series"].tolist() == ["x: up", "y: up"]
    assert both.meta["combined_from"] == ["x", "y"]


def test_cli_plot_two_files_as_cdf_and_box(tmp_path, capsys):
    a = tmp_path / "fifo.json.gz"
    b = tmp_path / "fq.json.gz"
    one_stream("fifo", 100.0).save(a)
    one_stream("fq", 5.0).save(b)
    out = tmp_path / "cdf.svg"
    assert main(["plot", str(a), str(b), "--kind", "cdf", "-o", str(out)]) == 0
    svg = out.read_text()
    assert "RTT CDF: fifo vs fq" in svg  # one colour per file, named by the file
    assert main(["plot", str(a), str(b), "--kind", "box", "-o", str(tmp_path / "box.png")]) == 0
    assert (tmp_path / "box.png").read_bytes()[:4] == b"\x89PNG"
    html = tmp_path / "line.html"
    assert main(["plot", str(a), str(b), "--kind", "line", "-o", str(html)]) == 0
    page = html.read_text()
    assert "qoslab-chart-wrap" in page and "fq: ping" in page
