"""The package installs as documented and its two dependency lists agree."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import nbformat
import pytest
import yaml

import qoslab


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_runtime(repo) -> dict[str, str]:
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    return {_name(r): r for r in data["project"]["dependencies"]}


def environment_runtime(repo) -> dict[str, str]:
    env = yaml.safe_load((repo / "environment.yml").read_text())
    deps = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and _name(dep) not in ("python", "pip"):
            deps[_name(dep)] = dep
    return deps


def drift(pyproject: dict[str, str], environment: dict[str, str]) -> list[str]:
    """Human-readable differences between the two dependency lists."""
    problems = []
    for name in sorted(pyproject.keys() - environment.keys()):
        problems.append(f"{name} is in pyproject.toml but not in environment.yml")
    for name in sorted(environment.keys() - pyproject.keys()):
        problems.append(f"{name} is in environment.yml but not in pyproject.toml")
    return problems


def test_dependency_lists_agree(repo):
    problems = drift(pyproject_runtime(repo), environment_runtime(repo))
    assert not problems, "; ".join(problems)


def test_drift_check_names_the_missing_dependency(repo):
    py = pyproject_runtime(repo)
    env = environment_runtime(repo)
    del env["seaborn"]
    assert drift(py, env) == ["seaborn is in pyproject.toml but not in environment.yml"]
    py2 = dict(py)
    del py2["scapy"]
    assert drift(py2, environment_runtime(repo)) == [
        "scapy is in environment.yml but not in pyproject.toml"
    ]


def test_user_named_packages_are_runtime_dependencies(repo):
    names = pyproject_runtime(repo).keys()
    for pkg in ("jupyterlab", "pandas", "scapy", "seaborn", "ipywidgets", "numpy", "tqdm"):
        assert pkg in names


def test_notebooks_committed_without_outputs(repo):
    notebooks = sorted((repo / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.kernelspec.name == "python3", path.name
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name} cell {i} has outputs"
                assert cell.execution_count is None, f"{path.name} cell {i} has a count"


def test_notebooks_match_their_sources(repo):
    sys.path.insert(0, str(repo / "notebooks" / "src"))
    try:
        import build
    finally:
        sys.path.pop(0)
    sources = sorted((repo / "notebooks" / "src").glob("[0-9]*.py"))
    assert {s.stem for s in sources} == {p.stem for p in (repo / "notebooks").glob("*.ipynb")}
    for src in sources:
        built = build.build(src)
        committed = nbformat.read(repo / "notebooks" / f"{src.stem}.ipynb", as_version=4)
        assert [c.source for c in built.cells] == [c.source for c in committed.cells], (
            f"notebooks/{src.stem}.ipynb is stale: run python notebooks/src/build.py"
        )


def test_console_entry_point_version_and_help():
    out = subprocess.run([sys.executable, "-m", "qoslab", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"qoslab {qoslab.__version__}"
    helptext = subprocess.run([sys.executable, "-m", "qoslab", "--help"], capture_output=True,
                              text=True, check=True).stdout
    from qoslab.cli import SUBCOMMANDS

    for name in SUBCOMMANDS:
        assert name in helptext


@pytest.mark.parametrize("name", qoslab.__all__)
def test_public_names_exist(name):
    assert getattr(qoslab, name) is not None
