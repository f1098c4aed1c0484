"""The rendered reports in a real headless Chromium, offline, driven over the DevTools protocol.

Every notebook is rendered once per session by ``qoslab report`` (fixture
``rendered_reports``); each page is opened from disk in headless Chromium with no network and
checked: no console error or uncaught exception, no failed load, nothing fetched but the page's
own files, every image (figure) decoded with a non-zero size, every widget view rendered by the
shipped html-manager. A screenshot per notebook is kept as ``reports/<name>.png``.
"""

from __future__ import annotations

import time

import pytest

from tests.browser_tools import (
    LEGIBILITY_JS,
    console_errors,
    illegible,
    load_page,
    open_page,
    prefer_color_scheme,
    requested_urls,
)
from tests.conftest import REPO
from tests.report_render import NOTEBOOKS

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def pages(rendered_reports, chromium):
    """name -> what the browser saw for that notebook's report."""
    return {nb.stem: open_page(chromium, rendered_reports / f"{nb.stem}.html",
                               REPO / "reports" / f"{nb.stem}.png") for nb in NOTEBOOKS}


@pytest.mark.parametrize("name", [nb.stem for nb in NOTEBOOKS])
def test_report_page_has_no_console_errors(pages, name):
    assert console_errors(pages[name]["events"]) == []


@pytest.mark.parametrize("name", [nb.stem for nb in NOTEBOOKS])
def test_report_page_fetches_only_its_own_files(pages, rendered_reports, name):
    urls = requested_urls(pages[name]["events"])
    assert urls, "the browser recorded no request at all: the page did not load"
    root = rendered_reports.resolve().as_uri()
    foreign = [u for u in urls if not (u.startswith(root + "/") or u.startswith("data:"))]
    assert foreign == []


@pytest.mark.parametrize("name", [nb.stem for nb in NOTEBOOKS])
def test_report_page_figures_all_load(pages, name):
    images = pages[name]["state"]["images"]
    assert images or pages[name]["state"]["charts"], "no figure in the report"
    broken = [i for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert broken == []


@pytest.mark.parametrize("name", [nb.stem for nb in NOTEBOOKS])
def test_report_page_widgets_render(pages, name):
    state = pages[name]["state"]
    assert state["rendered"] == state["views"], (
        f"{state['views'] - state['rendered']} of {state['views']} widget views not rendered")
    text = state["text"]
    for placeholder in ("widget state not available", "Error displaying widget",
                        "Loading widget", "Traceback (most recent call last)"):
        assert placeholder not in text
    if name != "00_quickstart":
        assert state["views"] >= 1, "the notebook promises widgets but the report shows none"


@pytest.mark.parametrize("name", [nb.stem for nb in NOTEBOOKS])
def test_report_page_charts_draw(pages, name):
    state = pages[name]["state"]
    assert state["drawn"] == state["charts"], (
        f"{state['charts'] - state['drawn']} of {state['charts']} zoomable charts not drawn")
    if name in ("00_quickstart", "03_sfq_perturbation", "04_bufferbloat_basics"):
        assert state["charts"] >= 1, "latency over time should be a zoomable chart"


_CHART_BOX_JS = """
(() => {
  const wrap = document.querySelectorAll('.qoslab-chart-wrap')[%d];
  wrap.scrollIntoView({block: 'center'});
  const r = wrap.querySelector('.u-over').getBoundingClientRect();
  return {left: r.left, top: r.top, width: r.width, height: r.height};
})()
"""
_CHART_RANGE_JS = """
(() => {
  const wrap = document.querySelectorAll('.qoslab-chart-wrap')[%d];
  return {min: parseFloat(wrap.getAttribute('data-x-min')),
          max: parseFloat(wrap.getAttribute('data-x-max')),
          text: wrap.querySelector('.qoslab-chart-range').textContent};
})()
"""


def test_report_chart_zooms_and_pans_offline(rendered_reports, chromium):
    """The first latency chart of notebook 03's report: drag across 2 % of it, Ctrl + wheel,
    Shift + drag, double-click -- each read back as the visible x range from the page."""
    cdp = chromium
    target, session, state = load_page(cdp, rendered_reports / "03_sfq_perturbation.html")
    try:
        assert state["charts"] >= 1 and state["drawn"] >= state["charts"]

        def evaluate(js):
            return cdp.call("Runtime.evaluate", session, expression=js,
                            returnByValue=True)["result"]["value"]

        def mouse(kind, x, y, **kw):
            cdp.call("Input.dispatchMouseEvent", session, type=kind, x=x, y=y, **kw)

        box = evaluate(_CHART_BOX_JS % 0)
        full = evaluate(_CHART_RANGE_JS % 0)
        assert full["max"] - full["min"] > 50  # the whole 60 s run
        per_px = (full["max"] - full["min"]) / box["width"]
        y = box["top"] + box["height"] / 2
        x0, x1 = box["left"] + 0.40 * box["width"], box["left"] + 0.42 * box["width"]
        mouse("mouseMoved", x0, y)
        mouse("mousePressed", x0, y, button="left", buttons=1, clickCount=1)
        for i in range(1, 6):
            mouse("mouseMoved", x0 + (x1 - x0) * i / 5, y, button="left", buttons=1)
        mouse("mouseReleased", x1, y, button="left", buttons=0, clickCount=1)
        cdp.drain(0.3)
        zoomed = evaluate(_CHART_RANGE_JS % 0)
        expect_lo = full["min"] + 0.40 * box["width"] * per_px
        assert zoomed["max"] - zoomed["min"] == pytest.approx(0.02 * (full["max"] - full["min"]),
                                                              rel=0.15)
        assert zoomed["min"] == pytest.approx(expect_lo, abs=2 * per_px)
        assert f"showing {zoomed['min']:.2f}"[:12] in zoomed["text"]

        # Ctrl + wheel zooms in around the pointer
        xc = box["left"] + box["width"] / 2
        at = zoomed["min"] + (zoomed["max"] - zoomed["min"]) / 2
        mouse("mouseWheel", xc, y, deltaX=0, deltaY=-100, modifiers=2)  # 2: Ctrl
        cdp.drain(0.3)
        wheel = evaluate(_CHART_RANGE_JS % 0)
        assert wheel["max"] - wheel["min"] < 0.9 * (zoomed["max"] - zoomed["min"])
        assert wheel["min"] < at < wheel["max"]

        # Shift + drag pans: the window keeps its width and moves left (dragging right)
        width = wheel["max"] - wheel["min"]
        mouse("mousePressed", xc, y, button="left", buttons=1, clickCount=1, modifiers=8)
        mouse("mouseMoved", xc + 100, y, button="left", buttons=1, modifiers=8)
        mouse("mouseReleased", xc + 100, y, button="left", buttons=0, clickCount=1, modifiers=8)
        cdp.drain(0.3)
        panned = evaluate(_CHART_RANGE_JS % 0)
        assert panned["max"] - panned["min"] == pytest.approx(width, rel=1e-6)
        assert panned["min"] < wheel["min"]

        # double-click: everything again
        mouse("mousePressed", xc, y, button="left", buttons=1, clickCount=2)
        mouse("mouseReleased", xc, y, button="left", buttons=0, clickCount=2)
        cdp.drain(0.3)
        again = evaluate(_CHART_RANGE_JS % 0)
        assert again["min"] == pytest.approx(full["min"]) and again["max"] == pytest.approx(
            full["max"])
        assert console_errors([e for e in cdp.events if e.get("sessionId") == session]) == []
    finally:
        cdp.call("Target.closeTarget", targetId=target)


def test_screenshots_kept_for_people(pages):
    for nb in NOTEBOOKS:
        png = REPO / "reports" / f"{nb.stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000  # a blank page is a few hundred bytes


_CHART_READING_JS = """
(() => {
  const [lineWrap, dotsWrap] = document.querySelectorAll('.qoslab-chart-wrap');
  const u = lineWrap.qoslabPlot;
  // the one answered probe between lost ones (45 s, 300 ms): drawn, although no line can
  const x = Math.round(u.valToPos(45, 'x', true)), y = Math.round(u.valToPos(300, 'y', true));
  const px = u.ctx.getImageData(x - 2, y - 2, 5, 5).data;
  let lonely = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i + 3] > 200 && Math.abs(px[i] - 0) < 60 && Math.abs(px[i + 2] - 178) < 60
        && px[i + 1] < 150) { lonely++; }
  }
  // the 0.4 s spike of a 120 s run: a span at least 4 px wide with a cap in the spike colour
  const sx = Math.round(u.valToPos(60.2, 'x', true)), top = Math.round(u.bbox.top);
  const cap = u.ctx.getImageData(sx - 1, top + 1, 3, 3).data;
  let capped = 0;
  for (let i = 0; i < cap.length; i += 4) {
    if (Math.abs(cap[i] - 224) < 40 && Math.abs(cap[i + 1] - 130) < 40 && cap[i + 2] < 90) {
      capped++;
    }
  }
  const spanSwatch = getComputedStyle(lineWrap.querySelector('.qoslab-chart-swatch.span'))
      .borderTopColor;
  // the reference line at 20 ms lies under the probes sitting on it
  const ry = Math.round(u.valToPos(20, 'y', true));
  const row = u.ctx.getImageData(Math.round(u.valToPos(5, 'x', true)), ry, 60, 1).data;
  let purple = 0;
  for (let i = 0; i < row.length; i += 4) {
    if (Math.abs(row[i] - 123) < 30 && Math.abs(row[i + 1] - 50) < 30 && Math.abs(row[i + 2] - 148) < 30) {
      purple++;
    }
  }
  const markers = Array.from(dotsWrap.querySelectorAll('.u-series .u-marker')).slice(1)
      .map(m => getComputedStyle(m).backgroundColor);
  return {lonely: lonely, capped: capped, purple: purple, spanSwatch: spanSwatch, labels: lineWrap.getAttribute('data-y-labels'),
          readout: lineWrap.querySelector('.qoslab-chart-range').textContent,
          markers: markers};
})()
"""


def test_charts_read_like_figures(chromium, tmp_path):
    """What the drawn chart shows: a probe with lost neighbours on a line is still a point, a
    0.4 s spike on a 120 s axis is a visible span in the legend's colour, a log axis is
    labelled at 20, 50, 100, 200 and fitted to the data, a scatter's legend has coloured
    swatches, the visible range never reads "-0"."""
    import numpy as np
    import pandas as pd

    from qoslab import plots
    from qoslab.runs import Run

    t = np.round(np.arange(0, 120, 0.2), 3)
    rtt = np.full(t.size, 20.0)
    rtt[(t >= 60.0) & (t < 60.4)] = 400.0
    lost = (t > 40) & (t < 50) & (t != 45.0)
    rtt[t == 45.0] = 300.0
    probes = pd.DataFrame({"stream": "a", "host": "h", "tos": 0, "size": 56,
                           "seq": np.arange(t.size), "t_sent": t,
                           "rtt_ms": np.where(lost, np.nan, rtt),
                           "status": np.where(lost, "lost", "ok"), "ttl": 64})
    run = Run(probes=probes, meta={"source": "sim", "scenario": "toy", "seed": 1})
    page = tmp_path / "charts.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    + plots.latency_chart(run, kind="line", logy=True, spikes=True,
                                          hlines=[{"y": 20.0, "label": "full queue"}]).to_html()
                    + plots.latency_chart(run, kind="scatter").to_html(library=False)
                    + "</body></html>")
    target, session, state = load_page(chromium, page)
    try:
        assert state["drawn"] == state["charts"] == 2
        seen = chromium.call("Runtime.evaluate", session, expression=_CHART_READING_JS,
                             returnByValue=True)["result"]["value"]
        assert seen["lonely"] > 0, "the lone answered probe is not drawn"
        assert seen["capped"] > 0, "the spike's span is not visible"
        assert seen["purple"] == 0, "the reference line hides the probes on it"
        assert seen["spanSwatch"] == "rgb(224, 130, 20)"  # the legend swatch is the span's colour
        assert seen["labels"].split() == ["20", "50", "100", "200"]  # 18 … 450 ms, no 1000
        assert seen["readout"].startswith("showing 0–121 s of 0–121 s"), seen["readout"]
        assert seen["markers"] == ["rgb(1, 115, 178)"], seen["markers"]
        assert console_errors([e for e in chromium.events if e.get("sessionId") == session]) == []
    finally:
        chromium.call("Target.closeTarget", targetId=target)


def test_report_follows_a_dark_system_theme(rendered_reports, chromium):
    """A reader whose system prefers dark (emulated ``prefers-color-scheme: dark``) reads
    notebook 03's report in JupyterLab Dark's colours: its static figures and zoomable charts
    sit on the dark page with text, axes and hash-change lines that contrast with it, measured
    from the drawn pixels; switching the system to light gives the light page and figures."""
    cdp = chromium
    target, session, state = load_page(cdp, rendered_reports / "03_sfq_perturbation.html",
                                       dark=True)
    try:
        def measure(expect_light: str) -> dict:
            deadline = time.monotonic() + 10
            while True:
                seen = cdp.call("Runtime.evaluate", session, expression=LEGIBILITY_JS,
                                returnByValue=True)["result"]["value"]
                bad = illegible(seen)
                if seen["light"] != expect_light:
                    bad.append(f"page says data-jp-theme-light={seen['light']}")
                if not bad or time.monotonic() > deadline:
                    assert bad == []
                    return seen
                cdp.drain(0.3)

        dark = measure("false")
        assert all(max(f["bg"]) < 60 for f in dark["figures"] + dark["charts"]), dark
        prefer_color_scheme(cdp, session, "light")
        light = measure("true")
        assert all(min(f["bg"]) > 200 for f in light["figures"] + light["charts"]), light
        assert console_errors([e for e in cdp.events if e.get("sessionId") == session]) == []
    finally:
        cdp.call("Target.closeTarget", targetId=target)
