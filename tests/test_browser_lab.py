"""Notebook 03 in a live JupyterLab, driven from headless Chromium like a person would.

The test starts JupyterLab on loopback (no token, the app exposed to the page as
``window.jupyterapp``), opens notebook 03 (shorter runs injected into its parameters cell),
runs all cells, then uses the perturb explorer through its page: types a new perturb interval,
presses Run, sees the busy state, then the new figure with the new value; types interval 0,
presses Run, and sees one clear error line and no stale figure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from qoslab.report import inject_parameters
from tests.conftest import REPO, need_tool

pytestmark = pytest.mark.browser

NOTEBOOK = "03_sfq_perturbation"
#: Faster runs than the notebook's defaults: the explorer is what is under test here.
PARAMETERS = {"DURATION": 60.0, "SWEEP": [5, 0], "SWEEP_DURATION": 60.0}
STEP_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on loopback serving a folder with notebook 03; yields its URL."""
    need_tool("chromium")
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.read(REPO / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    inject_parameters(nb, PARAMETERS)
    nbformat.write(nb, root / f"{NOTEBOOK}.ipynb")
    port = _free_port()
    home = tmp_path_factory.mktemp("lab-home")
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_DATA_DIR": str(home / "data")}
    env.pop("JUPYTER_PATH", None)
    log = open(home / "lab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", "--IdentityProvider.token=",
         "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
         "jupyterlab.handlers.announcements.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:  # noqa: S310
                json.load(r)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail("jupyter lab did not start:\n" + (home / "lab.log").read_text()[-3000:])
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class Page:
    """One Chromium tab: evaluate JavaScript, wait for conditions, type and click."""

    def __init__(self, cdp, url: str) -> None:
        self.cdp = cdp
        self.target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = cdp.call("Target.attachToTarget", targetId=self.target,
                                flatten=True)["sessionId"]
        cdp.call("Runtime.enable", self.session)
        cdp.call("Emulation.setDeviceMetricsOverride", self.session, width=1400, height=1000,
                 deviceScaleFactor=1, mobile=False)
        cdp.call("Page.enable", self.session)
        cdp.call("Page.navigate", self.session, url=url)

    def js(self, expression: str, *, await_promise: bool = False):
        reply = self.cdp.call("Runtime.evaluate", self.session, expression=expression,
                              returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in reply:
            raise AssertionError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait(self, expression: str, what: str, timeout: float = STEP_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            self.cdp.drain(0.1)
        raise AssertionError(f"timed out waiting for {what} (last: {value!r})")

    def type_into(self, selector_js: str, text: str) -> None:
        """Focus the input ``selector_js`` finds, replace its text as typed keys, press Enter."""
        self.js(f"(() => {{ const i = {selector_js}; i.scrollIntoView({{block: 'center'}});"
                f" i.focus(); i.select(); }})()")
        self.cdp.call("Input.insertText", self.session, text=text)
        for kind in ("keyDown", "keyUp"):
            self.cdp.call("Input.dispatchKeyEvent", self.session, type=kind, key="Enter",
                          code="Enter", windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
        self.js(f"{selector_js}.blur()")

    def click(self, selector_js: str) -> None:
        """A real mouse click in the middle of the element."""
        box = self.js(f"(() => {{ const e = {selector_js}; e.scrollIntoView({{block: 'center'}});"
                      f" const r = e.getBoundingClientRect();"
                      f" return {{x: r.left + r.width / 2, y: r.top + r.height / 2}}; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.cdp.call("Input.dispatchMouseEvent", self.session, type=kind, x=box["x"],
                          y=box["y"], button="left", buttons=1 if kind == "mousePressed" else 0,
                          clickCount=1)

    def close(self) -> None:
        self.cdp.call("Target.closeTarget", targetId=self.target)


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
        page.wait("window.jupyterapp && jupyterapp.shell.currentWidget && "
                  "jupyterapp.shell.currentWidget.sessionContext && "
                  "jupyterapp.shell.currentWidget.sessionContext.session && "
                  "jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                  "jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                  "JupyterLab, the notebook and its kernel")
        page.js("jupyterapp.commands.execute('notebook:run-all-cells')", await_promise=True)
        page.wait("(() => { const nb = jupyterapp.shell.currentWidget; const cells ="
                  " nb.content.widgets.filter(c => c.model.type === 'code');"
                  " return cells.every(c => c.model.executionCount !== null) &&"
                  " nb.sessionContext.session.kernel.status === 'idle'; })()",
                  "run all cells")
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
