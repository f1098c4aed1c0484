# %% [markdown]
# # qoslab quickstart
#
# qoslab turns everything it measures, simulates or loads into one tidy table of latency
# probes (PROBES), one of things that happened to the path (EVENTS) and a dict of metadata:
# a **RUN**. This notebook loads a bundled real run — a five-second `flent ping` between two
# network namespaces, ICMP through fping and UDP through irtt — and draws it.

# %%
# parameters
RUN_FILE = "flent/ping-v4-icmp-irtt.flent.gz"

# %%
import seaborn as sns

import qoslab

run = qoslab.load(qoslab.data_path(RUN_FILE))
run

# %% [markdown]
# Every source gives the same PROBES columns: stream, host, tos, size, seq, send time,
# RTT in milliseconds, status and TTL (NA where the source does not know).

# %%
run.probes.head()

# %%
run.probes.groupby("stream")["rtt_ms"].describe()

# %%
sns.set_theme(style="whitegrid")
grid = sns.relplot(data=run.probes, x="t_sent", y="rtt_ms", hue="stream", kind="line",
                   marker="o", height=3.5, aspect=2)
grid.set_axis_labels("time since start (s)", "RTT (ms)");
