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


#: Optional groups that are tools for developing qoslab, not features for users: not in
#: environment.yml (every other optional group, e.g. ``dask``, is).
DEVELOPER_EXTRAS = ("dev",)


def pyproject_runtime(repo) -> dict[str, str]:
    """Runtime dependencies and those of the user-facing optional groups (``qoslab[dask]``)."""
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    deps = {_name(r): r for r in data["project"]["dependencies"]}
    for group, reqs in data["project"].get("optional-dependencies", {}).items():
        if group not in DEVELOPER_EXTRAS:
            deps.update({_name(r): r for r in reqs})
    return deps


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


def test_dev_extra_pulls_the_dask_engine(repo):
    """``make test`` installs ``.[dev]``, so the Dask engine's tests run on CI."""
    extras = tomllib.loads((repo / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert {_name(r) for r in extras["dask"]} == {"dask", "distributed"}
    assert "qoslab[dask]" in extras["dev"]


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


# --- the package as users install it: a wheel in a fresh virtualenv ---------------------------

import os  # noqa: E402
import shutil  # noqa: E402
import zipfile  # noqa: E402

#: Seconds the whole install may take (pip reuses the wheels already in its cache, or those in
#: PIP_FIND_LINKS; a cold cache downloads once).
INSTALL_TIMEOUT = 900


def _clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(MPLBACKEND="Agg", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


#: What a wheel is built from (a copy, so the build leaves nothing in the repository).
SOURCE = ("qoslab", "data", "notebooks", "pyproject.toml", "setup.py", "MANIFEST.in",
          "README.md", "environment.yml")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, a neutral working folder, the wheel) -- qoslab installed from its wheel."""
    from .conftest import REPO

    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCE:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    dist = root / "dist"
    # as `python -m build` does: an sdist first (PEP 517 hook), then the wheel built from it,
    # so what the sdist leaves out the wheel cannot have
    r = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                        "print(build_meta.build_sdist(sys.argv[1]))", str(dist)],
                       timeout=INSTALL_TIMEOUT, env=_clean_env(), cwd=src, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    sdist = dist / r.stdout.split()[-1]
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(sdist),
                        "-w", str(dist)], timeout=INSTALL_TIMEOUT, env=_clean_env(), cwd=root,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = dist.glob("qoslab-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-compile", str(wheel),
                        "pytest"], timeout=INSTALL_TIMEOUT, env=_clean_env(), cwd=root,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    work = root / "work"
    work.mkdir()
    return py, work, wheel


def _run(installed, *argv, timeout=600, **kw):
    py, work, _ = installed
    return subprocess.run([str(py), *argv], cwd=kw.pop("cwd", work), env=_clean_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)


def test_the_sdist_carries_the_sources_of_the_bundled_files(installed, repo):
    import tarfile

    (sdist,) = installed[2].parent.glob("qoslab-*.tar.gz")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for folder, pattern in (("data", "**/*.gz"), ("notebooks", "*.ipynb"),
                            ("notebooks/src", "*.py")):
        want = {str(p.relative_to(repo)) for p in (repo / folder).glob(pattern)}
        assert want and want <= names, folder


def test_the_wheel_carries_the_data_and_the_notebooks_once(installed, repo):
    names = set(zipfile.ZipFile(installed[2]).namelist())
    data = {str(p.relative_to(repo / "data")) for p in (repo / "data").rglob("*")
            if p.is_file() and p.suffix in (".gz", ".pcap", ".pcapng")}
    assert {f"qoslab/_data/{d}" for d in data} <= names
    notebooks = {p.name for p in (repo / "notebooks").glob("*.ipynb")}
    assert {n for n in names if n.startswith("qoslab/_notebooks/")} == {
        f"qoslab/_notebooks/{n}" for n in notebooks}
    # one source of truth: the repository holds no second copy
    assert not (repo / "qoslab" / "_data").exists()
    assert not (repo / "qoslab" / "_notebooks").exists()


def test_installed_qoslab_finds_its_data(installed):
    code = ("import qoslab, sys; p = qoslab.data_path('flent/ping-v4-icmp-irtt.flent.gz');"
            "run = qoslab.load(p); print(qoslab.__file__); print(p); print(len(run.probes));"
            "print(qoslab.read_capture(qoslab.data_path('captures/tunnel_uploads.pcap')).shape[0])")
    r = _run(installed, "-c", code)
    assert r.returncode == 0, r.stderr
    module, data, probes, packets = r.stdout.split()
    venv = str(installed[0].parent.parent)
    assert module.startswith(venv) and data.startswith(venv)  # not the source checkout
    assert int(probes) == 50 and int(packets) == 2913
    files = _run(installed, "-m", "pip", "show", "-f", "qoslab").stdout
    assert "__editable__" not in files and "_data/lab/bufferbloat.json.gz" in files


def test_qoslab_notebooks_copies_the_notebooks_and_nothing_else(installed):
    py, work, _ = installed
    qoslab_exe = py.with_name("qoslab")
    dest = work / "mine"
    dest.mkdir()
    r = subprocess.run([str(qoslab_exe), "notebooks", str(dest)], capture_output=True,
                       text=True, env=_clean_env(), cwd=work, timeout=120)
    assert r.returncode == 0, r.stderr
    copied = sorted(p.name for p in dest.iterdir())
    assert copied and all(n.endswith(".ipynb") for n in copied)
    assert len(r.stdout.split()) == len(copied)
    (dest / copied[0]).write_text("my edits")
    again = subprocess.run([str(qoslab_exe), "notebooks", str(dest)], capture_output=True,
                           text=True, env=_clean_env(), cwd=work, timeout=120)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1
    assert "--force" in again.stderr and (dest / copied[0]).read_text() == "my edits"


@pytest.mark.timeout(INSTALL_TIMEOUT + 600)
def test_installed_report_renders_every_packaged_notebook(installed, repo):
    py, work, _ = installed
    out = work / "reports"
    r = subprocess.run([str(py.with_name("qoslab")), "report", "-o", str(out), "-j", "2"],
                       capture_output=True, text=True, env=_clean_env(), cwd=work, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    want = {p.stem for p in (repo / "notebooks").glob("*.ipynb")}
    assert {p.stem for p in out.glob("*.html")} == want
    # the notebooks ran against the installed package (the kernel is the venv's python)
    import nbformat

    probe = work / "which.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import qoslab; print('QOSLAB-AT', qoslab.__file__)")]), probe)
    r = subprocess.run([str(py.with_name("qoslab")), "report", str(probe), "-o", str(out)],
                       capture_output=True, text=True, env=_clean_env(), cwd=work, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    html = (out / "which.html").read_text()
    assert f"QOSLAB-AT {py.parent.parent}" in html


@pytest.mark.timeout(INSTALL_TIMEOUT + 600)
def test_doctests_pass_against_the_installed_package(installed):
    r = _run(installed, "-m", "pytest", "--doctest-modules", "--pyargs", "qoslab", "-q",
             "-p", "no:cacheprovider", timeout=600)
    assert r.returncode == 0, r.stdout[-4000:]
    assert " passed" in r.stdout.splitlines()[-1]
