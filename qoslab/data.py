"""Where the bundled example data and notebooks live, and ``qoslab notebooks``.

An installed qoslab carries them inside the package (``qoslab/_data/``, ``qoslab/_notebooks/``,
put there by the wheel's build step from the repository's ``data/`` and ``notebooks/``) and
finds them with :mod:`importlib.resources`; run from a source checkout (an editable install),
it reads the repository's folders themselves. There is one copy of each file either way.
"""

from __future__ import annotations

import argparse
import importlib.resources
from pathlib import Path

from .errors import QoslabError
from .outputs import OutputError, check_output, write_bytes

__all__ = ["data_path", "data_dir", "notebook_dir", "notebook_paths", "copy_notebooks",
           "register"]

_REPO = Path(__file__).resolve().parent.parent


def _bundled(inside: str, repo_folder: str, marker: str) -> Path:
    """The packaged folder if this qoslab was installed from a wheel, else the repository's."""
    packaged = importlib.resources.files("qoslab") / inside
    if packaged.is_dir():
        return Path(str(packaged))
    repo = _REPO / repo_folder
    if (repo / marker).exists():
        return repo
    raise FileNotFoundError(f"qoslab's bundled {repo_folder} are missing: neither "
                            f"{packaged} (an installed wheel) nor {repo} (a source checkout) "
                            "exists; reinstall qoslab")


def data_dir() -> Path:
    """The folder of the bundled data (RUN files, captures, flent files).

    >>> (data_dir() / "flent").is_dir()
    True
    """
    return _bundled("_data", "data", "README.md")


def notebook_dir() -> Path:
    """The folder of the bundled notebooks.

    >>> sorted(p.name for p in notebook_dir().glob("*.ipynb"))[0]
    '00_quickstart.ipynb'
    """
    return _bundled("_notebooks", "notebooks", "00_quickstart.ipynb")


def notebook_paths() -> list[Path]:
    """The bundled notebooks, in name order."""
    return sorted(notebook_dir().glob("*.ipynb"))


def data_path(name: str = "") -> Path:
    """Return the path of a bundled data file (or the data folder itself).

    Parameters
    ----------
    name
        Path relative to the data folder, e.g. ``"flent/ping-v4-icmp-irtt.flent.gz"``.

    Raises
    ------
    FileNotFoundError
        When no such bundled file exists; the message lists the folder searched.

    Examples
    --------
    >>> data_path("flent/ping-v4-icmp-irtt.flent.gz").name
    'ping-v4-icmp-irtt.flent.gz'
    """
    root = data_dir()
    path = root / name
    if ".." in Path(name).parts or not path.exists():
        raise FileNotFoundError(f"no bundled data file {name!r} in {root}")
    return path


def copy_notebooks(dest: str | Path = ".", *, force: bool = False) -> list[Path]:
    """Copy the bundled notebooks (and nothing else) into ``dest`` to work on them.

    Parameters
    ----------
    dest
        An existing folder.
    force
        Replace notebooks of the same names already there (never through a symlink).

    Returns
    -------
    list of pathlib.Path
        The notebooks written.

    Raises
    ------
    qoslab.outputs.OutputExistsError
        A notebook of that name exists and ``force`` is false (checked for every notebook
        before any is written).
    qoslab.outputs.OutputError
        ``dest`` is missing or not a writable folder.
    """
    dest = Path(dest)
    if not dest.is_dir():
        raise OutputError(f"{dest}: not a folder (qoslab does not create it)")
    sources = notebook_paths()
    if not sources:
        raise QoslabError(f"no notebooks in {notebook_dir()}")
    for src in sources:
        check_output(dest / src.name, force=force, what="notebook")
    return [write_bytes(dest / src.name, src.read_bytes(), force=force, what="notebook")
            for src in sources]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qoslab notebooks`` to the command line."""
    p = sub.add_parser(
        "notebooks", help="copy the bundled notebooks into a folder to work on them",
        description="Copy qoslab's notebooks (and nothing else) into DIR, to open them in "
        "Jupyter. Existing notebooks of the same names are kept unless --force.")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="an existing folder (default: the current one)")
    p.add_argument("--force", action="store_true", help="replace notebooks already there")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    for path in copy_notebooks(args.dir, force=args.force):
        print(path)
    return 0
