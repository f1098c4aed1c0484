"""The pfifo_fast TOS byte → band table as a figure (old and new kernel ``ip_tos2prio``).

The tables themselves live in :mod:`qoslab.hashing` (one source of truth); this module only
draws what ``tos_to_priority`` and ``pfifo_fast_band`` compute.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..hashing import pfifo_fast_band, tos_to_priority
from ._common import new_figure, plot_style

__all__ = ["tos_band_table", "tos_band_frame", "TOS_ROWS", "ECN_CODEPOINTS"]

#: Rows of the figure: the RFC 1349 TOS bits above the ECN field (``tos & 0x1C``).
TOS_ROWS: tuple[tuple[int, str], ...] = (
    (0x00, "0x00 normal"),
    (0x04, "0x04 reliability"),
    (0x08, "0x08 throughput"),
    (0x0C, "0x0c thr.+rel."),
    (0x10, "0x10 lowdelay"),
    (0x14, "0x14 lowdelay+rel."),
    (0x18, "0x18 lowdelay+thr."),
    (0x1C, "0x1c all three"),
)
#: Columns: the two ECN bits (RFC 3168) -- IPTOS_TOS_MASK 0x1E covers the ECT(0) bit.
ECN_CODEPOINTS: tuple[tuple[int, str], ...] = (
    (0, "Not-ECT\n(00)"),
    (1, "ECT(1)\n(01)"),
    (2, "ECT(0)\n(10)"),
    (3, "CE\n(11)"),
)

_BAND_COLORS = ("#1a9850", "#fee08b", "#d73027")  # band 0 first out ... band 2 last


def tos_band_frame(table: str = "new"):
    """Return the grid drawn by :func:`tos_band_table` as a DataFrame.

    Columns ``tos`` (the whole byte), ``tos_bits``, ``ecn``, ``priority``, ``band``; computed
    with :func:`qoslab.hashing.tos_to_priority` and :func:`qoslab.hashing.pfifo_fast_band`.

    Examples
    --------
    >>> f = tos_band_frame("old")
    >>> int(f.loc[f["tos"] == 0x02, "band"].iloc[0])  # ECT(0) alone: the old ECN bug
    2
    """
    tos_bits = np.array([r for r, _ in TOS_ROWS for _ in ECN_CODEPOINTS], dtype=np.int64)
    ecn = np.array([e for _ in TOS_ROWS for e, _ in ECN_CODEPOINTS], dtype=np.int64)
    tos = tos_bits | ecn
    return pd.DataFrame({
        "tos": tos,
        "tos_bits": tos_bits,
        "ecn": ecn,
        "priority": np.asarray(tos_to_priority(tos, table=table), dtype=np.int64),
        "band": np.asarray(pfifo_fast_band(tos, table=table), dtype=np.int64),
    })


def tos_band_table(tables: Sequence[str] = ("old", "new")) -> Figure:
    """Draw the TOS → (priority, band) grid for each ``ip_tos2prio`` table side by side.

    Rows are the TOS bits (``tos & 0x1C``), columns the ECN codepoint; each cell shows the
    band (colour: green band 0 is served first, red band 2 last) and the priority. Cells whose
    band differs between the first and the last table get a thick outline: with the old table
    an ECN-capable packet (ECT(0) or CE) with no TOS bits set lands in band 2 behind bulk
    traffic -- the pfifo_fast ECN bug fixed around 2.6.38-3.0.

    Parameters
    ----------
    tables
        Names accepted by :func:`qoslab.hashing.pfifo_fast_band` (``"old"``, ``"new"``).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per table; each holds one ``AxesImage`` and one text per cell; outlined cells
        are Rectangle patches with gid ``"changed"``.

    Examples
    --------
    >>> fig = tos_band_table()
    >>> [ax.get_title() for ax in fig.axes]
    ["ip_tos2prio 'old'", "ip_tos2prio 'new'"]
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Rectangle

    if not tables:
        raise ConfigError("tos_band_table: name at least one table ('old', 'new')")
    frames = [tos_band_frame(t) for t in tables]
    shape = (len(TOS_ROWS), len(ECN_CODEPOINTS))
    first_band = frames[0]["band"].to_numpy().reshape(shape)
    last_band = frames[-1]["band"].to_numpy().reshape(shape)
    changed = first_band != last_band
    with plot_style():
        fig = new_figure(figsize=(4.2 * len(tables) + 0.8, 5.2))
        axes = fig.subplots(1, len(tables), squeeze=False)[0]
        cmap = ListedColormap(_BAND_COLORS)
        for ax, name, frame in zip(axes, tables, frames, strict=True):
            band = frame["band"].to_numpy().reshape(shape)
            prio = frame["priority"].to_numpy().reshape(shape)
            ax.imshow(band, cmap=cmap, vmin=-0.5, vmax=2.5, aspect="auto")
            for i in range(shape[0]):
                for j in range(shape[1]):
                    ax.text(j, i, f"band {band[i, j]}\nprio {prio[i, j]}", ha="center",
                            va="center", fontsize="x-small")
                    if changed[i, j] and len(tables) > 1:
                        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                               edgecolor="black", linewidth=2.5, gid="changed"))
            ax.set_xticks(range(shape[1]), [lbl for _, lbl in ECN_CODEPOINTS], fontsize="small")
            ax.set_yticks(range(shape[0]), [lbl for _, lbl in TOS_ROWS], fontsize="small")
            ax.grid(False)
            ax.set_xlabel("ECN bits")
            ax.set_title(f"ip_tos2prio {name!r}")
        axes[0].set_ylabel("TOS bits (tos & 0x1c)")
        fig.suptitle("pfifo_fast: TOS byte → priority → band (band 0 is dequeued first)")
    return fig
