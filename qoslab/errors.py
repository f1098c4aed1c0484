"""Exceptions raised by qoslab.

Every error a user can provoke with bad input is a :class:`QoslabError`; its message names the
file or field at fault and what was expected, so the CLI can print it without a traceback.
"""

from __future__ import annotations

__all__ = [
    "QoslabError",
    "CaptureFormatError",
    "RunFormatError",
    "ConfigError",
    "BackendUnavailableError",
    "KernelFeatureMissing",
]


class QoslabError(Exception):
    """Base class of every error qoslab raises on purpose."""


class CaptureFormatError(QoslabError, ValueError):
    """A file is not a pcap/pcapng capture, or its header is unusable."""


class RunFormatError(QoslabError, ValueError):
    """A RUN file (or an imported flent / ping-exp file) does not validate."""


class ConfigError(QoslabError, ValueError):
    """A parameter or configuration (keys, tc line, scenario option) is invalid."""


class BackendUnavailableError(QoslabError, RuntimeError):
    """No probe backend (raw socket, ICMP datagram socket, system ping) can be used."""


class KernelFeatureMissing(QoslabError, RuntimeError):
    """The running kernel lacks a qdisc, classifier or facility a configuration needs."""
