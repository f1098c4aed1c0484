"""Widget controls built from experiment parameters (:class:`qoslab.scenarios.Param`).

One control per parameter, whatever the scenario: its name and unit as the label, its range
(and what 0 means, where 0 is special) beside it, a tooltip with its help line. Numbers are
typed as text, so a value can carry its unit the way ``tc`` writes it (``900kbit``, ``100ms``,
``0x10``) and is read by the parameter's own parser; a parameter marked ``log`` also gets a
slider over a 1–2–5 grid of its range (plus 0 when 0 has a meaning). Nothing is clamped
silently: a value outside the range is reported by :meth:`ParamControl.read` with the
parameter's own message (name, value, unit, allowed range), the same message the command line
gives.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..units import format_rate
from ._base import ipywidgets

__all__ = ["ParamControl", "ParamControls", "log_grid"]


def log_grid(lo: float, hi: float, *, integer: bool = False) -> list[float]:
    """Values 1, 2, 5 × 10ⁿ between ``lo`` and ``hi`` (both included), for a log slider.

    Examples
    --------
    >>> log_grid(1, 60, integer=True)
    [1, 2, 5, 10, 20, 50, 60]
    >>> log_grid(1e3, 1e6)[:4]
    [1000.0, 2000.0, 5000.0, 10000.0]
    """
    if not (lo > 0 and hi >= lo):
        raise ConfigError(f"log_grid: need 0 < lo <= hi, got {lo}, {hi}")
    values = [lo]
    exp = math.floor(math.log10(lo))
    while True:
        for m in (1, 2, 5):
            v = m * 10.0 ** exp
            if v > hi * (1 + 1e-12):
                values.append(hi)
                out = sorted(set(values))
                return [int(round(x)) for x in out] if integer else [float(x) for x in out]
            if v > lo * (1 + 1e-12):
                values.append(v)
        exp += 1


class ParamControl:
    """The control of one :class:`~qoslab.scenarios.Param`.

    Attributes
    ----------
    param
        The parameter.
    widget
        What to display (a box: label, slider where ``log``, the value, the range hint).
    editor
        The widget holding the value (a Text, Dropdown or Checkbox).
    slider
        The log slider, or None.

    Examples
    --------
    >>> from qoslab.scenarios import Param
    >>> c = ParamControl(Param("shaper_rate", "rate", 9e5, "HTB rate", unit="bit/s", min=1e3,
    ...                        max=1e9, log=True))
    >>> c.editor.value, c.read()
    ('900kbit', 900000.0)
    >>> c.editor.value = "2mbit"
    >>> c.read(), c.slider.label
    (2000000.0, '2 Mbit/s')
    """

    def __init__(self, param, value: Any = None) -> None:
        self.w = w = ipywidgets()
        self.param = p = param
        value = p.default if value is None else p.check(value)
        label_text = p.name.replace("_", " ") + (f" ({p.unit})" if p.unit and p.kind not in (
            "rate", "size") else "")
        self.label = w.HTML(f"<span title='{html.escape(p.help, quote=True)}'>"
                            f"{html.escape(label_text)}</span>",
                            layout=w.Layout(width="9.5em"))
        self.slider = None
        hint = self._hint()
        self.hint = w.HTML(f"<span style='color:var(--jp-ui-font-color2, #666);"
                           f"font-size:smaller'>{html.escape(hint)}</span>")
        if p.kind == "choice":
            self.editor = w.Dropdown(options=list(p.choices), value=value,
                                     layout=w.Layout(width="13em"), tooltip=p.help)
        elif p.kind == "bool":
            self.editor = w.Checkbox(value=bool(value), indent=False, tooltip=p.help,
                                     layout=w.Layout(width="3em"))
        else:
            self.editor = w.Text(value=self._text(value), continuous_update=False,
                                 layout=w.Layout(width="8.5em"), tooltip=p.help)
            if p.log and p.kind in ("int", "float", "time", "rate", "size") and p.max is not None:
                self._make_slider(value)
        parts = [self.label] + ([self.slider] if self.slider is not None else []) + \
            [self.editor, self.hint]
        self.widget = w.HBox(parts, layout=w.Layout(align_items="center"))
        self._syncing = False

    # ---------------------------------------------------------------- text and hints
    def _text(self, value: Any) -> str:
        p = self.param
        if value is None:
            return "none"
        if p.kind == "rate":
            return format_rate(value)
        if p.kind in ("float", "time"):
            return f"{float(value):g}"
        return p.to_text(value)

    def _hint(self) -> str:
        p = self.param
        parts = []
        if p.kind not in ("choice", "bool", "str"):
            rng = p.range_text()
            if rng:
                parts.append(rng)
        if p.zero_means:
            parts.append(f"0 = {p.zero_means}")
        if p.optional:
            parts.append("none = not set")
        if p.kind == "str" and not parts:  # free text: say what it takes (and what empty means)
            parts.append(p.help)
        return " · ".join(parts)

    # ---------------------------------------------------------------- slider
    def _make_slider(self, value: Any) -> None:
        p, w = self.param, self.w
        lo = p.min if p.min is not None and p.min > 0 else None
        if lo is None:
            lo = 1.0 if p.kind in ("int", "size") else (p.max or 1) / 1e4
        integer = p.kind in ("int", "size", "hex")
        grid = log_grid(float(lo), float(p.max), integer=integer)
        if p.zero_means and (p.min is None or p.min <= 0):
            grid = [0, *grid]
        for v in (p.default, value):  # the default and the value shown are stops too
            if v is not None and v not in grid:
                grid = sorted([*grid, v])
        self._grid = grid
        self.slider = w.SelectionSlider(options=self._options(), value=value,
                                        continuous_update=False, readout=True,
                                        layout=w.Layout(width="20em"), tooltip=p.help)
        self.slider.observe(self._from_slider, names="value")
        self.editor.observe(self._to_slider, names="value")

    def _options(self) -> list[tuple[str, Any]]:
        return [(self._slider_label(v), v) for v in self._grid]

    def _slider_label(self, v: float) -> str:
        p = self.param
        if v == 0 and p.zero_means:
            return f"0 ({p.zero_means})"
        return p.format(v)

    def _from_slider(self, change) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.editor.value = self._text(change["new"])
        finally:
            self._syncing = False

    def _to_slider(self, change) -> None:
        if self._syncing or self.slider is None:
            return
        try:
            value = self.param.parse(change["new"])
        except ConfigError:
            return  # reported when the value is read
        if value is None:
            return
        self._syncing = True
        try:
            if value not in self._grid:  # a typed value becomes a stop of its own
                self._grid = sorted([*self._grid, value])
                self.slider.options = self._options()
            self.slider.value = value
        finally:
            self._syncing = False

    # ---------------------------------------------------------------- reading
    def read(self) -> Any:
        """The checked value (raises :class:`~qoslab.errors.ConfigError` naming the parameter,
        the value, its unit and the allowed range)."""
        value = self.editor.value
        if self.param.kind == "bool":
            return self.param.check(bool(value))
        if self.param.kind == "choice":
            return self.param.check(value)
        return self.param.parse(value)

    def set(self, value: Any) -> None:
        """Show ``value`` (checked)."""
        value = self.param.check(value)
        if self.param.kind in ("bool", "choice"):
            self.editor.value = value
        else:
            self.editor.value = self._text(value)

    def observe(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(change)`` when the value changes (the slider moves the text)."""
        self.editor.observe(callback, names="value")

    @property
    def disabled(self) -> bool:
        return bool(self.editor.disabled)

    @disabled.setter
    def disabled(self, flag: bool) -> None:
        self.editor.disabled = flag
        if self.slider is not None:
            self.slider.disabled = flag


class ParamControls:
    """Controls for a tuple of parameters, in declaration order.

    Parameters
    ----------
    params
        The :class:`~qoslab.scenarios.Param` tuple (e.g. ``qoslab.scenarios.get(name).params``).
    values
        Initial values (default: each parameter's default).
    only
        Names to show (default all), in the order given.

    Examples
    --------
    >>> from qoslab.scenarios import get
    >>> cs = ParamControls(get("sfq_perturb").params, {"perturb": 10}, only=["perturb", "seed"])
    >>> cs.read()
    {'perturb': 10, 'seed': 1}
    >>> cs["seed"].editor.value = "-3"
    >>> cs.read()
    Traceback (most recent call last):
    ...
    qoslab.errors.ConfigError: seed = -3: expected 0 … 9223372036854775807
    """

    def __init__(self, params: Iterable, values: Mapping[str, Any] | None = None,
                 only: Iterable[str] | None = None) -> None:
        by_name = {p.name: p for p in params}
        values = dict(values or {})
        unknown = [k for k in values if k not in by_name]
        if unknown:
            raise ConfigError(f"no parameter {unknown[0]!r}; the parameters are "
                              f"{', '.join(by_name)}")
        names = list(only) if only is not None else list(by_name)
        self.controls = {n: ParamControl(by_name[n], values.get(n)) for n in names}

    def __getitem__(self, name: str) -> ParamControl:
        return self.controls[name]

    def __iter__(self):
        return iter(self.controls.values())

    def __contains__(self, name: str) -> bool:
        return name in self.controls

    def read(self) -> dict[str, Any]:
        """Every value, checked; the first bad one raises its parameter's message."""
        return {name: c.read() for name, c in self.controls.items()}

    @property
    def widgets(self) -> list:
        return [c.widget for c in self.controls.values()]
