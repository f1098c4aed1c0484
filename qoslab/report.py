"""Execute notebooks headless and render them to HTML that works offline (``qoslab report``).

Each notebook runs in a fresh ``python3`` kernel (nbclient, widget state stored) and is written
as ``<out>/<name>.html`` with its figures inline and its widget state embedded. The widgets are
drawn in the browser by the ``@jupyter-widgets/html-manager`` bundle that qoslab ships in
``qoslab/_static/`` and copies beside the HTML (``<out>/_static/``): a report opened from disk,
with no network, shows every figure and widget. Zoomable charts (:mod:`qoslab.plots.chart`)
carry their library inline in each output; the page gets one ``<script src="_static/charts/…">``
instead (:func:`use_shared_chart_library`). nbconvert's CDN ``<script>`` tags (require.js,
MathJax, mermaid) are dropped, and :func:`fetched_urls` guards the result: rendering fails if
the page would still make the browser fetch anything from a remote host.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from .data import notebook_dir, notebook_paths
from .errors import ConfigError, QoslabError
from .notebook_parameters import (
    NotebookParameters,
    parameters_cell,
    parameters_cell_index,
    read_parameters,
)
from .outputs import OutputError, check_output, write_bytes

__all__ = [
    "render_notebook",
    "execute_notebook",
    "render_all",
    "export_html",
    "inject_parameters",
    "checked_parameters",
    "split_parameters",
    "fetched_urls",
    "copy_static",
    "use_shared_chart_library",
    "register",
    "STATIC_DIR",
    "WIDGET_RENDERER",
    "WIDGET_STATE_MIMETYPE",
]

#: Browser assets shipped with qoslab (see ``qoslab/_static/README.md``).
STATIC_DIR = Path(__file__).resolve().parent / "_static"
#: Where the widget renderer lands, relative to the HTML files.
WIDGET_RENDERER = "_static/html-manager/embed.js"
#: The ``<script type=…>`` holding the widget models a report embeds.
WIDGET_STATE_MIMETYPE = "application/vnd.jupyter.widget-state+json"

# nbconvert's "lab" page minus the three CDN scripts: require.js (the standalone embed.js needs
# none), MathJax and mermaid (the notebooks use neither). The widget loader stays and is pointed
# at the local copy through HTMLExporter.widget_renderer_url. The page is JupyterLab Light, or
# JupyterLab Dark when the reader's system prefers dark (prefers-color-scheme).
_TEMPLATE_NAME = "qoslab_offline.html.j2"
_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
/* JupyterLab gives widgets its UI font through <body>; nbconvert's page does not */
.widget-subarea, .jupyter-widgets { font-family: var(--jp-ui-font-family); }
</style>
{%- endblock extra_css -%}
{%- block html_head_css -%}
{{ super() }}
{#- a reader whose system is dark gets JupyterLab Dark's colours -#}
{{ resources.include_css("static/theme-dark.css") | replace('<style type="text/css">',
   '<style type="text/css" media="(prefers-color-scheme: dark)">', 1) }}
{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
<script>
/* the page's theme follows the reader's system, as JupyterLab's theme manager would say it:
   figures show their dark twins, charts redraw (qoslab.plots.theme) */
(function () {
  var q = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function apply() {
    var dark = !!(q && q.matches);
    document.body.setAttribute("data-jp-theme-light", dark ? "false" : "true");
    document.body.setAttribute("data-jp-theme-name", dark ? "JupyterLab Dark" : "JupyterLab Light");
  }
  apply();
  if (q && q.addEventListener) { q.addEventListener("change", apply); }
})();
</script>
{%- endblock body_header -%}
"""

PathLike = str | os.PathLike
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def inject_parameters(nb: Any, parameters: Mapping[str, Any]) -> None:
    """Insert a cell assigning ``parameters`` right after the notebook's ``parameters`` cell.

    The papermill convention: the injected cell is tagged ``injected-parameters`` and overrides
    the defaults. Values must be Python literals (their ``repr`` is written).

    Parameters
    ----------
    nb
        An ``nbformat`` notebook node, changed in place.
    parameters
        Name -> value.

    Raises
    ------
    QoslabError
        When the notebook has no cell tagged ``parameters``, or a name is not an identifier.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook()
    >>> nb.cells = [nbformat.v4.new_code_cell("# parameters\\nN = 1", metadata={"tags": ["parameters"]}),
    ...             nbformat.v4.new_code_cell("print(N)")]
    >>> inject_parameters(nb, {"N": 5})
    >>> nb.cells[1].source
    '# injected parameters\\nN = 5'
    """
    import nbformat

    for name in parameters:
        if not str(name).isidentifier():
            raise QoslabError(f"parameter name {name!r} is not a Python identifier")
    index = parameters_cell_index(nb)
    if index is None:
        raise QoslabError(_NO_PARAMETERS_CELL)
    lines = ["# injected parameters"] + [f"{k} = {v!r}" for k, v in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)


def copy_static(out_dir: PathLike) -> Path:
    """Copy the shipped widget renderer into ``<out_dir>/_static`` and return that folder.

    The renderer's own files are replaced if present (never written through a symlink); a
    ``_static`` that is a symlink or a file is refused.
    """
    dest = Path(out_dir) / "_static"
    if os.path.islink(dest) or (dest.exists() and not dest.is_dir()):
        raise OutputError(f"{dest}: expected a folder for the widget renderer, found "
                          f"{'a symlink' if os.path.islink(dest) else 'a file'}")
    for src in sorted(STATIC_DIR.rglob("*")):
        rel = src.relative_to(STATIC_DIR)
        if src.name == "README.md" or "__pycache__" in rel.parts:
            continue
        target = dest / rel
        if src.is_dir():
            if os.path.islink(target):
                raise OutputError(f"{target}: is a symlink; expected a folder")
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(target, src.read_bytes(), force=True, what="widget renderer file")
    return dest


def prepare_out_dir(out_dir: PathLike, names: Iterable[str], *, force: bool = False) -> Path:
    """Check the report folder and its HTML files before any notebook runs.

    The folder is created if missing (its parent must exist); an existing ``<name>.html`` is
    refused unless ``force``.
    """
    out_dir = Path(out_dir)
    if os.path.islink(out_dir) and not out_dir.is_dir():
        raise OutputError(f"report folder {out_dir}: a dangling symlink")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"report folder {out_dir}: is a file; give a folder")
    if not out_dir.exists():
        if not out_dir.parent.is_dir():
            raise OutputError(f"report folder {out_dir}: its parent folder {out_dir.parent} "
                              "does not exist (qoslab does not create it)")
        try:
            out_dir.mkdir()
        except OSError as exc:
            raise OutputError(f"report folder {out_dir}: cannot create ({exc.strerror})") \
                from None
    for name in names:
        check_output(out_dir / f"{name}.html", force=force, what="report")
    return out_dir


_INLINE_LIBRARY = re.compile(
    r'<(style|script) data-qoslab-lib="charts">.*?</\1>', re.DOTALL)


def _strip_inline(value: Any) -> tuple[Any, int]:
    """``value`` with inline chart libraries removed (strings, lists, dicts), and how many."""
    if isinstance(value, str):
        if 'data-qoslab-lib="charts"' not in value:
            return value, 0
        return _INLINE_LIBRARY.subn("", value)
    if isinstance(value, list):
        total = 0
        for i, item in enumerate(value):
            value[i], n = _strip_inline(item)
            total += n
        return value, total
    if isinstance(value, dict):
        total = 0
        for key in list(value):
            value[key], n = _strip_inline(value[key])
            total += n
        return value, total
    return value, 0


def use_shared_chart_library(nb: Any) -> bool:
    """Remove the inline chart-library copies from a notebook's outputs and widget state.

    Returns True when the notebook holds charts: its page must then load the library from
    ``_static/charts`` (:func:`export_html` adds the links). Changes ``nb`` in place.

    Examples
    --------
    >>> import nbformat
    >>> from qoslab.plots import Chart
    >>> html = Chart({"title": "t", "series": []}).to_html()
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("c", outputs=[
    ...     nbformat.v4.new_output("display_data", data={"text/html": html})])])
    >>> use_shared_chart_library(nb), "uPlot" in nb.cells[0].outputs[0].data["text/html"]
    (True, False)
    """
    found = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "data" in output:
                _, n = _strip_inline(output["data"])
                found += n
    widgets = nb.get("metadata", {}).get("widgets")
    if widgets:
        _, n = _strip_inline(widgets)
        found += n
    if found:
        return True
    # a chart drawn without its inline library (a live redraw) still needs the files
    return any("qoslab-chart-wrap" in str(c.get("outputs", "")) for c in nb.cells) or \
        "qoslab-chart-wrap" in str(widgets or "")


def _chart_head() -> str:
    from .plots.chart import CHART_ASSET_FILES  # lazy: qoslab.plots loads matplotlib

    tags = []
    for f in CHART_ASSET_FILES:
        url = f"_static/{f}"
        tags.append(f'<link rel="stylesheet" href="{url}">' if f.endswith(".css")
                    else f'<script src="{url}"></script>')
    return "\n".join(tags)


def export_html(nb: Any, name: str = "notebook") -> str:
    """Render an executed notebook as an offline HTML page (no kernel is started).

    Figures stay inline (``data:`` URLs); the widget state stored in the notebook's metadata is
    embedded as a ``<script type="application/vnd.jupyter.widget-state+json">``; the page loads
    the widget renderer and, when the notebook has zoomable charts, the chart library from
    ``_static/`` beside it (see :func:`copy_static`, :func:`use_shared_chart_library`; ``nb``
    loses its inline chart-library copies).

    Parameters
    ----------
    nb
        An ``nbformat`` notebook node (normally executed with widget state stored).
    name
        The page title.

    Raises
    ------
    QoslabError
        When the page would make the browser fetch anything remote (an output's ``<img
        src="https://…">``, say); the message lists the URLs.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Queues")])
    >>> page = export_html(nb, "demo")
    >>> "<title>demo</title>" in page, fetched_urls(page, remote_only=True)
    (True, [])
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file=_TEMPLATE_NAME,
                            extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
                            widget_renderer_url=WIDGET_RENDERER, require_js_url="",
                            mathjax_url="", jupyter_widgets_base_url="")
    charts = use_shared_chart_library(nb)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    if charts:
        body = body.replace("</head>", _chart_head() + "\n</head>", 1)
    remote = fetched_urls(body, remote_only=True)
    if remote:
        raise QoslabError(f"{name}: the rendered page would fetch remote resources, which an "
                          f"offline report must not: {', '.join(sorted(set(remote)))}")
    return body


def execute_notebook(nb: Any, cwd: PathLike, *, timeout: int = 600) -> None:
    """Run every cell of ``nb`` in place (outputs and widget state stored) in a fresh
    ``python3`` kernel working in ``cwd``.

    The kernel talks to us over Unix sockets in a private folder (mode 0700, removed after),
    not over localhost TCP where any local user could connect to its ports or read the
    traffic; it is shut down when the notebook is done or fails.

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        A cell raised (the caller names the notebook).
    """
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="qoslab-kernel-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc",
                           ip=os.path.join(sockets, "kernel"))
        client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                                store_widget_state=True,
                                resources={"metadata": {"path": str(cwd)}})
        try:
            client.execute()
        finally:
            if km.has_kernel:  # a kernel manager we made is ours to stop
                km.shutdown_kernel(now=True)


def render_notebook(notebook: PathLike, out_dir: PathLike = "reports", *, timeout: int = 600,
                    parameters: Mapping[str, Any] | None = None, force: bool = False) -> Path:
    """Execute one notebook in a fresh ``python3`` kernel and write ``<out_dir>/<name>.html``.

    Parameters
    ----------
    notebook
        Path of the ``.ipynb`` file; it runs with its own folder as working directory.
    out_dir
        Folder for the HTML (created if missing); the widget renderer is copied to
        ``<out_dir>/_static/``.
    timeout
        Seconds one cell may run.
    parameters
        Overrides for the notebook's ``parameters`` cell, checked first
        (:func:`checked_parameters`) and then injected (:func:`inject_parameters`).
    force
        Replace an existing ``<name>.html``.

    Returns
    -------
    pathlib.Path
        The HTML file written.

    Raises
    ------
    QoslabError
        When an override is not a parameter of the notebook or has a bad value (before the
        notebook runs), when a cell fails (the message names the notebook and the failing
        cell's error), or when the page would fetch anything remote (see :func:`fetched_urls`).
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError

    notebook = Path(notebook)
    out_dir = prepare_out_dir(out_dir, [notebook.stem], force=force)
    try:
        nb = nbformat.read(notebook, as_version=4)
    except (OSError, ValueError) as exc:
        raise QoslabError(f"{notebook}: not a readable notebook ({exc})") from None
    if parameters:
        inject_parameters(nb, checked_parameters(nb, notebook, parameters))
    try:
        execute_notebook(nb, notebook.parent.resolve(), timeout=timeout)
    except CellExecutionError as exc:
        message = _ANSI.sub("", str(exc))  # the kernel colours its tracebacks
        raise QoslabError(f"{notebook}: a cell failed:\n{message}") from None
    try:
        body = export_html(nb, notebook.stem)
    except QoslabError as exc:
        raise QoslabError(f"{notebook}: {exc}") from None
    copy_static(out_dir)
    return write_bytes(out_dir / f"{notebook.stem}.html", body.encode("utf-8"), force=force,
                       what="report")


def render_all(notebooks: Iterable[PathLike] = (), out_dir: PathLike = "reports", *,
               jobs: int | None = None, timeout: int = 600,
               parameters: Mapping[str, Any] | None = None, force: bool = False) -> list[Path]:
    """Render each notebook (default: every notebook qoslab ships), in name order.

    Parameters
    ----------
    notebooks
        ``.ipynb`` paths; empty means the notebooks qoslab ships
        (:func:`qoslab.data.notebook_paths`: inside the installed package, or the repository's
        ``notebooks/`` in a source checkout).
    out_dir
        Folder for the HTML files.
    jobs
        Notebooks executed at the same time (each in its own kernel process); default: the
        number of CPUs, at most 4.
    timeout, force
        As for :func:`render_notebook`.
    parameters
        Overrides; each goes to the notebooks whose ``parameters`` cell assigns it. A name no
        notebook has, or a bad value, fails before any notebook runs.

    Returns
    -------
    list of pathlib.Path
        The HTML files, in the order of ``notebooks``.

    Raises
    ------
    QoslabError
        A missing notebook (checked before anything runs) or the first failure in input order;
        the other notebooks are still rendered.
    """
    paths = [Path(p) for p in notebooks] or notebook_paths()
    if not paths:
        raise QoslabError(f"no notebooks to render (looked in {notebook_dir()})")
    for p in paths:
        if not p.is_file():
            raise QoslabError(f"{p}: no such notebook")
    overrides = split_parameters(paths, parameters or {})
    prepare_out_dir(out_dir, [p.stem for p in paths], force=force)
    jobs = max(1, min(jobs or min(os.cpu_count() or 1, 4), len(paths)))
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(render_notebook, p, out_dir, timeout=timeout,
                           parameters=overrides[p], force=force) for p in paths]
    try:
        errors = [f.exception() for f in futures]
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)  # notebooks not started yet never start
        raise
    pool.shutdown()
    failed = [e for e in errors if e is not None]
    if failed:
        if len(failed) > 1:
            raise QoslabError("\n\n".join(str(e) for e in failed)) from failed[0]
        raise failed[0]
    return [f.result() for f in futures]


_NO_PARAMETERS_CELL = "the notebook has no cell tagged 'parameters' to override"


def _declaration(nb: Any, notebook: PathLike) -> NotebookParameters | None:
    """What ``nb``'s parameters cell declares (None: it has no such cell)."""
    source = parameters_cell(nb)
    if source is None:
        return None
    try:
        return read_parameters(source)
    except ConfigError as exc:
        raise QoslabError(f"{notebook}: {exc}") from None


def _checked(decl: NotebookParameters | None, notebook: PathLike,
             parameters: Mapping[str, Any]) -> dict[str, Any]:
    if decl is None:
        raise QoslabError(f"{notebook}: {_NO_PARAMETERS_CELL}")
    try:
        return decl.check(parameters)
    except ConfigError as exc:
        raise QoslabError(f"{notebook}: {exc}") from None


def checked_parameters(nb: Any, notebook: PathLike, parameters: Mapping[str, Any]
                       ) -> dict[str, Any]:
    """Overrides for ``nb`` checked against its ``parameters`` cell
    (:mod:`qoslab.notebook_parameters`: declared names only; a scenario's parameters parsed
    and range-checked by their :class:`~qoslab.scenarios.params.Param`).

    Raises
    ------
    QoslabError
        Naming the notebook, the parameter and what was expected.
    """
    return _checked(_declaration(nb, notebook), notebook, parameters)


def split_parameters(paths: Iterable[Path], parameters: Mapping[str, Any]
                     ) -> dict[Path, dict[str, Any]]:
    """Each notebook's share of ``parameters`` (the names its ``parameters`` cell assigns),
    checked; a name that no notebook assigns is an error.

    Raises
    ------
    QoslabError
        A name no notebook has (the message lists the names they have), or a bad value.
    """
    import nbformat

    shares: dict[Path, dict[str, Any]] = {}
    known: dict[str, list[str]] = {}
    for path in paths:
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as exc:
            raise QoslabError(f"{path}: not a readable notebook ({exc})") from None
        decl = _declaration(nb, path)
        names = decl.defaults if decl is not None else {}
        for name in names:
            known.setdefault(name, []).append(path.stem)
        mine = {k: v for k, v in parameters.items() if k in names}
        shares[path] = _checked(decl, path, mine) if mine else {}
    unknown = [name for name in parameters if name not in known]
    if unknown:
        raise QoslabError(f"-p {unknown[0]}: no notebook has a parameter {unknown[0]!r}; their "
                          f"parameters are {', '.join(sorted(known)) or 'none'}")
    return shares


# --- what a page makes the browser fetch ------------------------------------------------------

_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)
_JS_IMPORT = re.compile(r"""\bimport\s*\(\s*['"]([^'"]+)|\bfrom\s+['"]([^'"]+)['"]""")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_FETCHING_ATTRS = {
    "script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "embed": ("src",),
    "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
    "object": ("data",), "input": ("src",), "track": ("src",),
}
_FETCHING_RELS = {"stylesheet", "icon", "preload", "prefetch", "modulepreload", "manifest",
                  "apple-touch-icon", "shortcut"}
_INERT_SCRIPT_TYPES = {"application/json", "application/ld+json", "text/x-mathjax-config"}


class _FetchFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in: str | None = None  # "style" / "script" while inside an executed one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for name in _FETCHING_ATTRS.get(tag, ()):
            if a.get(name):
                if name == "srcset":
                    self.urls += [part.split()[0] for part in a[name].split(",") if part.split()]
                else:
                    self.urls.append(a[name])
        if tag == "link" and set(a.get("rel", "").lower().split()) & _FETCHING_RELS:
            self.urls.append(a.get("href", ""))
        if "style" in a:
            self.urls += [m[0] or m[1] for m in _CSS_URL.findall(a["style"])]
        kind = a.get("type", "").lower()
        if tag == "style" or (tag == "script" and (not kind or "javascript" in kind
                                                   or kind == "module")):
            self._in = tag
        elif tag == "script":
            self._in = None if kind in _INERT_SCRIPT_TYPES or "+json" in kind else "script"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.urls += [m[0] or m[1] for m in _CSS_URL.findall(data)]
        elif self._in == "script":
            self.urls += [m[0] or m[1] for m in _JS_IMPORT.findall(data)]
            # string literals holding an absolute URL (e.g. a script element's src set in code)
            self.urls += re.findall(r"""['"]((?:https?:)?//[^'"\s]+)['"]""", data)


def fetched_urls(html: str, *, remote_only: bool = False) -> list[str]:
    """List the URLs an HTML page makes the browser load (scripts, styles, images, fonts …).

    Scans ``src``/``srcset``/``data`` attributes, stylesheet/icon/preload links, CSS ``url()``
    and ``@import`` in ``<style>`` and ``style=``, ``import(...)`` in executed scripts and quoted
    absolute URLs in executed script code. Plain ``<a href>`` links are not fetched and not
    listed; nor is anything inside JSON scripts (widget state). ``data:`` URLs are left out;
    each URL is listed once, in page order.

    Parameters
    ----------
    html
        The page.
    remote_only
        Keep only URLs with a scheme or host (``https://…``, ``//cdn…``, ``file://…``), i.e.
        everything that is not a path relative to the page.

    Examples
    --------
    >>> page = ('<script src="https://cdn.example/x.js"></script><img src="data:image/png;base64,AA">'
    ...         '<script src="_static/embed.js"></script><a href="https://example.org">doc</a>')
    >>> fetched_urls(page)
    ['https://cdn.example/x.js', '_static/embed.js']
    >>> fetched_urls(page, remote_only=True)
    ['https://cdn.example/x.js']
    """
    finder = _FetchFinder()
    finder.feed(html)
    finder.close()
    urls = [u.strip() for u in finder.urls if u.strip() and not u.strip().lower().startswith("data:")]
    if remote_only:
        urls = [u for u in urls if _REMOTE.match(u)]
    return list(dict.fromkeys(urls))  # each once, in page order


# --- command line ----------------------------------------------------------------------------

def _parse_parameter(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    try:
        parsed: Any = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError):
        parsed = value  # a bare word is a string
    except (RecursionError, MemoryError):  # the parser's own limits on nesting
        raise argparse.ArgumentTypeError(f"-p {name.strip()}: the value nests too deeply "
                                         "to be read") from None
    return name.strip(), parsed


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qoslab report`` to the command line."""
    p = sub.add_parser(
        "report", help="execute notebooks and write offline HTML reports",
        description="Execute notebooks headless and write HTML (figures inline, widget state "
        "embedded, the widget renderer copied beside it: the pages work offline).")
    p.add_argument("notebooks", nargs="*", help="notebooks (default: the ones qoslab ships; `qoslab notebooks DIR` copies "
                   "them out to edit)")
    p.add_argument("-o", "--out", default="reports", help="output folder (default: reports)")
    p.add_argument("-p", "--parameter", action="append", type=_parse_parameter, default=[],
                   metavar="NAME=VALUE",
                   help="override a value of the notebooks' parameters cell (a Python literal "
                   "or a bare string), checked before anything runs: NAME must be in the cell, "
                   "and where the cell names its scenario (# scenario: NAME) the scenario's "
                   "parameter checks the value (-p PERTURB=500ms); repeatable")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="notebooks executed at once (default: CPUs, at most 4)")
    p.add_argument("--timeout", type=int, default=600, help="seconds one cell may run")
    p.add_argument("--force", action="store_true", help="replace existing HTML reports")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    for path in render_all(args.notebooks, args.out, jobs=args.jobs, timeout=args.timeout,
                           parameters=dict(args.parameter), force=args.force):
        print(path)
    return 0
