"""The decision log (qoslab/qdiscs/decisions.py) as the simulator records it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab.errors import RunFormatError
from qoslab.labels import flow_labels
from qoslab.scenarios import get
from qoslab.scenarios.backend_sim import sim_config
from qoslab.schema import DECISIONS, conform
from qoslab.sim import simulate


def _config(name: str, **values):
    sc = get(name)
    vals = sc.values(values)
    return sim_config(sc.build(vals), name=name, seed=vals["seed"], params=vals)


@pytest.fixture(scope="module")
def perturb_runs():
    cfg = _config("sfq_perturb", duration=30.0, seed=2)
    return simulate(cfg), simulate(dataclasses.replace(cfg, decisions=True)), cfg


def test_logging_changes_nothing_the_run_measures(perturb_runs):
    plain, logged, _ = perturb_runs
    pd.testing.assert_frame_equal(plain.probes, logged.probes)
    pd.testing.assert_frame_equal(plain.events, logged.events)
    assert plain.decisions.empty
    assert list(logged.decisions.columns) == [*DECISIONS, "stream"]


def test_flows_are_named_by_their_headers_and_streams_by_their_specs(perturb_runs):
    """``flow`` is the one flow label (what replay and the datapath write), ``stream`` the
    traffic spec's name: each stream is one flow."""
    _, run, _ = perturb_runs
    d = run.decisions
    flows = pd.DataFrame(run.meta["flows"]).astype({"proto": "UInt8", "tos": "UInt8",
                                                    "icmp_id": "UInt16"})
    expect = dict(zip(flows["flow"], flow_labels(flows), strict=True))
    pairs = d[["stream", "flow"]].astype(str).drop_duplicates()
    assert len(pairs) == len(flows) == d["flow"].nunique() == 5
    assert dict(zip(pairs["stream"], pairs["flow"], strict=True)) == expect
    assert set(run.probes["stream"]) < set(d["stream"])
    assert "icmp 10.0.0.1 > 10.0.9.1 id=0x1000" in set(d["flow"])


def test_every_packet_is_logged_once_with_its_fate(perturb_runs):
    _, run, _ = perturb_runs
    d = run.decisions
    assert d["packet"].tolist() == list(range(len(d)))
    assert (np.diff(d["t_arrival"]) >= 0).all()
    stats = {s["flow"]: s for s in run.meta["flow_stats"]}
    for flow, rows in d.groupby("stream", observed=True):
        assert rows["dropped"].sum() == stats[flow]["dropped"]
        assert (~rows["dropped"]).sum() >= stats[flow]["delivered"]  # + still queued at end
    gone = d[~d["dropped"] & d["t_departure"].notna()]
    assert (gone["t_departure"] >= gone["t_arrival"]).all()
    assert d.loc[d["dropped"], "t_departure"].isna().all()
    assert (d["size"].isin([98, 1514])).all()
    assert d["cls"].eq(0).all()  # the one HTB class


def test_ping_delays_in_the_log_are_the_probes_rtts(perturb_runs):
    """A probe's RTT is its time in the tree + serialisation + the base RTT: the log and the
    PROBES agree packet by packet."""
    _, run, cfg = perturb_runs
    d = run.decisions
    link = cfg.link
    for stream, probes in run.probes.groupby("stream", observed=True):
        mine = d[d["stream"] == stream].reset_index(drop=True)
        assert len(mine) == len(probes)
        ok = probes["status"].eq("ok").to_numpy()
        sent = mine["t_departure"].to_numpy() + 98 * 8 / link.rate + link.base_rtt(98)
        rtt = (sent - mine["t_arrival"].to_numpy()) * 1000
        np.testing.assert_allclose(rtt[ok], probes["rtt_ms"].to_numpy()[ok], atol=1e-6)
        assert mine["dropped"].to_numpy()[~ok].all()


def test_logged_buckets_are_the_hashing_layers_for_the_seed_in_force(perturb_runs):
    _, run, cfg = perturb_runs
    d = run.decisions
    times = run.meta["hash_seed_times"]
    assert len(times) > 4
    expect = np.searchsorted(np.asarray(times[1:]), d["t_arrival"].to_numpy(), side="right")
    np.testing.assert_array_equal(d["seed_index"].to_numpy(), expect)
    flows = pd.DataFrame(run.meta["flows"]).astype({"proto": "UInt8", "tos": "UInt8"})
    seeds = [int(s, 16) for s in run.meta["hash_seeds"]]
    leaf = cfg.qdisc.classes[0].leaf  # the SFQ under the shaper
    labels = flows["flow"].tolist()
    fid = d["stream"].map({x: i for i, x in enumerate(labels)}).astype(int).to_numpy()
    for k, seed in enumerate(seeds):
        buckets = leaf.bucket(flows, seed=seed)
        rows = d["seed_index"].to_numpy() == k
        np.testing.assert_array_equal(d["queue"].to_numpy()[rows], buckets[fid[rows]])


def test_the_log_survives_the_run_file(perturb_runs, tmp_path):
    _, run, _ = perturb_runs
    path = run.save(tmp_path / "r.json.gz")
    back = qoslab.load(path)
    pd.testing.assert_frame_equal(back.decisions, run.decisions, check_categorical=False)
    assert "decisions" in repr(back)


def test_a_switch_of_classifier_shows_in_the_buckets():
    run = simulate(dataclasses.replace(_config("tunnel_keys", duration=20.0, switch_at=10.0),
                                       decisions=True))
    d = run.decisions
    before = d[d["t_arrival"] < 10.0].groupby("flow", observed=True)["queue"].nunique()
    after = d[d["t_arrival"] >= 10.0].groupby("flow", observed=True)["queue"].first()
    assert d.loc[d["t_arrival"] < 10.0, "queue"].nunique() == 1  # classic keys: one bucket
    assert (before == 1).all() and after.nunique() == len(after)  # tunnel keys: one each


def test_bad_decision_tables_are_refused_by_name():
    good = {c: [] for c in DECISIONS}
    conform(good, "decisions")
    bad = dict(good, packet=[1.5], flow=["a"], t_arrival=[0.0], t_departure=[None], size=[98],
               cls=[None], queue=[3], seed_index=[0], dropped=[False])
    with pytest.raises(RunFormatError, match=r"decisions\.packet"):
        conform(bad, "decisions", source="x.json.gz")
    with pytest.raises(RunFormatError, match=r"decisions\.dropped"):
        conform(dict(bad, packet=[1], dropped=["no"]), "decisions")
