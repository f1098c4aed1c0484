"""Shared fixtures. Figures are drawn off-screen and closed after every test."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import matplotlib
import pytest
from hypothesis import strategies as st

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
#: Real flent output files (copied from the project's shared sample data; see its README.md).
SHARED_FLENT = REPO / "tests" / "data" / "flent"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def rendered_reports(tmp_path_factory) -> Path:
    """Every notebook executed and rendered ONCE per session by ``qoslab report`` (a folder).

    Shared by tests/test_report*.py and tests/test_browser.py; see tests/report_render.py.
    """
    from tests.report_render import render_every_notebook

    return render_every_notebook(tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """A headless Chromium (DevTools client) shared by the browser tests; no network but
    loopback."""
    from tests.browser_tools import start_chromium, stop_chromium

    need_tool("chromium")
    proc, client = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield client
    finally:
        stop_chromium(proc, client)


def need_root(reason: str = "needs root") -> None:
    """Skip the calling test unless running as root on Linux."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip(f"{reason}: not root on Linux")


def need_tool(name: str) -> str:
    """Return the path of an executable, or skip naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (tests/install-system-deps.sh installs it as root)")
    return path


@pytest.fixture
def small_tmpfs(tmp_path):
    """A tiny tmpfs (64 KiB) mounted for the test: a disk that fills up (root only).

    Yields a function ``remount_read_only()`` beside the folder: ``(folder, remount)``.
    """
    import subprocess

    need_root("mounting a tmpfs")
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(folder)],
                   check=True)

    def remount_read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

    try:
        yield folder, remount_read_only
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` (a :func:`small_tmpfs`) up to ``leave`` free bytes."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, os.path.getsize(filler) - leave))


@pytest.fixture(scope="session")
def dask_client():
    """A ``dask.distributed`` LocalCluster of 2 worker processes (1 thread each) and its client,
    shared by the Dask engine's tests (tests/test_dask_*.py).

    Processes rather than threads: tasks and results cross process boundaries pickled, as on
    a cluster of machines, and each worker's memory limit is enforced by its nanny. Started
    as ``qoslab capture --engine dask`` starts its workers (qoslab.engines.cluster).
    """
    from qoslab.engines.cluster import local_cluster

    with local_cluster(2, memory_limit="2GiB") as client:
        yield client


def load_cut_journal(path):
    """Load a journal whose disk filled up: its torn last line is dropped with a warning --
    unless the disk filled exactly at the end of a record (a page boundary: the record whole,
    with or without its newline), then no warning."""
    import json
    import warnings

    import qoslab

    last = Path(path).read_bytes().rsplit(b"\n", 1)[-1]
    torn = False
    if last:  # what follows the last newline: a whole record, or a torn one
        try:
            json.loads(last)
        except ValueError:  # UnicodeDecodeError included
            torn = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = qoslab.load(path)
    said = [str(w.message) for w in caught if "incomplete" in str(w.message)]
    assert bool(said) == torn, (torn, said)
    return run


# ---------------------------------------------------------------- hostile JSON documents
#: Any JSON value (NaN and infinities included), nested a little: what a mutated RUN,
#: journal or configuration file may hold where a field was.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=12)


def json_paths(doc, prefix=()):
    """Every (container, key) path of a JSON document (the first 6 items of each list)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:6]):
            yield (*prefix, i)
            yield from json_paths(v, (*prefix, i))
