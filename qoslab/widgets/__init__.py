"""ipywidgets explorers over the plain functions of qoslab.

Each explorer is a class whose computation is a pure function of this package (called by its
:meth:`~qoslab.widgets.Explorer.update`, and callable directly from notebooks and tests);
callback errors are shown in a visible error area and kept in ``last_error``. ipywidgets is
imported when an explorer is built: without it, a clear
:class:`~qoslab.errors.BackendUnavailableError` says what to install.

- :class:`RunBrowser` -- RUN files: streams and kind of plot.
- :class:`KeyPicker` -- cls_flow keys, profile, divisor, perturb → tc line and flow classes.
- :class:`PerturbExplorer` -- SFQ perturb interval and seed → simulated latency, hash changes,
  spikes and their alignment.
- :class:`CaptureExplorer` -- keys over a capture → which flows share a class, for this seed
  and for every seed.
"""

from ._base import Explorer, figure_bundle, ipywidgets, table_bundle, text_bundle
from .capture import CaptureExplorer, capture_sharing, sharing_table
from .key_picker import KeyPicker, classify_flows
from .perturb import PerturbExplorer, PerturbResult, perturb_experiment, scenario_parameters
from .run_browser import RunBrowser, browse_run

__all__ = [
    "CaptureExplorer",
    "Explorer",
    "KeyPicker",
    "PerturbExplorer",
    "PerturbResult",
    "RunBrowser",
    "browse_run",
    "capture_sharing",
    "classify_flows",
    "figure_bundle",
    "ipywidgets",
    "perturb_experiment",
    "scenario_parameters",
    "sharing_table",
    "table_bundle",
    "text_bundle",
]
