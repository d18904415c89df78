"""How a ranking run spends the session's time, planned as the supervised path plans it
(agent/backends/autopilot.py): the deliverables keep a reserve, the final fit is paid twice
(evaluate_ranking, then the notebook that re-creates the model), and the search gets a share of
the rest. The autopilot calls the ranking tools on their defaults, so the plan lives here; a caller
that passes its own budget overrides it.

Movielens at 60 s (1-minute load 11-12 on 2 cores) ran 84 s before this plan: the search took 60%
of the time left, the final fit a third of what was left after it, and the notebook (kernel start,
data load, the same fit again) whatever remained, with a 60 s floor on its timeout."""

from __future__ import annotations

from dsagent.tools.slowdown import slowdown

# Seconds for what surrounds the fits on an idle 2-core machine: evaluate_ranking's bootstrap,
# per-group tables and saving, the report and monitoring plan, and the notebook's kernel start,
# imports and data load (movielens at load 11: ~6 s in evaluate_ranking and ~13 s in
# write_ranking_report besides the fits, about 2.5x the idle figure).
DELIVERABLES_S = 8.0
FIT_PAID = 2.3  # the final fit runs in evaluate_ranking and again in the notebook, with scoring around each
LARGE_SEARCH_SHARE = 0.35  # large data: the final fit on every row costs several search folds; keep room for it
SEARCH_SHARE = 0.6


def reserve_s(slow: float | None = None) -> float:
    """Seconds kept for the deliverables, stretched by how much CPU this process gets now (at most 3x)."""
    slow = slowdown() if slow is None else slow
    return DELIVERABLES_S * min(max(slow, 1.0), 3.0)


def search_s(left: float, large: bool, slow: float | None = None) -> float:
    """train_rankers' default budget: a share of what the deliverables' reserve leaves (at least 3 s:
    the first learned candidate is tried anyway)."""
    return max(3.0, (LARGE_SEARCH_SHARE if large else SEARCH_SHARE) * (left - reserve_s(slow)))


def fit_s(left: float, slow: float | None = None) -> float:
    """Seconds evaluate_ranking's fit of the chosen model may take: it is paid twice (here and in the
    notebook) out of what the deliverables' reserve leaves (at least 1 s: a model is always fitted)."""
    return max(1.0, (left - reserve_s(slow)) / FIT_PAID)
