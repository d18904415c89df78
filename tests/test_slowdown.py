"""The measured slowdown the time plans stretch by: a burst that is over within a second must not
read as a loaded machine (it doubled the deliverables' reserve on idle benchmark runs), while a
load that lasts across samples still shows."""

from __future__ import annotations

import pytest

from dsagent.tools import slowdown as sd


def _readings(monkeypatch, values: list[float]) -> list[float]:
    """Make the busy loop read `values` in turn; returns the list of readings taken."""
    taken: list[float] = []
    left = list(values)

    def ratio(_sample_s: float) -> float:
        taken.append(left.pop(0))
        return taken[-1]

    monkeypatch.setattr(sd, "_busy_ratio", ratio)
    monkeypatch.setattr(sd.time, "sleep", lambda _s: None)
    return taken


def test_an_idle_first_reading_is_taken_at_once(monkeypatch):
    taken = _readings(monkeypatch, [1.02, 3.0])
    assert sd.slowdown() == 1.02 and taken == [1.02]


def test_a_passing_burst_is_not_read_as_load(monkeypatch):
    taken = _readings(monkeypatch, [2.37, 1.8, 1.04, 2.5])
    assert sd.slowdown() == 1.04 and len(taken) == 3


def test_a_lasting_load_still_shows(monkeypatch):
    taken = _readings(monkeypatch, [2.1, 1.9, 2.4, 2.0, 2.2, 1.0])
    assert sd.slowdown() == 1.9 and len(taken) == 5  # at most `samples` readings


def test_the_busy_loop_reads_at_least_one():
    assert sd._busy_ratio(0.01) >= 1.0


@pytest.mark.parametrize("samples", [1, 3])
def test_samples_bound_the_readings(monkeypatch, samples):
    taken = _readings(monkeypatch, [2.0] * 5)
    assert sd.slowdown(samples=samples) == 2.0 and len(taken) == samples


def test_one_sample_on_request(monkeypatch):
    """DSAGENT_SLOWDOWN_SAMPLES=1: the single reading of before (the benchmark's old_start arm)."""
    monkeypatch.setenv("DSAGENT_SLOWDOWN_SAMPLES", "1")
    taken = _readings(monkeypatch, [2.3, 1.0])
    assert sd.slowdown() == 2.3 and taken == [2.3]


@pytest.mark.parametrize("readings, taken, expected", [
    ([0.2, 0.21, 0.9], 2, 2.0),  # a host half as fast: two readings agree, no third
    ([0.5, 0.2, 0.21, 0.9], 3, 2.0),  # a burst first: it reads slow once, then not
    ([0.5, 0.3, 0.2, 0.4, 0.9], 4, 2.0),  # never two alike: `samples` readings, the least
])
def test_the_pace_is_the_least_reading_over_the_reference(monkeypatch, readings, taken, expected):
    left = list(readings)
    monkeypatch.setattr(sd, "_pace_work", lambda: left.pop(0))
    monkeypatch.setattr(sd, "PACE_REFERENCE_S", 0.1)
    monkeypatch.setattr(sd.time, "sleep", lambda _s: None)
    assert sd.pace() == pytest.approx(expected) and len(readings) - len(left) == taken


def test_the_pace_work_is_real_work_near_the_reference():
    seconds = sd._pace_work()
    assert 0.0 < seconds < 50 * sd.PACE_REFERENCE_S  # a sane reading on any machine that runs the suite
