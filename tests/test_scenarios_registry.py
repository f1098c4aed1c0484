"""The registry: a scenario declared once shows everywhere (CLI, widgets, META), and the
layers import as they should."""

from __future__ import annotations

import ast
import re
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


def test_every_scenario_helps_and_its_listed_defaults_read_back(capsys):
    """``qoslab run NAME --help`` works for every scenario (choices of any type), and the
    defaults ``qoslab run --help`` lists are what a user can paste: plain numbers (0.2, not
    0.20000000000000001), quoted empty values, each read back as the default."""
    import shlex

    from qoslab.scenarios.cli import listing
    from qoslab.scenarios.params import parse_cli_items
    from qoslab.scenarios.registry import names

    lines = listing().splitlines()
    for name in names():
        sc = get(name)
        assert main(["run", name, "--help"]) == 0
        help_text = capsys.readouterr().out
        assert all(p.flag in help_text for p in sc.params), name
        listed = lines[lines.index(next(x for x in lines if x.startswith(f"  {name}:"))) + 1]
        assert not re.search(r"\.\d{8,}", listed), listed
        defaults = {p.name: p.check(p.default) for p in sc.params}
        assert parse_cli_items(sc.params, shlex.split(listed)) == defaults, name


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
    assert "--backend sim" in err and "--backend userspace" in err
    assert not out.exists() and not Path(str(out) + ".partial").exists()


# ---------------------------------------------------------------------------- layering
LAYERS_THAT_READ_TABLES = ("plots", "widgets", "analysis")
RUNNERS = ("sim", "lab", "ping")


def _package_of(path: Path) -> tuple[str, ...]:
    """The package a source file's relative imports start from."""
    return path.relative_to(REPO).with_suffix("").parts[:-1]


def _imported(node: ast.Import | ast.ImportFrom, package: tuple[str, ...]) -> list[str]:
    """The modules an import statement names, relative imports resolved."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = list(package[:len(package) - node.level + 1]) if node.level else []
    return [".".join(base + ([node.module] if node.module else []))]


def _imports(path: Path) -> list[tuple[str, set[str]]]:
    """(module imported, names imported) of a source file, relative imports resolved."""
    package = _package_of(path)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, set()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((_imported(node, package)[0], {a.name for a in node.names}))
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


@pytest.mark.parametrize("argv", [None, ["--help"], ["plot", "--help"], ["run", "--help"]])
def test_importing_qoslab_and_its_help_load_no_heavy_optional_layer(argv):
    code = ("import contextlib, io, sys, qoslab, qoslab.scenarios, qoslab.cli\n"
            f"argv = {argv!r}\n"
            "if argv:\n"
            "    with contextlib.redirect_stdout(io.StringIO()), "
            "contextlib.suppress(SystemExit):\n"
            "        qoslab.cli.main(argv)\n"
            "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'nbconvert', 'dask') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


#: Third-party packages imported inside the functions that use them: optional extras, or slow to
#: import (``import qoslab`` and ``qoslab --help`` must not pay for them).
HEAVY_OPTIONAL = frozenset({
    "matplotlib", "seaborn", "ipywidgets", "IPython", "nbconvert", "nbformat", "nbclient",
    "jupyter_client", "jinja2", "dask", "distributed", "scapy", "pyarrow", "tqdm", "dpkt",
    "hypothesis"})
#: Any other import inside a function says why it is not at its module's top, on its first line:
#: ``# cycle: <module> imports this one`` or ``# lazy: <what it keeps fast>``.
DEFERRED_BECAUSE = re.compile(r"#\s*(?:cycle|lazy):\s*\S")


def _function_level_imports(source: str, package: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """(line, modules) of every import statement inside a function, nested ones included."""
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append((child.lineno, _imported(child, package)))
            visit(child, in_function or isinstance(child, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source), False)
    return out


def _unexplained_function_imports(source: str, package: tuple[str, ...]) -> list[str]:
    lines = source.splitlines()
    return [f"{n}: {lines[n - 1].strip()}" for n, modules in _function_level_imports(source, package)
            if not all(m.split(".")[0] in HEAVY_OPTIONAL for m in modules)
            and not DEFERRED_BECAUSE.search(lines[n - 1])]


def test_the_function_import_check_flags_an_import_that_does_not_say_why():
    source = ("import os\n"
              "def f():\n"
              "    import json\n"
              "    import matplotlib.pyplot as plt\n"
              "    from .x import (  # cycle: qoslab.pkg.x imports this one\n"
              "        a, b)\n"
              "    from .y import c  # lazy: keeps qoslab --help fast\n"
              "    def g():\n"
              "        from ..z import d  # a comment is not a reason\n"
              "class K:\n"
              "    def m(self):\n"
              "        from dask import delayed\n")
    assert _unexplained_function_imports(source, ("qoslab", "pkg")) == [
        "3: import json", "9: from ..z import d  # a comment is not a reason"]
    assert [m for _, m in _function_level_imports(source, ("qoslab", "pkg"))][2:4] == [
        ["qoslab.pkg.x"], ["qoslab.pkg.y"]]


def test_imports_are_at_the_module_top_unless_heavy_optional_or_explained():
    bad = []
    for path in sorted((REPO / "qoslab").rglob("*.py")):
        bad += [f"{path.relative_to(REPO)}:{hit}"
                for hit in _unexplained_function_imports(path.read_text(), _package_of(path))]
    assert bad == [], ("move these imports to the module's top, or say why not on their line "
                       "(# cycle: <module> imports this one / # lazy: <why>):\n" + "\n".join(bad))


def _module_level_graph() -> dict[str, set[str]]:
    """module -> the qoslab modules its top-level statements import. Importing ``a.b.c`` runs
    ``a/__init__`` and ``a/b/__init__`` first: those count too, except the packages the module
    is itself in — unless it takes a name (not a submodule) from one of them."""
    paths = {".".join(_package_of(p) + (() if p.stem == "__init__" else (p.stem,))): p
             for p in (REPO / "qoslab").rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = _package_of(path)
        body = ast.parse(path.read_text()).body
        statements = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for block in body:
            if isinstance(block, ast.Try) or (
                    isinstance(block, ast.If) and "TYPE_CHECKING" not in ast.unparse(block.test)):
                statements += [n for n in ast.walk(block)
                               if isinstance(n, (ast.Import, ast.ImportFrom))]
        edges = set()
        for node in statements:
            targets = set(_imported(node, package))
            if isinstance(node, ast.ImportFrom):
                (module,) = targets
                submodules = {f"{module}.{a.name}" for a in node.names} & paths.keys()
                targets |= submodules
                if (module == name or name.startswith(module + ".")) and \
                        len(submodules) == len(node.names):
                    targets.discard(module)  # submodules of its own package, no name from it
            for target in targets:
                parts = target.split(".")
                edges |= {prefix for prefix in (".".join(parts[:i])
                                                for i in range(1, len(parts) + 1))
                          if prefix in paths and prefix != name
                          and (prefix == target or not name.startswith(prefix + "."))}
        graph[name] = edges
    return graph


def _first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def walk(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return stack[stack.index(node):] + [node]
        if node not in done:
            for nxt in sorted(graph[node]):
                if found := walk(nxt, stack + [node]):
                    return found
            done.add(node)
        return None

    return next((c for c in (walk(m, []) for m in sorted(graph)) if c), None)


def test_module_level_imports_form_no_cycle():
    """A cycle among top-level imports works or fails by which module is imported first: an
    import that would close one stays in its function with a ``# cycle:`` comment."""
    assert _first_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = _module_level_graph()
    assert {"qoslab.hashing.cls_flow", "qoslab.hashing.sfq"} <= graph["qoslab.hashing"]
    # qdiscs build on hashing (hashing reaches the specs Sfq / FqCodel lazily, __getattr__)
    assert "qoslab.hashing.sfq" in graph["qoslab.qdiscs.sfq"]
    assert not any(m.startswith("qoslab.qdiscs") for m in graph["qoslab.hashing"])
    assert _first_cycle(graph) is None, " -> ".join(_first_cycle(graph))
