"""Execute notebooks headless and render them to self-contained HTML (``qoslab report``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import QoslabError

__all__ = ["render_notebook", "render_all", "register", "NOTEBOOK_DIR"]

#: The repository's notebooks folder.
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def render_notebook(notebook: str | os.PathLike, out_dir: str | os.PathLike = "reports",
                    *, timeout: int = 600) -> Path:
    """Execute one notebook in a fresh ``python3`` kernel and write ``<out_dir>/<name>.html``.

    Parameters
    ----------
    notebook
        Path of the ``.ipynb`` file; it runs with its own folder as working directory.
    out_dir
        Folder for the HTML (created if missing).
    timeout
        Seconds one cell may run.

    Returns
    -------
    pathlib.Path
        The HTML file written.

    Raises
    ------
    QoslabError
        When a cell fails; the message names the notebook and the failing cell's error.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        raise QoslabError(f"{notebook}: a cell failed:\n{exc}") from None
    exporter = HTMLExporter()
    body, _ = exporter.from_notebook_node(nb)
    out = Path(out_dir) / f"{notebook.stem}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def render_all(notebooks: Iterable[str | os.PathLike] = (), out_dir: str | os.PathLike = "reports"
               ) -> list[Path]:
    """Render each notebook (default: every notebook under ``notebooks/``), in name order."""
    paths = [Path(p) for p in notebooks] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if not paths:
        raise QoslabError(f"no notebooks to render (looked in {NOTEBOOK_DIR})")
    for p in paths:
        if not p.is_file():
            raise QoslabError(f"{p}: no such notebook")
    return [render_notebook(p, out_dir) for p in paths]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qoslab report`` to the command line."""
    p = sub.add_parser("report", help="execute notebooks and write HTML reports",
                       description="Execute notebooks headless and write HTML to a folder.")
    p.add_argument("notebooks", nargs="*", help="notebooks (default: every one in notebooks/)")
    p.add_argument("-o", "--out", default="reports", help="output folder (default: reports)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    for path in render_all(args.notebooks, args.out):
        print(path)
    return 0
