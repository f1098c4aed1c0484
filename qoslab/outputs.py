"""Output files, written safely: checked before any work, never clobbered, never via a symlink.

Every file qoslab writes for a user (RUN files, journals, figures, tables, captures, reports)
goes through this module, so one set of rules holds everywhere — including when qoslab runs as
root in a folder other users can write to:

* **Checked first.** :func:`check_output` runs before an experiment starts: the parent folder
  must exist (it is never created silently), the path must not be a folder, the folder must be
  writable, and an existing file is refused unless ``force`` is given
  (:class:`OutputExistsError`). A run never measures for minutes and then fails to save.
* **No symlink is followed.** New files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
  (:func:`create_new`); whole files are written to a fresh temporary file in the same folder and
  then published: with ``os.link`` (fails if the name exists: no clobbering, not even by a race)
  or, with ``force``, ``os.replace`` (which replaces a symlink itself, never its target).
* **Folders of parts** (Parquet datasets) follow the same rules (:func:`check_folder_output`):
  they are written into a temporary folder beside their name (:func:`temp_folder_beside`) and
  renamed into place once complete (:func:`publish_folder`); with ``force`` an existing folder
  is replaced only when it carries the dataset's marker file, a file or symlink of that name
  itself (never its target).
* **Journals are never destroyed.** A ``.partial`` journal left by an earlier run that was not
  recovered is refused (:class:`JournalExistsError`); with ``force`` it is kept under a new name
  (:func:`keep_aside`) and a warning says where.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from .errors import QoslabError

__all__ = [
    "OutputError",
    "OutputExistsError",
    "JournalExistsError",
    "check_output",
    "create_new",
    "open_output",
    "publish",
    "write_bytes",
    "write_with",
    "keep_aside",
    "refuse_or_keep_journal",
    "check_folder_output",
    "temp_folder_beside",
    "publish_folder",
]


class OutputError(QoslabError, OSError):
    """An output path cannot be used: missing folder, a folder, not writable, disk full …"""


class OutputExistsError(OutputError, FileExistsError):
    """The output file exists and ``force`` was not given."""


class JournalExistsError(OutputError, FileExistsError):
    """An earlier run's journal (``.partial``) is still there and was not recovered."""


def _describe(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def check_output(path: str | os.PathLike, *, force: bool = False, what: str = "output"
                 ) -> Path:
    """Check that ``path`` can be written, before any work starts.

    Parameters
    ----------
    path
        The file to be written.
    force
        Allow replacing an existing file.
    what
        What the file is, for messages (``"RUN file"``, ``"figure"`` …).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputExistsError
        The file exists and ``force`` is false.
    OutputError
        The parent folder is missing or not writable, or ``path`` is a folder.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> check_output(os.path.join(d, "run.json.gz")).name
    'run.json.gz'
    >>> check_output(os.path.join(d, "missing", "run.json.gz"))
    Traceback (most recent call last):
    ...
    qoslab.outputs.OutputError: ...missing/run.json.gz: the folder ...missing does not exist (qoslab does not create folders for outputs)
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {path}: the folder {parent} does not exist (qoslab does "
                          "not create folders for outputs)")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{what} {path}: {_describe(exc)}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {path}: is a folder; give a file name")
        if not force:
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a file"
            raise OutputExistsError(f"{what} {path}: {kind} of that name exists; choose "
                                    "another name or pass --force to replace it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: the folder {parent} is not writable")
    return path


def create_new(path: str | os.PathLike, mode: int = 0o666):
    """Open a new file for writing (binary); fail if anything — a symlink too — has its name.

    Raises
    ------
    OutputExistsError
        The name exists (a planted symlink included: it is never followed).
    OutputError
        Any other reason the file cannot be created.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise OutputExistsError(f"{path}: exists; it is not overwritten") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot create ({_describe(exc)})") from None
    return os.fdopen(fd, "wb")


def open_output(path: str | os.PathLike, *, force: bool = False, what: str = "output"):
    """Open ``path`` as a new file for a writer that streams into it (tcpdump's output …).

    The file is created with :func:`create_new` (never through a symlink); with ``force`` an
    existing name is removed first (a symlink itself, never its target).
    """
    path = check_output(path, force=force, what=what)
    if force and os.path.lexists(path):
        try:
            os.unlink(path)
        except OSError as exc:
            raise OutputError(f"{what} {path}: cannot replace ({_describe(exc)})") from None
    return create_new(path)


def publish(tmp: Path, path: Path, *, force: bool) -> Path:
    """Give the finished temporary file ``tmp`` its final name ``path`` (same folder).

    Without ``force`` an existing name is never replaced (``os.link`` is atomic and fails when
    the name exists); with ``force`` ``os.replace`` swaps the name, replacing a symlink itself
    rather than writing through it.
    """
    try:
        if force:
            os.replace(tmp, path)
            return path
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            raise OutputExistsError(f"{path}: appeared while qoslab was writing it; not "
                                    "overwritten (pass --force to replace it)") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
                raise
            # a file system without hard links: check, then rename (a narrow race remains)
            if os.path.lexists(path):
                raise OutputExistsError(f"{path}: exists; not overwritten") from None
            os.rename(tmp, path)
            return path
        return path
    except QoslabError:
        raise
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_describe(exc)})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it, racing threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_beside(path: Path, *, keep_suffix: bool = False) -> tuple[int, Path]:
    """A new temporary file next to ``path`` (of the same suffix with ``keep_suffix``, for
    writers that choose a format by it), with the mode a new file gets: ``0o666`` less the
    umask, as ``open`` or tcpdump give it (``mkstemp`` alone makes it ``0o600``)."""
    prefix, suffix = (f".{path.stem}.", path.suffix or ".tmp") if keep_suffix \
        else (f".{path.name}.", ".tmp")
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {path.parent} ({_describe(exc)})") from None
    return fd, Path(tmp)


def write_bytes(path: str | os.PathLike, payload: bytes, *, force: bool = False,
                what: str = "output") -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, :func:`publish`).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.bin")
    >>> write_bytes(p, b"abc").read_bytes()
    b'abc'
    >>> write_bytes(p, b"new")
    Traceback (most recent call last):
    ...
    qoslab.outputs.OutputExistsError: output ...x.bin: a file of that name exists; choose another name or pass --force to replace it
    >>> write_bytes(p, b"new", force=True).read_bytes()
    b'new'
    """
    path = check_output(path, force=force, what=what)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{what} {path}: cannot write ({_describe(exc)})") from None
    return publish(tmp, path, force=force)


def write_with(path: str | os.PathLike, writer: Callable[[Path], object], *,
               force: bool = False, what: str = "output") -> Path:
    """Let ``writer(tmp_path)`` write a file (``savefig``, ``to_csv`` …), then publish it.

    ``writer`` gets the path of a fresh, empty temporary file of the same suffix in the target
    folder, created by qoslab (never a symlink); it may overwrite that file.
    """
    path = check_output(path, force=force, what=what)
    fd, tmp = _temp_beside(path, keep_suffix=True)
    os.close(fd)
    try:
        writer(tmp)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{what} {path}: cannot write ({_describe(exc)})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return publish(tmp, path, force=force)


def keep_aside(path: Path) -> Path:
    """Rename ``path`` (a journal) to a free ``<name>.<UTC time>[.<n>]`` name; return it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        candidate = path.with_name(f"{path.name}.{stamp}" + (f".{n}" if n else ""))
        try:
            os.link(path, candidate, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:
            if os.path.lexists(candidate):
                continue
            os.rename(path, candidate)
            return candidate
        os.unlink(path)
        return candidate
    raise OutputError(f"{path}: no free name to keep it aside")


def refuse_or_keep_journal(journal: Path, *, force: bool) -> None:
    """Never destroy an earlier run's journal: refuse, or (``force``) keep it aside and warn."""
    if not os.path.lexists(journal):
        return
    if not force:
        raise JournalExistsError(
            f"{journal}: an earlier run's journal is still here (not recovered); read it with "
            f"`qoslab plot {journal}` or qoslab.load(), move it away, or pass --force to keep "
            "it under a new name and start anew")
    kept = keep_aside(journal)
    warnings.warn(f"{journal}: an earlier run's journal was kept as {kept}", stacklevel=3)


def check_folder_output(out: str | os.PathLike, *, force: bool = False, what: str,
                        marker: str) -> Path:
    """Check, before any work, that the dataset folder ``out`` can be written.

    Parameters
    ----------
    out
        The folder to be written (as a whole: :func:`publish_folder`).
    force
        Allow replacing an existing dataset (a folder holding ``marker``), or a file or
        symlink of that name (the name, never its target).
    what
        What the folder is, for messages (``"Parquet dataset"`` …).
    marker
        The file every such dataset holds (its manifest).

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``force`` is not given.
    OutputError
        The parent folder is missing or not writable, or ``out`` is a folder that is not such
        a dataset (never replaced, even with ``force``).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> os.mkdir(os.path.join(d, "notes"))
    >>> check_folder_output(os.path.join(d, "notes"), force=True, what="dataset",
    ...                     marker="manifest.json")
    Traceback (most recent call last):
    ...
    qoslab.outputs.OutputError: dataset ...notes: exists and is not a qoslab dataset (no manifest.json); it is not replaced, even with --force
    """
    out = Path(out)
    parent = out.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {out}: the folder {parent} does not exist (qoslab does "
                          "not create folders for outputs)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {out}: the folder {parent} is not writable")
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise OutputError(f"{what} {out}: {_describe(exc)}") from None
    if not force:
        raise OutputExistsError(f"{what} {out}: exists; choose another name or pass --force "
                                "to replace it")
    if stat.S_ISDIR(st.st_mode) and not (out / marker).is_file():
        raise OutputError(f"{what} {out}: exists and is not a qoslab {what} (no {marker}); "
                          "it is not replaced, even with --force")
    return out


def temp_folder_beside(out: Path, suffix: str = ".tmp") -> Path:
    """A new, empty temporary folder next to ``out``, with the mode a new folder gets
    (``0o777`` less the umask; ``mkdtemp`` alone makes it ``0o700``)."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=suffix, dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise OutputError(f"{out}: cannot create a folder beside it ({_describe(exc)})"
                          ) from None
    return tmp


def publish_folder(tmp: Path, out: Path, *, force: bool, what: str, marker: str) -> Path:
    """Give the finished folder ``tmp`` its name ``out`` (same parent folder).

    An existing ``out`` is replaced only with ``force`` and only when it is still what
    :func:`check_folder_output` accepts: a dataset folder is moved aside and removed after
    the rename, a file or symlink is unlinked (never followed).
    """
    old = None
    if os.path.lexists(out):
        if not force:
            raise OutputExistsError(f"{what} {out}: appeared while it was written; not "
                                    "replaced (pass --force)")
        check_folder_output(out, force=True, what=what, marker=marker)
        if out.is_dir() and not out.is_symlink():
            old = temp_folder_beside(out, ".old")
            os.rename(out, old / "dataset")
        else:
            os.unlink(out)
    try:
        os.rename(tmp, out)
    except OSError as exc:
        raise OutputError(f"{what} {out}: cannot create ({_describe(exc)})") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
