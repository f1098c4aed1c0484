"""The parent's side of a datapath process: start it in a namespace, talk to it, stop it.

:class:`DatapathProcess` runs ``qoslab datapath PLAN`` inside a lab namespace (``ip netns
exec``, isolated like every child: :mod:`qoslab.children`), waits for its TUN device to exist,
forwards the EVENTS it reports to a callback as they happen (a reader thread), tells it when
scenario time 0 is, and stops it: a stop line, then the end of its stdin, then SIGTERM and
SIGKILL if it does not end in time. The child also ends by itself when this process ends in
any way (its stdin closes; the kernel's parent-death signal), and deleting its namespace kills
it (:func:`qoslab.lab.netns.delete_namespace`), so no datapath outlives its run.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..children import isolation, qoslab_argv, start_child
from ..errors import QoslabError
from .engine import DRAIN_S

__all__ = ["DatapathProcess", "DatapathError"]


class DatapathError(QoslabError, RuntimeError):
    """A datapath process did not start or failed; the message holds what it said."""


class DatapathProcess:
    """One ``qoslab datapath`` child (see the module docstring).

    Parameters
    ----------
    ns
        The lab namespace (:class:`qoslab.lab.netns.Namespace`) it runs in.
    plan_path
        Its plan file.
    on_event
        Called with each ``{"t", "kind", "detail"}`` the child reports (from a thread).
    stderr_path
        Where its standard error goes (a file in the run's work folder).
    """

    def __init__(self, ns: Any, plan_path: Path, *, on_event: Callable[[dict], None] | None
                 = None, stderr_path: Path, ready_timeout: float = 60.0) -> None:
        self.ns = ns
        self.name = f"datapath in {ns.role}"
        self.on_event = on_event
        self.summary: dict[str, Any] | None = None
        self._err_path = stderr_path
        self._err = open(stderr_path, "xb")  # noqa: SIM115, PTH123 - the run's work folder
        self.proc = start_child(  # an argument list, never a shell
            ns.argv(qoslab_argv("datapath", str(plan_path))), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._err, text=True, bufsize=1, **isolation())
        self.ready = self._wait_ready(ready_timeout)
        self._reader = threading.Thread(target=self._read, name=f"{self.name} events",
                                        daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _stderr(self) -> str:
        with contextlib.suppress(OSError):
            return self._err_path.read_text(errors="replace").strip()[-600:]
        return ""

    def _wait_ready(self, timeout: float) -> dict:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = self.proc.stdout.readline()
                if not line:
                    break
                with contextlib.suppress(ValueError):
                    msg = json.loads(line)
                    if isinstance(msg, dict) and "ready" in msg:
                        return msg["ready"]
        finally:
            sel.close()
        self.kill()
        raise DatapathError(f"{self.name} ({self.ns.name}) did not start within {timeout:g} "
                            f"s: {self._stderr() or 'no message'}")

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if "event" in msg and self.on_event is not None:
                with contextlib.suppress(Exception):  # a failing callback loses one EVENT only
                    self.on_event(msg["event"])
            elif "done" in msg:
                self.summary = msg["done"]

    def _send(self, msg: dict) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()

    def go(self, t0_ns: int) -> None:
        """Scenario time 0 is ``t0_ns`` on ``CLOCK_MONOTONIC``."""
        self._send({"t0_ns": int(t0_ns)})

    def stop(self, timeout: float = DRAIN_S + 15.0) -> dict[str, Any] | None:
        """Stop it (it drains and writes its files first); return its summary (idempotent)."""
        if self.proc.poll() is None:
            self._send({"stop": True})
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(timeout=5)
        self._err.close()
        if self.proc.returncode not in (0, None) and self.summary is None:
            raise DatapathError(f"{self.name} ended with status {self.proc.returncode}: "
                                f"{self._stderr() or 'no message'}")
        return self.summary

    def kill(self) -> None:
        """End it now (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
