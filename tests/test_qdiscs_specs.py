"""Qdisc and filter specs: tc text out and in (round trip), era checks, and the real ``tc``.

``from_tc(to_tc(spec)) == spec`` for generated specs of every kind, trees included; the tc text
of the qdiscs this kernel has is accepted by the real ``tc`` in a namespace, and for the ones it
lacks (sfq, fq_codel, the flow classifier) the only complaint is the kernel's unknown-kind
error, never a parse error of tc's.
"""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from qoslab.errors import ConfigError, KernelFeatureMissing
from qoslab.hashing import PROFILES, FlowClassifier
from qoslab.qdiscs import (
    Bfifo,
    FqCodel,
    Htb,
    HtbClass,
    Pfifo,
    PfifoFast,
    Prio,
    Sfq,
    Tbf,
    U32Filter,
    U32Match,
    parse_qdisc,
    parse_tree,
)

from .conftest import need_root

MODERN = [n for n, p in PROFILES.items() if p.sfq_scheduler == "3.3" and p.fq_codel]
OLD = [n for n, p in PROFILES.items() if p.sfq_scheduler != "3.3"]

limits = st.one_of(st.none(), st.integers(0, 100000))
rates = st.sampled_from([8000.0, 64000.0, 900000.0, 1e6, 2.5e6, 10e6, 1e9, 1234567.0])
sizes = st.integers(1, 10 * 1024 * 1024)
times = st.sampled_from([0.001, 0.005, 0.05, 0.1, 0.25, 1.0, 2.0])


def flow_filters(profile: str):
    keys = st.lists(st.sampled_from(["src", "dst", "proto", "proto-src", "proto-dst", "mark",
                                     "priority", "iif"]), min_size=1, max_size=5, unique=True)
    return st.builds(lambda k, d, p: FlowClassifier(k, divisor=d, perturb=p, profile=profile),
                     keys, st.sampled_from([None, 128, 1024]), st.sampled_from([None, 10]))


@st.composite
def sfqs(draw, profile=None):
    profile = profile or draw(st.sampled_from(sorted(PROFILES)))
    new = PROFILES[profile].sfq_scheduler == "3.3"
    kw = dict(limit=draw(st.one_of(st.none(), st.integers(2, 127))),
              perturb=draw(st.integers(0, 120)),
              quantum=draw(st.one_of(st.none(), st.integers(64, 65535))), profile=profile)
    if new:
        kw.update(depth=draw(st.one_of(st.none(), st.integers(1, 127))),
                  flows=draw(st.one_of(st.none(), st.integers(1, 65408))),
                  divisor=draw(st.one_of(st.none(), st.sampled_from([16, 256, 1024, 65536]))),
                  headdrop=draw(st.booleans()))
    if PROFILES[profile].clsflow is not None and draw(st.booleans()):  # no cls_flow before 2.6.25
        kw["classifier"] = draw(flow_filters(profile))
    try:
        return Sfq(**kw)
    except ConfigError:  # e.g. depth × flows = 1: limit 1, which the kernel refuses too
        reject()


@st.composite
def fq_codels(draw, profile=None):
    profile = profile or draw(st.sampled_from(MODERN))
    return FqCodel(limit=draw(st.one_of(st.none(), st.integers(1, 100000))),
                   flows=draw(st.one_of(st.none(), st.integers(1, 65536))),
                   target=draw(st.one_of(st.none(), times)),
                   interval=draw(st.one_of(st.none(), times)),
                   quantum=draw(st.one_of(st.none(), st.integers(64, 65535))),
                   ecn=draw(st.sampled_from([None, True, False])),
                   drop_batch=draw(st.one_of(st.none(), st.integers(1, 256))), profile=profile)


def leaves(profile: str):
    """Leaf qdiscs of one kernel (a tree runs in one kernel: one profile)."""
    kinds = [st.builds(Pfifo, limits), st.builds(Bfifo, limits),
             st.just(PfifoFast(profile=profile)), sfqs(profile)]
    if PROFILES[profile].fq_codel:
        kinds.append(fq_codels(profile))
    return st.one_of(*kinds)


profiles = st.sampled_from(sorted(PROFILES))

u32s = st.builds(lambda flowid, m: U32Filter(flowid, m), st.just("1:10"), st.lists(
    st.one_of(st.builds(U32Match, st.just("protocol"), st.integers(0, 255), st.just(0xFF)),
              st.builds(U32Match, st.just("tos"), st.integers(0, 255), st.just(0xFC)),
              st.builds(U32Match, st.just("dport"), st.integers(0, 65535),
                        st.just(0xFFFF))), max_size=2, unique_by=lambda m: m.field).map(tuple))


@st.composite
def htbs(draw):
    profile = draw(profiles)
    n = draw(st.integers(1, 3))
    inner = draw(st.booleans())
    classes = [HtbClass("1:1", draw(rates))] if inner else []
    for i in range(n):
        classes.append(HtbClass(f"1:{(i + 1) * 0x10:x}", draw(rates),
                                ceil=draw(st.one_of(st.none(), rates)),
                                burst=draw(st.one_of(st.none(), st.integers(1600, 100000))),
                                prio=draw(st.integers(0, 7)), parent="1:1" if inner else "1:",
                                leaf=draw(st.one_of(st.none(), leaves(profile)))))
    return Htb(classes=tuple(classes), default=0x10, r2q=draw(st.one_of(st.none(),
                                                                          st.integers(1, 100))),
               filters=tuple(draw(st.lists(u32s, max_size=2))))


@st.composite
def prios(draw):
    profile = draw(profiles)
    bands = draw(st.integers(2, 5))
    priomap = tuple(draw(st.lists(st.integers(0, bands - 1), min_size=16, max_size=16)))
    kids = tuple(draw(st.lists(st.one_of(st.none(), leaves(profile)), min_size=bands,
                               max_size=bands)))
    return Prio(bands=bands, priomap=priomap, children=kids, profile=profile)


@st.composite
def tbfs(draw):
    profile = draw(profiles)
    limit = draw(st.one_of(st.none(), sizes))
    return Tbf(rate=draw(rates), burst=draw(st.integers(1600, 1 << 20)), limit=limit,
               latency=draw(times) if limit is None else None,
               child=draw(st.one_of(st.none(), leaves(profile))))


any_spec = st.one_of(profiles.flatmap(leaves), htbs(), prios(), tbfs())


def _profile_of(spec) -> str:
    for attr in ("profile",):
        if hasattr(spec, attr):
            return getattr(spec, attr)
    from qoslab.qdiscs import walk

    return next((s.profile for s in walk(spec) if hasattr(s, "profile")), "5.18+")


@settings(max_examples=300, deadline=None)
@given(any_spec)
def test_from_tc_of_to_tc_is_the_spec(spec):
    text = spec.to_tc()
    assert parse_qdisc(text, profile=_profile_of(spec)) == spec, text
    assert type(spec).from_tc(text, profile=_profile_of(spec)) == spec


def test_a_tree_written_by_hand_reads_back():
    text = """
        tc qdisc add dev eth0 root handle 1: htb default 20 r2q 5
        tc class add dev eth0 parent 1: classid 1:1 htb rate 900kbit
        tc class add dev eth0 parent 1:1 classid 1:10 htb rate 300kbit ceil 900kbit
        tc class add dev eth0 parent 1:1 classid 1:20 htb rate 600kbit ceil 900kbit prio 1
        tc qdisc add dev eth0 parent 1:20 handle 20: sfq perturb 10   # the bulk class
        tc filter add dev eth0 parent 20: protocol all prio 1 handle 1 flow hash keys src,dst divisor 1024
        tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip protocol 1 0xff flowid 1:10
    """
    tree = parse_tree(text, profile="5.18+")
    assert [c.classid for c in tree.classes] == ["1:1", "1:10", "1:20"]
    sfq = tree.classes[2].leaf
    assert sfq.perturb == 10 and sfq.classifier.keys == ["src", "dst"]
    assert tree.filters[0].matches == (U32Match("protocol", 1, 0xFF),)
    assert parse_tree(tree.to_tc(), profile="5.18+") == tree


def test_era_checks_name_the_era():
    with pytest.raises(ConfigError, match="classic-2.6.3x.*Linux 3.3 added them"):
        Sfq(headdrop=True, profile="classic-2.6.3x")
    with pytest.raises(ConfigError, match="divisor .*classic-2.6.3x"):
        Sfq(divisor=256, profile="classic-2.6.3x")
    with pytest.raises(KernelFeatureMissing, match="fq_codel does not exist in profile"):
        FqCodel(profile="2.6.37-3.2")
    with pytest.raises(ConfigError, match="tunnel-src.*5.18"):
        FlowClassifier("tunnel-src", profile="5.18+")
    with pytest.raises(ConfigError, match="perturb .*whole seconds"):
        Sfq(perturb=2.5)


def test_tc_syntax_errors_name_the_word():
    with pytest.raises(ConfigError, match="sfq: unknown option 'limt'"):
        parse_qdisc("sfq limt 10")
    with pytest.raises(ConfigError, match="does not model the 'cake' qdisc"):
        parse_qdisc("cake bandwidth 10mbit")
    with pytest.raises(ConfigError, match="tbf: give exactly one of limit"):
        parse_qdisc("tbf rate 1mbit burst 10kb")
    with pytest.raises(ConfigError, match="hangs from nothing"):
        parse_tree("qdisc add dev e root handle 1: htb\nqdisc add dev e parent 7:1 pfifo")


# ---------------------------------------------------------------------------- the real tc
@pytest.fixture(scope="module")
def veth():
    """A namespace with a veth end to try tc lines on (removed afterwards)."""
    need_root("network namespaces")
    from qoslab.lab import netns

    name = netns.namespace_name("c", netns.new_runid())
    netns.create_namespace(name)
    peer = netns.namespace_name("s", netns.new_runid())
    netns.create_namespace(peer)
    try:
        netns.add_veth(name, "qt0", peer, "qt1")
        yield name, "qt0"
    finally:
        netns.delete_namespace(name)
        netns.delete_namespace(peer)


def _tc(ns: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, "tc", *argv], capture_output=True,
                          text=True, timeout=20)


KERNEL_LACKS = ("Specified qdisc kind is unknown", "TC classifier not found")


@settings(max_examples=40, deadline=None)
@given(spec=any_spec)
def test_the_real_tc_takes_every_spec(veth, spec):
    """Every line is tc-valid: accepted, or refused only by the kernel for a missing kind."""
    ns, dev = veth
    _tc(ns, ["qdisc", "del", "dev", dev, "root"])
    try:
        for argv in spec.commands(dev):
            r = _tc(ns, argv)
            if r.returncode == 0:
                continue
            assert any(m in r.stderr for m in KERNEL_LACKS), (argv, r.stderr)
            assert "What is" not in r.stderr and "Usage" not in r.stderr, (argv, r.stderr)
            break  # the rest hangs from what the kernel refused
    finally:
        _tc(ns, ["qdisc", "del", "dev", dev, "root"])


def test_the_kernel_keeps_what_tc_was_given(veth):
    """tc -j reads back what a spec wrote (kinds this kernel has)."""
    import json

    ns, dev = veth
    tree = Htb(classes=(HtbClass("1:10", 2e6, ceil=3e6, prio=2, leaf=Bfifo(limit=30 * 1024)),),
               default=0x10, filters=(U32Filter("1:10", (U32Match("tos", 0x10, 0xFC),)),))
    _tc(ns, ["qdisc", "del", "dev", dev, "root"])
    for argv in tree.commands(dev):
        r = _tc(ns, argv)
        assert r.returncode == 0, (argv, r.stderr)
    shown = json.loads(_tc(ns, ["-j", "qdisc", "show", "dev", dev]).stdout)
    kinds = {q["kind"]: q for q in shown}
    assert kinds["htb"]["options"]["default"] in (16, "0x10")
    assert kinds["bfifo"]["options"]["limit"] == 30 * 1024
    _tc(ns, ["qdisc", "del", "dev", dev, "root"])
