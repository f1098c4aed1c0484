"""Engines for capture sets larger than one process: the same analysis on pandas or on Dask.

A *capture set* is a folder, a glob or a list of pcap/pcapng files read as one PACKETS table
(:func:`read_captures`), with two columns more (:data:`qoslab.schema.CAPTURE_SET`): ``file``,
the capture's path relative to the set's folder, and ``frame``, the frame number in that file
(from 1, as Wireshark numbers frames). ``t`` counts from the earliest packet of the whole set;
rows are in file order (names compared with their numbers as numbers, so ``cap.pcap2`` comes
before ``cap.pcap10``), then frame order.

``engine="pandas"`` reads everything into one DataFrame. ``engine="dask"`` returns a
``dask.dataframe.DataFrame`` with one partition per capture chunk (``chunk_packets`` frames of
one file), read lazily by whichever Dask scheduler is active (a ``distributed.Client``, a
cluster many machines share, or Dask's local threads). The analysis functions take either:
:func:`qoslab.capture.flows`, :func:`qoslab.capture.echo_rtts`,
:meth:`qoslab.FlowClassifier.classify`, :meth:`qoslab.Sfq.bucket` and
:func:`qoslab.hashing.sharing` run partition by partition and combine (module
:mod:`.dask_analysis`) — the pandas functions are the one implementation of each computation,
the Dask engine maps them over partitions and combines their partial results.

:func:`write_packets` / ``qoslab capture DIR --parquet OUT/`` store a set as a Parquet dataset
partitioned by file and hour; :func:`read_packets` reads it back with the same dtypes.

The Dask engine is an optional dependency group: ``pip install 'qoslab[dask]'``.
"""

from __future__ import annotations

import importlib

__all__ = ["read_captures", "read_packets", "write_packets", "compute_packets", "progress",
           "ENGINES"]

#: Engines accepted by :func:`read_captures` and :func:`read_packets`.
ENGINES = ("pandas", "dask")

_LAZY = {
    "read_captures": "captures",
    "compute_packets": "captures",
    "read_packets": "parquet",
    "write_packets": "parquet",
    "progress": "diagnostics",
}


def __getattr__(name: str):
    # Submodules are imported on first use: the capture and hashing layers import
    # qoslab.engines.dispatch at start-up, which must not pull in pandas I/O or Dask.
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
