"""qoslab.qdiscs' SFQ schedulers against the kernel's own sfq_enqueue/sfq_dequeue, compiled.

``tools/kernel-oracle/sfq_runs.py`` drives the kernel code of each SFQ generation
(``harness/sfq_sched.c``) and qoslab's runtime of the matching profile with the same script of
enqueues and dequeues over pinned buckets, and compares which packet each dequeue returns and
which packets are dropped, operation by operation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import need_tool

ORACLE = Path(__file__).resolve().parents[1] / "tools" / "kernel-oracle"
sys.path.insert(0, str(ORACLE))

import sfq_runs  # noqa: E402

OPS = int(os.environ.get("QOSLAB_ORACLE_PACKETS", "2000")) * 5


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    need_tool("gcc")
    return tmp_path_factory.mktemp("sfq-sched-build")


@pytest.mark.parametrize("limit, quantum", [(40, 1514), (127, 300), (5, 9000)])
@pytest.mark.parametrize("era", list(sfq_runs.SCHED_ERAS))
def test_sfq_scheduler_agrees_with_the_compiled_kernel(era, limit, quantum, build_dir):
    r = sfq_runs.run_sched_era(era, OPS, seed=limit, work=build_dir, limit=limit,
                               quantum=quantum)
    assert r.dequeued > OPS // 10 and r.drops > 0  # the script exercises both paths
    assert (r.mismatches, r.first) == (0, None)


def test_the_comparison_tells_the_generations_apart(build_dir):
    """2.6.32's code against the 2.6.37 runtime (a new flow's allotment) must differ."""
    se = sfq_runs.SCHED_ERAS["sfq-2.6.32"]
    try:
        sfq_runs.SCHED_ERAS["sfq-2.6.32"] = sfq_runs.SchedEra("sfq-2.6.32", "2.6.37")
        r = sfq_runs.run_sched_era("sfq-2.6.32", 4000, seed=1, work=build_dir)
    finally:
        sfq_runs.SCHED_ERAS["sfq-2.6.32"] = se
    assert r.mismatches > 100
