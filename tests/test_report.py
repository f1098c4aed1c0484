"""`qoslab report` executes a notebook and writes HTML with the figure inline."""

from __future__ import annotations

import subprocess
import sys


def test_report_renders_quickstart_with_a_figure(repo, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "qoslab", "report", str(repo / "notebooks/00_quickstart.ipynb"),
         "-o", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    html = tmp_path / "00_quickstart.html"
    assert out.stdout.strip() == str(html)
    assert "data:image/png;base64" in html.read_text()


def test_report_names_a_missing_notebook(tmp_path):
    out = subprocess.run([sys.executable, "-m", "qoslab", "report", "nope.ipynb", "-o",
                          str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "nope.ipynb: no such notebook" in out.stderr
    assert "Traceback" not in out.stderr
