"""qoslab.plots: the artists each figure holds, checked on Figure objects (not pixels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.patches import StepPatch

import qoslab
from qoslab import plots
from qoslab.errors import ConfigError
from qoslab.runs import Run
from tests.conftest import SHARED_FLENT

BUNDLED = "flent/ping-v4-icmp-irtt.flent.gz"


def small_run(events=None) -> Run:
    """Two streams, 0.5 s interval over 0..9.5 s; stream b loses probes 3 and 7."""
    rows = []
    for name, base in (("a tos=0x10", 5.0), ("b tos=0x00", 50.0)):
        for k in range(20):
            lost = name.startswith("b") and k in (3, 7)
            rows.append({"stream": name, "host": "10.0.0.2", "tos": 0, "size": 56, "seq": k,
                         "t_sent": 0.5 * k, "rtt_ms": np.nan if lost else base + k % 4,
                         "status": "lost" if lost else "ok", "ttl": 64})
    ev = events if events is not None else {"t": [], "kind": [], "detail": []}
    return Run(probes=pd.DataFrame(rows), events=ev, meta={"title": "small"})


def by_gid(ax, prefix):
    arts = list(ax.collections) + list(ax.lines) + list(ax.patches)
    return [a for a in arts if (a.get_gid() or "").startswith(prefix)]


# ---- latency ---------------------------------------------------------------------------

def test_latency_scatter_one_collection_per_stream_with_answered_points():
    run = small_run()
    ax = plots.latency(run, kind="scatter").axes[0]
    coll = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [c.get_label() for c in coll] == ["a tos=0x10", "b tos=0x00"]
    assert [len(c.get_offsets()) for c in coll] == [20, 18]
    b = coll[1].get_offsets()
    assert not np.isin([1.5, 3.5], np.asarray(b)[:, 0]).any()  # lost probes are not points


def test_latency_line_one_line_per_stream_broken_at_losses():
    ax = plots.latency(small_run(), kind="line").axes[0]
    lines = by_gid(ax, "stream:")
    assert [ln.get_label() for ln in lines] == ["a tos=0x10", "b tos=0x00"]
    y = np.asarray(lines[1].get_ydata(), dtype=float)
    assert np.isnan(y[[3, 7]]).all() and np.isfinite(np.delete(y, [3, 7])).all()


def test_one_vertical_line_per_hash_change_in_range_and_other_kinds_distinct():
    events = {"t": [1.0, 2.5, 4.0, 8.0, 12.0, 30.0, 3.0, -5.0],
              "kind": ["hash_change"] * 6 + ["config_change", "hash_change"],
              "detail": [f"seed=0x{i:x}" for i in range(8)]}
    ax = plots.latency(small_run(events)).axes[0]
    hc = by_gid(ax, "events:hash_change")
    assert len(hc) == 1 and isinstance(hc[0], LineCollection)
    xs = sorted(seg[0][0] for seg in hc[0].get_segments())
    assert xs == [1.0, 2.5, 4.0, 8.0]  # 12, 30 and -5 lie outside 0..9.5 s
    cc = by_gid(ax, "events:config_change")
    assert len(cc) == 1 and len(cc[0].get_segments()) == 1
    assert not np.allclose(cc[0].get_color(), hc[0].get_color())
    assert cc[0].get_linestyle() != hc[0].get_linestyle()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "hash change (perturb) (4)" in legend


def test_events_false_or_selected_kinds():
    events = {"t": [1.0, 2.0], "kind": ["hash_change", "note"], "detail": ["", ""]}
    assert not by_gid(plots.latency(small_run(events), events=False).axes[0], "events:")
    ax = plots.latency(small_run(events), events=["note"]).axes[0]
    assert [c.get_gid() for c in by_gid(ax, "events:")] == ["events:note"]


def test_spikes_are_shaded_spans_only_for_drawn_streams():
    spikes = pd.DataFrame({"stream": ["a tos=0x10", "b tos=0x00", "b tos=0x00", "a tos=0x10"],
                           "t_start": [1.0, 3.0, 6.0, 6.1], "t_end": [1.5, 3.2, 6.5, 6.3]})
    ax = plots.latency(small_run(), spikes=spikes).axes[0]
    spans = by_gid(ax, "spike")
    assert len(spans) == 3  # spike events: both streams saw the one at 6 s
    assert len(by_gid(ax, "cap:spike")) == 3
    assert {tuple(p.get_facecolor()[:3]) for p in spans} == {tuple(
        int(plots.chart.SPIKE_COLOR[i:i + 2], 16) / 255 for i in (1, 3, 5))}  # one colour
    handles, labels = ax.get_legend_handles_labels()
    assert "spike event (3)" in labels
    ax = plots.latency(small_run(), streams=["a tos=0x10"], spikes=spikes).axes[0]
    assert len(by_gid(ax, "spike")) == 2  # stream a's spikes at 1 s and 6.1 s
    assert len(by_gid(ax, "stream:")) == 1


def test_unknown_stream_and_kind_are_clear_errors():
    with pytest.raises(ConfigError, match="no stream 'nope'.*a tos=0x10"):
        plots.latency(small_run(), streams=["nope"])
    with pytest.raises(ConfigError, match="scatter, line"):
        plots.latency(small_run(), kind="bars")


def test_latency_on_real_flent_files():
    run = qoslab.load(SHARED_FLENT / "test-rtt-fair.flent.gz")
    ax = plots.latency(run, kind="scatter").axes[0]
    coll = by_gid(ax, "stream:")
    assert len(coll) == 4
    assert sum(len(c.get_offsets()) for c in coll) == int(run.probes["rtt_ms"].notna().sum())
    empty = qoslab.load(SHARED_FLENT / "test-tcp_1up_noping-cpu_stats.flent.gz")
    assert not by_gid(plots.latency(empty).axes[0], "stream:")


def test_draws_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plots.latency(small_run(), ax=ax) is fig


# ---- ping-exp's figure ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["scatter", "line"])
def test_pingexp_figure_has_the_four_panels(kind):
    run = qoslab.load(qoslab.data_path(BUNDLED))
    fig = plots.pingexp_figure(run, kind=kind)
    assert tuple(fig.get_size_inches()) == (10, 10)
    lat, bars, hist, loss = fig.subfigs
    assert [len(sf.axes) for sf in fig.subfigs] == [1, 3, 1, 1]
    assert len(by_gid(lat.axes[0], "stream:")) == 2
    assert [ax.get_title() for ax in bars.axes] == ["packet loss (%)", "RTT mean (ms)",
                                                    "RTT mdev (ms)"]
    assert len([p for p in hist.axes[0].patches if isinstance(p, StepPatch)]) == 2
    assert "2 ms bins" in hist.axes[0].get_title()
    assert not by_gid(loss.axes[0], "loss:")  # this file lost nothing


def test_pingexp_loss_panel_marks_each_lost_probe():
    run = qoslab.load(SHARED_FLENT / "test-tcp_nup.flent.gz")
    loss_ax = plots.pingexp_figure(run).subfigs[3].axes[0]
    marks = by_gid(loss_ax, "loss:")
    lost_t = run.probes.loc[run.probes["status"] == "lost", "t_sent"].to_numpy()
    assert len(marks) == 1 and np.allclose(marks[0].get_offsets()[:, 0], lost_t)


# ---- distributions ---------------------------------------------------------------------

def test_histogram_one_step_outline_per_stream_unit_area():
    run = qoslab.load(SHARED_FLENT / "test-rtt-fair.flent.gz")
    ax = plots.histogram(run, binwidth_ms=2).axes[0]
    steps = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert len(steps) == 4
    for p in steps:
        values, edges = p.get_data()[:2]
        assert np.sum(values * np.diff(edges)) == pytest.approx(1.0)
        assert np.diff(edges)[0] == pytest.approx(2.0)


def test_auto_bins_fit_each_stream_so_a_narrow_one_is_not_two_boxes():
    # loopback-like ICMP (0.040-0.056 ms) beside UDP (0.11-0.76 ms): one shared width put
    # the whole ICMP stream into two bars
    run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    ax = plots.histogram(run, binwidth_ms="auto").axes[0]
    steps = {p.get_label().rsplit(" (", 1)[0]: p for p in ax.patches if isinstance(p, StepPatch)}
    icmp_values, icmp_edges = steps["Ping (ms) ICMP"].get_data()[:2]
    assert np.count_nonzero(icmp_values) >= 5
    for p in steps.values():  # still densities: unit area whatever the width
        values, edges = p.get_data()[:2]
        assert np.sum(values * np.diff(edges)) == pytest.approx(1.0)
    width = float(np.diff(icmp_edges)[0])
    assert f"({width:g} ms bins)" in steps["Ping (ms) ICMP"].get_label()


def test_standalone_distribution_figures_name_the_run():
    run = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    for fig in (plots.cdf(run), plots.histogram(run)):
        title = fig.axes[0].get_title()
        assert title.startswith("flent ping 'qa-ping-test' to 10.77.0.2, 2026-11-26"), title


def test_periodogram_has_a_readable_log_axis_and_marks_the_periods():
    est = qoslab.analysis.infer_period([5.1 + 5 * k for k in range(12)], span=(0, 62))
    fig = plots.periodogram(est, true_period=5)
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert {"1", "2", "5", "10"} <= set(labels), labels  # never only 10^0, 10^1
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[1:] == [f"best fit {est.period:.2f} s ({est.p.text})", "true period 5 s"]
    too_few = plots.periodogram(qoslab.analysis.infer_period([3.0, 8.0])).axes[0]
    assert "too few" in too_few.get_title(loc="left")


def test_histogram_caps_bin_count_for_huge_ranges():
    run = small_run()
    run.probes.loc[0, "rtt_ms"] = 10_000.0
    p = plots.histogram(run).axes[0].patches[0]
    assert len(p.get_data()[0]) <= 401


def test_cdf_tops_out_at_delivery_ratio():
    run = qoslab.load(SHARED_FLENT / "test-tcp_nup.flent.gz")
    line = plots.cdf(run).axes[0].lines[0]
    assert line.get_ydata()[-1] == pytest.approx(0.99)
    line = plots.cdf(run, count_lost=False).axes[0].lines[0]
    assert line.get_ydata()[-1] == pytest.approx(1.0)
    assert np.all(np.diff(line.get_xdata()) >= 0)


def test_summary_bars_heights_are_the_summary():
    run = small_run()
    fig = plots.summary_bars(run, metrics=("loss_pct", "p99", "jitter"))
    table = qoslab.analysis.summarize(run)
    for ax, metric in zip(fig.axes, ("loss_pct", "p99", "jitter"), strict=True):
        heights = [b.get_height() for b in ax.patches]
        assert heights == pytest.approx(table[metric].tolist())
    assert fig.axes[0].patches[1].get_height() == pytest.approx(10.0)  # 2 of 20 lost
    with pytest.raises(ConfigError, match="unknown metric"):
        plots.summary_bars(run, metrics=("speed",))


def test_loss_over_time_markers_and_windows():
    run = small_run()
    run.probes.loc[5, ["status", "rtt_ms"]] = ["unreachable", np.nan]  # stream a, t=2.5
    ax = plots.loss_over_time(run).axes[0]
    gids = sorted(c.get_gid() for c in by_gid(ax, "loss:"))
    assert gids == ["loss:a tos=0x10:unreachable", "loss:b tos=0x00:lost"]
    b = [c for c in ax.collections if c.get_gid() == "loss:b tos=0x00:lost"][0]
    assert sorted(b.get_offsets()[:, 0]) == [1.5, 3.5]
    ax = plots.loss_over_time(run, window=2.0).axes[0]
    y = by_gid(ax, "stream:b")[0].get_ydata()
    assert list(y[:3]) == [25.0, 25.0, 0.0]  # 4 probes per 2 s window, 1 lost in the first two


# ---- occupancy -------------------------------------------------------------------------

def test_occupancy_lines_per_flow_and_shared_cells():
    f = pd.DataFrame({"t": [0.1, 1.1, 2.1, 0.2, 1.2, 2.2, 0.3],
                      "flow": ["x", "x", "x", "y", "y", "y", "z"],
                      "bucket": [3, 3, 900, 7, 3, 3, -1]})
    ax = plots.occupancy(f, resolution=1.0).axes[0]
    assert [ln.get_label() for ln in by_gid(ax, "flow:")] == ["x", "y", "z"]
    shared = by_gid(ax, "shared")[0].get_offsets()
    assert len(shared) == 1 and shared[0][0] == pytest.approx(1.5)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dropped", "3", "7", "900"]
    with pytest.raises(ConfigError, match="bucket"):
        plots.occupancy(f.drop(columns="bucket"))


def test_occupancy_frame_from_packets():
    pk = pd.DataFrame({"t": [0.0, 0.5], "src": ["10.0.0.1", "10.0.0.3"],
                       "dst": ["10.0.0.2", "10.0.0.2"], "proto": [6, 1],
                       "sport": pd.array([40000, pd.NA], dtype="UInt16"),
                       "dport": pd.array([80, pd.NA], dtype="UInt16"),
                       "tunnel": pd.Categorical(["none", "4in4"]),
                       "inner_src": ["", "192.168.1.1"], "inner_dst": ["", "192.168.1.2"],
                       "inner_proto": [0, 17], "inner_sport": [0, 5000],
                       "inner_dport": [0, 53]})
    occ = plots.occupancy_frame(pk, np.array([4, 4]))
    assert occ["flow"].tolist() == ["tcp 10.0.0.1:40000 > 10.0.0.2:80",
                                    "udp 192.168.1.1:5000 > 192.168.1.2:53 via 4in4 10.0.0.3 > "
                                    "10.0.0.2"]
    with pytest.raises(ConfigError, match="one per packet"):
        plots.occupancy_frame(pk, [1, 2, 3])


# ---- saving ------------------------------------------------------------------------------

def test_save_png_and_svg(tmp_path):
    fig = plots.latency(small_run())
    png = plots.save_figure(fig, tmp_path / "a.png")
    svg = plots.save_figure(fig, tmp_path / "a.SVG")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:400]
    with pytest.raises(ConfigError, match=r"\.png or \.svg"):
        plots.save_figure(fig, tmp_path / "a.jpg")


# ---- qoslab plot ---------------------------------------------------------------------------

def test_cli_plot_writes_the_pingexp_figure(tmp_path, capsys):
    from qoslab.cli import main

    out = tmp_path / "both.png"
    status = main(["plot", str(qoslab.data_path(BUNDLED)), str(SHARED_FLENT / "test-tcp_nup.flent.gz"),
                   "-o", str(out)])
    assert status == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize("kind,n_axes", [("scatter", 1), ("line", 1), ("hist", 1), ("loss", 1),
                                         ("bars", 3)])
def test_plot_files_each_kind(kind, n_axes):
    from qoslab.plot_cli import plot_files

    fig = plot_files([qoslab.data_path(BUNDLED), SHARED_FLENT / "test-tcp_nup.flent.gz"], kind)
    assert len(fig.axes) == n_axes
    if kind == "loss":  # one probe of the two files went unanswered
        assert [c.get_gid() for c in by_gid(fig.axes[0], "loss:")] == [
            "loss:test-tcp_nup: Ping (ms) ICMP:lost"]
    elif kind != "bars":
        assert len(by_gid(fig.axes[0], "stream:")) == 3


def test_cli_plot_combines_files_and_selects_streams(tmp_path):
    from qoslab.plot_cli import plot_files

    bundled = qoslab.data_path(BUNDLED)
    fig = plot_files([bundled, SHARED_FLENT / "test-tcp_nup.flent.gz"], kind="line",
                     streams=["test-tcp_nup: Ping (ms) ICMP"])
    assert [ln.get_label() for ln in by_gid(fig.axes[0], "stream:")] == [
        "test-tcp_nup: Ping (ms) ICMP"]
    fig = plot_files([bundled], kind="pingexp", lines=True)
    assert len(by_gid(fig.subfigs[0].axes[0], "stream:")) == 2
    assert all(not isinstance(a, PathCollection)
               for a in by_gid(fig.subfigs[0].axes[0], "stream:"))


def test_cli_plot_errors_are_one_line(tmp_path, capsys):
    from qoslab.cli import main

    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not a run")
    assert main(["plot", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert main(["plot", str(qoslab.data_path(BUNDLED)), "-o", str(tmp_path / "x.jpg")]) == 2
    # Agg (set by conftest) has no window: a clear message rather than a silent no-op
    assert main(["plot", str(qoslab.data_path(BUNDLED))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("qoslab plot: error:") for line in err)
    assert "bad.json.gz" in err[0] and ".png or .svg" in err[1] and "-o" in err[2]


def test_latency_detects_spikes_when_asked():
    from qoslab.analysis import detect_spikes

    t = np.arange(0, 60, 0.1)
    rtt = 10.0 + 0.2 * np.sin(t)
    for c in (12.0, 31.0, 47.0):  # three 40 ms spikes of 0.5 s
        rtt[(t >= c) & (t < c + 0.5)] = 50.0
    run = Run(probes={"stream": "s", "host": "h", "tos": 0, "size": 56, "seq": np.arange(t.size),
                      "t_sent": t, "rtt_ms": rtt, "status": "ok", "ttl": 64})
    found = detect_spikes(run.probes)
    assert len(found) == 3
    spans = by_gid(plots.latency(run, spikes=True).axes[0], "spike")
    assert len(spans) == 3
    starts = sorted(float(p.get_x()) for p in spans)  # axvspan gives Rectangles
    assert starts == pytest.approx(sorted(found["t_start"]))


# ---- pfifo_fast TOS -> band table --------------------------------------------------------------

def test_tos_band_table_cells_come_from_the_hashing_tables():
    from matplotlib.image import AxesImage

    from qoslab.hashing import PRIO2BAND, TOS2PRIO_NEW, TOS2PRIO_OLD

    fig = plots.tos_band_table()
    old_ax, new_ax = fig.axes
    for ax, table in ((old_ax, TOS2PRIO_OLD), (new_ax, TOS2PRIO_NEW)):
        img = [a for a in ax.get_children() if isinstance(a, AxesImage)][0]
        bands = np.asarray(img.get_array())
        assert bands.shape == (8, 4)
        for i, bits in enumerate(range(0, 0x20, 4)):
            for ecn in range(4):
                tos = bits | ecn
                assert bands[i, ecn] == PRIO2BAND[table[(tos & 0x1E) >> 1]]
        assert len(ax.texts) == 32
    # exactly the two ECN codepoints that set the ECT(0) bit with no TOS bits changed band
    changed = [p for p in old_ax.patches if p.get_gid() == "changed"]
    assert sorted((p.get_x() + 0.5, p.get_y() + 0.5) for p in changed) == [(2, 0), (3, 0)]
    assert int(np.asarray([a for a in old_ax.get_children()
                           if isinstance(a, AxesImage)][0].get_array())[0, 2]) == 2


def test_tos_band_frame_single_table_and_errors():
    f = plots.tos_band_frame("new")
    assert len(f) == 32 and set(f["band"]) == {0, 1, 2}
    assert len(plots.tos_band_table(("new",)).axes) == 1
    with pytest.raises(ConfigError):
        plots.tos_band_table(())


def test_occupancy_of_a_simulated_sfq_run_shows_rehash_moves():
    from qoslab.sim import occupancy as sim_occupancy
    from qoslab.sim.scenarios import sfq_perturb

    run = sfq_perturb(perturb=5, duration=20)
    frame = sim_occupancy(run)
    ax = plots.occupancy(frame, events=run.events).axes[0]
    flows = by_gid(ax, "flow:")
    assert sorted(c.get_label() for c in flows) == sorted(frame["flow"].unique())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [str(b) for b in sorted(frame["bucket"].unique())]
    # every bar lies on the row of a bucket its flow really used
    for c in flows:
        used = set(frame.loc[frame["flow"] == c.get_label(), "bucket"])
        rows = {labels[int(round(seg[0][1]))] for seg in c.get_segments()}
        assert rows == {str(b) for b in used}
    # the floods move at the hash changes: more than one bucket over the run
    flood = [c for c in flows if c.get_label().startswith("flood")][0]
    assert len({round(seg[0][1]) for seg in flood.get_segments()}) >= 3
    # at 5, 10, 15 s, and 20 s (the timer runs on while the pings wait for answers)
    assert len(by_gid(ax, "events:hash_change")[0].get_segments()) == 4


def test_figures_display_as_png_in_jupyter_without_pyplot():
    import matplotlib.pyplot as plt
    from IPython.core.formatters import DisplayFormatter

    fig = plots.cdf(small_run())
    data, _meta = DisplayFormatter().format(fig)
    assert base64_png(data["image/png"])[:4] == b"\x89PNG"
    assert fig not in [plt.figure(n) for n in plt.get_fignums()]  # not registered with pyplot


def base64_png(value) -> bytes:
    import base64

    return value if isinstance(value, bytes) else base64.b64decode(value)


# ---- real lab runs (bundled) --------------------------------------------------------------------

def test_real_bufferbloat_run_marks_the_config_change():
    run = qoslab.load(qoslab.data_path("lab/bufferbloat.json.gz"))
    ax = plots.latency(run, kind="line").axes[0]
    t = run.probes["t_sent"]
    ev = run.events[run.events["t"].between(t.min(), t.max())]
    assert list(ev["kind"]) == ["config_change"]  # the pfifo limit 1000 -> 10 switch
    cc = by_gid(ax, "events:config_change")
    assert [seg[0][0] for seg in cc[0].get_segments()] == pytest.approx(list(ev["t"]))
    assert not by_gid(ax, "events:hash_change") and not by_gid(ax, "events:load_start")


def test_real_pfifo_fast_tos_run_in_the_pingexp_figure():
    run = qoslab.load(qoslab.data_path("lab/pfifo_fast_tos.json.gz"))
    fig = plots.pingexp_figure(run)
    table = qoslab.analysis.summarize(run)
    loss_ax, mean_ax, _mdev_ax = fig.subfigs[1].axes
    assert [b.get_height() for b in loss_ax.patches] == pytest.approx(table["loss_pct"].tolist())
    assert table["loss_pct"].iloc[-1] == 100.0  # TOS 0x08 (band 2) starved by the flood
    assert mean_ax.patches[0].get_height() < mean_ax.patches[1].get_height()  # 0x10 beats 0x00
    hist = [p.get_label() for p in fig.subfigs[2].axes[0].patches]
    assert hist == list(table.index[table["received"] > 0])  # no outline for a silent stream
    lost = by_gid(fig.subfigs[3].axes[0], "loss:")
    assert sum(len(c.get_offsets()) for c in lost) == int((table["sent"] - table["received"]).sum())


def test_bare_probes_frame_and_bad_inputs():
    from qoslab.errors import RunFormatError

    probes = small_run().probes
    assert len(by_gid(plots.latency(probes).axes[0], "stream:")) == 2  # a PROBES frame is fine
    with pytest.raises(RunFormatError, match="lacks seq"):
        plots.cdf(probes.drop(columns="seq"))
    with pytest.raises(RunFormatError, match="expected a Run or a PROBES"):
        plots.histogram([1, 2, 3])


def test_occupancy_kind_for_simulated_runs_only(tmp_path):
    from qoslab.cli import main
    from qoslab.sim.scenarios import sfq_perturb

    path = tmp_path / "sim.json.gz"
    sfq_perturb(perturb=5, duration=12).save(path)
    fig = plots.plot_kind(qoslab.load(path), "occupancy")
    assert len(by_gid(fig.axes[0], "flow:")) >= 2 and by_gid(fig.axes[0], "events:hash_change")
    with pytest.raises(ConfigError, match="occupancy"):
        plots.plot_kind(qoslab.load(qoslab.data_path(BUNDLED)), "occupancy")
    assert main(["plot", str(qoslab.data_path(BUNDLED)), "--kind", "occupancy",
                 "-o", str(tmp_path / "x.png")]) == 2


def test_a_stream_with_no_reply_is_named_in_the_legend_not_dropped():
    run = qoslab.load(qoslab.data_path("lab/pfifo_fast_tos.json.gz"))  # tos 0x08: all lost
    starved = "tos08: 10.71.0.2 tos=0x08 size=56"
    for fig in (plots.cdf(run), plots.histogram(run)):
        ax = fig.axes[0]
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"{starved}: no reply" in texts, texts
        drawn = [ln for ln in ax.lines if ln.get_gid() == f"stream:{starved}"]
        assert all(len(ln.get_xdata()) == 0 for ln in drawn)  # nothing made up


def test_occupancy_of_one_sample_has_a_readable_time_axis():
    one = pd.DataFrame({"t": [12.0, 12.0], "flow": ["a", "b"], "bucket": [3, 3]})
    lo, hi = plots.occupancy(one).axes[0].get_xlim()
    assert lo == pytest.approx(11.5) and hi == pytest.approx(12.5)  # not a 1e-6 s axis


@pytest.mark.parametrize("kind", ["pingexp", "scatter", "cdf", "hist", "loss", "bars", "box"])
def test_labels_from_a_file_are_text_never_tex(tmp_path, capsys, kind):
    """A stream or title with "$" used to be parsed as TeX: an unknown command or a brace
    left open ended ``qoslab plot`` in a ParseException traceback; now it is drawn as typed."""
    from qoslab.cli import main

    name = r"$\notacommand{$ tos=0x10"
    run = small_run()
    run.probes["stream"] = run.probes["stream"].astype(str).str.replace("a tos=0x10", name)
    run.meta["title"] = "price $x^{"
    path = run.save(tmp_path / "dollar.json.gz")
    assert main(["plot", str(path), "-k", kind, "-o", str(tmp_path / "f.svg")]) == 0, \
        capsys.readouterr().err
    assert r"$\notacomma" in (tmp_path / "f.svg").read_text()  # drawn as typed (maybe cut)
