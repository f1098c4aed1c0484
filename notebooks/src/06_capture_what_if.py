# %% [markdown]
# # 06 · Your capture, what if: replay it through another qdisc
#
# The other notebooks ask what a qdisc does to traffic qoslab makes up. This one asks the
# question people bring: **what would this qdisc, these classifier keys, this perturb interval
# and this rate have done to *my* traffic?** It takes a capture — the arrival time and size of
# every packet, and the headers the flow hashes read — and replays it through the shaper,
# qdisc and classifier models (`qoslab.replay`): the same runtime objects the simulator and the
# userspace datapath run, the same hash code as the capture analysis.
#
# What comes back is a RUN like any other:
#
# * `run.decisions` — per packet: when it arrived and left, its flow, the bucket it was hashed
#   to, which hash seed was in force, dropped or not;
# * `run.probes` — per-flow **queueing delay**, one stream per flow, so every plot and analysis
#   of qoslab works on it (spike detection included);
# * `run.events` — the hash changes.
#
# One thing a replay cannot do: the captured senders do not react. A TCP flow's packets arrive
# as they were captured, however long the replayed queue makes them wait.
#
# The default capture is the bundled one of notebook 02: uploads and pings inside IP-in-IP
# tunnels. Point `CAPTURE` at your own pcap or pcapng file to ask about your traffic.

# %%
# parameters
CAPTURE = "captures/tunnel_uploads.pcap"   # a bundled capture, or a path to yours
UPLINK = ["192.0.2.1", "2001:db8:ffff::1"]   # source addresses of the direction that queues ([]: all)
QDISC = "sfq"            # sfq, fq_codel or pfifo
KEYS = ""                # cls_flow keys of a flow filter; "" = the qdisc's own hash
PERTURB = 3              # seconds between hash changes (0: none)
RATE = 200e3             # bit/s of the link the qdisc feeds (below the uplink's rate)
LIMIT = 127              # queue limit in packets
PROFILE = "classic-2.6.3x"   # kernel era
TUNNEL_KEYS = "src,dst,proto,proto-src,proto-dst,tunnel-src,tunnel-dst,tunnel-proto,tunnel-proto-src,tunnel-proto-dst"

# %%
%matplotlib inline
from pathlib import Path

import pandas as pd

import qoslab
from qoslab import analysis, plots
from qoslab.replay.whatif import occupancy, shared_buckets, what_if

# %% [markdown]
# ## 1. The capture

# %%
path = Path(CAPTURE) if Path(CAPTURE).exists() else qoslab.data_path(CAPTURE)
captured = qoslab.read_capture(path)
# a capture holds both directions; a qdisc queues one: keep the packets of the uplink
packets = captured[captured["src"].isin(UPLINK)] if UPLINK else captured
rate = packets["wire_len"].sum() * 8 / packets["t"].max()
print(f"{len(packets):,} of {len(captured):,} packets in {packets['t'].max():.1f} s: "
      f"{rate / 1e3:.0f} kbit/s on average")
qoslab.capture.flows(packets, level="inner").head(8)

# %% [markdown]
# ## 2. Replayed through the qdisc
#
# The link rate is set below the capture's average rate, so a queue forms and the qdisc's
# choices matter. The chart shows each flow's time in the qdisc with the hash changes as
# vertical lines and the spike events shaded.

# %%
run = what_if(packets, qdisc=QDISC, keys=KEYS, perturb=PERTURB, rate=RATE, limit=LIMIT,
              profile=PROFILE)
report = analysis.spikes_vs_events(run, kind="hash_change")
print(run.meta["tc"])
print(report.summary())
analysis.summarize(run.probes)[["sent", "received", "loss_pct", "median", "p90", "max"]].round(1)

# %%
plots.latency_chart(run, kind="scatter", logy=True, spikes=report.events)

# %% [markdown]
# ## 3. Who shared a bucket, and when
#
# With the qdisc's own hash (or keys that see only the outer header) every flow of a tunnel
# hashes alike: the whole tunnel is one bucket, and an upload's backlog is every ping's
# waiting time. Each seed epoch re-deals the buckets.

# %%
shared = shared_buckets(run.decisions)
shared.head(10)

# %%
queue = occupancy(run.decisions)   # sampled every 0.1 s
# three perturb periods around the first spike event: two hash changes and what moved
window = plots.occupancy_window(queue, report.events, period=PERTURB or 10)
plots.occupancy(window, events=run.events)

# %% [markdown]
# ## 4. The keys decide
#
# The same packets with a flow filter on the classic keys (the outer header only) and on the
# tunnel keys (the inner header too, the seed's patch): the median time in the qdisc of every
# flow, side by side.

# %%
by_keys = {}
for name, keys in (("classic keys", "src,dst,proto,proto-src,proto-dst"),
                   ("tunnel keys", TUNNEL_KEYS)):
    other = what_if(packets, qdisc="sfq", keys=keys, perturb=0, rate=RATE, limit=LIMIT,
                    profile="tunnel-patch")
    by_keys[name] = other.probes.groupby("stream")["rtt_ms"].median()
pd.DataFrame(by_keys).round(1).sort_values("classic keys", ascending=False).head(15)

# %% [markdown]
# ## 5. Try it
#
# Change the qdisc, keys, perturb interval, rate, limit or era and press **Run**: the capture is
# replayed again (a few seconds for this one; a large capture shows a progress bar when replayed
# with `qoslab replay CAPTURE …` on the command line).

# %%
from qoslab import widgets  # noqa: E402

explorer = widgets.WhatIfExplorer(packets, qdisc=QDISC, keys=KEYS, perturb=PERTURB, rate=RATE,
                                  limit=LIMIT, profile=PROFILE)
explorer.update()   # once outside any callback: an error fails the notebook here
explorer

# %% [markdown]
# ## What to try next
#
# * Set `perturb` to 0 and press **Run**: no hash changes, no spike events — and the pings'
#   median wait grows from about 0.1 s to over a second. With the qdisc's own hash the whole
#   tunnel is one bucket; classic SFQ leaves queued packets in their old slot at a hash change,
#   so after each change new arrivals skip the upload's backlog for a while. Without
#   perturbation every ping waits behind all of it.
# * Raise `rate` to `500kbit`, above the capture's average rate: the queue drains, the pings
#   wait a few milliseconds, and the qdisc's choices stop mattering — a qdisc only decides
#   where a queue forms.
# * Type the tunnel keys of the parameters cell (`TUNNEL_KEYS`) into `keys` and choose the
#   profile `tunnel-patch`: each tunnelled flow gets its own bucket (section 4).
# * Your own capture, from a shell: `qoslab replay YOUR.pcap --tc "sfq limit 127 perturb 3"
#   --profile classic-2.6.3x --rate 200kbit -w run.json.gz`, then
#   `qoslab plot run.json.gz --kind line --spikes -o run.html` for the zoomable chart.
