"""Where the bundled example data lives."""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_path", "DATA_DIR"]

#: The repository's ``data/`` folder (bundled RUN files, captures, flent files).
DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def data_path(name: str = "") -> Path:
    """Return the path of a bundled data file (or the data folder itself).

    Parameters
    ----------
    name
        Path relative to ``data/``, e.g. ``"flent/ping-v4-icmp-irtt.flent.gz"``.

    Raises
    ------
    FileNotFoundError
        When no such bundled file exists; the message lists the folder searched.

    Examples
    --------
    >>> data_path("flent/ping-v4-icmp-irtt.flent.gz").name
    'ping-v4-icmp-irtt.flent.gz'
    """
    path = DATA_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"no bundled data file {name!r} in {DATA_DIR}")
    return path
