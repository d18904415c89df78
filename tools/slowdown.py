"""How much CPU this process has: the cores it is given (thread pools never exceed them) and how
much slower than an idle machine it runs right now (the time plans, the autopilot's reserve for
the deliverables and the ranking tools' own plan, stretch by it)."""

from __future__ import annotations

import os
import time


def cores_given() -> int:
    """The CPUs this process may run on (its affinity: taskset, a cpuset cgroup), not the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS)
        return os.cpu_count() or 1


def slowdown(sample_s: float = 0.12) -> float:
    """Wall time over CPU time of a short busy loop: ~1 on an idle machine, ~2.5 when other
    processes leave this one 40% of a core. Measured, not guessed: shared machines vary a lot."""
    w0, c0 = time.perf_counter(), time.process_time()
    n = 0
    while time.perf_counter() - w0 < sample_s:
        n += 1
    return max(1.0, (time.perf_counter() - w0) / max(time.process_time() - c0, 1e-3))
