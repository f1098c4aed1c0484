"""Importing the optional Dask engine, with an error that says what to install."""

from __future__ import annotations

from ..errors import EngineUnavailableError

__all__ = ["require_dask", "INSTALL_HINT"]

#: What to install for the Dask engine.
INSTALL_HINT = "pip install 'qoslab[dask]'  (or: pip install 'dask[dataframe]' distributed)"


def require_dask(what: str = "the Dask engine"):
    """Return ``dask.dataframe``; raise :class:`EngineUnavailableError` if it is missing."""
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:
        raise EngineUnavailableError(
            f"{what} needs Dask, which is not installed ({exc}); install it with: "
            f"{INSTALL_HINT}") from None
    del dask
    return dd


def require_distributed(what: str = "a Dask cluster"):
    """Return ``distributed``; raise :class:`EngineUnavailableError` if it is missing."""
    try:
        import distributed
    except ImportError as exc:
        raise EngineUnavailableError(
            f"{what} needs dask.distributed, which is not installed ({exc}); install it "
            f"with: {INSTALL_HINT}") from None
    return distributed
