"""qoslab.widgets: build each explorer, drive its controls, check state/outputs; errors surface."""

from __future__ import annotations

import base64
import html
import re
import sys

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab.errors import BackendUnavailableError, ConfigError
from qoslab.runs import Run
from qoslab.widgets import RunBrowser, browse_run
from tests.conftest import SHARED_FLENT

BUNDLED = "flent/ping-v4-icmp-irtt.flent.gz"


def png_of(explorer) -> bytes:
    bundles = [o for o in explorer.output.outputs if "image/png" in o["data"]]
    assert bundles, "no figure in the output area"
    return base64.b64decode(bundles[0]["data"]["image/png"])


def html_of(explorer) -> str:
    return "".join(o["data"].get("text/html", "") for o in explorer.output.outputs)


def test_missing_ipywidgets_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(BackendUnavailableError, match="pip install ipywidgets"):
        RunBrowser(qoslab.data_path(BUNDLED))


# ---- the rules every explorer follows ---------------------------------------------------------

def shown_error(explorer) -> str:
    """The one error line an explorer shows (asserting it is the only thing shown)."""
    assert explorer.error_line.layout.display is None, "the error line is hidden"
    assert explorer.output.outputs == (), "a stale result sits beside the error"
    assert explorer.errors.layout.display == "none", "a traceback shows without being asked"
    text = re.sub(r"<[^>]+>", "", explorer.error_line.value)
    assert "Traceback" not in text and text.count("\n") == 0
    return html.unescape(text)


def assert_clean(explorer) -> None:
    assert explorer.last_error is None, explorer.last_error
    assert explorer.error_line.layout.display == "none" and explorer.errors.outputs == ()


# ---- run browser ---------------------------------------------------------------------------

def test_run_browser_draws_and_follows_controls():
    rb = RunBrowser({"bundled": qoslab.data_path(BUNDLED),
                     "nup": SHARED_FLENT / "test-tcp_nup.flent.gz"}, kind="scatter")
    assert_clean(rb)
    assert rb.updates == 1
    assert "qoslab-chart-wrap" in html_of(rb)  # latency over time: a zoomable chart
    assert [s["name"] for s in rb.figure.spec["series"]] == ["Ping (ms) ICMP", "Ping (ms) UDP"]
    assert "Ping (ms) UDP" in html_of(rb)  # the summary table

    rb.streams.value = ("Ping (ms) ICMP",)
    assert [s["name"] for s in rb.figure.spec["series"]] == ["Ping (ms) ICMP"]
    assert list(rb.table.index) == ["Ping (ms) ICMP"]

    rb.kind.value = "bars"
    assert png_of(rb)[:4] == b"\x89PNG"
    assert [len(ax.patches) for ax in rb.figure.axes] == [1, 1, 1]
    assert rb.events.disabled and rb.lines.disabled  # bars draw neither

    rb.run.value = ("nup",)
    assert rb.streams.options == ("Ping (ms) ICMP",) and rb.streams.value == ("Ping (ms) ICMP",)
    assert rb.table.loc["Ping (ms) ICMP", "received"] == 99
    assert_clean(rb)


def test_run_browser_compares_several_runs_one_colour_each():
    rb = RunBrowser({"bundled": qoslab.data_path(BUNDLED),
                     "nup": SHARED_FLENT / "test-tcp_nup.flent.gz"}, kind="cdf",
                    select=["bundled", "nup"])
    assert_clean(rb)
    gids = [ln.get_gid() for ln in rb.figure.axes[0].lines]
    assert set(gids) == {"run:bundled", "run:nup"}
    assert "bundled vs nup" in rb.figure.axes[0].get_title()
    assert "2 runs compared" in rb.status.value
    rb.kind.value = "box"
    assert {p.get_gid() for p in rb.figure.axes[0].patches} == {"run:bundled", "run:nup"}
    rb.kind.value = "line"
    names = [s["name"] for s in rb.figure.spec["series"]]
    assert "bundled: Ping (ms) ICMP" in names and "nup: Ping (ms) ICMP" in names


def test_run_browser_offers_occupancy_only_for_a_run_that_has_it_and_names_its_events():
    from qoslab import scenarios

    sim = scenarios.get("sfq_perturb").run(duration=10.0)
    lab = qoslab.load(qoslab.data_path("lab/bufferbloat.json.gz"))
    rb = RunBrowser({"lab": lab, "sim": sim}, kind="cdf")
    kinds = [v for _label, v in rb.kind.options]
    assert "occupancy" not in kinds  # the lab run has no occupancy samples
    assert "config change" in rb.events.description and "hash" not in rb.events.description
    rb.run.value = ("sim",)
    assert "occupancy" in [v for _label, v in rb.kind.options]
    assert "hash change" in rb.events.description
    rb.kind.value = "occupancy"
    assert_clean(rb)
    assert any((c.get_gid() or "").startswith("flow:") for c in rb.figure.axes[0].collections)
    rb.run.value = ("sim", "lab")  # occupancy cannot draw two runs: the kind falls back
    assert rb.kind.value == "cdf" and "occupancy" not in [v for _l, v in rb.kind.options]
    assert_clean(rb)


def test_run_browser_lists_a_run_given_twice_once():
    from qoslab import scenarios

    a = scenarios.get("bufferbloat").run(duration=10.0)
    b = scenarios.get("bufferbloat").run(duration=10.0)  # the same simulation again
    rb = RunBrowser({"pfifo limit 1000": a, "pfifo, limit 1000": b, "flent": qoslab.load(
        qoslab.data_path(BUNDLED))}, kind="cdf")
    assert list(rb.runs) == ["pfifo limit 1000", "flent"]
    assert rb.aliases == {"pfifo, limit 1000": "pfifo limit 1000"}
    assert [label for label, _v in rb.run.options][0] == \
        "pfifo limit 1000 (= pfifo, limit 1000)"


def test_run_browser_caches_by_controls():
    run = qoslab.load(qoslab.data_path(BUNDLED))
    rb = RunBrowser(run, kind="cdf")
    first = rb.figure
    rb.kind.value = "hist"
    rb.kind.value = "cdf"
    assert rb.figure is first  # same controls -> cached result, no recomputation
    assert rb._compute.cache_info().hits == 1


def test_run_browser_error_replaces_the_result_with_one_line():
    rb = RunBrowser(qoslab.data_path(BUNDLED), kind="cdf")
    rb.streams.value = ()  # the callback catches ...
    assert isinstance(rb.last_error, ConfigError)
    assert shown_error(rb) == "⚠ select at least one stream"
    assert rb.details.layout.display is None  # the traceback is there when asked for
    rb.details.value = True
    assert rb.errors.layout.display is None
    assert "Traceback" in rb.errors.outputs[0]["data"]["text/plain"]
    with pytest.raises(ConfigError, match="at least one stream"):
        rb.update()  # ... a direct call raises
    rb.streams.value = ("Ping (ms) UDP",)
    assert_clean(rb)
    assert rb.errors.layout.display == "none" and rb.details.layout.display == "none"
    assert html_of(rb)


def test_broken_compute_function_fails_update_and_shows_in_callback(monkeypatch):
    import qoslab.widgets.run_browser as mod

    rb = RunBrowser(qoslab.data_path(BUNDLED), kind="cdf")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("deliberately broken plot")

    monkeypatch.setattr(mod, "plot_kind", broken)
    rb.kind.value = "hist"  # a new key: not cached, goes through the broken function
    assert isinstance(rb.last_error, ZeroDivisionError)
    line = shown_error(rb)
    assert "internal error (ZeroDivisionError: deliberately broken plot)" in line
    assert "deliberately broken plot" in rb.errors.outputs[0]["data"]["text/plain"]
    with pytest.raises(ZeroDivisionError):
        rb.update()


def test_browse_run_is_the_pure_function():
    run = qoslab.load(SHARED_FLENT / "test-rtt-fair.flent.gz")
    fig, table = browse_run(run, "bars", None)
    assert len(fig.axes) == 3 and len(table) == 4
    assert np.allclose(table["mean"], qoslab.analysis.summarize(run)["mean"].round(3))


def test_run_browser_rejects_runs_without_probes():
    with pytest.raises(ConfigError, match="no.*probe"):
        RunBrowser(Run(probes=pd.DataFrame({c: [] for c in
                                             ("stream", "host", "tos", "size", "seq", "t_sent",
                                              "rtt_ms", "status", "ttl")})))


# ---- perturb explorer ------------------------------------------------------------------------

def fake_perturb(perturb, seed, duration=20.0, **_other):
    """A stand-in for the simulator: 1 probe per 0.1 s, a 50 ms spike after each rehash."""
    from qoslab.widgets.perturb import PerturbResult

    t = np.arange(0, duration, 0.1)
    changes = np.arange(perturb, duration, perturb) if perturb else np.array([])
    after = np.zeros(t.shape, dtype=bool)
    for c in changes:
        after |= (t >= c) & (t < c + 0.3)
    rtt = np.where(after, 60.0, 10.0) + seed * 0.01
    run = Run(probes={"stream": "p", "host": "h", "tos": 0, "size": 56,
                      "seq": np.arange(t.size), "t_sent": t, "rtt_ms": rtt, "status": "ok",
                      "ttl": 64},
              events={"t": changes, "kind": "hash_change", "detail": "seed=0x1"})
    return PerturbResult(run, qoslab.analysis.spikes_vs_events(run))


def test_perturb_explorer_redraws_on_run_and_marks_a_stale_result():
    from qoslab.widgets import PerturbExplorer

    pe = PerturbExplorer(perturb=5, seed=1, compute=fake_perturb, duration=20.0)
    assert_clean(pe)
    assert pe.updates == 1
    (hc,) = pe.chart.spec["events"]
    assert hc["kind"] == "hash_change" and len(hc["t"]) == 3  # 5, 10, 15 s
    assert len(pe.chart.spec["spans"][0]["t0"]) == 3
    assert "perturb 5 s" in pe.chart.spec["title"]
    assert "fraction aligned" in pe.output.outputs[1]["data"]["text/html"]
    pe.perturb.editor.value = "2"
    assert pe.updates == 1  # no recomputation until Run is pressed ...
    assert "qoslab-stale" in pe.output._dom_classes  # ... and the old result says so
    assert "press Run" in pe.status.value
    pe.button.click()
    assert pe.updates == 2 and "qoslab-stale" not in pe.output._dom_classes
    assert len(pe.chart.spec["events"][0]["t"]) == 9
    assert "perturb 2 s" in pe.chart.spec["title"] and "perturb 2 s" in pe.status.value


def test_perturb_explorer_is_busy_while_it_runs_and_prints_nothing(capfd):
    from qoslab.widgets import PerturbExplorer

    seen = []

    def watching(**values):
        seen.append((pe.button.disabled, pe.button.description, pe.busy,
                     "qoslab-busy" in pe.output._dom_classes, pe.status.value))
        pe.button.click()  # a second click while running does nothing
        return fake_perturb(**values)

    pe = PerturbExplorer(perturb=5, compute=fake_perturb, duration=20.0)
    pe.compute = watching
    capfd.readouterr()
    pe.perturb.editor.value = "4"
    pe.button.click()
    (during,) = seen
    assert during[:4] == (True, "Running…", True, True)
    assert "running sfq_perturb: perturb 4 s" in during[4]
    assert not pe.button.disabled and pe.button.description == "Run" and not pe.busy
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # nothing for JupyterLab's log console


def test_perturb_explorer_controls_come_from_the_scenario_with_units_and_ranges():
    from qoslab import scenarios
    from qoslab.widgets import PerturbExplorer

    pe = PerturbExplorer(compute=fake_perturb, duration=20.0)
    declared = [p.name for p in scenarios.get("sfq_perturb").params]
    assert set(pe.params) == set(declared)
    rate = pe.params["shaper_rate"]
    assert rate.editor.value == "900kbit" and "1 kbit/s … 100 Gbit/s" in rate.hint.value
    assert rate.slider is not None and rate.slider.label == "900 kbit/s"  # log: a slider
    assert "interval (s)" in pe.params["interval"].label.value
    assert "0 = no perturbation" in pe.perturb.hint.value
    pe.perturb.editor.value = "0"  # 0 is allowed and means something
    pe.button.click()
    assert_clean(pe)
    assert "perturb off" in pe.chart.spec["title"] and pe.chart.spec["events"] == []


def test_perturb_explorer_bad_value_one_clear_line_and_no_stale_figure():
    from qoslab.widgets import PerturbExplorer

    pe = PerturbExplorer(perturb=5, duration=20.0)  # the real scenario
    assert html_of(pe)
    pe.params["interval"].editor.value = "0"
    pe.button.click()
    assert shown_error(pe) == "⚠ interval = 0 s: expected 0.001 … 60 s"
    pe.params["interval"].editor.value = "0.2"
    pe.params["shaper_rate"].editor.value = "fast"
    pe.button.click()
    assert "shaper_rate" in shown_error(pe) and "bit/s" in shown_error(pe)
    pe.params["shaper_rate"].editor.value = "800kbit"
    pe.button.click()
    assert_clean(pe)
    assert pe.result.run.meta["params"]["shaper_rate"] == 800_000


def test_an_interrupted_run_leaves_no_stale_figure():
    from qoslab.widgets import PerturbExplorer

    def interrupted(**values):
        raise KeyboardInterrupt  # the kernel's interrupt button, mid-simulation

    pe = PerturbExplorer(compute=fake_perturb, duration=20.0)
    assert html_of(pe)
    pe.compute = interrupted
    pe.perturb.editor.value = "7"
    pe.button.click()  # the interrupt does not escape the callback (no traceback in the log)
    assert "interrupted before the result was ready" in shown_error(pe)
    assert not pe.button.disabled and pe.button.description == "Run"


def test_perturb_explorer_broken_compute_fails_loudly():
    from qoslab.widgets import PerturbExplorer

    def broken(**values):
        raise RuntimeError("deliberately broken simulator")

    pe = PerturbExplorer(compute=broken, duration=20.0)  # the first draw is a callback
    assert isinstance(pe.last_error, RuntimeError)
    assert "deliberately broken simulator" in shown_error(pe)
    assert "deliberately broken simulator" in pe.errors.outputs[0]["data"]["text/plain"]
    with pytest.raises(RuntimeError, match="deliberately broken"):
        pe.update()


# ---- key picker ------------------------------------------------------------------------------

def tunnel_packets() -> pd.DataFrame:
    """Three flows inside one 4in4 tunnel (10.9.0.1 -> 10.9.0.2) and two plain UDP flows."""
    rows = []
    for i, (isrc, sport) in enumerate([("192.168.1.10", 5001), ("192.168.1.11", 5002),
                                       ("192.168.1.12", 5003)]):
        rows += [dict(ip_version=4, src="10.9.0.1", dst="10.9.0.2", proto=4, sport=None,
                      dport=None, tos=0, frag=False, tunnel="4in4", inner_src=isrc,
                      inner_dst="192.168.2.1", inner_proto=17, inner_sport=sport,
                      inner_dport=9000, t=0.1 * i + 0.01 * k) for k in range(3)]
    for i, sport in enumerate([6001, 6002]):
        rows += [dict(ip_version=4, src="10.0.0.1", dst="10.0.0.2", proto=17, sport=sport,
                      dport=53, tos=0, frag=False, tunnel="none", inner_src=None, inner_dst=None,
                      inner_proto=None, inner_sport=None, inner_dport=None, t=0.5 + 0.1 * i)]
    df = pd.DataFrame(rows)
    for c in ("sport", "dport", "inner_proto", "inner_sport", "inner_dport"):
        df[c] = df[c].astype("UInt16")
    return df


def test_classify_flows_table_matches_the_classifier():
    from qoslab.hashing import FlowClassifier
    from qoslab.widgets import classify_flows

    pk = tunnel_packets()
    line, table = classify_flows(pk, ["src", "dst", "proto", "proto-src", "proto-dst"],
                                 "5.18+", 1024, None, seed=7)
    assert line.endswith(FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024)
                         .to_tc())
    assert table["packets"].sum() == len(pk) and table["flow"].nunique() == 5
    expected = FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024,
                              profile="5.18+").classes(pk, hashrnd=7)
    labels = qoslab.plots.flow_labels(pk)
    for _, row in table.iterrows():
        assert set(expected[labels == row["flow"]]) == {row["class"]}


def test_key_picker_live_tc_line_and_sharing():
    from qoslab.widgets import KeyPicker

    kp = KeyPicker(tunnel_packets(), profile="tunnel-patch")
    assert kp.last_error is None
    assert "tunnel-src" in kp.keys and "flow hash keys src,dst,proto,proto-src,proto-dst" in \
        kp.tc_line
    assert kp.tc_line in kp.tc.value
    # tunnel-patch profile: the plain keys read the outer header, one pair for all three
    tunnelled = kp.table[kp.table["flow"].str.contains(r"^\S+ 192\.168\.1\.")]
    assert tunnelled["flow"].nunique() == 3 and (tunnelled["flows_in_class"] == 3).all()

    for k in ("src", "dst", "proto", "proto-src", "proto-dst"):
        kp.keys[k].value = False
    assert isinstance(kp.last_error, ConfigError)  # no key ticked: shown, not raised
    with kp.hold():
        for k in ("tunnel-src", "tunnel-dst", "tunnel-proto", "tunnel-proto-src",
                  "tunnel-proto-dst"):
            kp.keys[k].value = True
    assert kp.last_error is None
    assert "keys tunnel-src,tunnel-dst,tunnel-proto,tunnel-proto-src,tunnel-proto-dst" in \
        kp.tc_line
    # the tunnel keys read the inner headers: the three flows are no longer one
    tunnelled = kp.table[kp.table["flow"].str.contains(r"^\S+ 192\.168\.1\.")]
    assert (tunnelled["flows_in_class"] < 3).all()

    kp.divisor.value = 1
    assert (kp.table["class"] == kp.table["class"].iloc[0]).all()  # a single class
    assert "divisor 1 " in kp.tc_line
    kp.perturb.value = 10
    assert "perturb 10" in kp.tc_line


def test_key_picker_disables_keys_the_profile_lacks_and_never_shows_a_stale_result():
    from qoslab.widgets import KeyPicker

    kp = KeyPicker(tunnel_packets(), keys=["src", "tunnel-src", "tunnel-dst"],
                   profile="tunnel-patch")
    assert_clean(kp)
    assert "keys src,tunnel-src,tunnel-dst" in kp.tc_line
    kp.profile.value = "5.18+"  # no tunnel-* keys in this era
    assert_clean(kp)  # no traceback: the keys went away with the profile
    assert all(kp.keys[k].disabled and not kp.keys[k].value
               for k in kp.keys if k.startswith("tunnel-"))
    assert "5.18+ has no tunnel-src" in kp.keys["tunnel-src"].tooltip
    assert "keys src divisor" in kp.tc_line and kp.selected_keys == ("src",)
    kp.profile.value = "proposed-fix"  # a patched profile again: the user's ticks come back
    assert kp.keys["tunnel-src"].value and not kp.keys["tunnel-src"].disabled
    assert "keys src,tunnel-src,tunnel-dst" in kp.tc_line

    kp.keys["src"].value = False
    kp.keys["tunnel-src"].value = False
    kp.keys["tunnel-dst"].value = False
    assert shown_error(kp) == "⚠ tick at least one cls_flow key"
    assert kp.tc.value == "" and kp.table is None and kp.tc_line is None  # nothing stale
    kp.keys["dst"].value = True
    assert_clean(kp)
    kp.divisor.value = 1
    assert "1 class used" in kp.status.value and "5 flows" in kp.status.value
    kp.seed.value = "zz"
    assert "hashrnd = 'zz'" in shown_error(kp)


def test_key_picker_shows_the_seed_in_hex_as_the_notebook_writes_it():
    from qoslab.widgets import KeyPicker

    kp = KeyPicker(keys=("dst",), seed=0x5EED5EED)
    assert kp.seed.value == "0x5eed5eed"
    kp.seed.value = "0x10"
    assert_clean(kp)


def test_capture_explorer_keys_are_disabled_for_sfqs_own_hash():
    from qoslab.widgets import CaptureExplorer

    ce = CaptureExplorer(tunnel_packets(), target="sfq", trials=5)
    assert all(box.disabled for box in ce.keys.values())
    ce.target.value = "cls_flow"
    assert not ce.keys["src"].disabled and ce.keys["tunnel-src"].disabled  # 5.18+: none
    assert_clean(ce)


def test_key_picker_without_packets_shows_only_the_tc_line():
    from qoslab.widgets import KeyPicker

    kp = KeyPicker(keys=("dst",), divisor=64)
    assert kp.table is None and "keys dst divisor 64" in kp.tc_line
    assert kp.output.outputs == ()
    with pytest.raises(ConfigError, match="unknown cls_flow key"):
        KeyPicker(keys=("dport",))


def test_perturb_explorer_on_the_real_simulator():
    from qoslab.widgets import PerturbExplorer, perturb_experiment

    pe = PerturbExplorer(perturb=5, seed=1, duration=120.0)
    assert pe.last_error is None, pe.last_error
    assert {"duration", "limit", "profile"} <= set(pe.params)
    events = pe.result.run.events
    hc = [c for c in pe.figure.axes[0].collections if c.get_gid() == "events:hash_change"]
    t_probe = pe.result.run.probes["t_sent"]
    in_range = events[(events["kind"] == "hash_change") & events["t"].between(t_probe.min(),
                                                                              t_probe.max())]
    assert len(hc[0].get_segments()) == len(in_range) >= 3
    assert pe.result.alignment.n_spikes == pe.result.report.n_events < len(pe.result.spikes)
    assert pe.result.period.period == pytest.approx(5, abs=0.25)  # found from latency alone
    assert "period from latency alone" in pe.chart.spec["subtitle"].lower()
    # the pure function is cached on its arguments: the explorer got the very same object
    assert perturb_experiment(**pe.values()) is pe.result
    pe.params["profile"].editor.value = "5.18+"
    pe.perturb.set(10)
    assert pe.perturb.editor.value == "10"
    pe.button.click()
    assert pe.last_error is None
    assert pe.result.run.meta["params"]["perturb"] == 10
    assert pe.result.run.meta["params"]["profile"] == "5.18+"
    # the chart carries exactly the hash changes inside the probes' span
    (hc,) = pe.chart.spec["events"]
    t_probe = pe.result.run.probes["t_sent"]
    events = pe.result.run.events
    inside = (events["kind"] == "hash_change") & events["t"].between(t_probe.min(),
                                                                       t_probe.max())
    assert len(hc["t"]) == int(inside.sum())


# ---- capture explorer --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tunnel_capture():
    return qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))


def always_shared_flows(report) -> int:
    return sum(len(g) for g in report.shared_always)


def test_capture_explorer_plain_vs_tunnel_keys(tunnel_capture):
    from qoslab.widgets import CaptureExplorer, capture_sharing

    ce = CaptureExplorer(tunnel_capture, profile="tunnel-patch", trials=50)
    assert ce.last_error is None
    plain = always_shared_flows(ce.report)
    assert plain >= 3  # the tunnel-patch profile's plain keys read the outer header only
    assert ce.report.shared_always == capture_sharing(
        tunnel_capture, ce.selected_keys, "tunnel-patch", 1024, 0, trials=50).shared_always
    table = ce.table
    assert table["shared_always"].sum() == plain
    assert "always shared" in ce.output.outputs[0]["data"]["text/plain"]
    flows = [c for c in ce.figure.axes[0].collections if (c.get_gid() or "").startswith("flow:")]
    assert len(flows) == qoslab.plots.flow_labels(tunnel_capture).nunique()

    with ce.hold():
        for k in ("src", "dst", "proto", "proto-src", "proto-dst"):
            ce.keys[k].value = False
    assert isinstance(ce.last_error, ConfigError)  # nothing ticked: shown in the error area
    updates = ce.updates
    with ce.hold():
        for k in ("tunnel-src", "tunnel-dst", "tunnel-proto", "tunnel-proto-src",
                  "tunnel-proto-dst"):
            ce.keys[k].value = True
    assert ce.last_error is None and ce.updates == updates + 1  # one update for five boxes
    assert always_shared_flows(ce.report) < plain  # the inner headers tell the flows apart


def test_capture_explorer_sfq_target_and_seed(tunnel_capture):
    from qoslab.widgets import CaptureExplorer

    ce = CaptureExplorer(tunnel_capture, target="sfq", divisor=128, trials=5)
    assert ce.last_error is None and ce.report.classes == 128
    before = ce.report.flows["cls"].tolist()
    ce.seed.value = 12345
    assert ce.last_error is None
    assert ce.report.flows["cls"].tolist() != before  # a new seed moves the buckets
    assert ce.report.shared_always  # but what is always shared stays
    assert (ce.table["shared_always"] <= (ce.table["shared_now"] | ce.table["cls"].lt(0))).all()


def test_capture_explorer_broken_compute_function(tunnel_capture, monkeypatch):
    import qoslab.widgets.capture as mod

    ce = mod.CaptureExplorer(tunnel_capture, trials=10)

    def broken(*args, **kwargs):
        raise ValueError("deliberately broken sharing")

    monkeypatch.setattr(mod, "capture_sharing", broken)
    ce.seed.value = 99  # a new key: not cached
    assert isinstance(ce.last_error, ValueError)
    assert "deliberately broken sharing" in ce.errors.outputs[0]["data"]["text/plain"]
    with pytest.raises(ValueError, match="deliberately broken"):
        ce.update()


def test_classify_flows_with_perturb_moves_flows_between_periods(tunnel_capture):
    from qoslab.hashing import FlowClassifier, hash_changes, seeds_from_events
    from qoslab.widgets import classify_flows

    keys = ["src", "dst", "proto", "proto-src", "proto-dst"]
    _, still = classify_flows(tunnel_capture, keys, "5.18+", 1024, None, seed=3)
    _, moving = classify_flows(tunnel_capture, keys, "5.18+", 1024, 10, seed=3)
    assert set(still["period"]) == {0}
    t = tunnel_capture["t"]
    events = hash_changes(t.min(), t.max(), 10, rng_seed=3)
    assert set(moving["period"]) == set(range(len(events) + 1))  # 0..39.9 s: changes at 10,20,30
    assert moving["packets"].sum() == still["packets"].sum() == len(tunnel_capture)
    # the first period uses the initial seed: the same classes as without perturb
    first = moving[moving["period"] == 0]
    at, seeds = seeds_from_events(events, initial=3)
    expected = FlowClassifier(keys, divisor=1024).classes(tunnel_capture, hashrnd=seeds, at=at)
    assert set(first["class"]) == set(expected[t < at[0]])
    # later seeds move the flows: some flow's class differs between two periods
    per_flow = moving.groupby("flow")["class"].nunique()
    assert (per_flow > 1).any()


def test_what_if_explorer_draws_the_queue_where_it_formed_and_no_p_without_a_test(
        tunnel_capture):
    from qoslab.widgets import WhatIfExplorer

    up = tunnel_capture[tunnel_capture["src"] == "192.0.2.1"]  # the load starts at ~10 s
    ex = WhatIfExplorer(up, perturb=3, rate=200e3, profile="classic-2.6.3x")
    assert ex.last_error is None, ex.last_error
    png = [o for o in ex.output.outputs if "image/png" in o["data"]]
    assert len(png) == 1  # the occupancy figure
    occ = ex.queue  # what the occupancy figure draws
    assert occ["t"].max() - occ["t"].min() > 5  # seconds, not one sample at t = 0
    assert occ.groupby("t")["flow"].nunique().max() >= 2  # flows sharing the queue
    assert occ["t"].min() <= ex.report.events["t_start"].min() <= occ["t"].max()
    assert "for their alignment with the hash changes" in ex.status.value
    ex.params["perturb"].editor.value = "0"
    ex.button.click()
    assert ex.last_error is None
    assert "no hash changes to align with (perturbation off)" in ex.status.value
    assert "p = " not in ex.status.value  # no test was made: no p-value, never "p = 1"


def test_perturb_explorer_without_perturbation_gives_no_p_value():
    from qoslab.widgets import PerturbExplorer

    pe = PerturbExplorer(perturb=0, seed=1, duration=30.0)
    assert pe.last_error is None, pe.last_error
    assert "perturb off" in pe.status.value and "p = 1" not in pe.status.value
    assert "no hash changes to align with (perturbation off)" in pe.status.value
    assert pe.result.alignment.p.text == "p = n/a"


def test_what_if_explorer_disables_what_the_chosen_qdisc_cannot_use(tunnel_capture):
    from qoslab.widgets import WhatIfExplorer

    ex = WhatIfExplorer(tunnel_capture, keys="src,dst", perturb=5, rate=300e3)
    keys, perturb = ex.params["keys"], ex.params["perturb"]
    assert not keys.disabled and not perturb.disabled
    assert "empty: the qdisc&#x27;s own hash" in keys.hint.value  # free text says what it takes
    with ex.hold():
        ex.params["qdisc"].editor.value = "pfifo"
    assert keys.disabled and perturb.disabled
    ex.button.click()
    # pfifo with the old keys text would be refused; disabled, they are not used
    assert ex.last_error is None, ex.last_error
    assert ex.run.meta["tc"].splitlines()[-1].startswith("pfifo")
    assert not [o for o in ex.output.outputs if "image/png" in o["data"]]  # no buckets to draw
    ex.params["qdisc"].editor.value = "fq_codel"
    assert not keys.disabled and not perturb.disabled  # a flow filter perturbs
    keys.editor.value = ""
    assert perturb.disabled  # fq_codel's own hash has no perturbation
    ex.params["qdisc"].editor.value = "sfq"
    assert not keys.disabled and not perturb.disabled
