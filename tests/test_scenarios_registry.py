"""The registry: a scenario declared once shows everywhere (CLI, widgets, META), and the
layers import as they should."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from qoslab.cli import main
from qoslab.errors import ConfigError, KernelFeatureMissing
from qoslab.qdiscs import Pfifo
from qoslab.scenarios import REGISTRY, Param, Scenario, Setup, get, register
from qoslab.sim import Link, PingStream, TokenBucket, UdpFlood

from .conftest import REPO, need_root


@pytest.fixture
def toy():
    """A scenario defined here, with one new parameter (a unit, a range, a default)."""
    def build(v):
        return Setup(traffic=(UdpFlood("10.0.9.1", rate=3e5, size=472),
                              PingStream("10.0.1.1", interval=v["interval"], start=0.5)),
                     qdisc=TokenBucket(rate=2e5).wrap(Pfifo(limit=v["toy_depth"])),
                     link=Link(rate=1e9, delay=0.0), duration=v["duration"])

    sc = register(Scenario(
        "toy_queue", "a toy queue",
        (Param("toy_depth", "int", 7, "how deep the toy queue is", unit="packets", min=2,
               max=50),
         Param("interval", "time", 0.1, "ping interval", unit="s", min=0.01, max=1),
         Param("duration", "time", 3.0, "seconds", unit="s", min=1, max=60),
         Param("seed", "int", 1, "seed", min=0, max=9)), build))
    yield sc
    REGISTRY.pop("toy_queue")


def test_a_toy_scenario_appears_in_the_cli_widgets_and_meta(toy, capsys, tmp_path):
    from qoslab.scenarios.cli import listing

    # qoslab run --help lists it (the listing is built from the registry when asked)
    assert "toy_queue: a toy queue" in listing() and "--toy-depth 7" in listing()
    assert main(["run", "toy_queue", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--toy-depth" in help_text and "2 … 50 packets; default 7 packets" in help_text
    # a widget control with its unit and range
    from qoslab.widgets.controls import ParamControls

    control = ParamControls(toy.params)["toy_depth"]
    assert "toy depth (packets)" in control.label.value
    assert "2 … 50" in control.hint.value and control.read() == 7
    # META records it; the CLI checks it with the declaration's message
    out = tmp_path / "toy.json.gz"
    assert main(["run", "toy_queue", "--toy-depth", "12", "-w", str(out)]) == 0
    import qoslab

    run = qoslab.load(out)
    assert run.meta["scenario"] == "toy_queue" and run.meta["params"]["toy_depth"] == 12
    assert run.meta["param_units"]["toy_depth"] == "packets"
    assert main(["run", "toy_queue", "--toy-depth", "99"]) == 2
    assert "toy_depth = 99 packets: expected 2 … 50 packets" in capsys.readouterr().err


def test_values_are_checked_the_same_way_from_python():
    with pytest.raises(ConfigError, match=r"interval = 0 s: expected 0.001 … 60 s"):
        get("sfq_perturb").run(interval=0)
    with pytest.raises(ConfigError, match=r"duration = 1e\+09 s: expected 0.1 … 86400 s"):
        get("bufferbloat").run(duration=1e9)
    with pytest.raises(ConfigError, match="no parameter 'perturbation'"):
        get("sfq_perturb").run(perturbation=5)
    with pytest.raises(ConfigError, match="does not run on the kernel backend"):
        get("saturated_link").run("kernel")


def test_the_kernel_backend_names_what_the_kernel_lacks(tmp_path, capsys):
    need_root("network namespaces")
    from qoslab.lab.probe import require_features

    try:
        require_features(qdiscs=["sfq"])
    except KernelFeatureMissing:
        pass
    else:
        pytest.skip("this kernel has sch_sfq")
    out = tmp_path / "k.json.gz"
    assert main(["run", "sfq_perturb", "--backend", "kernel", "-w", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'sfq'" in err and "sch_sfq" in err
    assert "--backend sim" in err
    assert not out.exists() and not Path(str(out) + ".partial").exists()


# ---------------------------------------------------------------------------- layering
LAYERS_THAT_READ_TABLES = ("plots", "widgets", "analysis")
RUNNERS = ("sim", "lab", "ping")


def _imports(path: Path) -> list[tuple[str, set[str]]]:
    """(module imported, names imported) of a source file, relative imports resolved."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(REPO).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, set()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.append((mod, {a.name for a in node.names}))
    return out


def test_plots_widgets_and_analysis_never_import_the_simulator_lab_or_pinger():
    bad = []
    for layer in LAYERS_THAT_READ_TABLES:
        for path in sorted((REPO / "qoslab" / layer).rglob("*.py")):
            for mod, _ in _imports(path):
                for runner in RUNNERS:
                    if mod == f"qoslab.{runner}" or mod.startswith(f"qoslab.{runner}."):
                        bad.append(f"{path.relative_to(REPO)} imports {mod}")
    assert bad == []


def test_no_private_name_is_imported_across_modules():
    bad = []
    for path in sorted((REPO / "qoslab").rglob("*.py")):
        for mod, names in _imports(path):
            if not mod.startswith("qoslab"):
                continue
            private = {n for n in names if n.startswith("_") and not n.startswith("__")}
            if private:
                bad.append(f"{path.relative_to(REPO)}: {sorted(private)} from {mod}")
    assert bad == []


def test_importing_qoslab_loads_no_heavy_optional_layer():
    code = ("import sys, qoslab, qoslab.scenarios; "
            "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'nbconvert') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
