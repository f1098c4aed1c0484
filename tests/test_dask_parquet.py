"""Parquet datasets of capture sets (by file and hour) and ``qoslab capture DIR --parquet``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import qoslab
from qoslab.engines.captures import compute_packets, read_captures
from qoslab.engines.parquet import MANIFEST, read_packets, write_packets
from qoslab.errors import ConfigError, RunFormatError
from qoslab.outputs import OutputError, OutputExistsError
from tests.capture_sets import write_set

TUNNELS = qoslab.data_path("captures/tunnel_uploads.pcap")


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    """Three files over three hours of UTC time (2 h 30 min of traffic), one in a subfolder,
    and the bundled tunnel capture."""
    folder = tmp_path_factory.mktemp("captures")
    write_set(folder / "gw", 3, 3000, seed=4, seconds=9000.0)
    shutil.copy(TUNNELS, folder / "tunnels.pcap")
    return folder


@pytest.fixture(scope="module")
def packets(captures):
    return read_captures(captures, chunk_packets=1000)


def test_round_trip_pandas_and_dask(packets, tmp_path):
    out = write_packets(packets, tmp_path / "ds", rows_per_part=1000)
    pd.testing.assert_frame_equal(read_packets(out), packets)
    dk = read_packets(out, engine="dask")
    assert dk.npartitions == 3 * 3 + 3 and dk.known_divisions
    pd.testing.assert_frame_equal(compute_packets(dk), packets)
    assert list(dk.dtypes.astype(str)) == list(packets.dtypes.astype(str))
    some = read_packets(out, columns=["file", "frame", "src", "time"])
    pd.testing.assert_frame_equal(some, packets[["file", "frame", "src", "time"]])
    with pytest.raises(ConfigError, match="no column"):
        read_packets(out, columns=["nope"])


def test_partitioned_by_file_and_hour(packets, tmp_path):
    out = write_packets(packets, tmp_path / "ds", rows_per_part=1000)
    hours = sorted({p.name for p in out.glob("file=*/hour=*")})
    expected = sorted({f"hour={h:%Y-%m-%dT%H}" for h in packets["time"].dt.floor("h")})
    assert hours == expected and len(hours) == 4  # 3 hours of the gateway + the tunnel file's
    assert sorted(p.name for p in out.glob("file=*")) == [
        "file=gw%2Fring_1.pcap", "file=gw%2Fring_2.pcap", "file=gw%2Fring_3.pcap",
        "file=tunnels.pcap"]
    manifest = json.loads((out / MANIFEST).read_text())
    spanning = [p for p in manifest["pieces"] if len(p["parts"]) > 1]
    assert spanning, "a chunk crossing an hour boundary is split into two parts"
    # Parquet readers that know nothing of qoslab see the Hive partitions
    plain = pd.read_parquet(out)
    assert len(plain) == len(packets)
    assert set(plain["file"].astype(str)) == set(packets["file"].astype(str))
    assert plain["hour"].nunique() == len(hours)


def test_dask_frame_writes_in_parallel(captures, packets, tmp_path, dask_client):
    dk = read_captures(captures, engine="dask", chunk_packets=1000)
    out = write_packets(dk, tmp_path / "ds")
    pd.testing.assert_frame_equal(compute_packets(read_packets(out, engine="dask")), packets)


def test_outputs_are_never_clobbered(packets, tmp_path):
    out = write_packets(packets.iloc[:100], tmp_path / "ds")
    with pytest.raises(OutputExistsError, match="pass --force"):
        write_packets(packets, out)
    write_packets(packets, out, force=True)
    assert len(read_packets(out)) == len(packets)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="not a qoslab Parquet dataset"):
        write_packets(packets, tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    target = tmp_path / "target"
    target.mkdir()
    (target / MANIFEST).write_text("{}")
    (tmp_path / "link").symlink_to(target)
    write_packets(packets.iloc[:10], tmp_path / "link", force=True)  # the link goes, not target
    assert (target / MANIFEST).read_text() == "{}"
    assert not (tmp_path / "link").is_symlink() and len(read_packets(tmp_path / "link")) == 10
    with pytest.raises(OutputError, match="does not exist"):
        write_packets(packets, tmp_path / "no" / "ds")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_bad_datasets_are_refused(packets, tmp_path):
    out = write_packets(packets.iloc[:2000], tmp_path / "ds", rows_per_part=500)
    with pytest.raises(RunFormatError, match="not a qoslab PACKETS dataset"):
        read_packets(tmp_path)
    manifest = json.loads((out / MANIFEST).read_text())
    bad = dict(manifest, pieces=[dict(manifest["pieces"][0], parts=["../../etc/passwd"])])
    (out / MANIFEST).write_text(json.dumps(bad))
    with pytest.raises(RunFormatError, match="outside the dataset"):
        read_packets(out)
    (out / MANIFEST).write_text(json.dumps(dict(manifest, version=99)))
    with pytest.raises(RunFormatError, match="version 99"):
        read_packets(out)
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(RunFormatError, match="not JSON"):
        read_packets(out)
    (out / MANIFEST).write_text(json.dumps(manifest))
    os.unlink(out / manifest["pieces"][1]["parts"][0])
    with pytest.raises(RunFormatError, match="cannot read"):
        read_packets(out)


def test_single_capture_parquet_file_reads_back(tmp_path):
    qoslab_cli([str(TUNNELS), "--parquet", str(tmp_path / "one.parquet")])
    got = read_packets(tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(got, qoslab.read_capture(TUNNELS))


def qoslab_cli(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qoslab", "capture", *args],
                          capture_output=True, text=True, check=check, timeout=300)


def test_cli_folder_to_dataset(captures, packets, tmp_path):
    out = tmp_path / "ds"
    run = qoslab_cli([str(captures), "--parquet", str(out), "--chunk-packets", "1000",
                      "--top", "5"])
    assert "4 captures: 11913 packets" in run.stdout
    assert "flows (inner headers), 5 largest:" in run.stdout
    assert "reading" in run.stderr  # the progress bar
    pd.testing.assert_frame_equal(read_packets(out), packets)
    again = qoslab_cli([str(captures), "--parquet", str(out)], check=False)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
    csv = qoslab_cli([str(captures), "--csv", str(tmp_path / "x.csv")], check=False)
    assert csv.returncode == 2 and "--parquet OUT/" in csv.stderr


def test_cli_dask_engine_same_output(captures, packets, tmp_path):
    pandas_run = qoslab_cli([str(captures / "gw" / "*.pcap"), "--top", "0",
                             "--chunk-packets", "700"])
    dask_run = qoslab_cli([str(captures / "gw" / "*.pcap"), "--top", "0", "--engine", "dask",
                           "--workers", "2", "--chunk-packets", "700",
                           "--parquet", str(tmp_path / "ds")])
    assert dask_run.stdout.startswith(pandas_run.stdout)
    assert "Completed" in dask_run.stderr  # Dask's progress bar
    expected = read_captures(str(captures / "gw" / "*.pcap"))
    pd.testing.assert_frame_equal(read_packets(tmp_path / "ds"), expected)


def test_cli_on_a_running_cluster(captures, dask_client, tmp_path):
    """--scheduler: the work goes to an existing cluster; one FILE is a set of one."""
    one = captures / "gw" / "ring_2.pcap"
    run = qoslab_cli([str(one), "--engine", "dask", "--scheduler",
                      dask_client.scheduler.address, "--parquet", str(tmp_path / "ds")])
    assert "ring_2.pcap: 3000 packets" in run.stdout and "1 capture: 3000 packets" in run.stdout
    pd.testing.assert_frame_equal(read_packets(tmp_path / "ds"), read_captures(one))


def test_cli_globs_are_sets_even_when_they_match_nothing_or_only_through_stars(tmp_path,
                                                                              capsys):
    """A pattern is a capture set: one matching nothing says so (not 'Parquet file OUT:
    cannot write'), and ``**`` reaches files at every depth."""
    from qoslab.cli import main

    deep = tmp_path / "day" / "eth0" / "late"
    deep.mkdir(parents=True)
    shutil.copy(TUNNELS, tmp_path / "day" / "top.pcap")
    shutil.copy(TUNNELS, deep / "deep.pcap")
    assert main(["capture", str(tmp_path / "day" / "nomatch*.pcap"), "--parquet",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nomatch*.pcap: no file matches this pattern" in err and "cannot write" not in err
    assert not (tmp_path / "out").exists()
    for option in ("--parquet", "--csv"):  # one missing file: not a write error either
        assert main(["capture", str(tmp_path / "day" / "gone.pcap"), option,
                     str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert "no capture file" in err and "gone.pcap" in err and "cannot write" not in err
    assert main(["capture", str(tmp_path / "day" / "**" / "*.pcap"), "--top", "0",
                 "--parquet", str(tmp_path / "out")]) == 0
    assert sorted(read_packets(tmp_path / "out")["file"].cat.categories) == [
        "eth0/late/deep.pcap", "top.pcap"]
