"""The README's code runs as written."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import need_root


def test_readme_tour_runs(repo, tmp_path):
    need_root("the tour's qoslab.ping uses raw ICMP sockets on loopback")
    text = (repo / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    tour = next(b for b in blocks if "read_capture" in b)
    assert "127.0.0.1" in tour and not re.search(r"qoslab\.ping\(\[\"(?!127\.)", tour)
    script = tmp_path / "tour.py"
    script.write_text("import matplotlib\nmatplotlib.use('Agg')\n" + tour)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
