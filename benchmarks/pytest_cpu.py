"""Per-test CPU seconds (user+sys of this pytest process and everything it started, sandboxed
workers included) from a cpuacct cgroup: an xdist worker moves itself into a cgroup of its own,
so the two workers' figures do not mix (without xdist, start pytest in a cgroup of its own: the
one it is in is read). Needs root and cgroup v1's cpuacct. Rows appended to $S4CPU_OUT as TSV:
cpu, wall, nodeid; benchmarks/cpu_summary.py sums them per file. Used for the test-suite time
(README Known gaps): S4CPU_OUT=f.tsv PYTHONPATH=benchmarks pytest -n 2 -p pytest_cpu ..."""
import os
import time
from pathlib import Path

import pytest

_rows = []
_usage = None


def pytest_configure(config):
    global _usage
    cg = next(l.split(":", 2)[2].strip() for l in open("/proc/self/cgroup") if "cpuacct" in l.split(":")[1].split(","))
    base = Path("/sys/fs/cgroup/cpuacct") / cg.lstrip("/")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        base = base / f"w_{worker}_{os.getpid()}"
        base.mkdir(exist_ok=True)
        (base / "cgroup.procs").write_text(str(os.getpid()))
    _usage = base / "cpuacct.usage"


def _cpu():
    return int(_usage.read_text()) / 1e9


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    c0, t0 = _cpu(), time.time()
    yield
    _rows.append((_cpu() - c0, time.time() - t0, item.nodeid))


def pytest_unconfigure(config):
    out = os.environ.get("S4CPU_OUT")
    if out and _rows:
        with open(out, "a") as fh:
            for cpu, wall, nid in _rows:
                fh.write(f"{cpu:.2f}\t{wall:.2f}\t{nid}\n")
