"""Learning to rank (issue 20, `task: ranking`): rows grouped by a query/user/session column, a
graded or binary relevance target, and one score per row that orders each group.

A library with one thin tool module (tools.py), like tools/forecast. Modules: metrics (NDCG@k,
MAP@k, MRR, precision@k per group, averaged over groups, bootstrap CIs over groups), split
(group-aware test split and folds: a group is never cut), models (random and single-feature
baselines, a pointwise regressor, XGBoost's rank:ndcg and rank:pairwise, LightGBM's lambdarank when
installed), task (RankingTask: define, cross-validate, evaluate, predict), report (report, model
card, notebook, monitoring plan), monitoring (score drift and, with labels, NDCG per batch).
"""

# The tools after profile_data, in order (the task type's workflow; no import, so the agent side reads it).
STEPS = ("define_ranking", "train_rankers", "evaluate_ranking", "write_ranking_report")
