"""How qoslab starts other programs: isolated from the caller's folder and environment.

The lab runs as root and starts Python children (the ping runner, the load generator) and
system tools (``ip``, ``tc``, ``tcpdump``). A child must never pick up code or settings from the
folder the user happened to be in, nor from the user's environment: a ``timeit.py`` in the
current folder, or ``PYTHONPATH``/``PYTHONSTARTUP`` in the environment, would otherwise run as
root. So every child

* runs with the working directory :data:`CHILD_CWD` (``/``);
* gets the minimal environment of :func:`child_env` (a fixed ``PATH``, the C locale);
* if it is Python, runs in isolated mode (``python -I``: no current folder or script folder on
  ``sys.path``, no ``PYTHON*`` variables, no user site-packages) — :func:`python_argv` and
  :func:`qoslab_argv` build such command lines.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["CHILD_CWD", "SAFE_PATH", "child_env", "isolation", "python_argv", "qoslab_argv",
           "display_argv", "die_with_parent", "start_child", "find_program"]

#: Working directory of every child qoslab starts.
CHILD_CWD = "/"
#: ``PATH`` of every child: system folders only (and the folder of this Python).
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Where the running qoslab package lives (appended, never prepended, to a child's sys.path).
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)

# The child imports qoslab from the installation the parent uses: the standard library and
# site-packages come first, so nothing in the package's folder can shadow them.
_BOOTSTRAP = ("import sys; sys.path.append({root!r}); from qoslab.cli import main; "
              "sys.exit(main(sys.argv[1:]))")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: fixed ``PATH``, C locale, nothing from the caller.

    Examples
    --------
    >>> env = child_env()
    >>> sorted(env)
    ['LANG', 'LC_ALL', 'PATH']
    >>> env["LC_ALL"]
    'C'
    """
    python_dir = str(Path(sys.executable).parent)
    env = {"PATH": f"{python_dir}:{SAFE_PATH}", "LC_ALL": "C", "LANG": "C"}
    env.update(extra or {})
    return env


def find_program(name: str) -> str | None:
    """The absolute path of program ``name`` on ``PATH``, or None.

    Only the absolute folders of ``PATH`` are searched: an empty entry, ``.`` or any relative
    folder would find a program planted in whatever folder qoslab was started from (as root,
    for the lab).

    Examples
    --------
    >>> find_program("sh").startswith("/")
    True
    """
    folders = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep)
               if os.path.isabs(d)]
    return shutil.which(name, path=os.pathsep.join(folders)) if folders else None


def python_argv(script: str | os.PathLike, *args: str) -> list[str]:
    """Command line running a stand-alone Python ``script`` in isolated mode.

    Examples
    --------
    >>> python_argv("/opt/x/flood.py", "udp")[1:]
    ['-I', '/opt/x/flood.py', 'udp']
    """
    return [sys.executable, "-I", str(script), *args]


def qoslab_argv(*args: str, python: str | None = None) -> list[str]:
    """Command line running ``qoslab ARGS`` in isolated mode with this qoslab installation.

    Examples
    --------
    >>> argv = qoslab_argv("ping", "-c", "1", python="python3")
    >>> argv[:3], argv[-3:]
    (['python3', '-I', '-c'], ['ping', '-c', '1'])
    """
    return [python or sys.executable, "-I", "-c", _BOOTSTRAP.format(root=_PACKAGE_ROOT),
            *args]


def isolation() -> dict:
    """Keyword arguments for :mod:`subprocess` that isolate a child (``cwd``, ``env``).

    Examples
    --------
    >>> isolation()["cwd"]
    '/'
    """
    return {"cwd": CHILD_CWD, "env": child_env()}


def display_argv(argv: Sequence[str]) -> str:
    """A command line for messages, with the bootstrap code of :func:`qoslab_argv` shortened.

    Examples
    --------
    >>> display_argv(qoslab_argv("ping", python="python3"))
    'python3 -I -c <qoslab> ping'
    """
    return " ".join("<qoslab>" if a.startswith("import sys; sys.path.append(") else a
                    for a in argv)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGKILL when the process that started it dies (Linux
    ``PR_SET_PDEATHSIG``; kept across ``ip netns exec``'s exec, lost only by programs with file
    capabilities or set-uid bits — the lab's next run removes those with their namespace).

    The kernel sends the signal when the *thread* that forked the child ends: start such
    children with :func:`start_child`, which forks them from a thread that lives as long as
    the process (a load started by a ``threading.Timer`` would otherwise be killed as soon as
    its timer's thread returned)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the next run's clean-up still applies
        pass


_SPAWNER: list[ThreadPoolExecutor] = []
_SPAWNER_LOCK = threading.Lock()


def start_child(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv, preexec_fn=die_with_parent, **popen_kwargs)``, forked by the
    main thread or by one spawner thread that lives until the process exits, so the child dies
    with this process and not with the (perhaps short-lived) thread that asked for it.

    Examples
    --------
    >>> import threading
    >>> out = []
    >>> t = threading.Thread(target=lambda: out.append(start_child(["sleep", "2"])))
    >>> t.start(); t.join()
    >>> import time; time.sleep(0.3)
    >>> out[0].poll() is None          # still running after its starting thread ended
    True
    >>> out[0].kill(); out[0].wait()
    -9
    """
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(argv, preexec_fn=die_with_parent,  # noqa: S603, PLW1509
                                **popen_kwargs)
    with _SPAWNER_LOCK:
        if not _SPAWNER:
            _SPAWNER.append(ThreadPoolExecutor(1, thread_name_prefix="qoslab-spawner"))
    return _SPAWNER[0].submit(subprocess.Popen, argv, preexec_fn=die_with_parent,
                              **popen_kwargs).result()
