"""How many threads one native fit may use (a leaf module: features, the families and the
embedding step all read it, and it imports none of them)."""

from __future__ import annotations

import os


def native_threads() -> int:
    """Threads for one model fit. On a 2-core machine, 1: with OpenMP's busy-waiting, two threads
    sharing the cores with anything else ran 10-20x slower than one (hist_gb 2.5 s vs 34 s on
    penguins under load). DSAGENT_THREADS overrides, up to the cores given."""
    # The cores this process may run on (taskset, a cpuset), not the machine's: fewer when it is given fewer.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = os.environ.get("DSAGENT_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return min(int(env), cpus)
    return 1 if cpus <= 2 else min(4, cpus // 2)
