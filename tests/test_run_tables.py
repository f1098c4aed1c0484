"""A RUN's per-packet tables in a Parquet dataset (qoslab/io/run_tables.py): written part by
part, published complete, read back lazily, refused when they do not match."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

import qoslab
from qoslab.errors import ProbeLimitError, RunFormatError
from qoslab.io.run_tables import MANIFEST, DatasetRun, read_table
from qoslab.qdiscs import Pfifo

CAPTURE = qoslab.data_path("captures/tunnel_uploads.pcap")


@pytest.fixture
def dataset(tmp_path):
    """A replay with its tables on disk (parts of ~400 rows), saved as a RUN beside them."""
    pk = qoslab.read_capture(CAPTURE).iloc[:1500]
    run = qoslab.replay(pk, Pfifo(limit=8), rate=4e5, chunk_packets=400,
                        per_packet=tmp_path / "tables")
    run.save(tmp_path / "run.json.gz")
    return tmp_path, run, qoslab.replay(pk, Pfifo(limit=8), rate=4e5)


def test_load_reads_the_tables_when_first_used(dataset):
    folder, run, whole = dataset
    back = qoslab.load(folder / "run.json.gz")
    assert isinstance(back, DatasetRun) and back._tables == {}  # nothing read yet
    assert "1500 decisions" in repr(back) and back.rows("probes") == 1500
    assert back.streams == whole.streams
    assert back._tables.keys() == {"probes"}
    pd.testing.assert_frame_equal(back.decisions, whole.decisions)
    # the RUN file itself holds no per-packet rows
    with pytest.raises(ProbeLimitError, match="iter_table"):
        read_table(folder / "tables", "decisions", limit=1000)
    assert sum(len(f) for f in back.iter_table("probes", columns=["rtt_ms"])) == 1500


def test_an_unfinished_or_tampered_dataset_is_refused(dataset):
    folder, run, _ = dataset
    manifest = folder / "tables" / MANIFEST
    doc = json.loads(manifest.read_text())
    doc["tables"]["decisions"]["parts"][0]["path"] = "../run.json.gz"
    manifest.write_text(json.dumps(doc))
    with pytest.raises(RunFormatError, match="expected a path under decisions/"):
        qoslab.load(folder / "run.json.gz")
    doc["tables"]["decisions"]["parts"][0]["path"] = "decisions/part-000000.parquet"
    doc["tables"]["decisions"]["parts"][0]["rows"] += 1
    manifest.write_text(json.dumps(doc))
    with pytest.raises(RunFormatError, match="rows, the manifest says"):
        _ = qoslab.load(folder / "run.json.gz").decisions
    part = folder / "tables" / "probes" / "part-000001.parquet"
    part.unlink()
    os.symlink(folder / "tables" / "probes" / "part-000000.parquet", part)
    with pytest.raises(RunFormatError, match="part-000001.parquet: cannot read"):
        _ = qoslab.load(folder / "run.json.gz").probes
    manifest.unlink()  # a replay that never finished
    with pytest.raises(RunFormatError, match="unfinished"):
        qoslab.load(folder / "run.json.gz")


def test_a_part_holding_more_rows_than_the_manifest_says_is_not_read(dataset, monkeypatch):
    """The row count is taken from the Parquet footer before any row is read: a few hundred
    KB of Parquet can hold 30 M repeated values (~1 GB read, for a manifest saying 1 row)."""
    import pyarrow.parquet as pq

    folder, _, _ = dataset
    manifest = folder / "tables" / MANIFEST
    doc = json.loads(manifest.read_text())
    doc["tables"]["probes"]["parts"][0]["rows"] = 1
    manifest.write_text(json.dumps(doc))

    def never(*args, **kwargs):
        raise AssertionError("rows read before the row count was checked")

    monkeypatch.setattr(pq.ParquetFile, "read", never)
    monkeypatch.setattr(pq, "read_table", never)
    with pytest.raises(RunFormatError,
                       match=r"part-000000.parquet: [0-9]+ rows, the manifest says 1$"):
        _ = qoslab.load(folder / "run.json.gz").probes
