"""Hostile and broken configuration files: an experiment's tree (``qoslab sim|run|lab custom
--tree FILE``) and ``qoslab replay --tc @FILE``.

Each case used to end in a traceback (RecursionError, TypeError, UnicodeDecodeError), read
forever (``/dev/zero``), block (a FIFO), expand a few kilobytes of YAML aliases into billions of
values, or keep nonsense (``t: NaN``, ``at: [1, 2]``). Every outcome is now a result or one line
naming the file and field, with a non-zero status. ``QOSLAB_FUZZ_EXAMPLES=N`` runs the mutation
property longer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qoslab.cli import main
from qoslab.errors import QoslabError
from qoslab.scenarios import get
from qoslab.scenarios.custom import read_experiment_file
from tests.conftest import JSON_VALUES, REPO, json_paths

CAPTURE = REPO / "data" / "captures" / "tunnel_uploads.pcap"
EXAMPLES = int(os.environ.get("QOSLAB_FUZZ_EXAMPLES", "40"))

GOOD = {"qdiscs": [{"kind": "htb", "handle": "1:", "options": {"default": 10}},
                   {"kind": "pfifo", "parent": "1:10", "handle": "10:", "options": {"limit": 5}}],
        "classes": [{"classid": "1:10", "parent": "1:", "options": {"rate": "2mbit"}}],
        "changes": [{"t": 1, "tc": "qdisc change dev DEV parent 1:10 handle 10: pfifo limit 9"}]}


def _laughs() -> str:
    text = "description:\n  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, 12):
        text += f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    return text + "qdiscs: [{kind: pfifo, options: {limit: 5}}]\n"


# file name, content, what the one line must say
CASES = [
    ("deep.yaml", "qdiscs: " + "[" * 20_000 + "]" * 20_000, "nested deeper"),
    ("deep.json", '{"qdiscs": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper"),
    ("nested.json", '{"qdiscs": ' + "[" * 40 + "]" * 40 + "}", "nested more than 32"),
    ("laughs.yaml", _laughs(), "more than 1000000 values"),
    ("kind.json", '{"qdiscs": [{"kind": ["x"]}]}', "qdiscs[0].kind: expected a string"),
    ("sexagesimal.yaml", "qdiscs: [{kind: htb, handle: '1:'}, {kind: pfifo, parent: 1:10}]",
     "qdiscs[1].parent: expected a string, got 70 (YAML reads an unquoted 1:10"),
    ("nan.json", '{"qdiscs": [{"kind": "pfifo"}], "changes": [{"t": NaN, "tc": "x"}]}',
     "changes[0].t: expected seconds, got nan"),
    ("inf.json", '{"qdiscs": [{"kind": "pfifo"}], "changes": [{"t": 1e400, "tc": "x"}]}',
     "changes[0].t: expected seconds, got inf"),
    ("tc.json", '{"qdiscs": [{"kind": "pfifo"}], "changes": [{"t": 1, "tc": 5}]}',
     "changes[0].tc: expected a tc command"),
    ("changes.json", '{"qdiscs": [{"kind": "pfifo"}], "changes": 5}', "changes: expected a list"),
    ("at.yaml", "qdiscs: [{kind: pfifo}]\nat: [1, 2]\n", "at: expected one of router, client"),
    ("binary.tc", b"\xc7\xff" + os.urandom(200), "is not UTF-8 text (byte 0)"),
    ("big.tc", b"#" * ((4 << 20) + 1), "byte limit"),
    ("python.yaml", "qdiscs: [{kind: !!python/object/apply:os.system ['echo hi']}]",
     "not valid YAML"),
]


@pytest.mark.parametrize("name, content, message", CASES, ids=[c[0] for c in CASES])
def test_each_broken_experiment_file_is_one_line_naming_it(tmp_path, capsys, name, content,
                                                           message):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    assert main(["sim", "custom", "--tree", str(path), "--count", "5"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and name in lines[0] and message in lines[0], lines


@pytest.mark.timeout(60)
@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder", "missing"])
def test_files_that_could_be_read_forever_are_refused_by_both_readers(tmp_path, special):
    """``--tree /dev/zero`` read forever and a FIFO blocked the open, in a real process."""
    path = {"fifo": tmp_path / "fifo", "folder": tmp_path, "missing": tmp_path / "nope",
            "/dev/zero": "/dev/zero"}[special]
    if special == "fifo":
        os.mkfifo(path)
    for argv in (["sim", "custom", "--tree", str(path), "--count", "5"],
                 ["replay", str(CAPTURE), "--tc", f"@{path}"]):
        proc = subprocess.run([sys.executable, "-m", "qoslab", *argv], capture_output=True,
                              text=True, timeout=30, cwd=tmp_path)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and str(path) in lines[0], lines


def test_a_good_file_still_reads(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    tree, at, changes = read_experiment_file(path)
    assert tree.kind == "htb" and at is None and [c.t for c in changes] == [1.0]


@pytest.mark.parametrize(("at", "forwarded"), [("client", False), ("router", True), (None, True)])
def test_the_files_at_says_where_the_custom_tree_sits(tmp_path, at, forwarded):
    path = tmp_path / "at.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **({"at": at} if at else {})}))
    setup = get("custom").setup(tree=str(path), router=True)
    assert setup.forwarded is forwarded and setup.qdisc.kind == "htb"
    assert get("custom").setup(tree=str(path), router=False).forwarded is (at == "router")


@pytest.mark.timeout(120 + EXAMPLES)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), suffix=st.sampled_from([".json", ".yaml"]))
def test_mutated_experiment_files_give_a_tree_or_qoslab_error(tmp_path, data, suffix):
    doc = json.loads(json.dumps(GOOD))
    paths = list(json_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = data.draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            pass
    target = tmp_path / f"x{suffix}"
    target.write_text(json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc))
    try:
        read_experiment_file(target)
    except QoslabError as exc:  # anything else fails the test
        assert str(target) in str(exc), exc  # the message names the file


# ---------------------------------------------------------------- tc lines
TC_TREES = [
    "qdisc add dev x root handle 1: htb default 10 r2q 10\n"
    "class add dev x parent 1: classid 1:10 htb rate 1mbit ceil 2mbit burst 15k prio 1\n"
    "qdisc add dev x parent 1:10 handle 10: sfq perturb 10 quantum 1514 limit 127 divisor 1024\n"
    "filter add dev x parent 10: protocol ip prio 1 flow hash keys src,dst divisor 1024",
    "qdisc add dev x root handle 1: tbf rate 1mbit burst 10kb latency 50ms\n"
    "qdisc add dev x parent 1:1 handle 10: fq_codel limit 1000 target 5ms interval 100ms ecn",
    "qdisc add dev x root handle 1: prio bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1\n"
    "qdisc add dev x parent 1:2 handle 20: bfifo limit 10000\n"
    "filter add dev x parent 1: protocol ip prio 1 u32 match ip tos 0x10 0xff flowid 1:1",
]
TC_WORDS = ["zz", "-1", "1e999", "nan", "99999999999999999999", "4294967296", "1:2:3",
            "ffffffff:", ":", "0", "1.5", "0xffffffffff", "1kbit", "-5ms", "root", "parent",
            "handle", "1:2", "20:", "1:", "keys", "divisor", "default", "bands"]


@pytest.mark.parametrize("text, message", [
    ("qdisc add dev x root handle 1: htb default zz", "htb default 'zz'"),
    ("qdisc add dev x root handle 1: prio bands 4294967296", "bands 4294967296"),
    ("qdisc add dev x root handle 1: prio bands 99999999999999999999", "expected 2 … 16"),
    ("qdisc add dev x root handle 1: prio\nqdisc add dev x parent 1:2 handle 1:2 pfifo",
     "qdisc handle 1:2: a qdisc's handle is 'major:'"),
    ("qdisc add dev x root handle 1: prio\nqdisc add dev x parent 1:2 handle 1: pfifo",
     "two qdiscs have the handle 1:"),
])
def test_tc_lines_that_crashed_the_parser(text, message):
    """A MemoryError (a 4-billion-band prio), a RecursionError (a qdisc its own ancestor) and a
    ValueError from deep inside parse_tree; ``replay --tc`` and ``--tree`` reach it."""
    from qoslab.errors import ConfigError
    from qoslab.qdiscs import parse_tree

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_tree(text)


@pytest.mark.timeout(120 + EXAMPLES)
@settings(max_examples=EXAMPLES * 10, deadline=None, derandomize=EXAMPLES <= 40,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), text=st.sampled_from(TC_TREES))
def test_mutated_tc_lines_give_a_tree_or_a_config_error(data, text):
    from qoslab.hashing import PROFILES
    from qoslab.qdiscs import parse_tree

    lines = [line.split() for line in text.splitlines()]
    for _ in range(data.draw(st.integers(1, 3))):
        words = data.draw(st.sampled_from(lines))
        i = data.draw(st.integers(0, len(words) - 1))
        how = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        if how == "replace":
            words[i] = data.draw(st.sampled_from(TC_WORDS))
        elif how == "delete" and len(words) > 1:
            del words[i]
        else:
            words.insert(i, data.draw(st.sampled_from(TC_WORDS + words)))
    try:
        parse_tree("\n".join(" ".join(w) for w in lines),
                   profile=data.draw(st.sampled_from(sorted(PROFILES))))
    except QoslabError:
        pass  # anything else fails the test
