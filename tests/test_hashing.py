"""Known-answer tests of the hash primitives and the kernel-semantics worked examples.

Vectors: docs/kernel-semantics.md §1.5 (lookup3 driver5 values, lookup2 values, computed
values), the 64 SipHash-2-4 vectors of the kernel's ``lib/test_siphash.c``, and §4.6 (one flow
F = TCP 192.168.1.10:12345 → 10.0.0.1:80 and its reverse R, hashed in every profile).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qoslab import ConfigError, FlowClassifier, Sfq
from qoslab.hashing import (
    PRIO2BAND,
    PROFILES,
    fq_codel_index,
    hash_changes,
    jhash,
    jhash2,
    jhash_1word,
    jhash_2words,
    jhash_3words,
    pfifo_fast_band,
    reciprocal_scale,
    seeds_from_events,
    siphash,
    skb_hash,
    tos_to_priority,
)
from qoslab.hashing.dissect import dissect
from qoslab.hashing.skbhash import consistentify, flow_keys_bytes

FOUR_SCORE = b"Four score and seven years ago"

# lib/test_siphash.c: key 00..0f, input bytes 0..n-1
SIPHASH_VECTORS = [
    0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
    0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
    0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
    0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
    0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
    0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
    0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
    0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
    0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
    0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
    0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95,
    0xf935451de4f21df2, 0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
    0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72, 0xa192d576b245165a,
    0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea, 0x245731c13ca42499,
    0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
    0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572,
]
KEY = bytes(range(16))


def frame(rows: list[dict]) -> pd.DataFrame:
    """A PACKETS-like frame from dicts of the fields that differ."""
    base = {"ip_version": 4, "tos": 0, "frag": False, "tunnel": "none", "inner_src": None,
            "inner_dst": None, "inner_proto": None, "inner_sport": None, "inner_dport": None,
            "sport": None, "dport": None}
    return pd.DataFrame([{**base, **r} for r in rows])


F = {"src": "192.168.1.10", "dst": "10.0.0.1", "proto": 6, "sport": 12345, "dport": 80}
R = {"src": "10.0.0.1", "dst": "192.168.1.10", "proto": 6, "sport": 80, "dport": 12345}


@pytest.fixture(scope="module")
def fr() -> pd.DataFrame:
    return frame([F, R])


# ------------------------------------------------------------------ §1.5 primitives
@pytest.mark.parametrize("data, initval, algo, expected", [
    (b"", 0, "lookup3", 0xDEADBEEF),
    (FOUR_SCORE, 0, "lookup3", 0x17770551),
    (FOUR_SCORE, 1, "lookup3", 0xCD628161),
    (b"abc", 0, "lookup3", 0x0E397631),
    (b"0123456789abcdef", 0, "lookup3", 0x68784A2F),
    (b"", 0, "lookup2", 0xBD49D10D),
    (FOUR_SCORE, 0, "lookup2", 0x50F2424B),
    (FOUR_SCORE, 1, "lookup2", 0x89DEAE7E),
])
def test_jhash_bytes_vectors(data, initval, algo, expected):
    assert jhash(data, initval, algo=algo) == expected


@pytest.mark.parametrize("words, algo, expected", [
    ([1, 2, 3], "lookup3", 0xA46158F5), ([1], "lookup3", 0x72A82A9B),
    ([1, 2], "lookup3", 0x8B4C7979), ([1, 2, 3, 4, 5], "lookup3", 0x629129C0),
    ([], "lookup3", 0xDEADBEEF),
    ([1, 2, 3], "lookup2", 0x23A7138F), ([1], "lookup2", 0xFA8BD2A8),
    ([1, 2, 3, 4, 5], "lookup2", 0xFA249D85),
])
def test_jhash2_vectors_scalar_and_vector(words, algo, expected):
    assert jhash2(words, 0, algo=algo) == expected
    many = np.tile(np.array(words, dtype=np.uint32), (40000, 1)).reshape(40000, len(words))
    out = jhash2(many, np.zeros(40000, np.uint32), algo=algo)  # crosses block boundaries
    assert out.dtype == np.uint32 and (out == expected).all()


def test_jhash2_equals_jhash_of_bytes():
    rng = np.random.default_rng(5)
    words = rng.integers(0, 2**32, size=(200, 7), dtype=np.uint64).astype(np.uint32)
    seeds = rng.integers(0, 2**32, size=200, dtype=np.uint64).astype(np.uint32)
    got3 = jhash2(words, seeds)
    got2 = jhash2(words, seeds, algo="lookup2")
    for i in range(200):
        raw = words[i].astype("<u4").tobytes()
        # lookup3: equal only for multiples of 12 bytes + tail; lookup2: always (§1.2 [C])
        assert got2[i] == jhash(raw, int(seeds[i]), algo="lookup2")
        assert got3[i] == jhash2(list(map(int, words[i])), int(seeds[i]))


@pytest.mark.parametrize("fn, args, algo, expected", [
    (jhash_3words, (1, 2, 3), "lookup3-v1", 0xE16988D7),
    (jhash_2words, (1, 2), "lookup3-v1", 0xF11886EA),
    (jhash_1word, (1,), "lookup3-v1", 0xFCDFDDDA),
    (jhash_3words, (1, 2, 3), "lookup3-v2", 0xA46158F5),
    (jhash_2words, (1, 2), "lookup3-v2", 0x8B4C7979),
    (jhash_1word, (1,), "lookup3-v2", 0x72A82A9B),
    (jhash_3words, (1, 2, 3), "lookup2", 0x17E8BDC2),
    (jhash_2words, (1, 2), "lookup2", 0x6477D56B),
    (jhash_1word, (1,), "lookup2", 0x2027E3EA),
])
def test_jhash_word_helpers(fn, args, algo, expected):
    assert fn(*args, 0, algo=algo) == expected
    vec = fn(*[np.full(3, a, np.uint32) for a in args], 0, algo=algo)
    assert list(vec) == [expected] * 3


def test_unknown_algo_is_a_clear_error():
    with pytest.raises(ConfigError, match="lookup3"):
        jhash2([1], algo="lookup4")


def test_all_64_kernel_siphash_vectors():
    for n, expected in enumerate(SIPHASH_VECTORS):
        assert siphash(bytes(range(n)), KEY) == expected, n
    # vectorized over rows of equal length, each length
    for n in (0, 7, 8, 9, 63):
        rows = np.tile(np.arange(n, dtype=np.uint8), (3, 1)).reshape(3, n)
        assert list(siphash(rows, KEY)) == [SIPHASH_VECTORS[n]] * 3


# ------------------------------------------------------------------ §4.6 worked examples
# From 3.3 on, every value is what the era's kernel code computes, compiled
# (tests/test_kernel_oracle.py checks these profiles on this flow against every oracle era).
@pytest.mark.parametrize("profile, seed, f_bucket, r_bucket", [
    ("classic-2.6.3x", 0, 635, 208),
    ("classic-2.6.3x", 0x12345678, 178, 177),
    ("2.6.37-3.2", 0, 883, 805),          # same formula with lookup3 v1
    ("3.3", 0, 443, 777),
    ("3.x-dissector", 0, 443, 777),
    ("4.1", 0, 356, 950),                 # jhash v2 word helpers
    ("4.2-4.3", 0, 695, 695),
    ("4.2-5.3", 0, 121, 121),
    ("4.2-5.3", 0x12345678, 352, 352),
    ("4.14.y-stable", KEY, 501, 501),
    ("4.18-5.3", 0, 678, 678),
    ("4.18-5.3", 0x12345678, 798, 798),
    ("5.4-siphash", KEY, 216, 216),
    ("5.4.y-stable", KEY, 348, 348),
    ("5.5-5.17", KEY, 582, 582),
    ("5.14-5.17", KEY, 457, 457),
    ("5.18+", KEY, 557, 557),
])
def test_sfq_worked_examples(fr, profile, seed, f_bucket, r_bucket):
    assert Sfq(profile=profile).bucket(fr, seed).tolist() == [f_bucket, r_bucket]


def test_sfq_3x_second_seed(fr):
    assert Sfq(profile="3.x-dissector").bucket(fr, 0x12345678)[0] == 202


def test_classic_sfq_hash_inputs(fr):
    h = Sfq(profile="classic-2.6.3x").hash_inputs(fr)
    assert [hex(x) for x in h[0]] == ["0x100000a", "0x5a0191f6"]
    assert jhash_2words(0x0100000A, 0x5A0191F6, 0, algo="lookup2") == 0xC6CF9A7B
    assert jhash_2words(0x0100000A, 0x5A0191F6, 0, algo="lookup3-v1") == 0x12EF5B73
    assert jhash_3words(0x0100000A, 0x0A01A8C6, 0x50003930, 0, algo="lookup3-v1") == 0xE81335BB


@pytest.mark.parametrize("profile, seed, expected", [
    ("3.3", 0, 0x80FAA317), ("3.3", 0x12345678, 0xD494216C),  # ports and addresses apart
    ("3.x-dissector", 0, 0x33CFC526), ("3.x-dissector", 0x12345678, 0x07983BB2),
    ("3.19-4.1", 0, 0x33CFC526),          # 3.19: still the v1 word helpers
    ("4.1", 0, 0xB5B74F0E), ("4.1", 0x12345678, 0x891F4F5B),
    ("4.2-4.3", 0, 0x7496DAB7), ("4.2-4.3", 0x12345678, 0x6EA1364D),
    ("4.2-5.3", 0, 0x9E67B079), ("4.2-5.3", 0x12345678, 0xD36C5560),
    ("4.14.y-stable", KEY, 0xC9E83DF5),
    ("4.18-5.3", 0, 0x27BC6AA6), ("4.18-5.3", 0x12345678, 0x35695B1E),
    ("5.4-siphash", KEY, 0x1C1E54D8), ("5.4.y-stable", KEY, 0xF2FB355C),
    ("5.5-5.17", KEY, 0xED8B8A46), ("5.14-5.17", KEY, 0x446B79C9),
    ("5.18+", KEY, 0xAA09F22D),
])
def test_skb_hash_worked_examples_both_directions(fr, profile, seed, expected):
    assert skb_hash(fr, seed, profile).tolist() == [expected, expected]


def test_rxhash_reciprocal_scale_indices():
    # §4.6 gives reciprocal_scale(rxhash, 1024) for the 3.x rows
    got = reciprocal_scale(np.array([0x33CFC526, 0x07983BB2, 0xB5B74F0E, 0x891F4F5B]), 1024)
    assert got.tolist() == [207, 30, 726, 548]


@pytest.mark.parametrize("profile, seed, idx", [
    ("4.2-5.3", 0, 633), ("4.2-5.3", 0x12345678, 845), ("4.18-5.3", 0, 158),
    ("4.18-5.3", 0x12345678, 213), ("5.4-siphash", KEY, 112), ("5.5-5.17", KEY, 950),
    ("5.14-5.17", KEY, 273), ("5.18+", KEY, 680),
    # 3.5–4.1 fq_codel hashes with its own jhash_3words(dst, src ^ proto, ports): the SFQ 3.3
    # value 0xe81335bb scaled to 1024 queues
    ("3.x-dissector", 0, 0xE81335BB >> 22),
])
def test_fq_codel_worked_examples(fr, profile, seed, idx):
    got = fq_codel_index(fr, 1024, seed, profile)
    assert got[0] == idx
    if profile != "3.x-dissector":
        assert got[1] == idx


def test_flow_keys_buffer_5_18(fr):
    f = consistentify(dissect(fr, PROFILES["5.18+"], stop_at_flow_label=True))
    buf, n = flow_keys_bytes(f, "5.18")
    expected = ("0800060000000000" "0000000000000000" "0000000000000000" "00000000"
                "00503039" "00000000" "0a000001c0a8010a" "00000000")
    assert n.tolist() == [48, 48]
    assert bytes(buf[0, :48]).hex() == expected == bytes(buf[1, :48]).hex()


@pytest.mark.parametrize("profile, seed, minor", [
    ("classic-2.6.3x", 0, 443), ("2.6.37-3.2", 0, 138), ("classic-2.6.3x", 0x12345678, 502),
    ("2.6.37-3.2", 0x12345678, 874),
])
def test_cls_flow_worked_examples(fr, profile, seed, minor):
    fc = FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024, profile=profile)
    assert fc.key_matrix(fr)[0].tolist() == [0xC0A8010A, 0x0A000001, 6, 12345, 80]
    assert fc.classify(fr, seed)[0] == minor


def test_cls_flow_is_not_symmetric(fr):
    fc = FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024, profile="2.6.37-3.2")
    assert fc.classify(fr, 0).tolist() == [138, 444]


def test_classic_sfq_xor_fold_collision_for_every_seed():
    pk = frame([{"src": "10.0.0.1", "dst": "192.0.2.9", "proto": 6, "sport": 40000, "dport": 80},
                {"src": "10.0.0.2", "dst": "192.0.2.9", "proto": 6, "sport": 40000, "dport": 83}])
    sfq = Sfq(profile="classic-2.6.3x")
    assert (sfq.hash_inputs(pk)[:, 1] == 0x51004090).all()
    for seed in (0, 1, 0x12345678, 0xDEADBEEF):
        b = sfq.bucket(pk, seed)
        assert b[0] == b[1]
    # the 5.18+ hash separates them
    assert len(set(Sfq(profile="5.18+").bucket(pk, KEY))) == 2


# ------------------------------------------------------------------ pfifo_fast
def test_pfifo_fast_tables():
    assert PRIO2BAND.tolist() == [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert pfifo_fast_band(0x02, table="old") == 2
    assert pfifo_fast_band(0x02, table="new") == 1
    assert pfifo_fast_band(0x02, profile="classic-2.6.3x") == 2
    assert pfifo_fast_band(0x03, table="old") == 2 and pfifo_fast_band(0x01, table="old") == 1
    # lowdelay → INTERACTIVE, throughput → BULK, reliability → BESTEFFORT (ip_tos2prio)
    assert tos_to_priority([0x10, 0x08, 0x04, 0x00]).tolist() == [6, 2, 0, 0]
    assert pfifo_fast_band([0x10, 0x08, 0x04, 0x00]).tolist() == [0, 2, 1, 1]


# ------------------------------------------------------------------ perturbation schedule
def test_schedule_changes_seed_at_each_event(fr):
    ev = hash_changes(0.0, 30.0, 10.0, rng_seed=3)
    at, seeds = seeds_from_events(ev, initial=0)
    assert at.tolist() == [10.0, 20.0] and len(seeds) == 3
    pk = pd.concat([fr.iloc[[0]]] * 4, ignore_index=True).assign(t=[1.0, 10.0, 15.0, 25.0])
    fc = FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024,
                        profile="classic-2.6.3x")
    got = fc.classify(pk, seeds, at)
    one = [fc.classify(pk.iloc[[0]], s)[0] for s in seeds]
    assert got.tolist() == [one[0], one[1], one[1], one[2]]
    sfq = Sfq(profile="5.18+")
    b = sfq.bucket(pk, seeds, at)
    assert b.tolist() == [sfq.bucket(pk.iloc[[0]], s)[0] for s in (seeds[0], seeds[1],
                                                                    seeds[1], seeds[2])]


def test_schedule_errors_are_clear(fr):
    fc = FlowClassifier("src", divisor=8)
    with pytest.raises(ConfigError, match="`t` column"):
        fc.classify(fr, [1, 2], [5.0])
    with pytest.raises(ConfigError, match="change times"):
        fc.classify(fr.assign(t=0.0), [1, 2, 3], [5.0])


# ------------------------------------------------------------------ profiles and options
def test_required_profiles_exist():
    for name in ("classic-2.6.3x", "2.6.37-3.2", "3.x-dissector", "4.2-5.3", "5.4-siphash",
                 "5.18+", "tunnel-patch", "proposed-fix"):
        assert name in PROFILES
    assert not Sfq(profile="classic-2.6.3x").rehash_on_perturb
    assert Sfq(profile="3.x-dissector").rehash_on_perturb
    assert not Sfq(profile="5.18+", classifier=FlowClassifier("mark", mode="map")
                   ).rehash_on_perturb


def test_sfq_option_rules():
    q = Sfq(divisor=64, flows=1000, depth=500, limit=100000, profile="5.18+")
    assert (q.flows, q.depth, q.limit) == (1000, 500, 100000)  # as given (tc text) …
    assert [q.effective(n) for n in ("flows", "depth", "limit")] == [64, 127, 127 * 64]  # … in force
    with pytest.raises(ConfigError, match="power of 2"):
        Sfq(divisor=1000)
    with pytest.raises(ConfigError, match="1024"):
        Sfq(divisor=512, profile="classic-2.6.3x")
    assert Sfq(limit=500, profile="classic-2.6.3x").effective("limit") == 127


def test_bad_input_is_a_clear_error():
    with pytest.raises(ConfigError, match="missing column"):
        Sfq().bucket(pd.DataFrame({"src": ["10.0.0.1"]}))
    with pytest.raises(ConfigError, match="profile 'nope'"):
        Sfq(profile="nope")
    with pytest.raises(ConfigError, match="cls_flow key 'bogus'"):
        FlowClassifier("src,bogus")
    with pytest.raises(ConfigError, match="tunnel patch"):
        FlowClassifier("tunnel-src", profile="5.18+")


def test_vector_jhash_bytes_matches_scalar_for_every_length():
    rng = np.random.default_rng(9)
    for length in range(0, 41):
        rows = rng.integers(0, 256, size=(5, length), dtype=np.uint8)
        seeds = rng.integers(0, 2**32, size=5, dtype=np.uint64)
        for algo in ("lookup3", "lookup2"):
            for endianness in ("little", "big"):
                got = jhash(rows, seeds, algo=algo, endianness=endianness)
                want = [jhash(rows[i].tobytes(), int(seeds[i]), algo=algo,
                              endianness=endianness) for i in range(5)]
                assert got.tolist() == want, (length, algo, endianness)


def test_profile_table_is_consistent():
    from qoslab.hashing import FLOW_KEYS_LAYOUTS
    from qoslab.hashing.jhash import ALGOS
    for p in PROFILES.values():
        assert p.jhash in ALGOS
        assert (p.flow_keys_layout in FLOW_KEYS_LAYOUTS) == (p.skb_hash == "flow-keys")
        assert (p.sfq == "flow-hash") == (p.skb_hash == "flow-keys")
        assert p.tunnel_keys == (p.name in ("tunnel-patch", "proposed-fix"))
        assert p.tos2prio in ("old", "new")
    # layouts: hashed lengths per address type as §4.2 lists them
    lengths = {n: FLOW_KEYS_LAYOUTS[n].length(np.array([4, 6])).tolist()
               for n in FLOW_KEYS_LAYOUTS}
    assert lengths == {"4.2": [24, 48], "4.4": [24, 48], "4.6": [28, 52], "4.18": [32, 56],
                       "5.4": [32, 56], "5.4.y": [40, 64], "5.5": [40, 64], "5.18": [48, 72]}
