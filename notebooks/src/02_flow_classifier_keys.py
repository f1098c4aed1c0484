# %% [markdown]
# # 02 · Which flows share a queue? `cls_flow` keys, tunnels, and a TOS surprise
#
# Stochastic fairness queueing (SFQ) gives every *flow* its own small FIFO and serves them round
# robin, so one bulk upload cannot make a ping wait behind hundreds of its packets. What counts
# as a flow is decided by a hash. By default SFQ hashes addresses, protocol and ports; with the
# `flow` classifier (`cls_flow`) you choose the **keys** yourself:
#
# ```
# tc qdisc add dev tun0 root handle 1: sfq divisor 1024 perturb 10
# tc filter add dev tun0 parent 1: protocol all handle 1 flow hash \
#     keys src,dst,proto,proto-src,proto-dst divisor 1024
# ```
#
# Two flows whose keys hash to the same class share one FIFO, and the ping waits behind the
# upload after all. This notebook asks the question on a capture — *which of my flows share a
# class, and why?* — with qoslab's bit-exact reimplementation of `cls_flow` for each kernel era,
# then shows what the answer does to latency in the simulator. Three lessons from real
# experiments:
#
# 1. **Tunnels hide the flows.** Everything inside an IP-in-IP tunnel leaves with the same outer
#    header. Before Linux 3.3, cls_flow read only that header: every flow in the tunnel got *one*
#    class and fair queueing did nothing. The seed's patch added `tunnel-*` keys that read the
#    inner header; from 3.3 the flow dissector looks through IPIP and 6in4 by itself.
# 2. **`proto-dst` of a ping is not zero.** ICMP — and an IPIP packet's outer header — has no
#    ports. In 2.6.37–3.2 cls_flow's `proto-dst` then falls back to a folded kernel pointer of
#    the packet's *route*, and while the IPv4 routing cache existed (until 3.6) it held one
#    entry per (destination, TOS). Pings that differ only in TOS get different classes.
# 3. **Kernel versions disagree.** Same keys, different answers: the `profile` argument picks
#    the era (`classic-2.6.3x` … `5.18+`, plus the seed's `tunnel-patch` and `proposed-fix`).

# %%
# parameters
# scenario: tunnel_keys   (SEED, DURATION … are checked as its parameters by qoslab report -p)
CAPTURE = "captures/tunnel_uploads.pcap"
PLAIN_KEYS = "src,dst,proto,proto-src,proto-dst"
TUNNEL_KEYS = "tunnel-src,tunnel-dst,tunnel-proto,tunnel-proto-src,tunnel-proto-dst"
DIVISOR = 1024
HASHRND = 0x5EED5EED           # the filter's random seed; the kernel draws one at creation
OLD_PROFILE = "tunnel-patch"   # a 2.6.3x kernel carrying the seed's tunnel keys
SEED = 1                       # simulator seed

# %%
%matplotlib inline
import pandas as pd

import qoslab
from qoslab import analysis, hashing, plots
from qoslab.capture import flows
from qoslab.sim import scenarios

plain_keys = PLAIN_KEYS.split(",")
tunnel_keys = plain_keys + TUNNEL_KEYS.split(",")


def classes_by_flow(packets, classifier):
    """The class minors (as tc prints them) each flow of `packets` gets."""
    minors = pd.Series(classifier.classify(packets, hashrnd=HASHRND), index=packets.index)
    return minors.groupby(plots.flow_labels(packets).to_numpy()).agg(
        lambda s: ", ".join(f"1:{m:x}" for m in sorted(set(s))))

# %% [markdown]
# ## 1. The capture
#
# Crafted for this notebook (see `data/README.md`): 40 s on the outer link of an IPIP gateway
# — two SCP-like uploads, a UDP stream and ICMP pings at three TOS values between two sites, all
# inside one 4in4 tunnel, plus a few 6in4 / 4in6 / 6in6 packets. qoslab decodes outer *and*
# inner headers into one PACKETS row per frame.

# %%
packets = qoslab.read_capture(qoslab.data_path(CAPTURE))
packets[["t", "src", "dst", "proto", "tos", "tunnel", "inner_src", "inner_dst", "inner_proto",
         "inner_tos", "inner_sport", "inner_dport"]].head(6)

# %% [markdown]
# Seen from outside, the uplink is one flow (`192.0.2.1 → 198.51.100.1`, protocol 4); inside,
# there are several:

# %%
flows(packets, level="outer")[["src", "dst", "proto", "tunnel", "packets", "bytes"]]

# %%
flows(packets, level="inner")[["src", "dst", "proto", "sport", "dport", "tunnel", "packets", "tos"]]

# %% [markdown]
# ## 2. Plain keys on an old kernel: one class for everything
#
# The packets the gateway sends up the 4in4 tunnel, classified with the classic keys and with
# the seed's tunnel keys added:

# %%
uplink = packets[(packets["tunnel"] == "4in4") & (packets["src"] == "192.0.2.1")]
plain = qoslab.FlowClassifier(plain_keys, divisor=DIVISOR, profile=OLD_PROFILE)
tunnel = qoslab.FlowClassifier(tunnel_keys, divisor=DIVISOR, profile=OLD_PROFILE)
print(plain.to_tc())
print(tunnel.to_tc())
pd.DataFrame({"plain keys": classes_by_flow(uplink, plain),
              "+ tunnel keys": classes_by_flow(uplink, tunnel)})

# %% [markdown]
# With the plain keys every inner flow gets the same class: the classifier hashed the tunnel
# endpoints and protocol 4 — the same five values for every packet. The tunnel keys put the
# inner addresses and ports into the hash, and the flows separate.
#
# The same table from a shell, for every flow of the capture in both directions:
#
# ```
# qoslab hash data/captures/tunnel_uploads.pcap --keys src,dst,proto,proto-src,proto-dst \
#     --divisor 1024 --profile tunnel-patch --hashrnd 0x5EED5EED
# ```
#
# ## 3. Every kernel era
#
# The same plain keys, per profile. From the dissector era (3.3) on, the kernel looks through
# the tunnel without any extra key. (The `tunnel-*` keys exist only in the patched profiles.)

# %%
pd.DataFrame({name: classes_by_flow(uplink, qoslab.FlowClassifier(plain_keys, divisor=DIVISOR,
                                                                  profile=name))
              for name, profile in hashing.PROFILES.items()
              if profile.clsflow is not None}).T.rename_axis("profile")   # cls_flow: 2.6.25+

# %% [markdown]
# ## 4. Shared for this seed, or for every seed?
#
# Two flows in one class may just be unlucky: with 1024 classes and four flows a random seed
# makes some pair collide about 0.6 % of the time, and `perturb` changes the seed now and then.
# Flows whose *hash inputs* are identical share a class for every seed — a configuration
# problem, not bad luck. `hashing.sharing` tells the two apart:

# %%
print(hashing.sharing(uplink, plain))

# %%
print(hashing.sharing(uplink, tunnel))

# %% [markdown]
# ## 5. What it does to latency
#
# The simulator runs the seed's "tunnel aware" experiment: SCP-like uploads and three ping
# streams through one IPIP tunnel, shaped just below a 1 Mbit/s link into SFQ with a `flow`
# filter on the plain keys. Halfway through, the filter is replaced by one with the tunnel keys
# (the `config_change` line).

# %%
tunnelled = scenarios.tunnel_keys(seed=SEED, duration=40.0, switch_at=20.0)
plots.latency_chart(tunnelled, kind="line", logy=True)

# %%
before = tunnelled.probes[tunnelled.probes["t_sent"] < 20.0]
after = tunnelled.probes[tunnelled.probes["t_sent"] >= 20.0]
pd.concat({"plain keys": analysis.summarize(before),
           "+ tunnel keys": analysis.summarize(after)})[["median", "p99", "loss_pct"]].round(1)

# %% [markdown]
# ## 6. The proto-dst / TOS surprise, and the fix
#
# Same tunnel, one upload with TOS 0x08 (what `scp` sets: `IPTOS_THROUGHPUT`), three ping
# streams with TOS 0x00, 0x08 and 0x10, plain keys, on a 2.6.37–3.2 router. The outer IPIP
# header has no ports, so `proto-dst` is the route-cache entry's folded address — one entry per
# TOS. The pings whose TOS differs from the upload's land in other classes and escape its
# backlog; the ping with the upload's TOS shares its queue. Surprising if you wanted "one class
# per tunnel"; arbitrary if you wanted fairness by TOS. The proposed fix makes `proto-dst` (and
# `proto-src`) 0 for traffic without ports: all three pings then share the upload's class,
# predictably.

# %%
surprise = {profile: scenarios.tos_proto_dst(profile=profile, seed=SEED, duration=30.0)
            for profile in ("2.6.37-3.2", "proposed-fix")}
pd.concat({p: analysis.summarize(r.probes) for p, r in surprise.items()})[
    ["median", "p99", "loss_pct"]].round(1)

# %%
plots.latency_chart(surprise["2.6.37-3.2"], kind="line", logy=True)

# %% [markdown]
# ## 7. Explore
#
# Tick keys, pick a profile, divisor, perturb and seed: the key picker shows the `tc filter`
# line and, on the tunnel uplink above, which flows share a class (`flows_in_class` > 1).
# Everything it draws comes from `qoslab.widgets.classify_flows`, the same classifier as above.

# %%
from qoslab import widgets

picker = widgets.KeyPicker(uplink, keys=plain_keys, profile=OLD_PROFILE, divisor=DIVISOR,
                           seed=HASHRND)
picker.update()   # once outside any callback: an error fails the notebook here
picker

# %% [markdown]
# ## What to try next
#
# * In the key picker, switch the profile to `5.18+`: the `tunnel-*` keys go grey (that kernel
#   has none) and the plain keys already separate the tunnelled flows — the dissector looks
#   inside.
# * Tick only `dst`: every flow to one host shares a class. Then set the divisor to 1: one class
#   for all, the FIFO SFQ was meant to replace.
# * `qoslab hash YOUR.pcap --keys ... --profile ...` answers the same question for your own
#   capture, from a shell.
