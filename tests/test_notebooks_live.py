"""Notebook 01's live view in a real kernel: a loopback ping run drawn as it arrives, stopped
from its Stop button the way JupyterLab sends the click, and every probe sent kept.

The test is the frontend: it runs the notebook's cells in a kernel (``jupyter_client``),
reads the widget messages the kernel publishes while the run goes on, and clicks Stop with the
comm message a browser sends.
"""

from __future__ import annotations

import hashlib
import json
import time

import nbformat
import pytest

import qoslab
from qoslab.report import inject_parameters
from tests.conftest import REPO

NOTEBOOK = REPO / "notebooks" / "01_ping_experiments.ipynb"
WATCH_SECONDS = 5.0


def run_cell(kc, source: str, timeout: float = 120.0) -> list[dict]:
    """Execute ``source``; return the iopub messages of that execution (fail on an error)."""
    msg_id = kc.execute(source, store_history=False)
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        seen.append(msg)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            pytest.fail("cell failed:\n" + "\n".join(msg["content"]["traceback"])
                        + "\n--- source:\n" + source)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return seen
    pytest.fail(f"cell did not finish in {timeout} s:\n{source}")


def drain(kc, seconds: float) -> list[dict]:
    """Every iopub message for ``seconds`` while the kernel is idle."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            out.append(kc.get_iopub_msg(timeout=max(0.05, end - time.monotonic())))
        except Exception:  # queue.Empty: nothing more yet
            pass
    return out


def widget_models(messages: list[dict]) -> dict[str, dict]:
    """comm_id -> state, for every widget the kernel opened."""
    models = {}
    for m in messages:
        if m["msg_type"] == "comm_open" and m["content"].get("target_name") == "jupyter.widget":
            models[m["content"]["comm_id"]] = m["content"]["data"]["state"]
    return models


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(NOTEBOOK.parent))
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_live_ping_draws_as_it_arrives_and_stop_keeps_every_probe(kernel, tmp_path):
    kc = kernel
    saved = tmp_path / "live.json.gz"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    inject_parameters(nb, {"COUNT": 10, "LIVE_SECONDS": None, "LIVE_RUN_FILE": str(saved)})
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    live_cell = next(i for i, src in enumerate(cells) if "LiveView.start" in src)
    opened = []
    for src in cells[:live_cell + 1]:
        opened += run_cell(kc, src)

    # the kernel is idle now (the run goes on in the background): watch what it publishes
    started = time.monotonic()
    messages = drain(kc, WATCH_SECONDS)
    models = widget_models(opened + messages)
    (stop_id,) = [cid for cid, st in models.items()
                  if st.get("_model_name") == "ButtonModel" and st.get("description") == "Stop"]
    charts = set()
    for m in messages:
        if m["msg_type"] != "comm_msg":
            continue
        state = m["content"]["data"].get("state", {})
        for out in state.get("outputs", []):
            html = out.get("data", {}).get("text/html", "")
            if "qoslab-chart-wrap" in html:
                spec = html[html.index('<script type="application/json">'):]
                charts.add(hashlib.sha256(spec.encode()).hexdigest())
    assert len(charts) >= 5, f"{len(charts)} distinct chart updates in {WATCH_SECONDS:g} s"
    partial = saved.with_name(saved.name + ".partial")
    assert partial.exists() and not saved.exists()  # journalled while it runs

    # click Stop as JupyterLab does: a custom comm message to the button's model
    click = kc.session.msg("comm_msg", {"comm_id": stop_id,
                                        "data": {"method": "custom",
                                                 "content": {"event": "click"}}})
    kc.shell_channel.send(click)
    clicked_at = time.monotonic() - started
    outputs = run_cell(kc, "watched = watch.wait(30)\n"
                           "import json\n"
                           "print(json.dumps({'rows': len(watched.probes),"
                           " 'sent': watched.meta['probes_sent'],"
                           " 'reason': watched.meta['stop_reason'],"
                           " 'fed': watch.feed.n_rows, 'draws': watch.draws,"
                           " 'seqs': {s: sorted(map(int, g)) for s, g in"
                           " watched.probes.groupby('stream')['seq']}}))")
    printed = "".join(m["content"]["text"] for m in outputs
                      if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    result = json.loads(printed)
    assert result["reason"] == "stopped"
    assert result["rows"] == result["sent"] == result["fed"]  # every probe sent, none lost
    assert result["sent"] >= 3 * clicked_at / 0.05 * 0.8  # three streams at 0.05 s
    for stream, seqs in result["seqs"].items():
        assert seqs == list(range(1, len(seqs) + 1)), stream  # no gap in any stream
    # ... and the RUN file the journal became holds the same probes
    assert saved.exists() and not partial.exists()
    on_disk = qoslab.load(saved)
    assert len(on_disk.probes) == result["rows"]
    assert on_disk.meta["stop_reason"] == "stopped"
