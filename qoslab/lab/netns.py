"""Network namespaces and veth pairs the lab creates, names, tracks and removes.

Every object the lab creates has a recognisable name that carries the creating process id:
namespaces are ``qlab-<pid>-<runid>-<role>`` (``qlab-4242-a1b2-c`` is the client of run
``a1b2`` made by process 4242). veth pairs are created *inside* those namespaces (``ip -n NS link
add … peer netns NS2``), so the root namespace's interfaces are never touched and every veth, address
and qdisc disappears with its namespace. :func:`remove_leftovers` deletes only namespaces whose
name matches that pattern and whose creating process is dead (a run killed with SIGKILL).

Processes started inside a namespace (loads, pings, tcpdump) are the lab's own; deleting a
namespace first kills the processes that still run in it, so the kernel can free it at once.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ..children import find_program, isolation
from ..errors import QoslabError

__all__ = [
    "LabUnavailableError",
    "LabCommandError",
    "NS_PREFIX",
    "NAME_PATTERN",
    "Namespace",
    "require_lab",
    "run_cmd",
    "new_runid",
    "namespace_name",
    "list_namespaces",
    "create_namespace",
    "delete_namespace",
    "add_veth",
    "find_leftovers",
    "find_leftover_dirs",
    "remove_leftovers",
    "work_dir",
    "WORK_PREFIX",
    "REGISTRY",
]

#: Prefix of every namespace the lab creates.
NS_PREFIX = "qlab"
#: What a lab namespace name looks like; nothing else is ever deleted.
NAME_PATTERN = re.compile(rf"^{NS_PREFIX}-(?P<pid>\d+)-(?P<runid>[0-9a-f]{{4,8}})-(?P<role>[a-z]+)$")
#: Default timeout (s) of one ``ip``/``tc`` command.
COMMAND_TIMEOUT = 20.0


class LabUnavailableError(QoslabError, PermissionError):
    """The lab cannot run here: it needs Linux, root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2."""


class LabCommandError(QoslabError, RuntimeError):
    """An ``ip``/``tc``/helper command failed; the message holds the command and its stderr."""


def require_lab() -> None:
    """Raise :class:`LabUnavailableError` unless this process can build namespaces.

    The lab needs Linux, an effective uid of 0 (``ip netns add`` mounts under ``/run/netns``
    and ``tc`` needs CAP_NET_ADMIN) and the ``ip`` and ``tc`` programs of iproute2.

    Examples
    --------
    >>> import os, sys
    >>> try:
    ...     require_lab()
    ... except LabUnavailableError as exc:
    ...     print("needs" in str(exc))
    ... else:
    ...     print(True)
    True
    """
    if sys.platform != "linux":
        raise LabUnavailableError(
            f"the network-namespace lab needs Linux (this is {sys.platform}); use qoslab.sim "
            "to simulate instead")
    if os.geteuid() != 0:
        raise LabUnavailableError(
            "the network-namespace lab needs root (it creates namespaces and qdiscs): run it "
            "with sudo, or as root in a container started with --privileged")
    for tool in ("ip", "tc"):
        if find_program(tool) is None:
            raise LabUnavailableError(
                f"the network-namespace lab needs the {tool!r} program (Debian package iproute2)")


def run_cmd(argv: Sequence[str], *, ns: str | None = None, check: bool = True,
            timeout: float = COMMAND_TIMEOUT, log: list | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run one command (argument list, never a shell), optionally inside namespace ``ns``.

    Parameters
    ----------
    argv
        Program and arguments.
    ns
        Run through ``ip netns exec NS`` when given.
    check
        Raise :class:`LabCommandError` (with the command line and stderr) on a non-zero exit.
    timeout
        Seconds before the command is killed and an error raised.
    log
        A list to which the command line (as run) is appended.
    input
        Text fed to the command's stdin.

    Examples
    --------
    >>> run_cmd(["true"]).returncode
    0
    """
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    if log is not None:
        log.append(list(full))
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              check=False, input=input, **isolation())
    except subprocess.TimeoutExpired:
        raise LabCommandError(f"{' '.join(full)}: no answer within {timeout:g} s") from None
    except FileNotFoundError:
        raise LabUnavailableError(f"{full[0]!r} is not installed") from None
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabCommandError(f"{' '.join(full)}: exit {proc.returncode}: "
                              f"{' / '.join(err[-3:]) or 'no message'}")
    return proc


def new_runid() -> str:
    """Return a fresh random run id (4 hex digits).

    >>> len(new_runid())
    4
    """
    return secrets.token_hex(2)


def namespace_name(role: str, runid: str, pid: int | None = None) -> str:
    """Return the namespace name of ``role`` (``c``, ``r``, ``s`` …) in run ``runid``.

    >>> namespace_name("c", "a1b2", pid=4242)
    'qlab-4242-a1b2-c'
    >>> bool(NAME_PATTERN.match(namespace_name("s", "00ff")))
    True
    """
    return f"{NS_PREFIX}-{os.getpid() if pid is None else pid}-{runid}-{role}"


def list_namespaces() -> list[str]:
    """Return the names of every named network namespace (``ip netns list``)."""
    out = run_cmd(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@dataclass(frozen=True)
class Namespace:
    """A network namespace the lab created.

    Attributes
    ----------
    name
        Its name under ``/run/netns``.
    role
        ``client``, ``router`` or ``server``.
    """

    name: str
    role: str

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Return ``argv`` wrapped to run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        """Run a command inside this namespace (see :func:`run_cmd`)."""
        return run_cmd(argv, ns=self.name, **kw)

    def ip(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """Run ``ip -n NAME ARGS``."""
        return run_cmd(["ip", "-n", self.name, *args], **kw)

    def sysctl(self, key: str, value: str | int | None = None) -> str:
        """Read (and with ``value``, first set) a sysctl as seen inside this namespace."""
        if value is not None:
            self.run(["sysctl", "-q", "-w", f"{key}={value}"])
        return self.run(["sysctl", "-n", key], check=False).stdout.strip()


class _Registry:
    """Namespaces this process created and has not deleted yet; deleted at interpreter exit."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._lock = threading.Lock()
        atexit.register(self.cleanup)

    def add(self, name: str) -> None:
        with self._lock:
            self._names.append(name)

    def discard(self, name: str) -> None:
        with self._lock:
            if name in self._names:
                self._names.remove(name)

    @property
    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def cleanup(self) -> list[str]:
        """Delete every namespace still registered; return their names."""
        gone = []
        for name in reversed(self.names):
            delete_namespace(name)
            gone.append(name)
        return gone


#: Namespaces created by this process (removed at exit even if a Testbed was never closed).
REGISTRY = _Registry()


def create_namespace(name: str, *, log: list | None = None) -> None:
    """Create namespace ``name`` (must match :data:`NAME_PATTERN`) and register it for cleanup;
    the commands run are appended to ``log``."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{name!r} is not a lab namespace name (qlab-PID-RUNID-ROLE)")
    run_cmd(["ip", "netns", "add", name], log=log)
    REGISTRY.add(name)
    run_cmd(["ip", "-n", name, "link", "set", "lo", "up"], log=log)


def _pids_in(name: str) -> list[int]:
    proc = run_cmd(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def delete_namespace(name: str) -> None:
    """Kill the processes left inside lab namespace ``name``, then delete it (idempotent).

    Refuses (``ValueError``) a name that is not a lab namespace name.
    """
    if not NAME_PATTERN.match(name):
        raise ValueError(f"refusing to delete {name!r}: not a lab namespace name")
    for pid in _pids_in(name):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if name in list_namespaces():
        run_cmd(["ip", "netns", "delete", name], check=False)
    REGISTRY.discard(name)


def add_veth(ns_a: str, if_a: str, ns_b: str, if_b: str, *, txqueuelen: int | None = None,
             log: list | None = None) -> None:
    """Create veth pair ``if_a`` (in ``ns_a``) <-> ``if_b`` (in ``ns_b``) and bring both up.

    The pair is created directly inside the namespaces; the root namespace never sees it.
    The commands run are appended to ``log``.
    """
    for name in (ns_a, ns_b):
        if not NAME_PATTERN.match(name):
            raise ValueError(f"refusing to put a veth into {name!r}: not a lab namespace")
    argv = ["ip", "-n", ns_a, "link", "add", if_a]
    if txqueuelen is not None:
        argv += ["txqueuelen", str(int(txqueuelen))]
    argv += ["type", "veth", "peer", "name", if_b, "netns", ns_b]
    if txqueuelen is not None:
        argv += ["txqueuelen", str(int(txqueuelen))]
    run_cmd(argv, log=log)
    run_cmd(["ip", "-n", ns_a, "link", "set", if_a, "up"], log=log)
    run_cmd(["ip", "-n", ns_b, "link", "set", if_b, "up"], log=log)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_leftovers() -> list[str]:
    """Return lab namespaces whose creating process is dead (left by a crashed run).

    Only names matching :data:`NAME_PATTERN` are considered; a namespace whose creator still
    runs (another live experiment) is never listed.
    """
    out = []
    for name in list_namespaces():
        m = NAME_PATTERN.match(name)
        if m and not _pid_alive(int(m["pid"])):
            out.append(name)
    return out


#: Prefix of a lab run's scratch folder in the temporary directory: ``qoslab-lab-<pid>-…``.
WORK_PREFIX = "qoslab-lab-"
_WORK_PATTERN = re.compile(rf"^{WORK_PREFIX}(?P<pid>\d+)-[A-Za-z0-9_]+$")


def work_dir() -> str:
    """A new scratch folder for this process's lab run (``qoslab-lab-<pid>-…``, mode 0700)."""
    return tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-")


def find_leftover_dirs() -> list[str]:
    """Scratch folders of lab runs whose process is dead (a killed run's)."""
    base = tempfile.gettempdir()
    out = []
    for name in sorted(os.listdir(base)):
        m = _WORK_PATTERN.match(name)
        path = os.path.join(base, name)
        if m and not _pid_alive(int(m["pid"])) and os.path.isdir(path) and \
                not os.path.islink(path):
            out.append(path)
    return out


def remove_leftovers() -> list[str]:
    """Delete the namespaces :func:`find_leftovers` lists (the processes still running in them
    first) and the scratch folders :func:`find_leftover_dirs` lists; return what was removed."""
    gone = find_leftovers()
    for name in gone:
        delete_namespace(name)
    dirs = find_leftover_dirs()
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    return gone + dirs
