"""Output files: checked before the work, never clobbered, never written through a symlink,
earlier journals never destroyed — through the API and through every writing subcommand."""

from __future__ import annotations

import gzip
import json
import os
import stat

import pytest

import qoslab
from qoslab.cli import main
from qoslab.outputs import (
    JournalExistsError,
    OutputError,
    OutputExistsError,
    check_output,
    create_new,
    open_output,
    write_bytes,
    write_with,
)
from qoslab.runs import RunJournal

from .conftest import load_cut_journal, need_root

VICTIM_TEXT = "precious\n"


@pytest.fixture
def victim(tmp_path):
    """A file an attacker would like qoslab (running as root) to overwrite."""
    path = tmp_path / "victim.conf"
    path.write_text(VICTIM_TEXT)
    return path


def _run():
    return qoslab.Run(probes={"stream": ["s"], "host": ["h"], "tos": [0], "size": [56],
                              "seq": [1], "t_sent": [0.0], "rtt_ms": [1.0], "status": ["ok"],
                              "ttl": [64]})


# ---------------------------------------------------------------- the module itself
def test_create_new_refuses_a_planted_symlink_even_a_dangling_one(tmp_path, victim):
    link = tmp_path / "out"
    link.symlink_to(victim)
    with pytest.raises(OutputExistsError):
        create_new(link)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(OutputExistsError):
        create_new(dangling)
    assert victim.read_text() == VICTIM_TEXT
    assert not (tmp_path / "would-be-created").exists()


def test_write_bytes_never_writes_through_a_symlink_even_with_force(tmp_path, victim):
    link = tmp_path / "out.bin"
    link.symlink_to(victim)
    with pytest.raises(OutputExistsError, match="symlink"):
        write_bytes(link, b"attack")
    write_bytes(link, b"mine", force=True)
    assert victim.read_text() == VICTIM_TEXT
    assert not link.is_symlink() and link.read_bytes() == b"mine"


def test_open_output_with_force_replaces_the_link_not_its_target(tmp_path, victim):
    link = tmp_path / "cap.pcap"
    link.symlink_to(victim)
    with pytest.raises(OutputExistsError):
        open_output(link)
    with open_output(link, force=True) as fh:
        fh.write(b"pcap")
    assert victim.read_text() == VICTIM_TEXT and link.read_bytes() == b"pcap"


def test_check_output_names_every_problem_and_creates_no_folder(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "such" / "x.json.gz")
    assert not (tmp_path / "no").exists()
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    (tmp_path / "x").write_text("")
    with pytest.raises(OutputExistsError, match="--force"):
        check_output(tmp_path / "x")
    assert check_output(tmp_path / "x", force=True) == tmp_path / "x"


def test_read_only_folder_is_refused_before_work(small_tmpfs):
    folder, remount_read_only = small_tmpfs
    remount_read_only()
    with pytest.raises(OutputError, match="not writable"):
        check_output(folder / "x")


def test_write_with_leaves_no_temporary_file_when_the_writer_fails(tmp_path):
    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        write_with(tmp_path / "t.csv", boom)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_is_one_clear_error_and_leaves_nothing_half_written(small_tmpfs):
    folder, _ = small_tmpfs
    big = qoslab.Run(probes={"stream": ["s"] * 20000, "host": ["h"] * 20000, "tos": [0] * 20000,
                             "size": [56] * 20000, "seq": list(range(20000)),
                             "t_sent": [i * 0.1 for i in range(20000)],
                             "rtt_ms": [1.0 + (i % 977) / 7 for i in range(20000)],
                             "status": ["ok"] * 20000, "ttl": [64] * 20000})
    with pytest.raises(OutputError, match="No space left on device"):
        big.save(folder / "big.json.gz")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_files_get_the_mode_the_umask_gives(tmp_path, umask):
    """Outputs are readable as any new file would be (a RUN file used to be 0600 whatever the
    umask: written by root into a shared folder, nobody else could read it)."""
    old = os.umask(umask)
    try:
        write_bytes(tmp_path / "a.bin", b"x")
        write_with(tmp_path / "b.csv", lambda tmp: tmp.write_text("x"))
        with create_new(tmp_path / "c.bin") as fh:
            fh.write(b"x")
        with RunJournal(tmp_path / "d.json.gz"):
            pass
    finally:
        os.umask(old)
    for name in ("a.bin", "b.csv", "c.bin", "d.json.gz.partial"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


# ---------------------------------------------------------------- RUN files and journals
def test_run_save_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "r.json.gz"
    _run().save(path)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        _run().save(path)
    assert path.read_bytes() == before
    _run().save(path, force=True)


def test_journal_through_a_planted_symlink_is_refused_and_force_keeps_it_aside(tmp_path,
                                                                              victim):
    out = tmp_path / "r.json.gz"
    planted = tmp_path / "r.json.gz.partial"
    planted.symlink_to(victim)
    with pytest.raises(JournalExistsError, match="earlier run's journal"):
        RunJournal(out, {})
    with pytest.warns(UserWarning, match="kept as"):
        j = RunJournal(out, {}, force=True)
    j.add_event(0.0, "note", "x")
    j.finish(_run())
    assert victim.read_text() == VICTIM_TEXT
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("r.json.gz.partial.")]
    assert len(kept) == 1 and kept[0].is_symlink()
    assert qoslab.load(out).probes["rtt_ms"].tolist() == [1.0]


def test_a_crashed_runs_journal_is_never_wiped(tmp_path):
    out = tmp_path / "r.json.gz"
    j = RunJournal(out, {"interval": 0.2})
    j.add_probe(stream="s", host="h", tos=0, size=56, seq=1, t_sent=0.0, rtt_ms=1.0,
                status="ok", ttl=64)
    j.close()  # the process "died": the journal stays
    crashed = j.journal_path.read_bytes()
    with pytest.raises(JournalExistsError):
        RunJournal(out, {})
    assert j.journal_path.read_bytes() == crashed
    with pytest.warns(UserWarning) as caught:
        RunJournal(out, {}, force=True).close()
    kept = str(caught[0].message).rsplit(" ", 1)[-1]
    assert open(kept, "rb").read() == crashed
    assert len(qoslab.load(kept).probes) == 1


# ---------------------------------------------------------------- subcommands
def test_ping_w_refuses_planted_symlinks_and_existing_files(tmp_path, victim, capsys):
    out = tmp_path / "p.json.gz"
    (tmp_path / "p.json.gz.partial").symlink_to(victim)
    args = ["ping", "127.0.0.1", "-c", "2", "-i", "0.05", "-q", "--no-plot", "-w", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "earlier run's journal" in err
    assert victim.read_text() == VICTIM_TEXT and not out.exists()
    with pytest.warns(UserWarning):
        assert main([*args, "--force"]) == 0
    assert victim.read_text() == VICTIM_TEXT
    assert len(qoslab.load(out).probes) == 2
    assert main(args) == 2  # now the RUN file exists
    assert "exists" in capsys.readouterr().err


def test_outputs_are_checked_before_any_work(tmp_path, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    cases = [
        ["ping", "127.0.0.1", "-c", "50", "-i", "0.2", "-q", "--no-plot", "-w", str(folder)],
        ["ping", "127.0.0.1", "-c", "50", "-i", "0.2", "-q", "--no-plot", "-w",
         str(tmp_path / "missing" / "x.json.gz")],
        ["ping", "127.0.0.1", "-c", "50", "-i", "0.2", "-q", "-o", str(folder)],
        ["sim", "bufferbloat", "-w", str(folder)],
        ["sim", "bufferbloat", "-w", str(tmp_path / "ok.json.gz"), "-o",
         str(tmp_path / "missing" / "f.png")],
    ]
    import time

    for argv in cases:
        t0 = time.monotonic()
        assert main(argv) == 2, argv
        assert time.monotonic() - t0 < 3, f"{argv} worked before failing"
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("folder" in err), err
    assert not (tmp_path / "missing").exists()
    assert not (tmp_path / "ok.json.gz").exists()


def test_plot_and_capture_outputs_refuse_overwrite(tmp_path, capsys):
    run = tmp_path / "r.json.gz"
    _run().save(run)
    png = tmp_path / "f.png"
    png.write_bytes(b"mine")
    assert main(["plot", str(run), "-o", str(png)]) == 2
    assert png.read_bytes() == b"mine" and "--force" in capsys.readouterr().err
    assert main(["plot", str(run), "-o", str(png), "--force"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    csv = tmp_path / "p.csv"
    csv.write_text("mine")
    pcap = qoslab.data_path("captures/tunnel_uploads.pcap")
    assert main(["capture", str(pcap), "--csv", str(csv)]) == 2
    assert csv.read_text() == "mine"
    assert main(["capture", str(pcap), "--csv", str(csv), "--force"]) == 0
    assert csv.read_text().startswith("time,")


def test_sim_w_writes_a_gzip_run_and_refuses_to_clobber(tmp_path, capsys):
    out = tmp_path / "s.json.gz"
    argv = ["sim", "bufferbloat", "--duration", "2", "--switch-at", "none", "-w", str(out)]
    assert main(argv) == 0
    with gzip.open(out) as fh:
        assert json.load(fh)["format"] == "qoslab-run"
    mtime = out.stat().st_mtime_ns
    assert main(argv) == 2
    assert out.stat().st_mtime_ns == mtime


def test_lab_capture_through_a_planted_symlink_is_refused(tmp_path, victim):
    need_root("network namespaces")
    from qoslab.lab import Testbed

    pcap = tmp_path / "c.pcap"
    pcap.symlink_to(victim)
    with Testbed(ipv6=False) as tb:
        with pytest.raises(OutputExistsError):
            tb.capture(pcap)
        cap = tb.capture(pcap, force=True)
        tb.ns("client").run(["ping", "-c", "2", "-i", "0.1", tb.addr("server")])
        packets = cap.read()
    assert victim.read_text() == VICTIM_TEXT
    assert not pcap.is_symlink()
    assert (packets["icmp_type"] == 8).sum() == 2


def test_disk_full_during_a_ping_run_is_one_error_and_the_journal_keeps_its_probes(
        small_tmpfs, capsys):
    folder, _ = small_tmpfs
    out = folder / "p.json.gz"
    code = main(["ping", "127.0.0.1", "-i", "0.002", "-c", "100000", "-q", "--no-plot",
                 "-w", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "keeps the" in err
    kept = int(err.split("keeps the ")[1].split(" records")[0])
    run = load_cut_journal(folder / "p.json.gz.partial")  # a torn last line is dropped
    assert kept - 1 <= len(run.probes) <= kept and len(run.probes) > 100


def test_a_dataset_folder_replaces_only_its_own_kind_and_never_follows_a_symlink(tmp_path):
    """Folders of parts (Parquet datasets) follow the files' rules: refused without force;
    with force a dataset (its marker file) or a file/symlink of that name is replaced, the
    symlink's target untouched; a folder of something else never is."""
    from qoslab.outputs import check_folder_output, publish_folder, temp_folder_beside

    def write(out, force=False, text="new"):
        out = check_folder_output(out, force=force, what="dataset", marker="m.json")
        tmp = temp_folder_beside(out)
        (tmp / "m.json").write_text(text)
        return publish_folder(tmp, out, force=force, what="dataset", marker="m.json")

    out = write(tmp_path / "d", text="first")
    with pytest.raises(OutputExistsError, match="--force"):
        write(out)
    write(out, force=True, text="second")
    assert (out / "m.json").read_text() == "second"
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    (tmp_path / "link").symlink_to(target)
    write(tmp_path / "link", force=True)
    assert not (tmp_path / "link").is_symlink() and (target / "keep").read_text() == "x"
    (tmp_path / "notes").mkdir()
    with pytest.raises(OutputError, match="not a qoslab dataset"):
        write(tmp_path / "notes", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "link", "notes", "target"]
