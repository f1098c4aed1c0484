"""Latency probes: ICMP/ICMPv6 echo streams, destinations x TOS x sizes, into a RUN.

``qoslab.ping`` is this package *and* a function: ``qoslab.ping("10.0.0.2", tos=[0, 0x10])``
calls :func:`qoslab.ping.runner.ping`, while ``qoslab.ping.engine`` and the other modules stay
importable. The package module's class is replaced by :class:`CallableModule` (a
:class:`types.ModuleType` subclass with ``__call__``), the documented way to make a module
callable without shadowing the package by a function of the same name.

Modules
-------
targets
    The experiment matrix (:func:`build_streams`) and ping-exp's ``ID,HOST,TOS[,SIZE]``.
sockets
    Raw and datagram ICMP sockets, TOS, kernel receive timestamps, packet parsing.
engine
    The asyncio engine: many streams, isochronous sends, timeouts, duplicates, ICMP errors.
system_ping
    The iputils ``ping`` back-end and its output parser.
runner
    :func:`ping` and back-end selection.
cli
    ``qoslab ping``.

Examples
--------
>>> import qoslab
>>> callable(qoslab.ping), qoslab.ping.ping is qoslab.ping.runner.ping
(True, True)
"""

from __future__ import annotations

import sys
import types

from . import engine, runner, sockets, system_ping, targets
from .runner import BACKENDS, DEFAULT_TIMEOUT, ping, select_backend
from .system_ping import parse_line
from .targets import Stream, Target, build_streams, parse_target

__all__ = ["ping", "select_backend", "BACKENDS", "DEFAULT_TIMEOUT", "Target", "Stream",
           "build_streams", "parse_target", "parse_line", "CallableModule", "engine", "runner",
           "sockets", "system_ping", "targets"]


class CallableModule(types.ModuleType):
    """A module that can be called: ``qoslab.ping(...)`` is ``qoslab.ping.ping(...)``."""

    def __call__(self, *args, **kwargs):
        return ping(*args, **kwargs)


sys.modules[__name__].__class__ = CallableModule
