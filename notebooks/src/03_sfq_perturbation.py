# %% [markdown]
# # 03 · SFQ perturbation: latency spikes on a clock you can recover
#
# SFQ hashes each packet to one of `divisor` buckets and serves the active buckets round robin.
# Hash collisions are unavoidable, so SFQ can change its hash seed every `perturb` seconds: two
# flows unlucky enough to share a bucket are separated at the next change. The seed's
# experiment ("Linux SFQ experimentation") looked like this:
#
# ```
# tc qdisc add dev eth0 root handle 1: htb default 1
# tc class add dev eth0 parent 1: classid 1:1 htb rate 900kbit    # just below the link
# tc qdisc add dev eth0 parent 1:1 handle 10: sfq limit 10 perturb 5
# ```
#
# with two ping floods of MTU-sized packets and three low-rate ping streams to other hosts. The
# pings were fine most of the time and then, now and again, spiked — and the spikes sat on the
# perturbation grid.
#
# Why? On kernels of that era (classic SFQ, 2.6.2x–2.6.3x, read in the 2.6.32 source) two things
# happen at a seed change:
#
# * flows move to new buckets, and a flow that becomes active is linked into the round robin
#   **without resetting its slot's allotment**. A ping's slot empties after every packet, so it
#   keeps earning quanta it never spends; when a perturbation moves a saturating flood into
#   such a recently emptied slot (the free list is LIFO), the flood inherits thousands of bytes
#   of stale allotment and is served alone until they are used up, while the pings wait;
# * there is **no rehash**: packets queued before the change stay in their old slot.
#
# The allotment handling was fixed around 2.6.38 and Linux 3.3 added a rehash at perturbation
# that re-bins queued packets.
#
# This notebook reproduces the experiment in qoslab's simulator — driven by the same SFQ hash
# code as the capture analysis — and then does what a user with only a ping log would do:
# **detect the spikes and infer the perturbation period from latency alone.**

# %%
# parameters
# scenario: sfq_perturb   (SEED, DURATION … are checked as its parameters by qoslab report -p)
PERTURB = 5          # seconds between hash changes
SEED = 1             # simulator seed: same seed, same run
DURATION = 120.0     # simulated seconds
SWEEP = [3, 5, 8, 20, 0]   # perturb intervals for the blind test (0: no perturbation)
SWEEP_DURATION = 300.0   # simulated seconds per blind run

# %%
%matplotlib inline
import pandas as pd

from qoslab import analysis, plots
from qoslab.schema import occupancy_table
from qoslab.sim import scenarios

# %% [markdown]
# ## 1. The experiment, simulated

# %%
run = scenarios.sfq_perturb(perturb=PERTURB, seed=SEED, duration=DURATION)
print(run.meta["qdisc"])
run.events.head(6)

# %%
analysis.summarize(run.probes).round(2)

# %% [markdown]
# Latency of the three ping streams with every hash change as a vertical line. The shaded
# spans are **spikes** (section 2 says how they are found): a few hundred milliseconds of
# waiting, right after some of the hash changes. Drag across one to zoom in (or Ctrl + wheel),
# double-click to see the whole run again.

# %%
plots.latency_chart(run, kind="scatter", logy=True, spikes=True, note="first")

# %% [markdown]
# What SFQ saw: which bucket each flow's queued packets sat in, sampled every 0.1 s, around two
# hash changes. The two floods go to the same host with ICMP, so their hash inputs are identical
# and they always share a bucket (outlined); at every change all flows jump to new buckets.

# %%
queue = occupancy_table(run)   # the OCCUPANCY samples the simulator put in the RUN
window = queue[queue["t"].between(2 * PERTURB - 2, 4 * PERTURB + 2)]
plots.occupancy(window, events=run.events)

# %% [markdown]
# ## 2. Detect the spikes
#
# `detect_spikes` compares every probe with a robust baseline (a centred rolling median) and
# flags probes more than `k` robust standard deviations (and at least a few milliseconds) above
# it; consecutive flagged probes form one spike (see its docstring for the exact rule).
#
# The three ping streams cross one queue, so one queue event shows up as a spike in each of
# them. Everything qoslab counts is a **spike event**: spikes of any streams starting within a
# second of each other are one event (`analysis.spike_events`). `analysis.spikes_vs_events`
# does the whole chain — per-stream spikes, spike events, their alignment with the hash
# changes, the period from latency alone — and the explorer at the end calls the same
# function, so its numbers are these.

# %%
report = analysis.spikes_vs_events(run, kind="hash_change")
print(report.summary())
report.events.head(10)

# %%
plots.latency_chart(run, kind="line", spikes=report.events, logy=True)

# %% [markdown]
# ## 3. Are the spikes on the hash-change grid?
#
# Which fraction of spike events start within a short window after a hash change, against the
# fraction chance would give (the share of the run covered by those windows), and the
# probability of so many aligned events if spikes came at random times (an exact binomial
# test). Not every change causes a spike — only those that hand a flood a slot with stale
# allotment — and the statistic does not need them to.

# %%
alignment = report.alignment
print(alignment.summary())
alignment.distances.round(3).head(10)

# %% [markdown]
# ## 4. The period from latency alone
#
# A user with a ping log but no access to the router knows neither the perturb interval nor
# when the qdisc started. Folding the spike-event onsets modulo a candidate period piles them up
# at one phase only when the period is right: the mean resultant length *R* of the phases is 1
# for a perfect grid and near 0 for random times (a Rayleigh test, calibrated for the many
# periods tried, gives the p-value). Divisors of the true period fit too, so ties go to the
# longest period.

# %%
inferred = report.period
print(inferred.summary())

# %%
plots.periodogram(inferred, true_period=PERTURB)   # inferred.periodogram is the table

# %% [markdown]
# A blind test: simulate other perturb intervals for five minutes each, hide the events, and
# infer the period from the ping log alone. Only some hash changes hand a flood a slot with
# stale allotment, so even five minutes show a handful of spike events for most intervals;
# with too few (a long interval, or an interval whose changes happen not to hit such a slot)
# or none at all (perturbation off) the answer is "no grid" — NaN — rather than a guess, and
# the p-value says "n/a" when there was nothing to test.

# %%
rows = []
for perturb in SWEEP:
    blind = scenarios.sfq_perturb(perturb=perturb, seed=SEED, duration=SWEEP_DURATION)
    found = analysis.spikes_vs_events(blind).period   # onsets only: the events stay hidden
    rows.append({"true perturb (s)": perturb, "spike events": found.n,
                 "inferred period (s)": found.period, "p-value": found.p.text,
                 "grid found": found.significant()})
pd.DataFrame(rows).set_index("true perturb (s)").round(2)

# %% [markdown]
# ## 5. The same experiment on a modern kernel (Linux 3.3 and later)
#
# A new flow gets one quantum (no stale allotment) and the perturb timer rehashes the queue:
# the same traffic, the same hash changes, no spikes.

# %%
modern = scenarios.sfq_perturb(perturb=PERTURB, seed=SEED, duration=DURATION, profile="5.18+")
pd.concat({"classic-2.6.3x": analysis.summarize(run.probes),
           "5.18+": analysis.summarize(modern.probes)})[["median", "p99", "max", "loss_pct"]].round(1)

# %%
# both eras on one axis (one colour per run): the same hash changes, spikes only in the old one
plots.latency_chart({"classic-2.6.3x": run, "5.18+": modern}, kind="scatter", logy=True)

# %% [markdown]
# ## 6. Explore
#
# The perturb explorer runs the `sfq_perturb` scenario (`qoslab run sfq_perturb --help` lists
# the same parameters, units and ranges) for the values you choose when you press *Run* — runs
# are cached, so going back costs nothing — and redraws latency with the hash changes, the
# spike events and the alignment statistic, computed by the same `spikes_vs_events` as above.
# Type a value with its unit (`800kbit`, `0.5`), or 0 for no perturbation; a value out of
# range gets one line saying the allowed range. In this rendered page the controls are frozen
# at their initial values (the chart still zooms): run the notebook to play.

# %%
from qoslab import widgets

explorer = widgets.PerturbExplorer(perturb=int(PERTURB), seed=SEED, duration=DURATION)
explorer.update()   # once outside any callback: an error fails the notebook here
explorer

# %% [markdown]
# ## What to try next
#
# * In the explorer, set the profile to `5.18+` and press *Run*: the same hash changes, no
#   spikes (section 5). Then `2.6.37-3.2`, the era between the fixes.
# * Set `perturb` to 0: no hash changes, no spikes — and the two floods, sharing one bucket
#   forever, keep each other company (the occupancy figure of section 1 says why).
# * Lower `shaper_rate` to `600kbit`: a spike is the time to drain a stale allotment, so it grows
#   as the rate falls.
# * Run the real thing: `sudo qoslab run sfq_perturb --backend kernel` needs a kernel with
#   `sch_sfq` (this machine's lacks it); `qoslab run sfq_perturb -w run.json.gz` simulates it
#   from the shell, and `qoslab plot run.json.gz --kind line --spikes -o run.html` gives a
#   zoomable page.
