"""ipywidgets explorers over the plain functions of qoslab.

Each explorer is a class whose computation is a pure function of this package (called by its
:meth:`~qoslab.widgets.Explorer.update`, and callable directly from notebooks and tests); a
callback error replaces the result with one clear line (the traceback behind "details") and is
kept in ``last_error``; a running computation shows itself (Run disabled, result dimmed). ipywidgets is
imported when an explorer is built: without it, a clear
:class:`~qoslab.errors.BackendUnavailableError` says what to install.

- :class:`RunBrowser` -- RUN files, one or several compared: streams and kind of plot.
- :class:`KeyPicker` -- cls_flow keys, profile, divisor, perturb → tc line and flow classes.
- :class:`PerturbExplorer` -- the ``sfq_perturb`` scenario's parameters → simulated latency,
  hash changes, spike events and their alignment.
- :class:`LiveView` -- a run as it happens (a ping run, a journal another process writes, any
  producer feeding a :class:`LiveFeed`): latency, EVENTS, progress and a Stop button.
- :class:`CaptureExplorer` -- keys over a capture → which flows share a class, for this seed
  and for every seed.
- :class:`WhatIfExplorer` -- a capture replayed through a qdisc, keys, perturb interval and
  rate: per-flow queueing delay on the hash changes, and who shared a bucket when.
"""

from ._base import (
    Explorer,
    error_text,
    figure_bundle,
    html_bundle,
    ipywidgets,
    table_bundle,
    text_bundle,
)
from .capture import CaptureExplorer, capture_sharing, sharing_table
from .controls import ParamControl, ParamControls, log_grid
from .key_picker import KeyPicker, classify_flows, keys_of_profile
from .live import LiveFeed, LiveView
from .perturb import PerturbExplorer, PerturbResult, perturb_experiment, scenario_parameters
from .run_browser import RunBrowser, browse_run, browse_runs, kinds_for
from .whatif import WhatIfExplorer

__all__ = [
    "CaptureExplorer",
    "Explorer",
    "KeyPicker",
    "LiveFeed",
    "LiveView",
    "ParamControl",
    "ParamControls",
    "PerturbExplorer",
    "PerturbResult",
    "RunBrowser",
    "WhatIfExplorer",
    "browse_run",
    "browse_runs",
    "capture_sharing",
    "classify_flows",
    "error_text",
    "figure_bundle",
    "html_bundle",
    "ipywidgets",
    "keys_of_profile",
    "kinds_for",
    "log_grid",
    "perturb_experiment",
    "scenario_parameters",
    "sharing_table",
    "table_bundle",
    "text_bundle",
]
