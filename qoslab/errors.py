"""Exceptions raised by qoslab.

Every error a user can provoke with bad input is a :class:`QoslabError`; its message names the
file or field at fault and what was expected, so the CLI can print it without a traceback.
"""

from __future__ import annotations

__all__ = [
    "QoslabError",
    "CaptureFormatError",
    "CaptureTooLargeError",
    "RunFormatError",
    "ConfigError",
    "BackendUnavailableError",
    "KernelFeatureMissing",
    "ResourceLimitError",
    "InputSizeLimitError",
    "DecompressedSizeLimitError",
    "NestingDepthLimitError",
    "SeriesLimitError",
    "ProbeLimitError",
    "ImpliedRowsLimitError",
    "ColumnLimitError",
    "ValueCountLimitError",
    "ScheduleLimitError",
    "SimulationLimitError",
    "PeriodSearchLimitError",
    "EngineUnavailableError",
]


class QoslabError(Exception):
    """Base class of every error qoslab raises on purpose."""


class CaptureFormatError(QoslabError, ValueError):
    """A file is not a pcap/pcapng capture, or its header is unusable."""


class CaptureTooLargeError(QoslabError, MemoryError):
    """A capture would make a table larger than the memory allowed for it (``read_capture``'s
    ``max_memory``); read it in chunks with ``iter_capture`` instead."""


class RunFormatError(QoslabError, ValueError):
    """A RUN file (or an imported flent / ping-exp file) does not validate."""


class ConfigError(QoslabError, ValueError):
    """A parameter or configuration (keys, tc line, scenario option) is invalid."""


class BackendUnavailableError(QoslabError, RuntimeError):
    """No probe backend (raw socket, ICMP datagram socket, system ping) can be used."""


class KernelFeatureMissing(QoslabError, RuntimeError):
    """The running kernel lacks a qdisc, classifier or facility a configuration needs."""


class ResourceLimitError(RunFormatError):
    """A file would need more than one of the documented loading limits allow.

    The limits (:mod:`qoslab.io.limits`) keep a hostile or broken file from taking unbounded
    time or memory; each has its own subclass, and the message names the file, the limit and
    its value.
    """


class InputSizeLimitError(ResourceLimitError):
    """The file itself is larger than ``qoslab.io.limits.MAX_INPUT_BYTES``."""


class DecompressedSizeLimitError(ResourceLimitError):
    """A gzip stream inflates to more than the decompressed-size limit (a gzip bomb)."""


class NestingDepthLimitError(ResourceLimitError):
    """JSON or pickle data nests deeper than ``qoslab.io.limits.MAX_NESTING_DEPTH``."""


class SeriesLimitError(ResourceLimitError):
    """A file holds more series (streams) than ``qoslab.io.limits.MAX_SERIES``."""


class ProbeLimitError(ResourceLimitError):
    """A file holds (or its sequence numbers imply) more rows than ``MAX_ROWS``."""


class ImpliedRowsLimitError(ResourceLimitError):
    """A file's sequence gaps (or a tool's count of probes sent) imply more lost rows than
    ``qoslab.io.limits.implied_rows_limit`` allows for the rows the file holds: a few bytes can
    name a sequence number millions past the last one."""


class ColumnLimitError(ResourceLimitError):
    """A table in a file has more columns than ``qoslab.io.limits.MAX_COLUMNS``."""


class ValueCountLimitError(ResourceLimitError):
    """A configuration document (an experiment's YAML/JSON tree) holds more values than
    ``qoslab.io.limits.MAX_CONFIG_VALUES`` -- YAML aliases can make a small file hold
    billions."""


class ScheduleLimitError(QoslabError, ValueError):
    """A hash-seed schedule would hold more changes than
    ``qoslab.hashing.perturb.MAX_HASH_CHANGES`` (a tiny perturb period over a long span)."""


class SimulationLimitError(QoslabError, ValueError):
    """A simulation would handle more packets than ``qoslab.sim.budget.MAX_SIM_PACKETS`` (a
    long duration times high rates: a run that would not end in any useful time)."""


class PeriodSearchLimitError(QoslabError, ValueError):
    """A period search would evaluate more phases than
    ``qoslab.analysis.period.MAX_PERIOD_WORK`` (onsets over a span of years, or a tiny
    ``min_period``): the frequency grid grows with the span."""


class EngineUnavailableError(QoslabError, ImportError):
    """An optional engine (Dask) is not installed; the message says what to install."""
