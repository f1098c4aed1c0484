"""What every explorer shares: lazy ipywidgets, outputs as mime bundles, visible errors.

An explorer is a class holding controls, one Output area for its result and one for errors.
Its :meth:`Explorer.update` reads the controls, calls the explorer's *pure* compute function
(importable and callable without widgets, so notebooks and tests exercise the real code path)
and renders the result; it raises like any function when called directly. The widget callbacks
call :meth:`Explorer.refresh`, which catches the exception, shows the traceback in the visible
error area and keeps it in :attr:`Explorer.last_error` -- an error in a callback is never
swallowed silently.

Results are written to the Output widgets as mime bundles (``image/png``, ``text/html``), not
through ``with output:`` capture, so they are the same with or without a running kernel and are
embedded in the saved widget state of a rendered notebook.
"""

from __future__ import annotations

import base64
import html
import io
import traceback
from contextlib import contextmanager
from typing import Any

from ..errors import BackendUnavailableError

__all__ = ["ipywidgets", "Explorer", "figure_bundle", "table_bundle", "text_bundle"]


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


def figure_bundle(fig, *, dpi: int = 100) -> dict[str, Any]:
    """Return a ``display_data`` output holding a figure as PNG (text/plain as fallback)."""
    from ..plots import plot_style

    buf = io.BytesIO()
    with plot_style():  # a constrained layout already fits legends: skip the "tight" redraw
        fig.savefig(buf, format="png", dpi=dpi,
                    bbox_inches=None if fig.get_layout_engine() else "tight")
    return {
        "output_type": "display_data",
        "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                 "text/plain": f"<Figure {len(fig.axes)} axes>"},
        "metadata": {},
    }


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


def text_bundle(text: str, *, pre: bool = True, color: str | None = None) -> dict[str, Any]:
    """Return a ``display_data`` output holding text (monospace when ``pre``)."""
    style = f' style="color:{color}"' if color else ""
    body = html.escape(text)
    markup = f"<pre{style}>{body}</pre>" if pre else f"<p{style}>{body}</p>"
    return {"output_type": "display_data",
            "data": {"text/html": markup, "text/plain": text}, "metadata": {}}


class Explorer:
    """Base of the qoslab explorers: controls + result area + error area.

    Subclasses build ``self.controls`` (a list of widgets), implement :meth:`update`, and call
    :meth:`_finish_init` at the end of ``__init__``.

    Attributes
    ----------
    widget
        The container to display (``display(explorer)`` works too).
    output
        Output widget with the current result (figures, tables).
    errors
        Output widget, empty unless the last callback raised; then it shows the traceback.
    last_error
        The exception the last callback raised, or None.
    """

    #: Add a Run button instead of recomputing on every control change.
    run_button: bool = False

    def __init__(self) -> None:
        self.w = ipywidgets()
        self.output = self.w.Output(layout=self.w.Layout(min_height="2em"))
        self.errors = self.w.Output(layout=self.w.Layout(border="1px solid #d62728"))
        self.errors.layout.display = "none"
        self.status = self.w.HTML(value="")
        self.last_error: BaseException | None = None
        self.controls: list = []
        self.updates = 0
        self._held = 0

    # -- subclass API -----------------------------------------------------------------------
    def update(self) -> None:
        """Recompute from the controls and redraw; raises on error."""
        raise NotImplementedError

    def _finish_init(self, observe: list | None = None, *, initial: bool = True) -> None:
        w = self.w
        items = list(self.controls)
        if self.run_button:
            self.button = w.Button(description="Run", button_style="primary", icon="play")
            self.button.on_click(lambda _b: self.refresh())
            items.append(self.button)
        else:
            for ctrl in observe if observe is not None else self.controls:
                ctrl.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox(items[:3]), *[w.HBox(items[i:i + 3])
                                                   for i in range(3, len(items), 3)],
                              self.status, self.errors, self.output])
        if initial:
            self.refresh()

    # -- callback plumbing ------------------------------------------------------------------
    def _on_change(self, _change=None) -> None:
        if not self._held:
            self.refresh()

    @contextmanager
    def hold(self):
        """Change several controls with one recomputation at the end (a callback: errors go
        to the error area).

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

    def refresh(self) -> bool:
        """Run :meth:`update` as a callback does: errors go to the visible error area.

        Returns True when the update succeeded.
        """
        try:
            self.update()
        except Exception as exc:  # shown to the user, kept for inspection
            self.last_error = exc
            text = "".join(traceback.format_exception(exc))
            self.errors.outputs = (text_bundle(text, color="#b2182b"),)
            self.errors.layout.display = None
            self.status.value = (f"<b style='color:#b2182b'>error: "
                                 f"{html.escape(type(exc).__name__)}: "
                                 f"{html.escape(str(exc))}</b>")
            return False
        self.last_error = None
        self.errors.outputs = ()
        self.errors.layout.display = "none"
        self.updates += 1
        return True

    def show(self, *bundles: dict[str, Any]) -> None:
        """Replace the result area with these output bundles."""
        self.output.outputs = tuple(bundles)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
