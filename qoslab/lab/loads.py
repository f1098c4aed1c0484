"""Processes the lab runs inside its namespaces: floods, bulk transfers, tcpdump, pings.

:class:`LabProcess` starts a program in a namespace (``ip netns exec``, which execs it, so the
process id is the program's own), waits for it to say it is ready, and stops it with SIGTERM
then SIGKILL. :class:`Load` pairs a sender with its sink (:mod:`qoslab.lab.flood`, or iperf3 for
TCP when asked) and reports both summaries. Every load has a bounded duration.
"""

from __future__ import annotations

import contextlib
import json
import math
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..children import display_argv, find_program, isolation, python_argv, start_child
from .flood import parse_rate
from .netns import LabCommandError, Namespace, run_cmd

__all__ = ["LabProcess", "Load", "start_udp_flood", "start_tcp_bulk", "start_ping_flood",
           "FLOOD_SCRIPT"]

#: The built-in load generator; it imports only the standard library, so it is run as a
#: script (``python …/flood.py``, ~0.1 s to start) rather than ``python -m qoslab.lab.flood``
#: (which would import the whole package, ~1 s on a loaded machine).
FLOOD_SCRIPT = str(Path(__file__).with_name("flood.py"))


class LabProcess:
    """A program running inside a lab namespace.

    Parameters
    ----------
    ns
        The namespace.
    argv
        Program and arguments (run via ``ip netns exec``; never a shell).
    name
        Label for messages.
    ready
        Predicate on a line of the program's output (stdout, or stderr with
        ``ready_stream="stderr"``) meaning "set up"; None: do not wait.
    stdout
        A file object to receive the program's standard output instead of a pipe.

    The program runs isolated from the caller (working directory ``/``, minimal environment:
    :mod:`qoslab.children`).
    """

    def __init__(self, ns: Namespace, argv: Sequence[str], name: str, *,
                 ready: Callable[[str], bool] | None = None, ready_stream: str = "stdout",
                 ready_timeout: float = 20.0, stdout=None) -> None:
        self.ns = ns
        self.name = name
        self.argv = ns.argv(argv)
        self.proc = start_child(  # a load may start from a scheduling thread
            self.argv, stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE, text=True, **isolation())
        self.stdout = ""
        self.stderr = ""
        self._early: list[str] = []
        self._early_stream = ready_stream
        self._collected = False
        if ready is not None:
            self._wait_ready(ready, ready_stream, ready_timeout)

    @property
    def pid(self) -> int:
        """Process id (the program itself: ``ip netns exec`` execs it)."""
        return self.proc.pid

    def _wait_ready(self, ready: Callable[[str], bool], stream: str, timeout: float) -> None:
        pipe = self.proc.stdout if stream == "stdout" else self.proc.stderr
        assert pipe is not None
        sel = selectors.DefaultSelector()
        sel.register(pipe, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = pipe.readline()
                if not line:
                    break
                self._early.append(line)
                if ready(line):
                    return
        finally:
            sel.close()
        self.stop(timeout=2)
        raise LabCommandError(f"{self.name}: did not start in {self.ns.name} within "
                              f"{timeout:g} s: {display_argv(self.argv[4:])}: "
                              f"{(self.stderr or ''.join(self._early)).strip()[-300:]}")

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the program to end by itself; collect its output; return its exit code."""
        if self._collected:
            return self.proc.returncode
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.stop()
        self._collect(out, err)
        return self.proc.returncode

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int:
        """Ask the program to end (``sig``), kill it after ``timeout`` s; return its exit code."""
        if self._collected:
            return self.proc.returncode
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        except ValueError:  # streams already collected
            out, err = "", ""
        self._collect(out, err)
        return self.proc.returncode

    def _collect(self, out: str | None, err: str | None) -> None:
        self._collected = True
        early = "".join(self._early)
        self._early = []
        if self._early_stream == "stdout":
            self.stdout += early + (out or "")
            self.stderr += err or ""
        else:
            self.stdout += out or ""
            self.stderr += early + (err or "")

    def json_lines(self) -> list[dict[str, Any]]:
        """The JSON objects the program printed, one per line (other lines skipped)."""
        docs = []
        for line in self.stdout.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    docs.append(doc)
        return docs


def _flood_argv(mode: str, **kw: Any) -> list[str]:
    argv = python_argv(FLOOD_SCRIPT, mode)
    for key, value in kw.items():
        if value is None or value is False:
            continue
        argv.append(f"--{key}" if key != "ipv6" else "-6")
        if value is not True:
            argv.append(str(value))
    return argv


def _is_ready(line: str) -> bool:
    return line.startswith('{"ready"')


@dataclass
class Load:
    """A running load: a sender and its sink, with what they reported.

    Attributes
    ----------
    kind
        ``udp`` or ``tcp``.
    params
        What was asked (rate, size, tos, duration, endpoints …).
    started, stopped
        Times in seconds from the bed's start.
    """

    kind: str
    params: dict[str, Any]
    sender: LabProcess
    sink: LabProcess | None
    started: float = 0.0
    stopped: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """True while the sender runs."""
        return self.sender.proc.poll() is None

    def stop(self) -> dict[str, Any]:
        """Stop sender and sink (idempotent); return ``{"sender": …, "sink": …}`` summaries."""
        if not self.summary:
            self.sender.stop(sig=signal.SIGINT if self.kind == "icmp" else signal.SIGTERM)
            if self.sink is not None:
                self.sink.stop()
            if self.kind == "icmp":  # ping -f -q: its statistics lines
                self.summary = {"sender": {"ping": self.sender.stdout.strip()[-300:]},
                                "sink": {"mode": "kernel echo replies"}}
            elif self.params.get("backend") == "iperf3":
                self.summary = {"sender": _iperf_summary(self.sender.stdout),
                                "sink": {"mode": "iperf3-server"}}
            else:
                send = self.sender.json_lines()
                sink = self.sink.json_lines()
                self.summary = {
                    "sender": send[-1] if send else {"stderr": self.sender.stderr[-300:]},
                    "sink": sink[-1] if sink else {"stderr": self.sink.stderr[-300:]}}
        return self.summary

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the sender's duration to end, then stop the sink; return the summaries."""
        self.sender.wait(timeout)
        return self.stop()


def _iperf_summary(text: str) -> dict[str, Any]:
    """The totals of an ``iperf3 -J`` client report (bytes and bits/s sent and received)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return {"mode": "iperf3", "error": text.strip()[-300:] or "no output"}
    end = doc.get("end", {}) if isinstance(doc, dict) else {}
    sent, recv = end.get("sum_sent", {}), end.get("sum_received", {})
    return {"mode": "iperf3", "bytes": sent.get("bytes"), "seconds": sent.get("seconds"),
            "rate_bps": sent.get("bits_per_second"), "retransmits": sent.get("retransmits"),
            "received_bytes": recv.get("bytes"), "received_rate_bps": recv.get("bits_per_second"),
            "error": doc.get("error") if isinstance(doc, dict) else None}


def _wait_listening(ns: Namespace, port: int, proc: LabProcess, timeout: float = 20.0) -> None:
    """Wait until a TCP socket listens on ``port`` inside ``ns`` (iperf3 buffers its output,
    so its "listening" line cannot be waited for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run_cmd(["ss", "-Hltn", f"sport = :{port}"], ns=ns.name, check=False).stdout
        if out.strip():
            return
        if proc.proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.stop(timeout=2)
    raise LabCommandError(f"{proc.name}: not listening on port {port} in {ns.name}: "
                          f"{proc.stderr.strip()[-300:]}")


def start_udp_flood(src: Namespace, dst: Namespace, dst_addr: str, *, rate: str | float,
                    size: int = 1000, tos: int = 0, duration: float = 10.0,
                    port: int = 9000, prefill: int = 0, jitter: float = 0.5) -> Load:
    """Start a UDP sink in ``dst`` and a CBR flood from ``src`` to ``dst_addr:port``.

    ``rate`` in tc units (``"4mbit"``) or bits/s; ``size`` is the IP packet length;
    ``jitter`` (default 0.5) randomises each packet's departure within that fraction of the
    gap, so the flood cannot phase-lock with isochronous pings (see
    :func:`qoslab.lab.flood.udp_send`).
    """
    rate_bps = parse_rate(rate)
    v6 = ":" in dst_addr
    sink = LabProcess(dst, _flood_argv("udp-sink", port=port, duration=duration + 5, ipv6=v6),
                      f"udp sink in {dst.role}", ready=_is_ready)
    try:
        sender = LabProcess(src, _flood_argv("udp-send", dst=dst_addr, port=port,
                                             rate=f"{rate_bps:.0f}", size=size,
                                             tos=hex(tos), duration=duration,
                                             prefill=prefill or None,
                                             jitter=jitter or None),
                            f"udp flood from {src.role}", ready=_is_ready)
    except BaseException:
        sink.stop()
        raise
    params = {"src": src.role, "dst": dst.role, "dst_addr": dst_addr, "port": port,
              "rate_bps": rate_bps, "size": size, "tos": tos, "duration": duration,
              "prefill": prefill, "jitter": jitter}
    return Load("udp", params, sender, sink)


def start_tcp_bulk(src: Namespace, dst: Namespace, dst_addr: str, *, tos: int = 0,
                   duration: float = 10.0, port: int = 5201, backend: str = "auto") -> Load:
    """Start a TCP bulk upload from ``src`` to ``dst_addr:port`` for ``duration`` seconds.

    ``backend``: ``"builtin"`` (:mod:`qoslab.lab.flood`), ``"iperf3"``, or ``"auto"`` (iperf3
    when installed).
    """
    if backend not in ("auto", "builtin", "iperf3"):
        raise ValueError(f"backend must be auto, builtin or iperf3, not {backend!r}")
    iperf = find_program("iperf3")
    if backend == "iperf3" and iperf is None:
        raise LabCommandError("backend='iperf3' but iperf3 is not installed (Debian: iperf3)")
    use_iperf = iperf is not None and backend != "builtin"
    v6 = ":" in dst_addr
    if use_iperf:
        sink = LabProcess(dst, [iperf, "-s", "-1", "-p", str(port)],
                          f"iperf3 server in {dst.role}")
        try:
            _wait_listening(dst, port, sink)
            sender = LabProcess(src, [iperf, "-c", dst_addr, "-p", str(port), "-t",
                                      f"{duration:g}", "-S", str(tos), "-J"],
                                f"iperf3 client in {src.role}")
        except BaseException:
            sink.stop()
            raise
    else:
        sink = LabProcess(dst, _flood_argv("tcp-sink", port=port, duration=duration + 5,
                                           ipv6=v6), f"tcp sink in {dst.role}", ready=_is_ready)
        try:
            sender = LabProcess(src, _flood_argv("tcp-send", dst=dst_addr, port=port,
                                                 tos=hex(tos), duration=duration),
                                f"tcp bulk from {src.role}", ready=_is_ready)
        except BaseException:
            sink.stop()
            raise
    params = {"src": src.role, "dst": dst.role, "dst_addr": dst_addr, "port": port, "tos": tos,
              "duration": duration, "backend": "iperf3" if use_iperf else "builtin"}
    return Load("tcp", params, sender, sink)


def start_ping_flood(src: Namespace, dst_addr: str, *, size: int = 1472, tos: int = 0,
                     duration: float = 10.0) -> Load:
    """``ping -f -q -s SIZE -Q TOS -w DURATION DST`` from ``src`` (iputils, as root): a new
    request on every reply, at least every 10 ms — the seed's flood of MTU-sized pings.
    The destination's kernel answers: there is no sink process."""
    ping = find_program("ping")
    if ping is None:
        raise LabCommandError("ping floods need iputils ping (Debian package iputils-ping)")
    argv = [ping, "-f", "-q", "-s", str(int(size)), "-Q", str(int(tos)),
            "-w", str(max(1, int(math.ceil(duration)))), dst_addr]
    sender = LabProcess(src, argv, f"ping flood from {src.role}")
    params = {"src": src.role, "dst_addr": dst_addr, "size": size, "tos": tos,
              "duration": duration}
    return Load("icmp", params, sender, None)
