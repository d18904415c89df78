"""Learning to rank (issue 20, `task: ranking`): rows grouped by a query/user/session column, a
graded or binary relevance target, and one score per row that orders each group.

A library with one thin tool module (tools.py), like tools/forecast; the task type
(tools/builtin_task_types.py RANKING) lists the tools in workflow order. Modules: metrics (NDCG@k,
MAP@k, MRR, precision@k per group, averaged over groups, bootstrap CIs over groups), split
(group-aware test split and folds: a group is never cut), models (random and single-feature
baselines, LightGBM lambdarank and XGBoost rank:ndcg with defaults, a pointwise regressor,
rank:pairwise), tune (Optuna on the LightGBM and XGBoost rankers), task (RankingTask:
define, cross-validate, evaluate, predict), report (report, model card, notebook), monitoring
(score drift and, with labels, NDCG per batch).
"""
