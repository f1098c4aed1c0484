# %% [markdown]
# # 05 · pfifo_fast, the TOS byte, and the ECN bug
#
# For years every Linux interface without a configured qdisc got `pfifo_fast`: three FIFO
# *bands*, always served in order — band 0 empties before band 1 is looked at, band 1 before
# band 2. Which band a packet joins depends on `skb->priority`, which for IP traffic comes from
# the TOS byte (on forwarding, or when a socket sets `IP_TOS`):
#
#     priority = ip_tos2prio[(tos & 0x1E) >> 1]        include/net/route.h, net/ipv4/route.c
#     band     = prio2band[priority & 15]               net/sched/sch_generic.c
#
# `IPTOS_TOS_MASK = 0x1E` keeps the four RFC 1349 "type of service" bits — low delay 0x10,
# throughput 0x08, reliability 0x04, minimise cost 0x02 — and drops the precedence bits and
# bit 0x01. So `tos 0x10` (interactive) goes to band 0, plain traffic to band 1, and
# `tos 0x08` (bulk) to band 2.
#
# **The bug.** RFC 3168 reused the two low bits of the byte for ECN: `0x02` is *ECT(0)*, "this
# packet's transport understands ECN", `0x03` is *CE*, "congestion experienced". Bit 0x02 was
# still read as "minimise monetary cost", and the old table mapped that entry to
# `TC_PRIO_FILLER` — **band 2**, the lowest. A TCP connection that switched on ECN, doing the
# right thing, was silently demoted behind all best-effort traffic. Dan Siemon described it in
# "pfifo_fast and ECN" (2011); the entry became `TC_PRIO_BESTEFFORT` in 2011 (between 2.6.38 and
# 3.0). ECT(1) (`0x01`) is masked off and was never affected; CE (`0x03`) was, like ECT(0).

# %%
# parameters
# scenario: pfifo_fast_ecn   (SEED, DURATION … are checked as its parameters by qoslab report -p)
TOS_VALUES = [0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x10, 0xB8]
SEED = 1
DURATION = 20.0
LAB_RUN = "lab/pfifo_fast_tos.json.gz"

# %%
%matplotlib inline
import pandas as pd

import qoslab
from qoslab import analysis, hashing, plots
from qoslab.sim import scenarios

# %% [markdown]
# ## 1. The table, old and new
#
# Rows are the TOS bits, columns the ECN codepoint; each cell shows the band and the
# priority. The outlined cells are the ones the fix changed.

# %%
plots.tos_band_table(("old", "new"))

# %% [markdown]
# The same from the functions, for a few TOS bytes you meet in practice (`0xb8` is DSCP EF,
# voice — pfifo_fast knows nothing of DSCP: it reads only the old TOS bits, here 0x18 →
# priority 4, band 1, with the best-effort traffic):

# %%
pd.DataFrame({
    "tos": [f"0x{t:02x}" for t in TOS_VALUES],
    "priority (old)": hashing.tos_to_priority(TOS_VALUES, table="old"),
    "band (old)": hashing.pfifo_fast_band(TOS_VALUES, table="old"),
    "priority (new)": hashing.tos_to_priority(TOS_VALUES, table="new"),
    "band (new)": hashing.pfifo_fast_band(TOS_VALUES, table="new"),
}).set_index("tos")

# %% [markdown]
# ## 2. What the bug did on a busy link
#
# An ECN-capable bulk upload (every packet ECT(0), tos 0x02) saturates a 10 Mbit/s link whose
# only queue is pfifo_fast (txqueuelen 100); a best-effort ping stream (tos 0x00, band 1)
# measures the wait.
#
# * **Old table:** the upload sits in band 2. The ping's band 1 is always served first, so the
#   ping never waits for the upload — and the upload gets only what is left over: ECN traffic
#   was treated as the lowest class of all.
# * **New table:** both are in band 1, one FIFO. The ping waits behind the upload's backlog of
#   up to 100 full-size packets (100 × 1500 B × 8 / 10 Mbit/s = 120 ms).
#
# The fix made ECN traffic *equal*, which is right — and shows that pfifo_fast is no cure for
# latency under load; a fair queue is (notebook 04).

# %%
old = scenarios.pfifo_fast_ecn(table="old", seed=SEED, duration=DURATION)
new = scenarios.pfifo_fast_ecn(table="new", seed=SEED, duration=DURATION)
pd.concat({"old table": analysis.summarize(old.probes),
           "new table": analysis.summarize(new.probes)})[
    ["received", "median", "p90", "p99", "max"]].round(1)

# %% [markdown]
# Both runs on one axis (same scale: the difference is the lesson):

# %%
plots.latency_chart({"old table": old, "new table": new}, kind="line")

# %% [markdown]
# The upload's side: packets it sent, got delivered, lost at the full queue.

# %%
pd.concat({name: pd.DataFrame(run.meta["flow_stats"]).set_index("flow")
           for name, run in {"old table": old, "new table": new}.items()})

# %% [markdown]
# ## 3. A real kernel
#
# A run recorded in qoslab's network-namespace lab on Linux 6.18 (`data/README.md` says how):
# two namespaces joined by a veth pair, HTB at 2 mbit with a `pfifo_fast` leaf, a 3 mbit UDP
# flood at TOS 0, and pings at TOS 0x10 (band 0), 0x00 (band 1, with the flood) and 0x08
# (band 2). This is the seed's TOS figure: 0x10 barely notices the flood, 0x00 waits behind it,
# 0x08 is starved — the modern kernel's table, the same bands as the functions above.

# %%
lab = qoslab.load(qoslab.data_path(LAB_RUN))
bands = {s: hashing.pfifo_fast_band(int(t)) for s, t in
         lab.probes.groupby("stream", sort=False)["tos"].first().items()}
lab_summary = analysis.summarize(lab.probes)[["sent", "received", "loss_pct", "median", "p99"]]
lab_summary.insert(0, "band", pd.Series(bands))
lab_summary.round(1)

# %%
plots.pingexp_figure(lab)

# %% [markdown]
# ## 4. Explore
#
# The run browser shows the simulated runs and the lab run with any of the plot kinds.

# %%
from qoslab import widgets

browser = widgets.RunBrowser({"old table": old, "new table": new, "lab (Linux 6.18)": lab},
                             kind="cdf")
browser.update()   # once outside any callback: an error fails the notebook here
browser

# %% [markdown]
# ## What to try next
#
# * Add `0x28` (DSCP AF11) and `0x2e` to `TOS_VALUES`: which band does pfifo_fast give them, and
#   why is DSCP the wrong mental model for this qdisc?
# * Compare both simulated runs in the browser (Ctrl + click, `cdf`): the ping's price for
#   treating ECN traffic fairly.
# * `qoslab run pfifo_fast_ecn --table old` and `--table new` from a shell give the same two
#   RUNs.
