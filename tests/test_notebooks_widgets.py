"""A broken function inside a widget's computation fails the notebook run (as nbmake runs it).

ipywidgets callbacks swallow exceptions: an explorer shows the traceback in its red error area
and the cell still succeeds, so a regression that only the widget exercises would pass
``make test`` unnoticed. The notebooks therefore call every explorer's ``update()`` directly
once. Here the real notebooks are executed with one function *inside a widget's computation*
replaced by one that raises, injected right before the widget cell (the direct cells above
have already run): the run must fail at the widget cell. A control shows the same breakage
passes silently when the widget is only driven through its callbacks.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from qoslab.report import inject_parameters
from tests.conftest import REPO

MESSAGE = "deliberately broken inside the widget's computation"

#: notebook -> (module, function the widget's update() reaches, faster parameters).
BREAK = {
    "02_flow_classifier_keys": ("qoslab.widgets.key_picker", "classify_flows", {}),
    "03_sfq_perturbation": ("qoslab.analysis", "spikes_vs_events", {"DURATION": 20.0}),
    "05_pfifo_fast_ecn": ("qoslab.widgets.run_browser", "plot_kind", {"DURATION": 5.0}),
}


def widget_cell_index(nb) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and "from qoslab import widgets" in c.source)


def broken_notebook(name: str, *, direct_update: bool):
    module, function, params = BREAK[name]
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    inject_parameters(nb, params) if params else None
    index = widget_cell_index(nb)
    nb.cells.insert(index, nbformat.v4.new_code_cell(
        f"import importlib\n"
        f"def _broken(*args, **kwargs):\n"
        f"    raise RuntimeError({MESSAGE!r})\n"
        f"_module = importlib.import_module({module!r})\n"
        f"getattr(_module, {function!r})  # the widget must really use this name\n"
        f"setattr(_module, {function!r}, _broken)"))
    if not direct_update:
        cell = nb.cells[index + 1]
        cell.source = "\n".join(line for line in cell.source.splitlines()
                                if ".update()" not in line)
    return nb


def execute(nb) -> BaseException | None:
    client = NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(REPO / "notebooks")}})
    try:
        client.execute()
    except CellExecutionError as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def outcomes():
    jobs = {name: broken_notebook(name, direct_update=True) for name in BREAK}
    jobs["control"] = broken_notebook("05_pfifo_fast_ecn", direct_update=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(jobs, pool.map(execute, jobs.values()), strict=True))
    return jobs, results


@pytest.mark.parametrize("name", list(BREAK))
def test_broken_function_in_a_widget_fails_the_notebook(outcomes, name):
    jobs, results = outcomes
    error = results[name]
    assert error is not None, f"{name} ran clean although its widget's computation raises"
    assert MESSAGE in str(error)
    # it is the widget cell that failed, not one of the direct cells above it
    assert "widgets." in str(error) and ".update()" in str(error)


def test_without_the_direct_call_the_same_breakage_would_pass_unnoticed(outcomes):
    jobs, results = outcomes
    assert results["control"] is None
    # ... yet the error is not lost: the explorer shows it in its error area (widget state)
    state = jobs["control"].metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    assert MESSAGE in json.dumps(state["state"])
