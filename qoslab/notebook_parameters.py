"""A notebook's ``parameters`` cell read as a declaration, and overrides checked against it.

``qoslab report -p NAME=VALUE`` overrides a value of a notebook's cell tagged ``parameters``
(the papermill convention). Before any notebook runs, each override is checked here:

* ``NAME`` must be assigned in that cell (a misspelt name would otherwise be injected and
  silently ignored);
* when the cell says which scenario it runs (a comment line ``# scenario: sfq_perturb``), a
  ``NAME`` whose lower-case form is one of that scenario's parameters is parsed and checked by
  that :class:`~qoslab.scenarios.params.Param` — the same text, units and range as
  ``qoslab run sfq_perturb --perturb …`` and the widgets (``-p PERTURB=500ms`` is 0.5 s when
  ``perturb`` is a time);
* any other ``NAME`` must keep the kind of the cell's own literal (a number stays a number, a
  list a list, text text).

Examples
--------
>>> cell = "# parameters\\n# scenario: sfq_perturb\\nPERTURB = 5\\nSWEEP = [3, 5]\\n"
>>> decl = read_parameters(cell)
>>> decl.scenario, sorted(decl.defaults)
('sfq_perturb', ['PERTURB', 'SWEEP'])
>>> decl.check({"PERTURB": "20", "SWEEP": [1, 2, 3]})
{'PERTURB': 20, 'SWEEP': [1, 2, 3]}
>>> decl.check({"PERTURB": -1})
Traceback (most recent call last):
...
qoslab.errors.ConfigError: PERTURB: perturb = -1 s: expected 0 … 3600 s (0 = no perturbation)
>>> decl.check({"PERTRUB": 3})
Traceback (most recent call last):
...
qoslab.errors.ConfigError: PERTRUB: not a parameter of this notebook; its parameters are PERTURB, SWEEP
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import scenarios
from .errors import ConfigError

__all__ = ["NotebookParameters", "read_parameters", "parameters_cell", "parameters_cell_index",
           "PARAMETERS_TAG"]

#: The tag of the cell holding a notebook's parameters (papermill's convention).
PARAMETERS_TAG = "parameters"
_SCENARIO_LINE = re.compile(r"^#\s*scenario:\s*([A-Za-z_][A-Za-z0-9_]*)\b", re.MULTILINE)


@dataclass(frozen=True)
class NotebookParameters:
    """The names a ``parameters`` cell assigns, their literal defaults, and its scenario."""

    defaults: Mapping[str, Any]
    scenario: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # NAME -> scenario Param

    def check(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Overrides → checked values (a text is parsed by its scenario Param when it has one).

        Raises
        ------
        ConfigError
            Naming the override and what was expected.
        """
        out: dict[str, Any] = {}
        for name, value in given.items():
            if name not in self.defaults:
                raise ConfigError(f"{name}: not a parameter of this notebook; its parameters "
                                  f"are {', '.join(self.defaults) or 'none'}")
            param = self.params.get(name)
            if param is not None:
                try:
                    out[name] = param.parse(value) if isinstance(value, str) else param.check(value)
                except ConfigError as exc:
                    raise ConfigError(f"{name}: {exc}") from None
                continue
            out[name] = _same_kind(name, value, self.defaults[name])
        return out


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _same_kind(name: str, value: Any, default: Any) -> Any:
    want, got = _kind(default), _kind(value)
    if want == "none" or got == "none" or want == got:
        return value
    raise ConfigError(f"{name} = {value!r}: expected {want} like the notebook's {default!r}")


def parameters_cell_index(nb: Any) -> int | None:
    """The position of the notebook's first cell tagged ``parameters`` (None when none is)."""
    return next((i for i, cell in enumerate(nb.cells)
                 if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])), None)


def parameters_cell(nb: Any) -> str | None:
    """The source of the notebook's first cell tagged ``parameters`` (None when it has none)."""
    index = parameters_cell_index(nb)
    if index is None:
        return None
    source = nb.cells[index].source
    return "".join(source) if isinstance(source, list) else source


def read_parameters(source: str) -> NotebookParameters:
    """Read a ``parameters`` cell: its ``NAME = literal`` lines and ``# scenario: NAME``.

    Raises
    ------
    ConfigError
        When the cell is not Python, a value is not a literal, or the scenario is unknown.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConfigError(f"the parameters cell is not Python (line {exc.lineno}: {exc.msg})"
                          ) from None
    except (RecursionError, MemoryError):  # the parser's own limits on nesting
        raise ConfigError("the parameters cell nests too deeply to be read") from None
    defaults: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            try:
                defaults[name] = ast.literal_eval(node.value)
            except (ValueError, TypeError, RecursionError):  # a name, a call, {[1]: 2} …
                raise ConfigError(f"the parameters cell: {name} is not a literal (line "
                                  f"{node.lineno})") from None
    match = _SCENARIO_LINE.search(source)
    if match is None:
        return NotebookParameters(defaults)
    try:
        scenario = scenarios.get(match.group(1))
    except ConfigError as exc:  # the registry's own error names the known scenarios
        raise ConfigError(f"the parameters cell: {exc}") from None
    by_name = {p.name: p for p in scenario.params}
    params = {name: by_name[name.lower()] for name in defaults if name.lower() in by_name}
    return NotebookParameters(defaults, scenario.name, params)
