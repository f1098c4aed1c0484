"""qoslab.hashing against the kernel's own code, compiled (tools/kernel-oracle).

For every oracle era the kernel functions extracted verbatim from that tree (flow dissector,
``__skb_get_hash``, siphash/jhash, cls_flow, ``sfq_classify``, ``fq_codel_classify``,
``prio2band``/``ip_tos2prio``) are compiled with gcc and run on the very pcap bytes that
``qoslab.read_capture`` reads; every check must agree on every packet. The default run draws
2,000 random packets per era; ``QOSLAB_ORACLE_PACKETS=100000`` runs a larger one.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need_tool

ORACLE = Path(__file__).resolve().parents[1] / "tools" / "kernel-oracle"
sys.path.insert(0, str(ORACLE))

import driver  # noqa: E402
import extract  # noqa: E402
from eras import ERAS, TREES  # noqa: E402
from packets import MAC, write_pcap  # noqa: E402

PACKETS = int(os.environ.get("QOSLAB_ORACLE_PACKETS", "2000"))


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    need_tool("gcc")
    return tmp_path_factory.mktemp("oracle-build")


@pytest.mark.parametrize("era", list(driver.ERA_PROFILES))
def test_qoslab_agrees_with_the_compiled_kernel(era, build_dir):
    result = driver.run_era(era, PACKETS, seed=1, work=build_dir)
    assert result.packets == PACKETS
    # what is not modelled is excluded by name only, and every exclusion is listed
    assert set(result.excluded) == set(driver.ERA_PROFILES[era].exclude) <= set(driver.EXCLUSIONS)
    assert result.mismatches == dict.fromkeys(result.mismatches, 0), result.examples


def _tcp4(src: str, dst: str, sport: int, dport: int) -> bytes:
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    tcp = struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x18, 512, 0, 0)
    return MAC + b"\x08\x00" + ip + tcp


KEY = bytes(range(16))


def _worked_flow(build_dir, tmp_path, era: str, seed_words: tuple[int, int]) -> list[list[int]]:
    """What ``era``'s kernel computes for TCP 192.168.1.10:12345 -> 10.0.0.1:80 and back:
    skb hash, SFQ bucket (1024), fq_codel index (1024 flows) and the class minor of a cls_flow
    hash filter on the five plain keys (divisor 1024, baseclass 1:1), seeded alike, where the
    era has them."""
    ep = driver.ERA_PROFILES[era]
    write_pcap(tmp_path / "f.pcap", [_tcp4("192.168.1.10", "10.0.0.1", 12345, 80),
                                     _tcp4("10.0.0.1", "192.168.1.10", 80, 12345)])
    (tmp_path / "meta").write_text("0 0\n0 0\n")
    w = " ".join(f"{x:x}" for x in seed_words)
    jobs = [f"hashrnd {w}"] + (["skbhash"] if ep.skb_hash else []) + [f"sfq 400 0 ffffffff {w}"]
    if ep.fq_codel:
        jobs.append(f"fqcodel 400 0 ffffffff {w}")
    if ep.cls_flow:  # the doctests' filter: hash src,dst,proto,proto-src,proto-dst % 1024
        jobs.append(f"flow 1 1f 400 10001 {seed_words[0] & 0xFFFFFFFF:x} 0 0 0 0")
    (tmp_path / "jobs").write_text("\n".join(jobs) + "\n")
    exe = driver.build(era, build_dir)
    out = subprocess.run([str(exe), str(tmp_path / "f.pcap"), str(tmp_path / "meta"),
                          str(tmp_path / "jobs")], capture_output=True, text=True, check=True)
    return [[int(x) for x in line.split()] for line in out.stdout.splitlines()]


@pytest.mark.parametrize("era", list(driver.ERA_PROFILES))
def test_worked_flow_matches_every_kernel(era, build_dir, tmp_path):
    """The flow of the doctests and of tests/test_hashing.py's worked examples, per era."""
    import qoslab
    from qoslab.hashing import FlowClassifier, FqCodel, skb_hash

    ep = driver.ERA_PROFILES[era]
    if ep.seed_kind == "siphash":
        seeds = [((int.from_bytes(KEY[:8], "little"), int.from_bytes(KEY[8:], "little")), KEY)]
    else:
        seeds = [((s, 0), s) for s in ((0, 17) if ep.seed_kind == "fold" else (0, 0x12345678))]
    pk = qoslab.read_capture(_write(tmp_path))
    for words, seed in seeds:
        kernel = _worked_flow(build_dir, tmp_path, era, words)
        ours = [skb_hash(pk, seed, ep.profile).tolist()] if ep.skb_hash else []
        ours.append(qoslab.Sfq(profile=ep.profile).bucket(pk, seed).tolist())
        if ep.fq_codel:
            ours.append(FqCodel(flows=1024, profile=ep.profile).index(pk, seed).tolist())
        if ep.cls_flow:
            fc = FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024,
                                profile=ep.profile)
            ours.append(fc.classify(pk, words[0] & 0xFFFFFFFF).tolist())
        assert [list(x) for x in zip(*ours, strict=True)] == kernel, (era, words)


def _write(tmp_path):
    write_pcap(tmp_path / "w.pcap", [_tcp4("192.168.1.10", "10.0.0.1", 12345, 80),
                                     _tcp4("10.0.0.1", "192.168.1.10", 80, 12345)])
    return tmp_path / "w.pcap"


def test_readme_worked_flow_matches_the_6_1_kernel(build_dir, tmp_path):
    """TCP 192.168.1.10:12345 -> 10.0.0.1:80 and back, key 00..0f (the README's flow)."""
    k = (int.from_bytes(KEY[:8], "little"), int.from_bytes(KEY[8:], "little"))
    got = _worked_flow(build_dir, tmp_path, "6.1.20", k)
    assert [row[:3] for row in got] == [[0xAA09F22D, 557, 680]] * 2


def test_readme_tour_hashes_match_the_kernels(build_dir, tmp_path):
    """The README's tour on the bundled tunnelled capture: its cls_flow filter (default
    profile 5.18+) against 6.1.20, its classic SFQ against 2.6.32."""
    import qoslab

    path = qoslab.data_path("captures/tunnel_uploads.pcap")
    # the harness has no route and no socket: addr_fold() of them is 0 (README "Packet model")
    packets = qoslab.read_capture(path).assign(route_token=0, sk_token=0)
    fc = qoslab.FlowClassifier.from_tc(
        "tc filter add dev eth0 parent 1: protocol ip prio 1 flow hash "
        "keys src,dst,proto,proto-src,proto-dst divisor 1024 perturb 10")
    (tmp_path / "meta").write_text("0 0\n" * len(packets))
    runs = {"6.1.20": "hashrnd 0 0\nflow 1 1f 400 10001 1234 0 0 0 0\n",
            "2.6.32": "hashrnd 0 0\nsfq 400 0 ffffffff 0 0\n"}
    kernel = {}
    for era, jobs in runs.items():
        (tmp_path / "jobs").write_text(jobs)
        out = subprocess.run([str(driver.build(era, build_dir)), str(path),
                              str(tmp_path / "meta"), str(tmp_path / "jobs")],
                             capture_output=True, text=True, check=True)
        kernel[era] = [int(line) for line in out.stdout.split()]
    assert len(kernel["6.1.20"]) == len(packets) > 10
    assert fc.classify(packets, hashrnd=0x1234).tolist() == kernel["6.1.20"]
    assert qoslab.Sfq(profile="classic-2.6.3x").bucket(packets, seed=0).tolist() == \
        kernel["2.6.32"]


def test_extracted_code_carries_its_provenance_and_licence():
    assert (ORACLE / "COPYING").is_file()
    assert "GPL-2.0" in (ORACLE / "COPYING").read_text()
    for era, spec in ERAS.items():
        tree = TREES[spec.tree]
        files = [p for p in (ORACLE / "kernel" / era).rglob("*") if p.is_file()]
        assert {str(p.relative_to(ORACLE / "kernel" / era)) for p in files} == \
            {piece.path for piece in spec.pieces}
        for path in files:
            text = path.read_text()
            assert text.startswith("/* SPDX-License-Identifier: GPL-2.0 */")
            pieces = re.findall(r"/\* qoslab-oracle: (\S+) @ ([0-9a-f]{40}): (\S+), lines "
                                r"(\d+)-(\d+)", text)
            assert pieces, path
            for repo, commit, file, first, last in pieces:
                assert (repo, commit) == (tree.repo, tree.commit)
                assert file == str(path.relative_to(ORACLE / "kernel" / era))
                assert int(first) <= int(last)


def test_extraction_finds_definitions_verbatim():
    src = ("/* c */\nstatic inline u32\nfoo(int a,\n    int b)\n{\n\tif (a) { return b; }\n"
           "\treturn '}';\n}\n\n#define BAR(x) \\\n\t((x) + 1)\nstruct s {\n\tint a;\n};\n"
           "static const u8 tbl[4] = {\n\t1, 2, 3, 4\n};\n")
    lines = src.split("\n")
    assert extract.find_definition(src, "foo") == (1, 7)
    assert extract.find_definition(src, "#define BAR") == (9, 10)
    assert extract.find_definition(src, "struct s") == (11, 13)
    assert extract.find_definition(src, "tbl") == (14, 16)
    assert lines[7] == "}"
    with pytest.raises(LookupError):
        extract.find_definition(src, "missing")


def test_oracle_is_not_part_of_the_package():
    import tomllib

    conf = tomllib.loads((ORACLE.parents[1] / "pyproject.toml").read_text())
    assert conf["tool"]["setuptools"]["packages"]["find"]["include"] == ["qoslab*"]
    data = conf["tool"]["setuptools"]["package-data"]["qoslab"]
    assert not any("kernel" in d or "tools" in d for d in data)
    import qoslab

    pkg = Path(qoslab.__file__).parent
    assert not any("qoslab-oracle" in p.read_text(errors="replace")
                   for p in pkg.rglob("*") if p.suffix in (".py", ".c", ".h"))
