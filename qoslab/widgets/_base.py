"""What every explorer shares: lazy ipywidgets, outputs as mime bundles, visible errors.

An explorer is a class holding controls, one Output area for its result, a status line and an
error line. Its :meth:`Explorer.update` reads the controls, calls the explorer's *pure* compute
function (importable and callable without widgets, so notebooks and tests exercise the real code
path) and renders the result; it raises like any function when called directly. The widget
callbacks call :meth:`Explorer.refresh`, which catches the exception, empties the result area,
shows one clear line (the traceback behind a "details" toggle) and keeps the exception in
:attr:`Explorer.last_error` -- an error in a callback is never swallowed silently, and never
sits beside a stale result.

Results are written to the Output widgets as mime bundles (``image/png``, ``text/html``), not
through ``with output:`` capture, so they are the same with or without a running kernel and are
embedded in the saved widget state of a rendered notebook.
"""

from __future__ import annotations

import base64
import html
import traceback
from contextlib import contextmanager
from typing import Any

from ..errors import BackendUnavailableError, QoslabError
from ..plots.theme import TEXT_CONTRAST, dark_color, figure_html, figure_pngs, light_png

__all__ = ["ipywidgets", "Explorer", "figure_bundle", "table_bundle", "text_bundle",
           "html_bundle", "error_text", "alignment_text"]


def ipywidgets():
    """Return the ``ipywidgets`` module, or raise a clear error naming what to install.

    Raises
    ------
    BackendUnavailableError
        When ipywidgets is not installed.
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        raise BackendUnavailableError(
            "qoslab.widgets needs ipywidgets (>= 8): pip install ipywidgets, or use the plain "
            "functions of qoslab.plots and qoslab.analysis without widgets"
        ) from None
    return widgets


def figure_bundle(fig, *, dpi: int = 100, dark_twin: bool = True) -> dict[str, Any]:
    """Return a ``display_data`` output holding a figure in the page's theme (HTML with the
    light figure and its dark twin, :mod:`qoslab.plots.theme`), the light PNG and text/plain
    as fallbacks; ``dark_twin=False``: the light PNG alone (half the drawing time)."""
    if dark_twin:
        pngs = figure_pngs(fig, dpi=dpi)
    else:
        pngs = (light_png(fig, dpi=dpi), b"")
    data = {"text/html": figure_html(fig, pngs=pngs)} if dark_twin else {}
    data.update({"image/png": base64.b64encode(pngs[0]).decode("ascii"),
                 "text/plain": f"<Figure {len(fig.axes)} axes>"})
    return {"output_type": "display_data", "data": data,
            "metadata": {"image/png": {"needs_background": "light"}}}


def table_bundle(frame, *, caption: str = "", max_rows: int = 60) -> dict[str, Any]:
    """Return a ``display_data`` output holding a DataFrame as an HTML table."""
    shown = frame.head(max_rows)
    more = f"<p><i>… {len(frame) - max_rows} more rows</i></p>" if len(frame) > max_rows else ""
    head = f"<p><b>{html.escape(caption)}</b></p>" if caption else ""
    return {
        "output_type": "display_data",
        "data": {"text/html": head + shown.to_html(border=0, na_rep="–") + more,
                 "text/plain": (caption + "\n" if caption else "") + shown.to_string()},
        "metadata": {},
    }


def html_bundle(markup: str, text: str = "") -> dict[str, Any]:
    """Return a ``display_data`` output holding HTML (a zoomable chart, say)."""
    return {"output_type": "display_data",
            "data": {"text/html": markup, "text/plain": text or "(HTML)"}, "metadata": {}}


def text_bundle(text: str, *, pre: bool = True, color: str | None = None) -> dict[str, Any]:
    """Return a ``display_data`` output holding text (monospace when ``pre``)."""
    style = f' style="color:{color}"' if color else ""
    body = html.escape(text)
    markup = f"<pre{style}>{body}</pre>" if pre else f"<p{style}>{body}</p>"
    return {"output_type": "display_data",
            "data": {"text/html": markup, "text/plain": text}, "metadata": {}}


#: The error line's red: as designed on light pages, its dark twin (readable as text) on a
#: dark theme; ``var(--qoslab-error-color, …)`` in a style attribute follows the theme too.
ERROR_COLOR = "#b2182b"
ERROR_CSS_COLOR = f"var(--qoslab-error-color, {ERROR_COLOR})"

#: Styles every explorer carries (an HTML widget): a stale or busy result is dimmed, the
#: error line is one clear red line.
_STYLE = f"""<style>
.qoslab-stale, .qoslab-busy {{ opacity: 0.35; transition: opacity 0.15s; }}
.qoslab-error {{ color: {ERROR_CSS_COLOR}; font-weight: bold; padding: 2px 0; }}
[data-jp-theme-light='false'] {{ --qoslab-error-color: {dark_color(ERROR_COLOR, minimum=TEXT_CONTRAST)}; }}
.qoslab-status {{ color: var(--jp-ui-font-color1, #333); }}
</style>"""


class InterruptedComputation(QoslabError):
    """An explorer's computation was interrupted (the kernel's interrupt button)."""


def error_text(exc: BaseException) -> str:
    """One line for people: a qoslab error's own message; anything else says it is a bug.

    Examples
    --------
    >>> from qoslab.errors import ConfigError
    >>> error_text(ConfigError("interval = 0 s: expected 0.001 … 60 s"))
    'interval = 0 s: expected 0.001 … 60 s'
    >>> error_text(ZeroDivisionError("division by zero"))
    'internal error (ZeroDivisionError: division by zero); press "details" for the traceback'
    """
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, QoslabError):
        return message
    return f'internal error ({type(exc).__name__}: {message}); press "details" for the traceback'


def alignment_text(alignment, perturb: float | None = None) -> str:
    """The status line's words on spikes vs hash changes: a p-value only when a test was made.

    Examples
    --------
    >>> from qoslab.analysis import align_to_events
    >>> alignment_text(align_to_events([], [], span=(0, 60)), perturb=0)
    'no hash changes to align with (perturbation off)'
    >>> alignment_text(align_to_events([], [5.0, 10.0], span=(0, 60)), perturb=5)
    'no spike event to align with the 2 hash changes'
    """
    if alignment.n_events == 0:
        return "no hash changes to align with" + (" (perturbation off)" if not perturb else "")
    if alignment.n_spikes == 0:
        n = alignment.n_events
        return f"no spike event to align with the {n} hash change{'s' if n != 1 else ''}"
    return f"{alignment.p.text} for their alignment with the hash changes"


class Explorer:
    """Base of the qoslab explorers: controls, a status line, an error line, a result area.

    Subclasses build ``self.controls`` (a list of widgets), implement :meth:`update`, and call
    :meth:`_finish_init` at the end of ``__init__``.

    The rules every explorer follows:

    * an error *replaces* the result: the result area is emptied and one clear line says what
      is wrong (a qoslab error's message names the parameter, its unit and range); the
      traceback is there only when asked for ("details");
    * while it computes, it says so: the Run button is disabled and reads "Running…", the
      result is dimmed, the status line says what runs;
    * with a Run button, changing a control dims the result and says it is out of date until
      Run is pressed again;
    * nothing goes to stdout/stderr (JupyterLab's log console).

    Attributes
    ----------
    widget
        The container to display (``display(explorer)`` works too).
    output
        Output widget with the current result (figures, charts, tables).
    status
        HTML line: what the result shows, or what is running.
    error_line
        HTML line: the error, when the last update failed (hidden otherwise).
    errors
        Output widget with the traceback of the last error (shown by the "details" toggle).
    last_error
        The exception the last callback raised, or None.
    busy
        True while :meth:`update` runs from a callback.
    """

    #: Add a Run button instead of recomputing on every control change.
    run_button: bool = False

    def __init__(self) -> None:
        self.w = w = ipywidgets()
        self.output = w.Output(layout=w.Layout(min_height="2em"))
        self.status = w.HTML(value="")
        self.status.add_class("qoslab-status")
        self.error_line = w.HTML(value="", layout=w.Layout(display="none"))
        self.details = w.ToggleButton(value=False, description="details", icon="bug",
                                      tooltip="show the traceback of this error",
                                      layout=w.Layout(display="none", width="7em"))
        self.details.observe(self._toggle_details, names="value")
        self.errors = w.Output(layout=w.Layout(border="1px solid #d62728", display="none"))
        self._style = w.HTML(value=_STYLE, layout=w.Layout(display="none"))
        self.last_error: BaseException | None = None
        self.controls: list = []
        self.updates = 0
        self.busy = False
        self._held = 0
        self._has_result = False

    # -- subclass API -----------------------------------------------------------------------
    def update(self) -> None:
        """Recompute from the controls and redraw; raises on error."""
        raise NotImplementedError

    def busy_text(self) -> str:
        """What the status line says while :meth:`update` runs."""
        return "running…"

    def _finish_init(self, observe: list | None = None, *, initial: bool = True,
                     rows: list | None = None) -> None:
        """Lay out the explorer and wire its callbacks.

        ``observe``: the controls whose changes recompute (or, with a Run button, mark the
        result stale); ``rows``: the control rows to show (default: ``self.controls`` three
        to a row); ``initial``: compute once now.
        """
        w = self.w
        items = list(self.controls)
        if self.run_button:
            self.button = w.Button(description="Run", button_style="primary", icon="play",
                                   tooltip="compute with these values")
            self.button.on_click(lambda _b: self.refresh())
            items.append(self.button)
            for ctrl in observe if observe is not None else []:
                ctrl.observe(self._mark_stale, names="value")
        else:
            for ctrl in observe if observe is not None else self.controls:
                ctrl.observe(self._on_change, names="value")
        if rows is None:
            rows = [w.HBox(items[i:i + 3]) for i in range(0, len(items), 3)]
        elif self.run_button:
            rows = [*rows, w.HBox([self.button])]
        self.widget = w.VBox([self._style, *rows, self.status,
                              w.HBox([self.error_line, self.details]), self.errors, self.output])
        if initial:
            self.refresh()

    # -- callback plumbing ------------------------------------------------------------------
    def _on_change(self, _change=None) -> None:
        if not self._held:
            self.refresh()

    def _mark_stale(self, _change=None) -> None:
        """A control changed under a Run button: the result no longer shows these values."""
        if self._has_result and not self.busy:
            self.output.add_class("qoslab-stale")
            note = " <i>— controls changed since this result: press Run</i>"
            if note not in self.status.value:
                self.status.value += note

    @contextmanager
    def hold(self):
        """Change several controls with one recomputation at the end (a callback: errors go
        to the error line).

        Examples
        --------
        ``with picker.hold(): picker.keys["src"].value = False; picker.divisor.value = 64``
        """
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
        if not self._held:
            self.refresh()

    def _set_busy(self, flag: bool) -> None:
        self.busy = flag
        button = getattr(self, "button", None)
        if flag:
            self.output.add_class("qoslab-busy")
            self.status.value = f"<i>{html.escape(self.busy_text())}</i>"
            if button is not None:
                button.disabled = True
                button.description = "Running…"
                button.icon = "spinner spin"
        else:
            self.output.remove_class("qoslab-busy")
            if button is not None:
                button.disabled = False
                button.description = "Run"
                button.icon = "play"

    def refresh(self) -> bool:
        """Run :meth:`update` as a callback does: errors go to the error line.

        Returns True when the update succeeded. A call while one runs does nothing (a second
        click on Run).
        """
        if self.busy:
            return False
        self._set_busy(True)
        try:
            self.update()
        except Exception as exc:  # shown to the user, kept for inspection
            self._show_error(exc)
            return False
        except KeyboardInterrupt as exc:  # the kernel was interrupted mid-computation
            self._show_error(InterruptedComputation(
                "interrupted before the result was ready; press Run (or change a control) "
                "to compute again"), cause=exc)
            return False
        finally:
            self._set_busy(False)
        self.last_error = None
        self.error_line.value = ""
        self.error_line.layout.display = "none"
        self.details.layout.display = "none"
        self.details.value = False
        self.errors.outputs = ()
        self.errors.layout.display = "none"
        self.output.remove_class("qoslab-stale")
        self._has_result = True
        self.updates += 1
        return True

    def _show_error(self, exc: BaseException, *, cause: BaseException | None = None) -> None:
        self.last_error = exc
        self.output.outputs = ()  # never an old result beside a new error
        self.output.remove_class("qoslab-stale")
        self._has_result = False
        self.status.value = ""
        self.error_line.value = (f"<div class='qoslab-error'>⚠ "
                                 f"{html.escape(error_text(exc))}</div>")
        self.error_line.layout.display = None
        text = "".join(traceback.format_exception(cause or exc))
        self.errors.outputs = (text_bundle(text, color=ERROR_CSS_COLOR),)
        self.details.layout.display = None
        self.errors.layout.display = None if self.details.value else "none"

    def _toggle_details(self, change) -> None:
        self.errors.layout.display = None if change["new"] and self.last_error else "none"

    def show(self, *bundles: dict[str, Any]) -> None:
        """Replace the result area with these output bundles."""
        self.output.outputs = tuple(bundles)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
