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
import qoslab
from qoslab import plots

run = qoslab.load(qoslab.data_path(RUN_FILE))
run

# %% [markdown]
# Every source gives the same PROBES columns: stream, host, tos, size, seq, send time,
# RTT in milliseconds, status and TTL (NA where the source does not know).

# %%
run.probes.head()

# %%
run.probes.groupby("stream")["rtt_ms"].describe()

# %% [markdown]
# Latency against time, one colour per stream. The chart is zoomable: drag across it to look
# at a few seconds, Ctrl + wheel to zoom around the pointer, Shift + drag to pan, double-click
# to see everything again — in JupyterLab and in the HTML report alike.

# %%
plots.latency_chart(run, kind="line")

# %% [markdown]
# The same RUN as a static figure, for a paper or a slide (`plots.save_figure(fig, "x.png")`),
# and as a distribution:

# %%
plots.cdf(run)

# %% [markdown]
# ## Where next
#
# The numbered notebooks each tell one part of the story of latency under load, with the
# package's functions called directly first and interactive explorers after:
#
# | notebook | what it shows |
# |---|---|
# | `01_ping_experiments` | ping-exp's experiments (destinations × TOS × size) on loopback and through a real flooded link; the one-page figure; RUN files |
# | `02_flow_classifier_keys` | which flows share an SFQ class: `cls_flow` keys, IP-in-IP tunnels hiding flows, the proto-dst/TOS surprise, kernel eras |
# | `03_sfq_perturbation` | latency spikes on SFQ's perturbation grid, and the period recovered from latency alone |
# | `04_bufferbloat_basics` | queue length → delay, fair queueing and CoDel vs FIFO, shaping just below the link, a real-kernel run |
# | `05_pfifo_fast_ecn` | pfifo_fast's TOS → band table and the old bug that demoted ECN traffic |
# | `06_capture_what_if` | your own capture replayed through a qdisc, keys, perturb interval and rate of your choice |
#
# `qoslab report` (what `make demo` runs) executes them all and writes HTML pages to `reports/`
# that show every figure and widget without a network connection.

# %% [markdown]
# ## What to try next
#
# * `qoslab.load` your own flent file (`*.flent.gz`) or a ping-exp data file and run the cells
#   again with `RUN_FILE` pointing at it.
# * `qoslab plot FILE --kind line -o FILE.html` writes the zoomable chart above as a page you can
#   mail to someone; `qoslab plot A B --kind cdf -o ab.png` compares two runs.
# * `qoslab run --help` lists the simulated experiments; `qoslab run bufferbloat -w b.json.gz`
#   makes a RUN to load here.
