"""Write a notebook from a plain Python file whose cells are separated by ``# %%`` lines.

``# %% [markdown]`` starts a markdown cell (its lines lose the leading ``# ``); a cell whose
first line is ``# parameters`` gets the papermill ``parameters`` tag. Notebooks are written
without outputs, with the default ``python3`` kernel.

Usage: python notebooks/src/build.py            (rebuilds every notebooks/NN_*.ipynb from notebooks/src/NN_*.py)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def build(source: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    chunks: list[tuple[str, list[str]]] = []
    for line in source.read_text().splitlines():
        if line.startswith("# %%"):
            chunks.append(("markdown" if "[markdown]" in line else "code", []))
        elif chunks:
            chunks[-1][1].append(line)
    for kind, lines in chunks:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines)
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell("\n".join(lines))
            if lines and lines[0].strip() == "# parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    return nb


HERE = Path(__file__).resolve().parent


def build_all(names: list[str] | None = None) -> list[Path]:
    """Rebuild ``notebooks/<stem>.ipynb`` from each ``notebooks/src/<stem>.py``."""
    sources = [HERE / f"{n}.py" for n in names] if names else sorted(HERE.glob("[0-9]*.py"))
    written = []
    for src in sources:
        dst = HERE.parent / f"{src.stem}.ipynb"
        nb = build(src)
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{src.stem[:20]}-{i}"
        nbformat.write(nb, dst)
        written.append(dst)
    return written


def main() -> None:
    for path in build_all(sys.argv[1:]):
        print(path)


if __name__ == "__main__":
    main()
