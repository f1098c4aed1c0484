"""Experiments declared once: typed parameters, the set-up, and the backends that can run it.

:mod:`~qoslab.scenarios.params` declares parameters (:class:`Param`): name, kind, unit, range,
default and help, parsed and checked the same way from the command line, ``qoslab report -p``,
widgets and Python calls.
"""

from .params import KINDS, Param, parse_assignment, parse_cli_items, resolve

__all__ = ["KINDS", "Param", "parse_assignment", "parse_cli_items", "resolve"]
