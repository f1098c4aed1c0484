"""Drive headless Chromium over the DevTools protocol (used by the browser tests)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

#: Page load plus widget rendering; the html-manager bundle is 1.9 MB of JS parsed per page, so
#: allow for a machine loaded by other work: normally it takes well under 2 s.
PAGE_TIMEOUT_S = 45.0

# Everything the page state checks need, read in one evaluation.
_PAGE_STATE_JS = """
(() => {
  const views = Array.from(document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]'));
  const rendered = views.filter(s => {
    const area = s.previousElementSibling;
    return area && area.classList.contains('widget-subarea')
        && area.querySelector('.lm-Widget, .jupyter-widgets') !== null;
  });
  const images = Array.from(document.images).map(i => ({
    src: i.currentSrc.slice(0, 40), complete: i.complete,
    width: i.naturalWidth, height: i.naturalHeight,
    inWidget: i.closest('.widget-subarea') !== null}));
  const charts = document.querySelectorAll('.qoslab-chart-wrap').length;
  const drawn = document.querySelectorAll('.qoslab-chart-wrap[data-rendered] canvas').length;
  return {ready: document.readyState, views: views.length, rendered: rendered.length,
          images: images, text: document.body ? document.body.innerText : '',
          height: document.documentElement.scrollHeight, charts: charts, drawn: drawn};
})()
"""


class DevTools:
    """A minimal Chrome DevTools protocol client over one browser websocket (flat sessions)."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, timeout=PAGE_TIMEOUT_S, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        self.ws.settimeout(PAGE_TIMEOUT_S)
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str, deadline: float) -> dict:
        while time.monotonic() < deadline:
            for ev in self.events:
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return ev
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # websocket timeout: loop re-checks the deadline
                pass
        raise TimeoutError(f"no {method} within the deadline")

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ws.settimeout(max(0.05, end - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:
                pass

    def close(self) -> None:
        self.ws.close()


def start_chromium(profile: Path) -> tuple[subprocess.Popen, DevTools]:
    """A headless Chromium with DevTools on a loopback port and every network path but
    127.0.0.1 shut (no name resolution, a dead proxy for everything else: a page can reach a
    server a test started on loopback, nothing more); returns the process and a client."""
    exe = shutil.which("chromium")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=127.0.0.1:9",
         "--proxy-bypass-list=127.0.0.1", f"--user-data-dir={profile}",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         "--window-size=1200,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.exists() and len(port_file.read_text().split()) == 2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"chromium did not start (exit {proc.poll()})")
        time.sleep(0.1)
    port, path = port_file.read_text().split()
    return proc, DevTools(f"ws://127.0.0.1:{port}{path}")


def stop_chromium(proc: subprocess.Popen, client: DevTools) -> None:
    client.close()
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load_page(cdp: DevTools, html: Path, *, dark: bool = False) -> tuple[str, str, dict]:
    """Load ``html`` in a new tab and wait for widgets and figures: ``(target, session,
    page state)``; close it with ``Target.closeTarget``. ``dark``: as a reader whose system
    prefers a dark theme (``prefers-color-scheme: dark``)."""
    target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
    session = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    cdp.events.clear()
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(f"{domain}.enable", session)
    cdp.call("Emulation.setDeviceMetricsOverride", session, width=1200, height=900,
             deviceScaleFactor=1, mobile=False)
    if dark:
        prefer_color_scheme(cdp, session, "dark")
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    cdp.call("Page.navigate", session, url=html.resolve().as_uri())
    cdp.wait_event("Page.loadEventFired", session, deadline)
    state: dict = {}
    while time.monotonic() < deadline:
        state = cdp.call("Runtime.evaluate", session, expression=_PAGE_STATE_JS,
                         returnByValue=True)["result"]["value"]
        if (state["ready"] == "complete" and state["rendered"] == state["views"]
                and state["drawn"] >= state["charts"]
                and all(i["complete"] for i in state["images"])):
            break
        cdp.drain(0.2)
    cdp.drain(0.5)  # late console messages
    return target, session, state


def prefer_color_scheme(cdp: DevTools, session: str, scheme: str) -> None:
    """Emulate a reader's system preference (``"dark"`` or ``"light"``)."""
    cdp.call("Emulation.setEmulatedMedia", session, media="",
             features=[{"name": "prefers-color-scheme", "value": scheme}])


def open_page(cdp: DevTools, html: Path, screenshot: Path) -> dict:
    """Load ``html`` in a new tab, wait for the widgets, screenshot it; return what was seen."""
    target, session, state = load_page(cdp, html)
    height = min(int(state.get("height") or 900), 12000)
    shot = cdp.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                    optimizeForSpeed=True,
                    clip={"x": 0, "y": 0, "width": 1200, "height": height, "scale": 1})
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    events = [e for e in cdp.events if e.get("sessionId") == session]
    cdp.call("Target.closeTarget", targetId=target)
    return {"state": state, "events": events}


def console_errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries (failed loads included)."""
    out = []
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                              for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + str(d.get("exception", {}).get("description")
                                           or d.get("text")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            out.append(f"load failed: {p.get('errorText')} ({p.get('type')})")
    return [m if len(m) < 300 else m[:300] + "…" for m in out]  # data: URLs are long


def requested_urls(events: list[dict]) -> list[str]:
    return [ev["params"]["request"]["url"] for ev in events
            if ev.get("method") == "Network.requestWillBeSent"]


@contextmanager
def jupyterlab(root: Path, home: Path):
    """A JupyterLab server on 127.0.0.1 serving ``root`` (no token, the app exposed to the page
    as ``window.jupyterapp``, no announcements); yields its URL, stops it after."""
    port = free_port()
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_DATA_DIR": str(home / "data")}
    env.pop("JUPYTER_PATH", None)
    log_path = home / "lab.log"
    with open(log_path, "w") as log:
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
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:  # noqa: S310
                        json.load(r)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("jupyter lab did not start:\n"
                                           + log_path.read_text()[-3000:]) from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: JavaScript: true once JupyterLab shows a notebook whose kernel is idle.
LAB_READY_JS = ("window.jupyterapp && jupyterapp.shell.currentWidget && "
                "jupyterapp.shell.currentWidget.sessionContext && "
                "jupyterapp.shell.currentWidget.sessionContext.session && "
                "jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                "jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'")
#: JavaScript: true once every code cell of the current notebook ran and the kernel is idle.
ALL_RAN_JS = ("(() => { const nb = jupyterapp.shell.currentWidget; const cells ="
              " nb.content.widgets.filter(c => c.model.type === 'code');"
              " return cells.every(c => c.model.executionCount !== null) &&"
              " nb.sessionContext.session.kernel.status === 'idle'; })()")


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

    def wait(self, expression: str, what: str, timeout: float = 120.0):
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

    def drag(self, x0: float, x1: float, y: float, *, modifiers: int = 0) -> None:
        """Press at ``(x0, y)``, move to ``(x1, y)`` in steps, release (viewport pixels)."""
        call = self.cdp.call
        call("Input.dispatchMouseEvent", self.session, type="mouseMoved", x=x0, y=y)
        call("Input.dispatchMouseEvent", self.session, type="mousePressed", x=x0, y=y,
             button="left", buttons=1, clickCount=1, modifiers=modifiers)
        for i in range(1, 6):
            call("Input.dispatchMouseEvent", self.session, type="mouseMoved",
                 x=x0 + (x1 - x0) * i / 5, y=y, button="left", buttons=1, modifiers=modifiers)
        call("Input.dispatchMouseEvent", self.session, type="mouseReleased", x=x1, y=y,
             button="left", buttons=0, clickCount=1, modifiers=modifiers)

    def close(self) -> None:
        self.cdp.call("Target.closeTarget", targetId=self.target)


#: JavaScript: how legible every figure of the page is against what is actually behind it.
#: Pixels are composited over the background of the figure's first opaque ancestor; "paper"
#: is a figure's most common colour (its background as drawn), "ink" its pixels with a WCAG
#: contrast of at least 4.5:1 with the page (text, axes). Static figures are the visible
#: images of output areas (cells and widget outputs); charts are qoslab's zoomable charts.
LEGIBILITY_JS = """
(() => {
  const parse = s => { const m = /rgba?\\(([^)]*)\\)/.exec(s || ''); if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = c => { const l = c.slice(0, 3).map(v => { v /= 255;
    return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  const contrast = (a, b) => { const x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const behind = el => { for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor); if (c && c[3] > 0.5) return c; }
    return [255, 255, 255, 1]; };
  const over = (r, g, b, a, bg) => { a /= 255;
    return [Math.round(r * a + bg[0] * (1 - a)), Math.round(g * a + bg[1] * (1 - a)),
            Math.round(b * a + bg[2] * (1 - a))]; };
  const css = (el, bg) => { const c = parse(getComputedStyle(el).color);
    return over(c[0], c[1], c[2], 255 * c[3], bg); };
  function judge(data, bg) {
    const counts = new Map(); let ink = 0, n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const c = over(data[i], data[i + 1], data[i + 2], data[i + 3], bg);
      const k = c.join(','); counts.set(k, (counts.get(k) || 0) + 1); n++;
      if (contrast(c, bg) >= 4.5) ink++;
    }
    let paper = null, best = -1;
    counts.forEach((v, k) => { if (v > best) { best = v; paper = k.split(',').map(Number); } });
    return {paper: paper, paperContrast: paper ? contrast(paper, bg) : null, ink: ink,
            inkFraction: n ? ink / n : 0};
  }
  const figures = Array.from(document.querySelectorAll('.jp-OutputArea-output img'))
    .filter(i => i.offsetParent !== null && i.naturalWidth > 100).map(img => {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
      const bg = behind(img.parentElement);
      return Object.assign(judge(ctx.getImageData(0, 0, c.width, c.height).data, bg),
        {bg: bg.slice(0, 3), inWidget: img.closest('.widget-output') !== null,
         twin: img.className});
    });
  const charts = Array.from(document.querySelectorAll('.qoslab-chart-wrap[data-rendered]'))
    .filter(w => w.offsetParent !== null).map(w => {
      const u = w.qoslabPlot, bg = behind(w), ctx = u.ctx, b = u.bbox;
      const spec = JSON.parse(w.querySelector("script[type='application/json']").textContent);
      const whole = judge(ctx.getImageData(0, 0, ctx.canvas.width, ctx.canvas.height).data, bg);
      const ticks = judge(ctx.getImageData(0, Math.round(b.top), Math.round(b.left),
                                           Math.round(b.height)).data, bg);
      const out = {theme: w.getAttribute('data-theme'), bg: bg.slice(0, 3),
        paperContrast: whole.paperContrast, tickInk: ticks.ink,
        title: contrast(css(w.querySelector('.qoslab-chart-title'), bg), bg),
        legend: contrast(css(w.querySelector('.u-legend'), bg), bg), events: []};
      (spec.events || []).forEach(grp => {
        const t = grp.t.find(v => v > u.scales.x.min && v < u.scales.x.max);
        if (t === undefined) return;
        const col = ctx.getImageData(Math.round(u.valToPos(t, 'x', true)), Math.round(b.top),
                                     1, Math.round(b.height)).data;
        const seen = new Map();
        for (let i = 0; i < col.length; i += 4) {
          if (col[i + 3] < 100) continue;
          const k = over(col[i], col[i + 1], col[i + 2], col[i + 3], bg).join(',');
          seen.set(k, (seen.get(k) || 0) + 1);
        }
        let most = null, best = -1;
        seen.forEach((v, k) => { if (v > best) { best = v; most = k.split(',').map(Number); } });
        if (most) out.events.push({label: grp.label, contrast: contrast(most, bg)});
      });
      return out;
    });
  return {light: document.body.getAttribute('data-jp-theme-light'), figures: figures,
          charts: charts};
})()
"""


def illegible(seen: dict, *, widget_figure: bool = False) -> list[str]:
    """What does not read against the page in a :data:`LEGIBILITY_JS` answer: a figure whose
    paper is not the page's background (a slab), text, axes or event lines without enough
    contrast (WCAG: 4.5:1 for text, 3:1 for lines); ``widget_figure``: one must be a widget's.
    """
    bad = []
    if not seen["figures"] or not seen["charts"]:
        bad.append(f"{len(seen['figures'])} figures and {len(seen['charts'])} charts measured")
    if widget_figure and not any(f["inWidget"] for f in seen["figures"]):
        bad.append("no widget figure measured")
    for fig in seen["figures"]:
        where = f"figure {fig['twin'] or '(img)'} on {fig['bg']}"
        if fig["paperContrast"] >= 1.15:
            bad.append(f"{where}: its paper {fig['paper']} is a slab on the page")
        if not (fig["ink"] > 300 and fig["inkFraction"] > 0.002):
            bad.append(f"{where}: no text or axis reads at 4.5:1")
    for chart in seen["charts"]:
        where = f"chart on {chart['bg']}"
        if chart["paperContrast"] >= 1.15:
            bad.append(f"{where}: a slab")
        if not (chart["title"] >= 4.5 and chart["legend"] >= 4.5 and chart["tickInk"] > 50):
            bad.append(f"{where}: title {chart['title']:.1f}:1, legend {chart['legend']:.1f}:1,"
                       f" {chart['tickInk']} tick-label pixels at 4.5:1")
        bad += [f"{where}: {e['label']} line at {e['contrast']:.2f}:1" for e in chart["events"]
                if e["contrast"] < 3.0]
    if not any(chart["events"] for chart in seen["charts"]):
        bad.append("no event line measured")
    return bad
