"""docs/kernel-facts.md: every kernel fact qoslab relies on names the kernel files and versions
it was read in, and those files are the ones the oracle copied from the kernel trees."""

from __future__ import annotations

import re

from .conftest import REPO

DOC = REPO / "docs" / "kernel-facts.md"
ORACLE_TREES = REPO / "tools" / "kernel-oracle" / "kernel"
#: Facts that list what was *not* read or generated (no file to name).
NOT_READ = {"K12", "G5"}
_FACT = re.compile(r"^- ([A-Z]\d+)\. ", re.M)
_PATH = re.compile(r"`((?:net|include|lib|kernel)/[\w/.-]+\.[ch])`")
_VERSION = re.compile(r"\b[2-6]\.\d+(?:\.\d+)?(?:-rc\d+)?\b")


def facts() -> dict[str, str]:
    text = DOC.read_text()
    starts = [(m.group(1), m.start()) for m in _FACT.finditer(text)]
    out = {}
    for (fid, start), nxt in zip(starts, [*starts[1:], (None, len(text))], strict=True):
        body = text[start:nxt[1]]
        out[fid] = body.split("\n\n")[0].split("\n## ")[0]
    return out


def test_every_fact_names_its_kernel_files_and_versions():
    found = facts()
    assert len(found) >= 40 and len(set(found)) == len(found)
    missing = [fid for fid, body in found.items()
               if fid not in NOT_READ and not (_PATH.search(body) and _VERSION.search(body))]
    assert not missing, f"facts without a kernel file and version: {missing}"


def test_named_files_are_files_the_oracle_copied_from_a_kernel_tree():
    copied = {str(p.relative_to(era)) for era in ORACLE_TREES.iterdir()
              for p in era.rglob("*.[ch]")}
    named = {path for body in facts().values() for path in _PATH.findall(body)}
    assert named and not named - copied, sorted(named - copied)


def test_facts_cited_by_the_code_and_the_summary_table_exist():
    known = set(facts())
    cited = set()
    for path in (REPO / "qoslab" / "hashing").glob("*.py"):
        cited |= set(re.findall(r"\(([FCDKGQS]\d{1,2})\)", path.read_text()))
    table = DOC.read_text().split("\n## ", 2)[1]
    cited |= set(re.findall(r"\b([FCDKGQS]\d{1,2})\b", table))
    assert cited and not cited - known, sorted(cited - known)
