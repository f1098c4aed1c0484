# %% [markdown]
# # 01 · Ping experiments: measuring latency the way ping-exp did, and then some
#
# The cheapest instrument for a queue you cannot see is a ping. Send a small probe at a fixed
# interval, time the echo, and the round-trip time (RTT) tells you how long the probe waited in
# every queue along the path. When a link is idle the RTT is the propagation delay plus a few
# microseconds of processing; when a queue in front of the bottleneck fills, every probe that
# joins it waits for the whole backlog to drain. That waiting is what Bufferbloat people call
# *latency under load*, and it is the number this project is about.
#
# The old `ping-exp` tool ran several ping *experiments* at once — one per destination and TOS
# byte (and later packet size) — with a shared interval and count, and drew one page: latency
# against time (scatter, or lines with `-l`), bars of loss / mean / mdev, a 2 ms histogram and
# the lost probes over time. qoslab does the same with one engine and one table:
#
# * every probe is one row of **PROBES** (`stream, host, tos, size, seq, t_sent, rtt_ms, status,
#   ttl`), whatever produced it: qoslab's own pinger, iputils `ping`, flent, the simulator, the
#   network-namespace lab;
# * a **RUN** is PROBES plus **EVENTS** (things that happened to the path) plus **META** (what
#   you need to repeat the run).
#
# This notebook first pings the loopback interface (the only place a notebook may send traffic
# without asking), then reads real runs recorded elsewhere — ping-exp's classic TOS experiment
# through a shaped, flooded link, and a flent run — and ends with a run browser widget.

# %%
# parameters
LIVE = True                    # ping the loopback interface; False: only bundled data
TARGETS = ["127.0.0.1"]        # loopback only: a notebook must not send traffic elsewhere
TOS_VALUES = [0x00, 0x10, 0x08]
COUNT = 100
INTERVAL = 0.02                # seconds between probes of one stream
LIVE_SECONDS = 4.0             # the live run's length (None: until you press Stop)
LIVE_INTERVAL = 0.05
LIVE_RUN_FILE = None           # save the live run there (journalled while it runs); None: don't
FLENT_RUN = "flent/ping-v4-icmp-irtt.flent.gz"
LAB_RUN = "lab/pfifo_fast_tos.json.gz"

# %%
%matplotlib inline
import tempfile
from pathlib import Path

import qoslab
from qoslab import plots
from qoslab.analysis import summarize
from qoslab.schema import PROBES

# %% [markdown]
# ## 1. Three experiments on loopback
#
# One call runs every destination × TOS combination concurrently from one process. Probes are
# sent *isochronously* — probe *k* leaves at `start + k·interval`, so a slow reply never delays
# the next probe — and timed with kernel receive timestamps. `meta["backend"]` says which way
# the probes went out (raw socket, unprivileged ICMP socket, or the system `ping`).

# %%
if LIVE:
    live = qoslab.ping(TARGETS, tos=TOS_VALUES, interval=INTERVAL, count=COUNT)
else:
    live = qoslab.load(qoslab.data_path(FLENT_RUN))
live.meta.get("backend"), len(live.probes)

# %% [markdown]
# The summary uses iputils' definitions, so it agrees with the `rtt min/avg/max/mdev` line that
# `ping` prints: note that *mdev* is the standard deviation of the RTT, not a mean absolute
# deviation. *jitter* is the mean absolute difference between consecutive RTTs (RFC 3393's
# delay variation, as irtt and VoIP tools report it).

# %%
summarize(live.probes).round(3)

# %% [markdown]
# On loopback nothing queues, so the three TOS values are indistinguishable: every RTT is a few
# tens of microseconds. The TOS byte only matters where a qdisc looks at it (section 2 and
# notebook 05). Latency against time, ping-exp's default scatter:

# %%
plots.latency_chart(live, kind="scatter")

# %% [markdown]
# ## 2. ping-exp's TOS experiment on a loaded link
#
# The experiment ping-exp was written for: one destination, three TOS bytes, through a
# bottleneck that a flood keeps full. This run was recorded by qoslab's network-namespace lab on
# Linux 6.18 (`data/README.md` says how): HTB at 2 mbit with a `pfifo_fast` leaf, a 3 mbit UDP
# flood at TOS 0, and `qoslab ping` with TOS 0x10, 0x00 and 0x08, 50 probes each at 0.1 s.

# %%
lab = qoslab.load(qoslab.data_path(LAB_RUN))
summarize(lab.probes).round(1)

# %%
plots.pingexp_figure(lab)

# %% [markdown]
# Three very different experiences on one link: TOS 0x10 (low delay) goes to pfifo_fast's band 0
# and is served before anything else — a couple of milliseconds; TOS 0x00 shares band 1 with
# the flood and waits behind its full queue (hundreds of milliseconds, half the probes dropped
# at the full queue); TOS 0x08 (throughput) is in band 2, served only when bands 0 and 1 are
# empty, which under this flood is never. Notebook 05 explains the table behind it.
#
# The loss panel shows *when* probes went missing; the `events` of the run mark when the
# flood started and stopped:

# %%
lab.events

# %% [markdown]
# ## 3. A flent run between two hosts
#
# The bundled file below is a real `flent ping` run between two network namespaces joined by a
# veth pair: ICMP through fping and UDP through irtt. qoslab reads flent's `.flent.gz` files directly, so
# every plot and statistic here works on results recorded with flent too.

# %%
flent_run = qoslab.load(qoslab.data_path(FLENT_RUN))
summarize(flent_run.probes).round(3)

# %% [markdown]
# Scatter (ping-exp's default) shows every probe; lines (`-l`) make trends and outliers easier
# to follow; lost probes break a line instead of being bridged.

# %%
plots.latency_chart(flent_run, kind="line")

# %% [markdown]
# The distribution tells more than the mean: the cumulative distribution makes the tail visible
# (a p99 of 5× the median is what users feel as "the network hangs sometimes"). ping-exp's
# histogram used 2 ms bins, right for a loaded link; these RTTs are a few hundredths of a
# millisecond, so the bins follow the data (`binwidth_ms="auto"`): each stream gets the width
# that fits its own spread (the ICMP stream's 0.016 ms and the UDP stream's 0.6 ms could not
# share one), the legend says which.

# %%
plots.cdf(flent_run)

# %%
plots.histogram(flent_run, binwidth_ms="auto")

# %% [markdown]
# ## 4. Runs are files
#
# `Run.save` writes one self-describing gzipped JSON (format name, version, META, PROBES,
# EVENTS) atomically; while a long experiment runs, probes are journalled to `FILE.partial`, so a
# crash or Ctrl-C loses nothing and `qoslab.load` recovers the journal. The same `qoslab.load`
# reads flent files and the original ping-exp's pickles (with an unpickler that refuses to run
# any code).

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "loopback.run.json.gz"
    live.save(path)
    again = qoslab.load(path)
columns = list(PROBES)   # the PROBES schema; extra engine columns ride along too
again.probes[columns].equals(live.probes[columns]), again.meta["backend"] == live.meta["backend"]

# %% [markdown]
# On the command line the same experiments are ping-exp's options:
#
# ```
# qoslab ping -t lo0,127.0.0.1,0x00 -t lo10,127.0.0.1,0x10 -i 0.02 -c 100 -w loopback.run.json.gz
# qoslab ping -r loopback.run.json.gz -o loopback.png -l
# ```
#
# ## 5. Browse runs interactively
#
# Everything above came from direct calls. The run browser redraws the same figures for the run,
# streams and plot kind you pick; an error in a callback appears in its red error area instead
# of vanishing. (In the rendered HTML the controls show their initial state.)

# %%
from qoslab import widgets

browser = widgets.RunBrowser({"lab: TOS under a flood": lab, "loopback": live,
                              "flent ping": flent_run}, kind="cdf")
browser.update()   # once outside any callback: an error fails the notebook here
browser

# %% [markdown]
# ## 6. Watch it live
#
# A long experiment is best watched while it runs. A `LiveView` runs a *producer* in the
# background — here the same pinger, handing each batch of rows to the view (`live=`) and
# watching the view's Stop (`stop=`) — and redraws latency a few times a second as the probes
# come back, EVENTS as they happen, with a progress bar and a **Stop** button: stopping ends
# the run cleanly — no new probe, the answers in flight awaited — and every probe sent is in
# the RUN (with `path=`, in its journal too, while it runs). The chart stays zoomable while it
# grows; a zoom you chose survives the redraws. (Run this cell on its own to use Stop: the
# next cell waits for the run to end.)

# %%
def live_pings(feed, stop):
    return qoslab.ping(TARGETS, tos=TOS_VALUES, interval=LIVE_INTERVAL, count=None,
                       deadline=LIVE_SECONDS, path=LIVE_RUN_FILE, live=feed.add_rows, stop=stop,
                       progress=feed.set_progress)


watch = widgets.LiveView.start(live_pings, meta={"source": "qoslab-ping", "targets": TARGETS},
                               expected_seconds=LIVE_SECONDS)
watch

# %%
watched = watch.wait()   # the RUN, once the deadline passed or Stop was pressed
summarize(watched.probes).round(3)

# %% [markdown]
# The same view follows any run that writes a journal: `widgets.LiveView.follow("run.json.gz")`
# watches `qoslab lab … -w run.json.gz` or `qoslab ping … -w run.json.gz` running in a terminal,
# and `widgets.LiveView.scenario("pfifo_fast_tos", "kernel", path="tos.json.gz")` starts the lab
# run of section 2 itself (as root) and watches it, with a Stop button.

# %% [markdown]
# ## What to try next
#
# * Tick two runs in the browser (Ctrl + click): CDFs and boxes get one colour per run, as
#   flent draws several data files.
# * Watch a longer live run (`LIVE_SECONDS = None`) and press *Stop*: every probe sent is in
#   the RUN, the unanswered ones included.
# * On a machine you administer, `sudo qoslab lab pfifo_fast_tos -w tos.json.gz` records the run
#   of section 2 yourself; `qoslab ping -r tos.json.gz -l` redraws it as ping-exp did.
