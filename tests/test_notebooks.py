"""The numbered notebooks: structure the teaching relies on, and loopback-only traffic.

Executing them is nbmake's job in ``make test`` (every cell, no error output); rendering and
the browser are in test_report.py and test_browser.py. Here: every notebook has a
``parameters`` cell, calls the package directly before any widget (so a broken function fails a
cell instead of vanishing into a widget's output area), draws every widget once outside its
callbacks, and sends traffic to loopback only.
"""

from __future__ import annotations

import ast
import ipaddress

import nbformat
import pytest

from tests.report_render import NOTEBOOKS

NUMBERED = [nb for nb in NOTEBOOKS if not nb.stem.startswith("00_")]
EXPECTED = ["00_quickstart", "01_ping_experiments", "02_flow_classifier_keys",
            "03_sfq_perturbation", "04_bufferbloat_basics", "05_pfifo_fast_ecn",
            "06_capture_what_if"]


def code_cells(path) -> list[nbformat.NotebookNode]:
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def parse(source: str) -> ast.Module:
    """Parse a code cell as IPython runs it (``%matplotlib inline`` becomes a call)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(source))


def test_every_numbered_notebook_is_there():
    assert [nb.stem for nb in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_narrative_then_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = nb.cells[tagged[0]]
    # only assignments of literals: papermill/qoslab report -p can override each of them
    for stmt in parse(params.source).body:
        assert isinstance(stmt, ast.Assign), ast.dump(stmt)
        ast.literal_eval(stmt.value)


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_package_is_called_directly_before_any_widget(path):
    cells = [c.source for c in code_cells(path)]
    widget_cells = [i for i, src in enumerate(cells) if "widgets." in src]
    assert widget_cells, "the notebook has no widget section"
    first_widget = widget_cells[0]
    direct = [src for src in cells[:first_widget]
              if any(name in src for name in ("qoslab.", "plots.", "analysis.", "hashing.",
                                              "scenarios.", "summarize("))]
    assert len(direct) >= 3, "the first cells must call the package with the parameters"


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_every_widget_is_computed_once_outside_its_callbacks(path):
    # Errors inside ipywidgets callbacks go to the widget's output area and never fail a cell;
    # an explorer's update() raises when called directly, so each widget cell calls it. A live
    # view runs in the background: a later cell waits for it (wait() raises its error).
    sources = [c.source for c in code_cells(path)]
    for i, src in enumerate(sources):
        tree = parse(src)
        made = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call) and "widgets." in ast.unparse(node.value.func)
                for t in node.targets if isinstance(t, ast.Name)}
        for name in made:
            if "LiveView" in src:
                assert any(f"{name}.wait(" in later for later in sources[i:]), \
                    f"the live view {name} is never waited for"
            else:
                assert f"{name}.update()" in src, \
                    f"{name} is shown without a direct update() call"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_send_traffic_to_loopback_only(path):
    # Addresses in captures and simulations are data; what a notebook *sends to* is the
    # TARGETS parameter and the arguments of every ping call.
    sources = [c.source for c in code_cells(path)]
    for src in sources:
        for node in ast.walk(parse(src)):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "TARGETS" for t in node.targets):
                hosts = ast.literal_eval(node.value)
                assert all(_is_loopback(h) for h in hosts), hosts
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "ping":
                for arg in ast.walk(node):
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        assert _is_loopback(arg.value), f"{path.name} pings {arg.value}"
    if any("ping(" in src for src in sources):
        assert any("TARGETS" in src for src in sources)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_ends_with_what_to_try_next(path):
    last = nbformat.read(path, as_version=4).cells[-1]
    lines = last.source.splitlines()
    assert last.cell_type == "markdown" and lines[0] == "## What to try next", path.name
    assert sum(line.startswith("* ") for line in lines) >= 2  # things to try, not a sentence
