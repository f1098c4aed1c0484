"""Build step: ship the repository's ``data/`` and ``notebooks/`` inside the wheel.

The repository keeps them at the top level (one copy, edited there); a built wheel carries them
as ``qoslab/_data/`` and ``qoslab/_notebooks/`` so an installed qoslab finds them with
``importlib.resources`` (``qoslab.data_path``, ``qoslab notebooks``, ``qoslab report``).
Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: repository folder -> (folder inside the package, files to ship)
BUNDLED = {
    "data": ("_data", ("**/*.gz", "**/*.pcap", "**/*.pcapng", "README.md")),
    "notebooks": ("_notebooks", ("*.ipynb",)),
}


class BuildPyWithBundledFiles(build_py):
    """``build_py`` that also copies the bundled data and notebooks into the package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the repository
            return
        for folder, (target, patterns) in BUNDLED.items():
            src = HERE / folder
            dest = Path(self.build_lib) / "qoslab" / target
            for pattern in patterns:
                for path in sorted(src.glob(pattern)):
                    if path.is_file():
                        out = dest / path.relative_to(src)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, out)


setup(cmdclass={"build_py": BuildPyWithBundledFiles})
