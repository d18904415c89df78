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


def _busy_ratio(sample_s: float) -> float:
    """Wall time over CPU time of a busy loop of `sample_s` seconds (1 when nothing competes)."""
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < sample_s:
        pass
    return max(1.0, (time.perf_counter() - w0) / max(time.process_time() - c0, 1e-3))


def _least_reading(read, samples: int, pause_s: float, settled) -> float:
    """The least of up to `samples` calls of `read`, `pause_s` apart, stopping early once
    `settled(readings so far)` says more would not change the answer."""
    readings = [read()]
    while len(readings) < max(1, samples) and not settled(readings):
        time.sleep(pause_s)
        readings.append(read())
    return min(readings)


def slowdown(sample_s: float = 0.06, samples: int = 5, pause_s: float = 0.1) -> float:
    """How much slower than an idle machine this process runs now: ~1 on an idle machine, ~2.5
    when other processes leave it 40% of a core. Measured, not guessed: shared machines vary a lot.

    The least of up to `samples` short busy loops `pause_s` apart, stopping at the first that
    finds the machine idle. Why not one sample: a single 0.12 s loop read 1.7-2.4 on an idle
    machine on 14 of 37 benchmark runs (issue 18, docs/BENCHMARKS.md), from a burst that is over
    within a second (the run's own worker right after a tool returned, the hypervisor); the plan
    stretched the deliverables' reserve by it for the whole run, and those runs ended at 44-47 s of
    60. A machine that is really loaded stays loaded from one sample to the next, so the least of
    them still shows it; the usual idle case costs one sample."""
    # DSAGENT_SLOWDOWN_SAMPLES=1: the single sample of before (benchmarks/automl/budget_ab.py's old_start arm).
    samples = int(os.environ.get("DSAGENT_SLOWDOWN_SAMPLES") or samples)
    return _least_reading(lambda: _busy_ratio(sample_s), samples, pause_s, lambda r: min(r) <= 1.1)


# What `_pace_work` takes on the machine the deliverables' reserve was measured on (the 2-core
# benchmark machine, idle, 2026-12-04; agent/backends/time_plan.py's PACED_* terms): the least of
# several samples, as `pace` takes it.
PACE_REFERENCE_S = 0.0157  # 14.7-17.0 ms in five processes there


def _pace_work() -> float:
    """Seconds of a fixed piece of work like the deliverables' own: interpreted Python (the report,
    the notebook's cells) and a NumPy sort (predictions, the bootstrap, permutation importance)."""
    import numpy as np

    values = np.random.default_rng(0).random(400_000)
    t0 = time.perf_counter()
    total = 0
    for i in range(500_000):
        total += i % 7
    np.sort(values)
    return time.perf_counter() - t0


def pace(samples: int = 4, pause_s: float = 0.05) -> float:
    """How long the same work takes here, now, against the reference machine (1.0 there): the host's
    speed and whatever competes for it. `slowdown` sees only the second (wall over CPU time of this
    process); the first varied by 2.5x between days on the same kind of benchmark machine (issue 18:
    the same candidates' CV fits took 0.17 s for a linear model on 2026-12-03 and 0.055 s on
    2026-12-04), and a reserve in fixed seconds was then twice what the deliverables took.

    The least of up to `samples` readings `pause_s` apart, stopping once two in a row agree within
    10%: a burst that is over within a second (the worker finishing the last tool) reads slow and
    then does not, a slow host or a lasting load reads the same each time."""
    def two_agree(r: list[float]) -> bool:
        return len(r) > 1 and abs(r[-1] - r[-2]) <= 0.1 * min(r[-2:])

    return _least_reading(_pace_work, samples, pause_s, two_agree) / PACE_REFERENCE_S
