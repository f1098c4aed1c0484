"""Spike detection, alignment and period inference on synthetic series with known answers."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import qoslab
from qoslab.analysis import (
    align_to_events,
    detect_spikes,
    infer_period,
    rayleigh_p,
    spike_events,
    spike_times,
    spikes_vs_events,
)
from qoslab.errors import ConfigError, PeriodSearchLimitError, RunFormatError
from qoslab.runs import Run

period_module = sys.modules["qoslab.analysis.period"]


def series(t, rtt, stream="a"):
    return pd.DataFrame({"stream": stream, "t_sent": t, "rtt_ms": rtt})


def noisy(seed=0, n=1000, interval=0.2, base=30.0, noise=1.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * interval
    return t, base + noise * rng.standard_normal(n)


def test_planted_spikes_found_with_times_and_peaks():
    t, rtt = noisy()
    planted = [(20.0, 1.0, 400.0), (77.0, 0.4, 120.0), (150.2, 2.0, 900.0)]
    for start, length, peak in planted:
        m = (t >= start) & (t < start + length)
        rtt[m] = np.linspace(peak, 60, m.sum())
    sp = detect_spikes(series(t, rtt))
    assert len(sp) == 3
    assert sp["t_start"].tolist() == pytest.approx([p[0] for p in planted], abs=1e-9)
    assert sp["peak_ms"].tolist() == pytest.approx([p[2] for p in planted])
    assert (sp["baseline_ms"] - 30).abs().max() < 1


def test_no_spikes_in_noise_alone():
    t, rtt = noisy(seed=5)
    assert detect_spikes(series(t, rtt)).empty


def test_lost_probes_inside_a_spike_do_not_split_it():
    t, rtt = noisy(seed=1)
    m = (t >= 40) & (t < 42)
    rtt[m] = 500.0
    rtt[(t >= 40.8) & (t < 41.2)] = np.nan  # lost during the spike
    sp = detect_spikes(series(t, rtt))
    assert len(sp) == 1 and sp["t_start"].iloc[0] == pytest.approx(40.0)
    assert sp["t_end"].iloc[0] == pytest.approx(41.8)


def test_merge_gap_and_streams():
    t, rtt = noisy(seed=2)
    for s in (50.0, 50.8):
        rtt[(t >= s) & (t < s + 0.4)] = 300.0
    probes = pd.concat([series(t, rtt, "a"), series(t + 0.05, rtt, "b")])
    assert len(detect_spikes(probes, streams=["a"])) == 2
    merged = detect_spikes(probes, merge_gap=0.7)
    assert len(merged) == 2 and set(merged["stream"]) == {"a", "b"}
    assert spike_times(merged).tolist() == pytest.approx([50.0])


def test_missing_column_is_a_clear_error():
    with pytest.raises(RunFormatError, match="rtt_ms"):
        detect_spikes(pd.DataFrame({"stream": ["a"], "t_sent": [0.0]}))


def test_alignment_of_grid_spikes_is_significant():
    rng = np.random.default_rng(3)
    events = np.arange(5.0, 300.0, 5.0)
    chosen = np.sort(rng.choice(events, 15, replace=False))
    spikes = chosen + rng.uniform(0.0, 0.3, len(chosen))
    ev = pd.DataFrame({"t": events, "kind": "hash_change", "detail": ""})
    a = align_to_events(spikes, ev, span=(0, 300))
    assert a.n_aligned == 15 and a.fraction == 1.0
    assert a.expected_fraction == pytest.approx(59 * 0.7 / 300, rel=1e-6)
    assert a.p_value == pytest.approx(a.expected_fraction ** 15, rel=1e-6)
    assert (a.distances["distance"].between(0, 0.3)).all()


def test_alignment_null_uniform_spikes_not_significant():
    rng = np.random.default_rng(11)
    events = np.arange(5.0, 300.0, 5.0)
    spikes = np.sort(rng.uniform(0, 300, 20))
    a = align_to_events(spikes, events, span=(0, 300))
    assert a.p_value > 0.05
    # the circular test on aperiodic events agrees
    ev = np.sort(rng.uniform(0, 300, 40))
    c = align_to_events(spikes, ev, span=(0, 300), method="circular", n_perm=500)
    assert c.p_value > 0.05


def test_alignment_circular_finds_aperiodic_coupling():
    rng = np.random.default_rng(4)
    ev = np.sort(rng.uniform(0, 300, 30))
    spikes = ev[::2] + 0.2
    c = align_to_events(spikes, ev, span=(0, 300), method="circular", n_perm=500)
    assert c.p_value < 0.01


def test_alignment_bad_method():
    with pytest.raises(ConfigError, match="method"):
        align_to_events([1.0], [1.0], method="magic")


@pytest.mark.parametrize(("period", "phase"), [(5.0, 0.15), (20.0, 3.0), (7.3, 1.0)])
def test_period_recovered_from_a_subset_of_grid_points(period, phase):
    rng = np.random.default_rng(int(period * 10))
    grid = phase + np.arange(0, 400 // period) * period
    times = np.sort(rng.choice(grid, max(8, len(grid) // 2), replace=False))
    times = times + rng.normal(0, 0.05, len(times))
    est = infer_period(times, span=(0, 400))
    assert est.significant(0.01)
    assert est.period == pytest.approx(period, rel=0.01)
    assert min(abs(est.phase - phase), period - abs(est.phase - phase)) < 0.2


def test_period_prefers_fundamental_over_subharmonic():
    """Onsets jittered by 0.3 s fit the 5 s grid better than its 2.5 s sub-harmonic."""
    rng = np.random.default_rng(9)
    times = np.sort(rng.choice(np.arange(5.0, 300, 5.0), 25, replace=False))
    times = times + rng.uniform(0, 0.6, len(times))
    est = infer_period(times, span=(0, 300))
    assert est.period == pytest.approx(5.0, rel=0.01)
    gram = est.periodogram
    half = gram[(gram["period"] - 2.5).abs() < 0.05]["resultant"].max()
    assert half < est.resultant - 0.05


def test_period_null_random_times_rejected_at_nominal_rate():
    rng = np.random.default_rng(21)
    p = [infer_period(np.sort(rng.uniform(0, 150, 15)), span=(0, 150), n_null=40).p_value
         for _ in range(12)]
    assert sum(x < 0.05 for x in p) <= 2  # expected 0.6 of 12
    assert min(p) > 1e-4  # no gross miscalibration in the tail


def test_period_too_few_times():
    est = infer_period([3.0, 8.0])
    assert np.isnan(est.period) and np.isnan(est.p_value) and not est.significant()
    assert est.p.text == "p = n/a"  # no test was made: never "p = 1"


def test_rayleigh_p_limits():
    assert rayleigh_p(0.0, 10) == pytest.approx(1.0)
    assert rayleigh_p(10.0, 100) < 1e-4


def test_period_stray_onset_does_not_pick_a_subharmonic():
    rng = np.random.default_rng(2)
    times = np.sort(rng.choice(np.arange(5.0, 120, 5.0), 16, replace=False)) + 0.05
    times = np.sort(np.append(times, 36.72))  # on the 5/3 s grid, off the 5 s grid
    est = infer_period(times, span=(0, 120))
    assert est.period == pytest.approx(5.0, rel=0.01)
    assert est.significant(0.01)


# ---- one definition of a spike event; p-values with their test ----------------------------

def test_spike_events_chain_onsets_of_any_streams():
    sp = pd.DataFrame({"stream": ["a", "b", "c", "a", "b"],
                       "t_start": [10.0, 10.4, 11.2, 20.0, 25.0],
                       "t_end": [10.6, 10.9, 11.5, 20.2, 25.1],
                       "t_peak": [10.1, 10.5, 11.3, 20.1, 25.0],
                       "peak_ms": [100.0, 400.0, 90.0, 50.0, 60.0]})
    ev = spike_events(sp)
    assert ev["t_start"].tolist() == [10.0, 20.0, 25.0]  # 10.0 -> 10.4 -> 11.2 is one chain
    first = ev.iloc[0]
    assert first["t_end"] == 11.5 and first["peak_ms"] == 400.0 and first["t_peak"] == 10.5
    assert first["n_streams"] == 3 and first["streams"] == "a, b, c"
    assert spike_times(sp).tolist() == ev["t_start"].tolist()
    assert spike_events(sp, gap=0.3)["t_start"].tolist() == [10.0, 10.4, 11.2, 20.0, 25.0]


def test_alignment_counts_spike_events_not_per_stream_rows():
    events = np.arange(5.0, 100.0, 5.0)
    onsets = events[::2] + 0.1
    per_stream = pd.DataFrame({"stream": np.repeat(["a", "b", "c"], len(onsets)),
                               "t_start": np.tile(onsets, 3) + np.repeat([0, 0.05, 0.1],
                                                                         len(onsets))})
    a = align_to_events(per_stream, events, span=(0, 100))
    b = align_to_events(onsets, events, span=(0, 100))
    assert a.n_spikes == b.n_spikes == len(onsets)
    assert a.p_value == b.p_value


def test_p_values_are_labelled_and_never_zero():
    from qoslab.analysis import PValue, format_p

    events = np.arange(1.0, 3000.0, 1.0)
    a = align_to_events(events + 0.01, events, window=0.05, before=0.0, span=(0, 3000))
    assert a.p_value < 1e-300  # underflows: no float can hold it
    assert "p = 0" not in str(a.p) and "p < 1e-300" in str(a.p)
    assert "binomial" in str(a.p) and "binomial" in a.summary()
    c = align_to_events(events[::50] + 0.01, events[::7], span=(0, 3000), method="circular",
                        n_perm=99)
    assert c.p.floor == pytest.approx(0.01)
    assert format_p(c.p_value, floor=0.01).startswith(("p ≤ 0.01", "p = "))
    assert str(PValue(0.0, "x")) == "p < 1e-300 (x)"


def test_period_p_value_of_a_perfect_small_grid_is_a_number_not_zero():
    est = infer_period(np.arange(5.0, 40.0, 5.0) + 0.2, span=(0, 40))  # 7 onsets, exact grid
    assert est.period == pytest.approx(5.0, rel=0.01)
    assert 0 < est.p_value < 0.01
    assert "p = 0 " not in est.summary() and "Rayleigh" in str(est.p)
    assert rayleigh_p(7.0, 7) > 0  # Zar's truncated series went negative here


def test_notebook_and_explorer_numbers_come_from_one_call():
    """The spike count, the expected fraction and the p-value of sfq_perturb are those of
    spikes_vs_events, whoever asks (notebook 03 and PerturbExplorer both call it)."""
    from qoslab.analysis import spikes_vs_events
    from qoslab.sim.scenarios import sfq_perturb
    from qoslab.widgets import perturb_experiment

    run = sfq_perturb(perturb=5, seed=1, duration=40.0)
    rep = spikes_vs_events(run)
    assert rep.n_events == len(spike_events(detect_spikes(run.probes)))
    assert rep.n_events < len(rep.spikes)  # three streams see each event
    assert rep.alignment.n_spikes == rep.n_events
    res = perturb_experiment(perturb=5, seed=1, duration=40.0)
    assert res.report.n_events == rep.n_events
    assert res.report.alignment.expected_fraction == rep.alignment.expected_fraction
    assert res.report.summary() == rep.summary()


def test_period_search_over_a_span_of_centuries_is_refused_before_the_grid_is_built(tmp_path):
    """A RUN file's times may span 2e10 s: its onsets asked for an 8e10-frequency grid (a
    MemoryError, or hours): the search is refused at once with its own error."""
    t = np.arange(0, 60, 0.2)
    rtt = np.where((t % 5 >= 0.2) & (t % 5 < 0.6) & (t > 1), 300.0, 20.0)
    t = np.append(t, 1e10)  # one probe far away: the span is ~317 years
    rtt = np.append(rtt, 20.0)
    run = Run(probes={"stream": "a", "host": "h", "tos": 0, "size": 56,
                      "seq": np.arange(t.size), "t_sent": t, "rtt_ms": rtt, "status": "ok",
                      "ttl": 64},
              events={"t": np.arange(5.0, 60, 5.0), "kind": "hash_change", "detail": ""})
    run.save(tmp_path / "far.run.gz")
    with pytest.raises(PeriodSearchLimitError, match="MAX_PERIOD_WORK") as err:
        spikes_vs_events(qoslab.load(tmp_path / "far.run.gz"))
    assert "over 1e+10 s" in str(err.value) and "min_period" in str(err.value)


def test_period_monte_carlo_gives_way_to_the_analytic_tail_past_the_work_limit(monkeypatch):
    t = np.sort(np.random.default_rng(3).uniform(0, 100, 12))  # no period: a Monte Carlo p
    full = infer_period(t, span=(0, 100))
    assert full.method == "monte-carlo"
    grid = len(full.periodogram)
    monkeypatch.setattr(period_module, "MAX_PERIOD_WORK", grid * t.size * 50)  # < 101 sets
    cheap = infer_period(t, span=(0, 100))
    assert cheap.method == "analytic" and cheap.period == full.period
    monkeypatch.setattr(period_module, "MAX_PERIOD_WORK", grid * t.size - 1)
    with pytest.raises(PeriodSearchLimitError, match=f"grid of {grid:,} frequencies"):
        infer_period(t, span=(0, 100))


@pytest.mark.parametrize("oversample", [0, -3, 2.5, True])
def test_period_oversample_that_is_not_a_positive_integer_is_refused(oversample):
    t = np.arange(5.0, 100.0, 5.0)
    assert infer_period(t, span=(0, 100), oversample=1).period == pytest.approx(5.0, abs=0.2)
    with pytest.raises(ConfigError, match="oversample"):
        infer_period(t, span=(0, 100), oversample=oversample)
