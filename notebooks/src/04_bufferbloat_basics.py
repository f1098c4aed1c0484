# %% [markdown]
# # 04 · Bufferbloat basics: queues, shaping, and fair queueing
#
# A packet that reaches a busy link waits for everything queued in front of it. With a backlog
# of *Q* bytes in front of a link of *R* bit/s, the wait is
#
#     delay = 8 · Q / R
#
# so 100 full-size (1500 B) packets in front of a 10 Mbit/s link are 8 · 150 000 / 10⁷ s =
# 120 ms. A bulk TCP upload keeps growing its window until a packet is dropped, so it fills
# **whatever buffer the bottleneck has**: the bigger the buffer, the longer every other packet
# waits. That is Bufferbloat — not a slow link, but a full queue in front of it. Loss does not
# warn you: a bloated queue drops almost nothing.
#
# The remedies, in the order the Bufferbloat project teaches them:
#
# 1. **Keep the queue short.** A short FIFO cannot bloat, but it drops bursts; an AQM such as
#    CoDel drops (or ECN-marks) only when packets have waited longer than a *target* (5 ms) for
#    an *interval* (100 ms), so the standing queue stays near the target whatever the buffer.
# 2. **Isolate flows.** Fair queueing (SFQ, fq_codel) gives every flow its own queue: a ping, a
#    DNS lookup or a game never waits behind someone's upload.
# 3. **Own the bottleneck.** The real bottleneck's buffer is usually in a modem you cannot
#    configure. Shape your egress *just below* the link rate (90–95 %) so the queue forms in
#    your router, where remedies 1 and 2 live, and the modem's buffer stays empty.
#
# Sections 1–3 use qoslab's discrete-event simulator (deterministic for a seed, seconds to run)
# with real qdisc behaviour: greedy TCP-like uploads and ping streams on one uplink. Section 4
# puts a real measurement from the network-namespace lab beside it.

# %%
# parameters
# scenario: bufferbloat   (SEED, DURATION … are checked as its parameters by qoslab report -p)
LINK_MBIT = 10.0
QUEUE_LIMITS = [20, 100, 300, 1000]  # packets of buffer in front of the link
SHAPE_FRACTION = 0.95                # shaper rate as a fraction of the link rate
SEED = 1
DURATION = 20.0
LAB_RUN = "lab/bufferbloat.json.gz"

# %%
%matplotlib inline
import pandas as pd

import qoslab
from qoslab import analysis, plots
from qoslab.sim import (BulkFlow, FqCodel, Link, Pfifo, PingStream, SimConfig, TokenBucket,
                        simulate)
from qoslab.sim import scenarios

LINK = LINK_MBIT * 1e6

# %% [markdown]
# ## 1. Queue length → delay
#
# Four uploads saturate the link; three ping streams measure the wait. Each run uses a plain
# FIFO (`pfifo`) of a different length. The last column is the formula above for a full queue.

# %%
fifo_runs = {limit: scenarios.bufferbloat(limit, qdisc="pfifo", seed=SEED, duration=DURATION,
                                          link_rate=LINK)
             for limit in QUEUE_LIMITS}
rows = {}
for limit, run in fifo_runs.items():
    s = analysis.summarize(run.probes)
    rows[limit] = {"median RTT (ms)": s["median"].median(), "p99 RTT (ms)": s["p99"].max(),
                   "ping loss %": s["loss_pct"].mean(),
                   "full queue by formula (ms)": 8 * 1500 * limit / LINK * 1e3}
pd.DataFrame(rows).T.rename_axis("pfifo limit (packets)").round(1)

# %% [markdown]
# The ping RTT follows the formula (plus the 20 ms of propagation): the uploads keep the queue
# nearly full, and a bigger buffer buys nothing but delay. Latency against time with the
# largest buffer — the saw-tooth is TCP's window halving at each drop:

# %%
biggest = QUEUE_LIMITS[-1]
full_queue_ms = 20 + 8 * 1500 * biggest / LINK * 1e3   # propagation + a full queue
plots.latency_chart(fifo_runs[biggest], kind="line", hlines=[
    {"y": full_queue_ms, "label": f"full queue: {biggest} × 1500 B at {LINK_MBIT:g} Mbit/s "
                                  f"+ 20 ms = {full_queue_ms:.0f} ms"}])

# %% [markdown]
# ## 2. Fair queueing and AQM vs FIFO
#
# Same link, same uploads, same 1000-packet limit; only the qdisc changes.

# %%
by_qdisc = {q: scenarios.bufferbloat(QUEUE_LIMITS[-1], qdisc=q, seed=SEED, duration=DURATION,
                                     link_rate=LINK)
            for q in ("pfifo", "sfq", "fq_codel")}
pd.concat({q: analysis.summarize(r.probes) for q, r in by_qdisc.items()})[
    ["median", "p90", "p99", "loss_pct"]].round(2)

# %%
plots.latency_chart({q: by_qdisc[q] for q in ("pfifo", "fq_codel")}, kind="line", logy=True)

# %% [markdown]
# With SFQ or fq_codel each ping is its own flow with (almost) nothing queued in front of it: it
# waits for at most one packet of each active upload, a millisecond or two at 10 Mbit/s.
# fq_codel additionally keeps the uploads' own queues near CoDel's 5 ms target, which matters
# for the uploads' own interactive traffic (ACKs, a video call inside the same flow).
#
# ## 3. Shape just below the link
#
# The simulator's link has a single queue: the qdisc in front of it. An unshaped uplink behind
# a modem behaves like the first run below — one big FIFO (the modem's buffer) that nobody
# configured. Shaping at 95 % of the link rate with fq_codel moves the queue into our own
# qdisc, where it is managed. The price is some upload throughput; the last row says how much.

# %%
traffic = tuple([BulkFlow(f"10.0.9.{i + 1}", sport=40000 + i, start=0.5 + 0.1 * i) for i in range(4)]
                + [PingStream(f"10.0.{i + 1}.1", interval=0.2, start=1.0) for i in range(3)])


def uplink(qdisc, shaper=None, name="uplink"):
    """One simulated uplink: the traffic above through `qdisc`, optionally shaped."""
    return simulate(SimConfig(traffic=traffic, qdisc=qdisc, shaper=shaper,
                              link=Link(rate=LINK, delay=0.010), duration=DURATION, seed=SEED,
                              name=name))


unshaped = uplink(Pfifo(limit=QUEUE_LIMITS[-1]), name="modem buffer, unshaped")
shaped = uplink(FqCodel(), TokenBucket(rate=SHAPE_FRACTION * LINK), name="shaped + fq_codel")


def uploaded_packets(run):
    return sum(f["delivered"] for f in run.meta["flow_stats"] if f["flow"].startswith("tcp"))


compare = pd.DataFrame({name: {
    "ping median (ms)": analysis.summarize(run.probes)["median"].median(),
    "ping p99 (ms)": analysis.summarize(run.probes)["p99"].max(),
    "upload packets delivered": uploaded_packets(run)}
    for name, run in {"unshaped, 1000-packet FIFO": unshaped,
                      f"shaped at {SHAPE_FRACTION:.0%} + fq_codel": shaped}.items()})
compare.loc["upload throughput vs unshaped"] = (compare.loc["upload packets delivered"]
                                                / uploaded_packets(unshaped))
compare.round(2)

# %%
plots.latency_chart({"unshaped": unshaped, "shaped + fq_codel": shaped}, kind="line",
                    logy=True)

# %% [markdown]
# ## 4. The same lesson on a real kernel
#
# A run recorded in qoslab's network-namespace lab on Linux 6.18 (see `data/README.md`):
# client → router → server, the router's egress shaped by HTB at 2 mbit with a `pfifo` leaf of
# **1000** packets, a 2.5 mbit UDP flood of 500-byte packets — and a few seconds later the leaf
# is replaced by a `pfifo` of **10** packets (the `config_change` event in the plot). A full
# 1000-packet queue of 500-byte packets at 2 Mbit/s is 8 · 500 000 / 2·10⁶ s ≈ 2 s; ten
# packets are 20 ms.

# %%
lab = qoslab.load(qoslab.data_path(LAB_RUN))
lab.events

# %%
phases = pd.DataFrame([{"phase": p["name"], "from (s)": p["t_start"], "to (s)": p["t_end"],
                        "queue at the end (packets)": p["tc"]["qlen"],
                        "dropped": p["tc"]["drops"],
                        "full queue by formula (ms)": p["predicted_full_delay_ms"]}
                       for p in lab.meta["phases"]]).set_index("phase")
for name, p in phases.iterrows():
    rtt = lab.probes.loc[lab.probes["t_sent"].between(p["from (s)"], p["to (s)"]), "rtt_ms"]
    phases.loc[name, "median ping RTT (ms)"] = rtt.median()
phases.round(1)

# %%
plots.latency_chart(lab, kind="scatter", logy=True, hlines=[
    {"y": p["predicted_full_delay_ms"], "label": f"full queue, {p['name']}: "
                                              f"{p['predicted_full_delay_ms']:.0f} ms"}
    for p in lab.meta["phases"]])

# %% [markdown]
# ## 5. Explore
#
# The run browser puts every run of this notebook under one set of controls: pick a run, the
# streams and the kind of plot.

# %%
from qoslab import widgets

browser = widgets.RunBrowser({**{f"pfifo limit {k}": r for k, r in fifo_runs.items()},
                              **{f"{q}, limit 1000": r for q, r in by_qdisc.items()},
                              "unshaped": unshaped, "shaped 95 % + fq_codel": shaped,
                              "lab (Linux 6.18)": lab},
                             kind="cdf")
browser.update()   # once outside any callback: an error fails the notebook here
browser

# %% [markdown]
# ## What to try next
#
# * Select several runs in the browser (Ctrl + click) and plot `cdf` or `box`: the queue limits
#   side by side, one colour each.
# * Change `QUEUE_LIMITS` or `LINK_MBIT` in the parameters cell (or `qoslab report -p
#   LINK_MBIT=2`) and check the dashed full-queue line still predicts the plateau.
# * `qoslab run bufferbloat --qdisc fq_codel -w fq.json.gz` and `--qdisc pfifo`, then
#   `qoslab plot pfifo.json.gz fq.json.gz --kind cdf`: the lesson in two commands.
# * As root, run section 4's experiment on this machine's kernel and watch it as it runs:
#   `widgets.LiveView.scenario("bufferbloat", "kernel", path="bb.json.gz", duration=30)` draws
#   the RTT as the pings come back, the queue change as it happens; Stop keeps every probe in
#   `bb.json.gz`.
