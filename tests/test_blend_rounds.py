"""The greedy blend (Caruana's ensemble selection) stops at the first round that does not improve
the out-of-fold score; opt-in DSAGENT_BLEND_ALL_ROUNDS=1 runs every round and keeps the best blend
seen, which finds blends a plateau hides: here one more copy of the best model changes nothing,
and only after it does adding the second model help."""

from __future__ import annotations

import numpy as np
import pytest

from dsagent.tools.ensemble import greedy_selection
from dsagent.tools.metrics import get_metric


@pytest.fixture
def plateau():
    y = np.zeros(40)
    a, b = np.ones(40), np.full(40, -4.0)  # 1:1 -> -1.5 (worse than a), 2:1 -> -0.67 (better than a)
    splits = [(np.empty(0, int), np.arange(i, 40, 4)) for i in range(4)]
    return {"task": "regression"}, get_metric("rmse", "regression"), y, [a, b], splits


def test_the_default_stops_on_the_plateau(plateau, monkeypatch):
    monkeypatch.delenv("DSAGENT_BLEND_ALL_ROUNDS", raising=False)
    counts, value = greedy_selection(*plateau)
    assert counts == [1, 0] and value == pytest.approx(1.0)


def test_all_rounds_keep_the_best_blend_seen(plateau, monkeypatch):
    monkeypatch.setenv("DSAGENT_BLEND_ALL_ROUNDS", "1")
    counts, value = greedy_selection(*plateau)
    blend = (counts[0] * 1.0 - counts[1] * 4.0) / sum(counts)
    assert counts[1] >= 1 and value == pytest.approx(abs(blend)) and value < 0.7
