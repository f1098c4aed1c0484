"""qoslab: explain why latency spikes under load.

Capture parsers, Linux flow-hash reimplementations, ping runners, a queue simulator and a
network-namespace test bed, all speaking three tidy tables (PACKETS, PROBES, EVENTS; see
:mod:`qoslab.schema`).
"""

import importlib

from . import ping  # a callable package: qoslab.ping(...)
from ._version import __version__
from .capture import read_capture
from .data import data_path
from .errors import (
    BackendUnavailableError,
    CaptureFormatError,
    ConfigError,
    KernelFeatureMissing,
    QoslabError,
    RunFormatError,
)
from .hashing import FlowClassifier
from .io import load
from .qdiscs import Sfq
from .runs import Run, RunJournal

__all__ = [
    "__version__",
    "BackendUnavailableError",
    "CaptureFormatError",
    "ConfigError",
    "FlowClassifier",
    "KernelFeatureMissing",
    "QoslabError",
    "Run",
    "RunFormatError",
    "RunJournal",
    "Sfq",
    "data_path",
    "load",
    "read_capture",
    "read_captures",
    "read_packets",
    "ping",
    "replay",
]

#: Layers imported on first use (``qoslab.sim.scenarios…`` works after a plain ``import qoslab``
#: without paying for matplotlib or ipywidgets at start-up).
_LAZY_SUBPACKAGES = frozenset({"analysis", "engines", "lab", "plots", "replay", "report",
                               "schema", "sim", "widgets"})
#: Functions imported on first use: capture sets (pandas or Dask) and their Parquet datasets.
_LAZY_FUNCTIONS = {"read_captures": "engines.captures", "read_packets": "engines.parquet"}


def __getattr__(name: str):
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
