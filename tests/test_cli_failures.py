"""The command line walked through its failure modes: each ends with ONE line on stderr that
names the file or parameter, a non-zero status, no traceback, no hang, and no file or folder
created (hardening issue's "CLI" list).

Most cases run ``qoslab.cli.main`` in-process (the console script calls it); the cases that
used to hang (FIFO, /dev/zero) and one of each kind run as a real ``python -m qoslab`` child
under a timeout, so a traceback printed by the interpreter itself would be seen too.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pytest

from qoslab.cli import main
from tests.conftest import REPO, fill_disk

CAPTURE = REPO / "data" / "captures" / "tunnel_uploads.pcap"
FLENT = REPO / "tests" / "data" / "flent" / "lab-ping-irtt-loss.flent.gz"


def _files(folder):
    """Hostile inputs by name (small: each case must fail fast)."""
    made = {
        "junk": os.urandom(3000),
        "cut.pcap": b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00",
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "types.json": b'{"format": "qoslab-run", "version": 1, "probes": {"seq": "x"}}',
        "bomb.json.gz": gzip.compress(b" " * (300 << 20), 9),
    }
    for name, data in made.items():
        (folder / name).write_bytes(data)
    (folder / "adir").mkdir()
    os.mkfifo(folder / "fifo")
    return folder


def _walk(argv: list[str], capsys) -> tuple[int, list[str]]:
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err.splitlines()


def _one_line(rc: int, lines: list[str], *names: str) -> str:
    assert rc != 0
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


# (argv with {d} = the test folder, what the line must name)
IN_PROCESS = [
    # outputs: a folder, a missing parent folder (never created), an existing file
    (["sim", "bufferbloat", "-w", "{d}/adir"], ["adir", "is a folder"]),
    (["sim", "bufferbloat", "-w", "{d}/no/such/x.json.gz"], ["no/such", "does not exist"]),
    (["plot", str(CAPTURE), "-o", "{d}/adir"], ["adir", "is a folder"]),
    (["capture", str(CAPTURE), "--csv", "{d}/adir"], ["adir", "is a folder"]),
    (["capture", str(CAPTURE), "--csv", "{d}/junk"], ["junk", "--force"]),
    # parameters
    (["sim", "bufferbloat", "--param", "rate=abc"], ["rate", "'abc'"]),
    (["run", "bufferbloat", "--rate", "abc"], ["rate", "'abc'"]),
    (["sim", "bufferbloat", "--interval", "0"], ["interval", "0.001"]),
    (["sim", "bufferbloat", "--duration", "1e9"], ["duration", "86400"]),
    (["sim", "bufferbloat", "--duration", "86400", "--flood-rate", "100G"],
     ["sim bufferbloat", "MAX_SIM_PACKETS"]),
    (["sim", "sfq_perturb", "--perturb", "-1"], ["perturb", "0 …"]),
    (["hash", "--trials", "-1", str(CAPTURE)], ["trials -1"]),
    (["hash", "--perturb", "nan", str(CAPTURE)], ["perturb nan"]),
    (["hash", "--perturb", "1e-9", str(CAPTURE)], ["MAX_HASH_CHANGES"]),
    (["ping", "-i", "0", "-c", "1", "127.0.0.1"], ["interval"]),
    (["ping", "-c", "-1", "127.0.0.1"], ["--count"]),
    (["ping", "-s", "70000", "-c", "1", "127.0.0.1"], ["size 70000"]),
    (["sim", "no_such_scenario"], ["no_such_scenario"]),
    (["plot", str(FLENT), "--kind", "loss", "--window", "1e-9", "-o", "{d}/loss.png"],
     ["loss window 1e-09 s", "MAX_LOSS_WINDOWS"]),
    # hostile or broken inputs through every reading command
    (["capture", "{d}/junk"], ["junk", "not a capture"]),
    (["capture", "{d}/cut.pcap"], ["cut.pcap", "header"]),
    (["hash", "{d}/cut.pcap"], ["cut.pcap"]),
    (["hash", "{d}/adir"], ["adir"]),
    (["plot", "{d}/junk"], ["junk"]),
    (["plot", "{d}/deep.json"], ["deep.json"]),
    (["plot", "{d}/types.json"], ["types.json"]),
    (["plot", "{d}/bomb.json.gz"], ["bomb.json.gz"]),
    (["ping", "-r", "{d}/deep.json"], ["deep.json"]),
    (["ping", "-r", "{d}/adir"], ["adir"]),
    (["replay", "{d}/cut.pcap", "--scenario", "sfq_perturb"], ["cut.pcap"]),
]


@pytest.mark.parametrize("argv, names", IN_PROCESS,
                         ids=[" ".join(a).replace(str(REPO), "") for a, _ in IN_PROCESS])
def test_each_failure_is_one_line_naming_what_is_wrong(tmp_path, capsys, argv, names):
    folder = _files(tmp_path)
    before = sorted(p.name for p in folder.rglob("*"))
    rc, lines = _walk([a.format(d=folder) for a in argv], capsys)
    _one_line(rc, lines, *names)
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing created or removed


def test_read_only_and_full_output_folders(small_tmpfs, capsys):
    folder, remount_read_only = small_tmpfs
    fill_disk(folder, leave=1000)  # less than a page free: a RUN file will not fit
    rc, lines = _walk(["sim", "sfq_perturb", "--duration", "3", "-w", f"{folder}/run.json.gz"],
                      capsys)
    _one_line(rc, lines, "run.json.gz", "No space left on device")
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]  # nothing half written
    remount_read_only()
    rc, lines = _walk(["sim", "bufferbloat", "-w", f"{folder}/run.json.gz"], capsys)
    _one_line(rc, lines, "run.json.gz", "not writable")


# Run as a real child: these used to hang or die in the interpreter.
CHILD = [
    (["plot", "{d}/fifo"], ["fifo", "not a regular file"]),
    (["ping", "-r", "/dev/zero"], ["/dev/zero", "not a regular file"]),
    (["capture", "{d}/fifo"], ["fifo"]),
    (["hash", "/dev/zero"], ["/dev/zero"]),
    (["plot", "{d}/bomb.json.gz"], ["bomb.json.gz"]),
    (["sim", "bufferbloat", "--duration", "1e9"], ["duration"]),
    (["sim", "bufferbloat", "--duration", "86400", "--interval", "0.001", "--n-pings", "64"],
     ["MAX_SIM_PACKETS"]),
]


@pytest.mark.parametrize("argv, names", CHILD, ids=[" ".join(a) for a, _ in CHILD])
def test_a_real_qoslab_process_ends_promptly_with_one_line(tmp_path, argv, names):
    folder = _files(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "qoslab", *[a.format(d=folder) for a in argv]],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    lines = proc.stderr.splitlines()
    _one_line(proc.returncode, lines, *names)
    assert proc.returncode == 2
