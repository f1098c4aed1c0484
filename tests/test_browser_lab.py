"""Notebook 03 in a live JupyterLab, driven from headless Chromium like a person would.

The test starts JupyterLab on loopback (no token, the app exposed to the page as
``window.jupyterapp``), opens notebook 03 (shorter runs injected into its parameters cell),
runs all cells, then uses the perturb explorer through its page: types a new perturb interval,
presses Run, sees the busy state, then the new figure with the new value; types interval 0,
presses Run, and sees one clear error line and no stale figure.
"""

from __future__ import annotations

import json
import time

import nbformat
import pytest

from qoslab.report import inject_parameters
from tests.browser_tools import (
    ALL_RAN_JS,
    LAB_READY_JS,
    LEGIBILITY_JS,
    Page,
    illegible,
    jupyterlab,
)
from tests.conftest import REPO, need_tool

pytestmark = pytest.mark.browser

NOTEBOOK = "03_sfq_perturbation"
#: Faster runs than the notebook's defaults: the explorer is what is under test here.
PARAMETERS = {"DURATION": 60.0, "SWEEP": [5, 0], "SWEEP_DURATION": 60.0}


#: The notebook shown in the dark theme (its static figure and zoomable chart), with a cell
#: adding what it lacks: a chart with hash changes and spike spans, and a widget's figure.
DARK_NOTEBOOK = "00_quickstart"
DARK_EXTRA_CELL = """\
from qoslab import scenarios
from qoslab.widgets import RunBrowser
sim = scenarios.get("sfq_perturb").run("sim", duration=60)
display(plots.latency_chart(sim, spikes=True))
RunBrowser(run).widget"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on loopback serving a folder with notebook 03; yields its URL."""
    need_tool("chromium")
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.read(REPO / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    inject_parameters(nb, PARAMETERS)
    nbformat.write(nb, root / f"{NOTEBOOK}.ipynb")
    quick = nbformat.read(REPO / "notebooks" / f"{DARK_NOTEBOOK}.ipynb", as_version=4)
    quick.cells.append(nbformat.v4.new_code_cell(DARK_EXTRA_CELL))
    nbformat.write(quick, root / f"{DARK_NOTEBOOK}.ipynb")
    with jupyterlab(root, tmp_path_factory.mktemp("lab-home")) as url:
        yield url


# The explorer: the widget box holding the Run button; its controls by their label.
_EXPLORER = """(() => {
  const runs = Array.from(document.querySelectorAll('.jp-OutputArea button.jupyter-button'))
      .filter(b => /^(Run|Running…)$/.test(b.textContent.trim()));
  return runs.length === 1 ? runs[0].closest('.widget-vbox') : null;
})()"""
_RUN_BUTTON = ("Array.from(" + _EXPLORER + ".querySelectorAll('button.jupyter-button'))"
               ".find(b => /^(Run|Running…)$/.test(b.textContent.trim()))")


def _input(label: str) -> str:
    return ("Array.from(" + _EXPLORER + ".querySelectorAll('.widget-hbox'))"
            f".find(h => h.querySelector('.widget-html') && h.querySelector('.widget-html')"
            f".textContent.trim() === {json.dumps(label)}).querySelector('input[type=text]')")


_STATE = """(() => {
  const ex = EXPLORER;
  if (!ex) return null;
  const outs = ex.querySelectorAll('.widget-output');  // the traceback area, then the result
  const out = outs[outs.length - 1];
  const titles = Array.from(out.querySelectorAll('.qoslab-chart-wrap[data-rendered] .qoslab-chart-title'))
      .map(t => t.textContent);
  const errors = Array.from(ex.querySelectorAll('.qoslab-error')).filter(e => e.offsetParent !== null)
      .map(e => e.textContent.trim());
  const run = RUN_BUTTON;
  return {titles: titles, errors: errors, busy: run.disabled || run.textContent.includes('Running'),
          outputClasses: out.className, text: ex.innerText};
})()""".replace("EXPLORER", _EXPLORER).replace("RUN_BUTTON", _RUN_BUTTON)

# Record every busy state the explorer shows while a run goes on (a computation takes a
# fraction of a second: polling could miss it, an observer does not).
_WATCH_BUSY = """(() => {
  const ex = EXPLORER;
  window.__busySeen = [];
  const run = RUN_BUTTON;
  const outs = ex.querySelectorAll('.widget-output');
  const out = outs[outs.length - 1];
  const note = () => {
    if (run.disabled || run.textContent.includes('Running') || out.classList.contains('qoslab-busy'))
      window.__busySeen.push({disabled: run.disabled, label: run.textContent.trim(),
                              dimmed: out.classList.contains('qoslab-busy')});
  };
  window.__busyObserver = new MutationObserver(note);
  window.__busyObserver.observe(ex, {attributes: true, childList: true, subtree: true,
                                     characterData: true});
  return true;
})()""".replace("EXPLORER", _EXPLORER).replace("RUN_BUTTON", _RUN_BUTTON)


def test_perturb_explorer_in_live_jupyterlab(lab, chromium):
    page = Page(chromium, f"{lab}/lab/tree/{NOTEBOOK}.ipynb")
    try:
        page.wait(LAB_READY_JS, "JupyterLab, the notebook and its kernel")
        page.js("jupyterapp.commands.execute('notebook:run-all-cells')", await_promise=True)
        page.wait(ALL_RAN_JS, "run all cells")
        errors = page.js("Array.from(document.querySelectorAll('.jp-OutputArea-output"
                         "[data-mime-type=\"application/vnd.jupyter.stderr\"]'))"
                         ".map(e => e.textContent)")
        assert not [e for e in errors if "Traceback" in e], errors
        state = page.wait(f"(() => {{ const s = {_STATE}; return s && s.titles.length ? s : null; }})()",
                          "the explorer's first chart")
        assert state["errors"] == [] and "perturb 5 s" in state["titles"][0]

        # a new perturb interval, Run: busy while it runs, then the figure of the new value
        page.type_into(_input("perturb (s)"), "7")
        stale = page.wait(f"(() => {{ const s = {_STATE}; return s && "
                          f"s.outputClasses.includes('qoslab-stale') ? s : null; }})()",
                          "the old figure dimmed as out of date", timeout=20)
        assert "press Run" in stale["text"]
        page.js(_WATCH_BUSY)
        page.click(_RUN_BUTTON)
        new = page.wait(f"(() => {{ const s = {_STATE}; return s && !s.busy && s.titles.length"
                        f" && s.titles[0].includes('perturb 7 s') ? s : null; }})()",
                        "the new figure with perturb 7 s")
        busy = page.js("window.__busySeen")
        assert busy and any(b["disabled"] and b["label"] == "Running…" for b in busy), busy
        assert any(b["dimmed"] for b in busy), busy
        assert len(new["titles"]) == 1 and new["errors"] == []
        assert "qoslab-stale" not in new["outputClasses"]

        # the figure zooms in JupyterLab too: drag across 5 % of it
        chart = ("Array.from(" + _EXPLORER + ".querySelectorAll('.qoslab-chart-wrap'))"
                 ".pop()")
        box = page.js(f"(() => {{ const w = {chart}; w.scrollIntoView({{block: 'center'}});"
                      f" const r = w.querySelector('.u-over').getBoundingClientRect();"
                      f" return {{left: r.left, top: r.top, width: r.width, height: r.height,"
                      f" min: +w.getAttribute('data-x-min'), max: +w.getAttribute('data-x-max')}};"
                      f" }})()")
        y = box["top"] + box["height"] / 2
        page.drag(box["left"] + 0.5 * box["width"], box["left"] + 0.55 * box["width"], y)
        zoomed = page.wait(f"(() => {{ const w = {chart}; const a = +w.getAttribute('data-x-min'),"
                           f" b = +w.getAttribute('data-x-max'); return b - a < {box['max']}"
                           f" - {box['min']} ? {{min: a, max: b}} : null; }})()",
                           "the zoomed range", timeout=10)
        full = box["max"] - box["min"]
        assert zoomed["max"] - zoomed["min"] == pytest.approx(0.05 * full, rel=0.2)
        assert zoomed["min"] == pytest.approx(box["min"] + 0.5 * full, rel=0.05)

        # interval 0: one clear line, and the old figure is gone
        page.type_into(_input("interval (s)"), "0")
        page.click(_RUN_BUTTON)
        failed = page.wait(f"(() => {{ const s = {_STATE}; return s && !s.busy && "
                           f"s.errors.length ? s : null; }})()", "the error line")
        assert failed["errors"] == ["⚠ interval = 0 s: expected 0.001 … 60 s"]
        assert failed["titles"] == []  # no stale figure
        assert "Traceback" not in failed["text"]
    finally:
        page.close()


def _theme(page, name: str, light: str) -> None:
    page.js(f"jupyterapp.commands.execute('apputils:change-theme', {{theme: {json.dumps(name)}}})",
            await_promise=True)
    page.wait(f"document.body.getAttribute('data-jp-theme-light') === '{light}'", name, 30)


def _legible(page) -> dict:
    """Wait for the figures, then (a theme change redraws charts) until they all read."""
    page.wait(f"(() => {{ const s = {LEGIBILITY_JS}; return s.figures.length >= 2"
              f" && s.charts.length >= 2; }})()", "the figures", timeout=60)
    deadline = time.monotonic() + 10
    while True:
        seen = page.js(LEGIBILITY_JS)
        bad = illegible(seen, widget_figure=True)
        if not bad or time.monotonic() > deadline:
            break
        page.cdp.drain(0.3)
    assert bad == []
    return seen


def test_figures_follow_jupyterlab_dark_theme(lab, chromium):
    """JupyterLab Dark: notebook 00's static figure, its chart, a chart with hash changes and
    spikes, and a widget's figure all sit on the dark page (no white slab) with text, axes and
    event lines that contrast with it (WCAG 4.5:1 text, 3:1 lines), measured from the pixels
    drawn; back to JupyterLab Light, the same figures read as before, without running again."""
    # a workspace of its own: the server's default one reopens the notebooks of other tests
    page = Page(chromium, f"{lab}/lab/workspaces/dark-theme/tree/{DARK_NOTEBOOK}.ipynb")
    try:
        page.wait(LAB_READY_JS + " && jupyterapp.shell.currentWidget.context.path === "
                  f"'{DARK_NOTEBOOK}.ipynb'", "JupyterLab, the notebook and its kernel")
        _theme(page, "JupyterLab Dark", "false")
        page.js("jupyterapp.commands.execute('notebook:run-all-cells')", await_promise=True)
        page.wait(ALL_RAN_JS, "run all cells")
        dark = _legible(page)
        assert {f["bg"][0] for f in dark["figures"]} <= set(range(0, 60)), dark["figures"]
        _theme(page, "JupyterLab Light", "true")
        light = _legible(page)
        assert {f["bg"][0] for f in light["figures"]} <= set(range(200, 256)), light["figures"]
    finally:
        page.close()
