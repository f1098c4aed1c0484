"""Render every notebook once for the report and browser tests (used by conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The numbered notebooks the reports are made of.
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def render_every_notebook(out: Path) -> Path:
    """Run ``qoslab report -o OUT`` (as ``make demo`` does) and return OUT.

    Fails the calling test with the command's stderr when any notebook fails.
    """
    import pytest

    done = subprocess.run([sys.executable, "-m", "qoslab", "report", "-o", str(out), "-j", "3"],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    if done.returncode != 0:
        pytest.fail(f"qoslab report failed ({done.returncode}):\n{done.stderr[-6000:]}")
    printed = [Path(line) for line in done.stdout.split()]
    expected = [out / f"{nb.stem}.html" for nb in NOTEBOOKS]
    assert printed == expected, (printed, expected)
    return out
