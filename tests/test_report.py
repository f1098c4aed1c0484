"""`qoslab report`: executes notebooks, writes HTML with figures inline, widget state embedded
and the widget renderer beside it, fetching nothing remote.

The notebooks are rendered once per session (fixture ``rendered_reports``, the same
``qoslab report -o DIR`` that ``make demo`` runs); the browser checks are in test_browser.py.
"""

from __future__ import annotations

import argparse
import json
import re

import nbformat
import pytest

from qoslab.cli import main
from qoslab.errors import QoslabError
from qoslab.report import (
    STATIC_DIR,
    WIDGET_RENDERER,
    WIDGET_STATE_MIMETYPE,
    _parse_parameter,
    export_html,
    fetched_urls,
    inject_parameters,
)
from tests.report_render import NOTEBOOKS

NAMES = [nb.stem for nb in NOTEBOOKS]


def widget_scripts(html: str, mimetype: str) -> list[dict]:
    pattern = re.compile(rf'<script type="{re.escape(mimetype)}">\s*(.*?)\s*</script>', re.S)
    return [json.loads(m) for m in pattern.findall(html)]


@pytest.fixture(scope="module")
def pages(rendered_reports) -> dict[str, str]:
    return {name: (rendered_reports / f"{name}.html").read_text(encoding="utf-8")
            for name in NAMES}


def test_quickstart_report_has_its_figure_inline(pages):
    assert "data:image/png;base64" in pages["00_quickstart"]


@pytest.mark.parametrize("name", NAMES)
def test_report_fetches_nothing_remote(pages, name):
    html = pages[name]
    assert fetched_urls(html, remote_only=True) == []
    # independent of fetched_urls: no script or stylesheet tag pointing at any host
    assert not re.search(r"<script[^>]*\ssrc=[\"']?(?:https?:)?//", html, re.I)
    assert not re.search(r"<link[^>]*\shref=[\"']?(?:https?:)?//", html, re.I)
    for cdn in ("unpkg.com", "cdnjs.cloudflare.com", "cdn.jsdelivr.net"):
        assert cdn not in html


@pytest.mark.parametrize("name", NAMES)
def test_report_loads_the_local_widget_renderer(pages, rendered_reports, name):
    html = pages[name]
    if "application/vnd.jupyter.widget-view+json" in html:
        assert f"'{WIDGET_RENDERER}'" in html
    shipped = rendered_reports / WIDGET_RENDERER
    assert shipped.read_bytes() == (STATIC_DIR / "html-manager/embed.js").read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_report_embeds_the_state_of_every_widget_it_shows(pages, name):
    html = pages[name]
    views = widget_scripts(html, "application/vnd.jupyter.widget-view+json")
    if name != "00_quickstart":
        assert views, "the notebook promises widgets but its report shows none"
    if not views:
        return
    (state,) = widget_scripts(html, WIDGET_STATE_MIMETYPE)
    assert state["version_major"] == 2
    models = state["state"]
    assert {v["model_id"] for v in views} <= set(models)
    # a widget callback that failed while the notebook ran would leave its traceback here
    for model in models.values():
        for output in model.get("state", {}).get("outputs", []):
            assert output.get("output_type") != "error", output
            assert "Traceback" not in str(output.get("text", ""))


def test_fetched_urls_finds_what_a_browser_would_load():
    page = """<html><head>
    <link rel="stylesheet" href="https://cdn.example/x.css"><link rel="canonical" href="https://a/">
    <style>@import "//fonts.example/f.css"; body { background: url('https://img.example/b.png') }</style>
    <script type="module">const m = await import("https://esm.example/m.js");</script>
    <script>var s = document.createElement('script'); s.src = 'https://unpkg.com/w.js';</script>
    <script type="application/vnd.jupyter.widget-state+json">{"u": "https://not.fetched/"}</script>
    </head><body><a href="https://docs.example/">docs</a>
    <img src="data:image/png;base64,AAAA"><img srcset="local.png 1x, https://img.example/2x.png 2x">
    <div style="background-image: url(https://img.example/d.png)"></div></body></html>"""
    assert sorted(fetched_urls(page, remote_only=True)) == sorted([
        "https://cdn.example/x.css", "//fonts.example/f.css", "https://img.example/b.png",
        "https://esm.example/m.js", "https://unpkg.com/w.js", "https://img.example/2x.png",
        "https://img.example/d.png"])
    assert "local.png" in fetched_urls(page)


def test_export_refuses_an_output_that_would_fetch_from_the_network():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"text/html": '<img src="https://tracker.example/p.png">'})]
    nb.cells = [cell]
    with pytest.raises(QoslabError, match=r"tracker\.example/p\.png"):
        export_html(nb, "leaky")


def test_export_of_a_plain_notebook_names_no_cdn():
    html = export_html(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x")]))
    assert "require.min.js" not in html and "MathJax" not in html and "mermaid.esm" not in html


def test_parameters_reach_the_kernel_and_a_failing_cell_is_named(tmp_path, capsys):
    # one kernel for both: the injected values make the second cell fail, and the error names
    # the notebook, the exception and the values it saw
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("# parameters\nPERTURB = 10\nNAME = 'a'",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("assert PERTURB == 10, f'perturb={PERTURB} name={NAME}'")]
    path = tmp_path / "params.ipynb"
    nbformat.write(nb, path)
    status = main(["report", str(path), "-o", str(tmp_path / "out"), "-p", "PERTURB=3",
                   "-p", "NAME=sfq"])
    err = capsys.readouterr().err
    assert status == 2
    assert "params.ipynb: a cell failed" in err
    assert "AssertionError: perturb=3 name=sfq" in err
    assert not (tmp_path / "out/params.html").exists()


def test_a_scenario_parameter_is_parsed_by_its_param_and_reaches_the_kernel(tmp_path, capsys):
    # the cell names its scenario: INTERVAL is sfq_perturb's `interval` (a time), so "100ms" is
    # 0.1 s, as `qoslab run sfq_perturb --interval 100ms` reads it
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("# parameters\n# scenario: sfq_perturb\n"
                                          "INTERVAL = 0.2\nLABEL = 'x'",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("assert INTERVAL == 0.1 and LABEL == 'y', INTERVAL")]
    path = tmp_path / "scenario.ipynb"
    nbformat.write(nb, path)
    assert main(["report", str(path), "-o", str(tmp_path / "out"), "-p", "INTERVAL=100ms",
                 "-p", "LABEL=y"]) == 0, capsys.readouterr().err
    assert (tmp_path / "out/scenario.html").is_file()


@pytest.mark.parametrize("argv, message", [
    # the registry's own range and unit, named with the notebook that has the parameter
    (["-p", "PERTURB=-1"], r"03_sfq_perturbation\.ipynb: PERTURB: perturb = -1 s: expected "
                           r"0 … 3600 s \(0 = no perturbation\)"),
    (["-p", "DURATION=soon"], r"DURATION: duration = 'soon': expected a time in seconds"),
    # a misspelt name would be injected and silently ignored: refused, with the real names
    (["-p", "PERTRUB=3"], r"-p PERTRUB: no notebook has a parameter 'PERTRUB'; their "
                          r"parameters are .*PERTURB"),
    # a parameter without a scenario keeps the kind of the cell's literal
    (["-p", "QUEUE_LIMITS=20"], r"04_bufferbloat_basics\.ipynb: QUEUE_LIMITS = 20: expected a "
                                r"list like the notebook's \[20, 100, 300, 1000\]"),
])
def test_bad_overrides_of_the_shipped_notebooks_fail_before_anything_runs(tmp_path, capsys,
                                                                          argv, message):
    out = tmp_path / "out"
    assert main(["report", "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or not list(out.glob("*.html"))


def test_the_kernel_talks_over_private_unix_sockets_and_is_stopped(tmp_path, capfd):
    """Not localhost TCP (any local user could reach the kernel's ports): Unix sockets in a
    0700 folder that is gone afterwards, and the kernel process is stopped."""
    import os
    import tempfile

    from qoslab.report import execute_notebook

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, stat\nfrom ipykernel.connect import get_connection_info\n"
        "info = get_connection_info(unpack=True)\n"
        "folder = os.path.dirname(info['ip'])\n"
        "print(info['transport'], oct(stat.S_IMODE(os.stat(folder).st_mode)), folder, "
        "os.getpid(), os.getcwd())")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    execute_notebook(nb, tmp_path, timeout=60)
    transport, mode, folder, pid, cwd = nb.cells[0].outputs[0]["text"].split()
    assert (transport, mode, cwd) == ("ipc", "0o700", str(tmp_path))
    assert folder.startswith(tempfile.gettempdir()) and not os.path.exists(folder)
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    assert "over TCP" not in capfd.readouterr().err


def test_parameter_values_are_literals_or_bare_strings():
    assert _parse_parameter("N=3") == ("N", 3)
    assert _parse_parameter("TOS=[0x10, 8]") == ("TOS", [16, 8])
    assert _parse_parameter("PROFILE=5.18+") == ("PROFILE", "5.18+")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        _parse_parameter("novalue")


@pytest.mark.parametrize("value", ["-" * 100_000 + "1", "[" * 100_000, "(" * 300 + ")" * 300])
def test_hostile_parameter_values_are_one_clear_error_or_a_string(value):
    """A value the parser cannot nest (MemoryError / RecursionError from deep inside
    ``compile``) used to end ``qoslab report`` in a traceback."""
    try:
        name, parsed = _parse_parameter(f"N={value}")
    except argparse.ArgumentTypeError as exc:
        assert "-p N: the value nests too deeply" in str(exc)
    else:
        assert (name, parsed) == ("N", value)


@pytest.mark.parametrize("cell, message", [
    ("x = {[1]: 2}", "x is not a literal"),
    ("x = [1, y]", "x is not a literal"),
    ("x = " + "-" * 100_000 + "1", "nests too deeply"),
    ("x = (", "is not Python"),
])
def test_a_broken_parameters_cell_is_a_config_error(cell, message):
    from qoslab.errors import ConfigError
    from qoslab.notebook_parameters import read_parameters

    with pytest.raises(ConfigError, match=message):
        read_parameters(cell)


def test_inject_parameters_needs_a_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(QoslabError, match="no cell tagged 'parameters'"):
        inject_parameters(nb, {"x": 2})


def test_report_names_a_missing_notebook(tmp_path, capsys):
    assert main(["report", "nope.ipynb", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope.ipynb: no such notebook" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", NAMES)
def test_report_links_the_chart_library_once_instead_of_inlining_it(pages, rendered_reports,
                                                                     name):
    html = pages[name]
    assert 'data-qoslab-lib="charts"' not in html  # every inline copy was replaced
    if "qoslab-chart-wrap" in html:
        assert html.count('<script src="_static/charts/uPlot.iife.min.js"></script>') == 1
        assert html.count('<script src="_static/charts/qoslab-chart.js"></script>') == 1
        for f in ("uPlot.iife.min.js", "qoslab-chart.js", "uPlot.min.css", "qoslab-chart.css"):
            shipped = rendered_reports / "_static" / "charts" / f
            assert shipped.read_bytes() == (STATIC_DIR / "charts" / f).read_bytes()
    assert fetched_urls(html, remote_only=True) == []


def test_chart_library_is_vendored_with_its_licence():
    charts = STATIC_DIR / "charts"
    assert "MIT License" in (charts / "LICENSE-uplot.txt").read_text()
    assert (charts / "uPlot.iife.min.js").read_text().startswith(
        "/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    readme = (STATIC_DIR / "README.md").read_text()
    import hashlib

    digest = hashlib.sha256((charts / "uPlot.iife.min.js").read_bytes()).hexdigest()
    assert digest in readme
