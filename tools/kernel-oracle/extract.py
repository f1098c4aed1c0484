#!/usr/bin/env python3
"""Copy the kernel functions the oracle needs, verbatim, out of fetched kernel git trees.

Usage::

    python tools/kernel-oracle/extract.py [--mirror /work/.mirror] [--era 6.1 ...] [--check]

For every era of :data:`ERAS` and every piece it lists, the script reads the file at the
era's commit (``git --git-dir=<mirror>/<owner+name>/repo show <commit>:<path>``), finds each
named definition (function, struct/union/enum, macro, array or variable) by scanning the C
source, and writes the definitions, in the order they appear in the kernel file, to
``kernel/<era>/<path>``. Each definition is preceded by a provenance comment naming the
repository, commit, file and line range it was copied from; nothing inside a definition is
changed. ``whole`` pieces copy a header entirely except its ``#include`` lines (listed in the
provenance comment). ``--check`` compares the committed files with a fresh extraction.

This script is a development tool of the test oracle; the package never imports it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eras import ERAS, TREES, Piece  # noqa: E402

SPDX = "/* SPDX-License-Identifier: GPL-2.0 */\n"


def git_show(mirror: Path, tree, path: str) -> str:
    git_dir = mirror / tree.mirror / "repo"
    if (git_dir / ".git").is_dir():  # a snapshot with a work-tree layout
        git_dir = git_dir / ".git"
    rev = f"{tree.commit}:{tree.prefix}{path}"
    out = subprocess.run(["git", f"--git-dir={git_dir}", "show", rev], check=True,
                         capture_output=True)
    return out.stdout.decode("utf-8", "surrogateescape")


# ----------------------------------------------------------------------------- C scanning
def _strip_code(text: str) -> str:
    """``text`` with comments, strings and char literals blanked (same length, same lines)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _match_brace(code: str, start: int) -> int:
    """Index just after the brace matching the ``{`` at ``start``."""
    depth = 0
    for k in range(start, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    raise ValueError("unbalanced braces")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


def _decl_start(lines: list[str], code_lines: list[str], i: int) -> int:
    """Walk back from line ``i`` over the lines of a multi-line declaration."""
    while i > 0:
        prev = code_lines[i - 1].strip()
        if not prev or prev.endswith((";", "}", "{")) or prev.startswith("#") or \
                lines[i - 1].strip().endswith("*/") or lines[i - 1].strip().startswith(("*", "/*")):
            break
        i -= 1
    return i


def find_definition(text: str, name: str) -> tuple[int, int]:
    """0-based (first line, last line) of the definition of ``name`` in ``text``."""
    code = _strip_code(text)
    lines, code_lines = text.split("\n"), code.split("\n")
    kind, _, ident = name.rpartition(" ")
    if kind == "#if-block":  # the whole #if ... #endif around the first #define of ident
        first, last = find_definition(text, "#define " + ident)
        depth = 0
        while first > 0:
            first -= 1
            word = code_lines[first].strip().split(" ")[0].replace("# ", "#")
            if word == "#endif":
                depth += 1
            elif word.startswith("#if"):
                if depth == 0:
                    break
                depth -= 1
        depth = 0
        while last < len(lines) - 1:
            last += 1
            word = code_lines[last].strip().split(" ")[0]
            if word.startswith("#if"):
                depth += 1
            elif word == "#endif":
                if depth == 0:
                    break
                depth -= 1
        return first, last
    if kind == "#define" or name.startswith("#define "):
        ident = name.split()[-1]
        m = re.search(rf"^[ \t]*#[ \t]*define[ \t]+{re.escape(ident)}\b", code, re.M)
        if not m:
            raise LookupError(name)
        first = last = _line_of(code, m.start())
        while lines[last].rstrip().endswith("\\"):
            last += 1
        return first, last
    if kind == "typedef":  # a one-line typedef naming ident
        m = re.search(rf"^typedef\b[^;{{}}]*\b{re.escape(ident)}\s*;", code, re.M)
        if not m:
            raise LookupError(name)
        return _line_of(code, m.start()), _line_of(code, m.end() - 1)
    if kind in ("struct", "union", "enum"):
        for m in re.finditer(rf"^{kind}[ \t]+{re.escape(ident)}\s*\{{", code, re.M):
            end = _match_brace(code, m.end() - 1)
            semi = code.index(";", end)
            return _line_of(code, m.start()), _line_of(code, semi)
        raise LookupError(name)
    # function or variable: the identifier at top level followed by ( ... ) {  or  [..]/= ...;
    # ("decl NAME": a function's prototype, ( ... ) followed by ';')
    want_decl = kind == "decl"
    depth = 0
    pat = re.compile(rf"\b{re.escape(ident)}\b")
    # top-level positions: brace depth 0
    depth_at = []
    for ch in code:
        depth_at.append(depth)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
    for m in pat.finditer(code):
        if depth_at[m.start()] != 0:
            continue
        line = _line_of(code, m.start())
        if code_lines[line].lstrip().startswith("#"):
            continue
        rest = code[m.end():]
        stripped = rest.lstrip()
        if stripped.startswith("("):
            # function: params, then '{' (definition) or ';' (declaration)
            k = m.end() + (len(rest) - len(stripped))
            d = 0
            for j in range(k, len(code)):
                if code[j] == "(":
                    d += 1
                elif code[j] == ")":
                    d -= 1
                    if d == 0:
                        break
            after = code[j + 1:]
            nxt = re.match(r"\s*(__[a-z_]+(\([^)]*\))?\s*)*", after)
            tail = after[nxt.end():] if nxt else after
            if tail.startswith("{") and not want_decl:
                body = j + 1 + (len(after) - len(tail))
                end = _match_brace(code, body)
                return _decl_start(lines, code_lines, line), _line_of(code, end - 1)
            if tail.startswith(";") and want_decl:
                end = j + 1 + (len(after) - len(tail))
                return _decl_start(lines, code_lines, line), _line_of(code, end)
            continue
        if want_decl:
            continue
        if stripped.startswith(("[", "=", "__read_mostly", "__aligned", ";")):
            end = code.index(";", m.end())
            eq = code.find("{", m.end(), end + 1)
            if eq >= 0:
                end = code.index(";", _match_brace(code, eq))
            return _decl_start(lines, code_lines, line), _line_of(code, end)
    raise LookupError(name)


# ----------------------------------------------------------------------------- output
def render_piece(tree, piece: Piece, text: str) -> str:
    src = f"{tree.repo} @ {tree.commit}: {piece.path}"
    lines = text.split("\n")
    if piece.whole:
        kept, dropped = [], []
        for k, line in enumerate(lines):
            if re.match(r"\s*#\s*include\b", line):
                dropped.append(str(k + 1))
                kept.append("")
            else:
                kept.append(line)
        head = (f"/* qoslab-oracle: {src}, lines 1-{len(lines)} (whole file; #include lines "
                f"{', '.join(dropped) or 'none'} blanked) */\n")
        return head + "\n".join(kept).rstrip("\n") + "\n"
    spans = []
    for name in piece.names:
        try:
            spans.append(find_definition(text, name) + (name,))
        except LookupError:
            raise SystemExit(f"{src}: definition {name!r} not found") from None
    spans.sort()
    out = []
    for first, last, name in spans:
        out.append(f"/* qoslab-oracle: {src}, lines {first + 1}-{last + 1} ({name}) */")
        out.append("\n".join(lines[first:last + 1]))
        out.append("")
    return "\n".join(out)


def render_file(era_name: str, tree, path: str, bodies: list[str]) -> str:
    head = (SPDX + f"/*\n * Extracted verbatim from the Linux kernel for qoslab's test oracle "
            f"(era {era_name}).\n * Tree: {tree.repo}, commit {tree.commit} "
            f"({tree.version}).\n * File: {path}. Licence: GPL-2.0 (see ../../COPYING).\n"
            " * Generated by tools/kernel-oracle/extract.py: do not edit.\n */\n\n")
    return head + "\n".join(bodies)


def extract(mirror: Path, era_name: str) -> dict[Path, str]:
    era = ERAS[era_name]
    tree = TREES[era.tree]
    files: dict[str, list[str]] = {}
    for piece in era.pieces:
        text = git_show(mirror, tree, piece.path)
        files.setdefault(piece.path, []).append(render_piece(tree, piece, text))
    return {HERE / "kernel" / era_name / p: render_file(era_name, tree, p, b)
            for p, b in files.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--era", action="append", help="era name (default: all)")
    ap.add_argument("--check", action="store_true", help="compare with the committed files")
    args = ap.parse_args(argv)
    bad = 0
    for era_name in args.era or list(ERAS):
        for path, content in extract(args.mirror, era_name).items():
            if args.check:
                if not path.exists() or path.read_text() != content:
                    print(f"differs: {path.relative_to(HERE)}")
                    bad += 1
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
                print(f"wrote {path.relative_to(HERE)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
