"""The ranking tools: thin wrappers that read the session's data and artifacts, call RankingTask
(task.py) and write the artifacts. The autopilot calls them in order after profile_data when the
answers say `task: ranking` (the task type's steps); Claude may call them too."""

from __future__ import annotations

import json

from dsagent.tools import paths
from dsagent.tools.ranking import budget as plan
from dsagent.tools.ranking import report
from dsagent.tools.ranking.task import SEARCH_ROWS, RankingSpec, RankingTask
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, read_json, tool
from dsagent.tools.slowdown import slowdown

PER_GROUP = "ranking_test_groups.csv"


def _data(ctx: ToolContext):
    from dsagent.tools.data import load_dataset

    return load_dataset(ctx)[0]


def _spec(ctx: ToolContext) -> dict:
    rec = read_json(ctx.artifacts_dir / paths.TASK)
    if not rec or rec.get("task") != "ranking":
        raise ToolError("define_ranking must run first")
    return rec


def _write(ctx: ToolContext, name: str, obj) -> None:
    artifact_path(ctx, name).write_text(json.dumps(obj, indent=1, default=str))


@tool
def define_ranking(ctx: ToolContext, target: str | None = None, group_column: str | None = None, k: int | None = None,
                   relevance_threshold: float | None = None) -> ToolOutput:
    """Frame a learning-to-rank task: the relevance column (graded or 0/1), the group column whose rows
    are ranked together (query, user, session), NDCG@k's k, and the split that keeps every group
    whole (about 20% of the groups become the untouched test set). Arguments default to the answers.

    Args:
        target: the relevance column (0/1, grades such as 0-4, or ratings).
        group_column: the query/user/session column.
        k: the top positions NDCG@k, MAP@k and precision@k look at (default 10).
        relevance_threshold: the grade from which a row counts as relevant for MAP, MRR and precision.
    """
    a = ctx.answers
    given = {"target": target or a.get("target"), "group_column": group_column or a.get("group_column"),
             "k": k or a.get("top_k"), "relevance_threshold": relevance_threshold if relevance_threshold is not None
             else a.get("relevance_threshold"), "drop_columns": a.get("id_columns")}
    spec = RankingSpec.from_answers(given)
    rec = RankingTask(spec).define(_data(ctx), ctx.seed)
    assumptions = [] if given["k"] else [f"k = {spec.k}: NDCG@k, MAP@k and precision@k look at the top {spec.k} (not given)"]
    rec["assumptions"] = assumptions
    _write(ctx, paths.TASK, rec)
    summary = {k: rec[k] for k in ("target", "group_column", "k", "relevance_threshold", "rows", "n_groups", "group_size",
                                   "categorical", "numeric", "dropped", "notes", "assumptions")}
    return ToolOutput(summary=summary | {"train_groups": rec["split"]["train_groups"], "test_groups": rec["split"]["test_groups"]},
                      record={k: v for k, v in rec.items() if k != "split"}, files={"task": paths.TASK})


@tool
def train_rankers(ctx: ToolContext, time_budget_s: float | None = None) -> ToolOutput:
    """Cross-validate the ranking candidates on GroupKFold folds of the training groups: a random order
    and the best single feature (baselines), LightGBM lambdarank and XGBoost rank:ndcg with library
    defaults (always fitted: the floor), a pointwise XGBoost regressor, rank:pairwise, then Optuna
    tuning of the LightGBM and XGBoost rankers with the time left. Writes the leaderboard (best mean
    NDCG@k first).

    Args:
        time_budget_s: seconds for the search (default: a share of what the session has left after the
            deliverables' reserve and the final fit, which runs twice; see tools/ranking/budget.py).
    """
    rec = _spec(ctx)
    large = len(rec["split"]["train_rows"]) > SEARCH_ROWS
    budget = time_budget_s if time_budget_s is not None else plan.search_s(ctx.seconds_left(default=120.0), large)
    board = RankingTask(RankingSpec(rec["target"], rec["group_column"], rec["k"])).cross_validate(
        _data(ctx), rec, ctx.seed, budget, progress=ctx.report)
    _write(ctx, paths.LEADERBOARD, board)
    return ToolOutput(summary={"metric": f"ndcg@{rec['k']} (higher is better)", "time_budget_s": round(budget, 1),
                               "leaderboard": [{k: r.get(k) for k in ("name", "cv_ndcg", "cv_ndcg_std", "skipped") if k in r}
                                               for r in board]},
                      record={"leaderboard": board}, files={"leaderboard": paths.LEADERBOARD})


@tool
def evaluate_ranking(ctx: ToolContext, model: str = "best") -> ToolOutput:
    """Fit the chosen candidate (and the baselines) on the training groups, score the untouched test
    groups once (NDCG@k, MAP@k, MRR, precision@k with bootstrap CIs over groups, NDCG by group size, the
    worst groups) and save the model; `dsagent predict` then writes a score and a rank within each group.

    Args:
        model: a leaderboard name, or "best" (highest cross-validated NDCG@k that is not a baseline).
    """
    from dsagent.tools.defaults import floor_check
    from dsagent.tools.model_io import input_schema, save_model
    from dsagent.tools.ranking.models import DEFAULTS

    rec = _spec(ctx)
    board = read_json(ctx.artifacts_dir / paths.LEADERBOARD) or []
    scored = [r for r in board if "skipped" not in r]
    if not scored:
        raise ToolError("train_rankers must run first")
    left, slow = ctx.seconds_left(default=float("inf")), slowdown()
    spare = left - plan.reserve_s(slow)  # what the deliverables' reserve leaves
    fit_s = plan.fit_s(left, slow)  # the fit runs here and again in the notebook
    n_train = len(rec["split"]["train_rows"])
    if model == "best":
        chosen, why = RankingTask.choose(board, n_train, fit_s)
    elif model in {r["name"] for r in scored}:
        chosen, why = model, "asked for"
    else:
        raise ToolError(f"no model {model!r} on the leaderboard; choose one of {', '.join(r['name'] for r in scored)} or 'best'")
    df = _data(ctx)
    task = RankingTask(RankingSpec(rec["target"], rec["group_column"], rec["k"]))
    cap = RankingTask.affordable_rows(board, chosen, fit_s)
    cap = cap if cap is not None and cap < len(rec["split"]["train_rows"]) else None
    ev, fitted, per_group = task.evaluate(df, rec, board, chosen, ctx.seed, spare, max_fit_rows=cap)
    ev["fit_budget_s"] = round(fit_s, 1) if fit_s != float("inf") else None
    ev["why"] = why
    # How the shipped model stands against the library-default rankers on the same CV folds
    ev["strong_defaults"] = floor_check(scored, chosen, True, names=DEFAULTS, chosen_why=why,
                                        skipped=[f"{r['name']} ({r['skipped']})" for r in board if "skipped" in r])
    per_group.to_csv(artifact_path(ctx, PER_GROUP), index=False)
    X = df[[rec["group_column"], *rec["categorical"], *rec["numeric"]]]
    manifest = {"task": "ranking", "model": chosen, "target": rec["target"], "group_column": rec["group_column"],
                "k": rec["k"], "relevance_threshold": rec["relevance_threshold"], "seed": ctx.seed,
                "input_schema": input_schema(X), "predict_columns": ["score", "rank"]}
    save_model(fitted.as_dict(), artifact_path(ctx, paths.MODEL), manifest)
    _write(ctx, paths.EVALUATION, ev)
    t = ev["test"]
    return ToolOutput(summary={"model": chosen, "metric": ev["metric"], "test": {m: t[m] for m in ("ndcg", "map", "mrr", "precision")},
                               "test_ndcg_ci": t.get("ndcg_ci"), "test_groups": t["groups"],
                               "baselines": {n: s["ndcg"] for n, s in ev["compared"].items() if n != chosen}},
                      record=ev, files={"evaluation": paths.EVALUATION, "model": paths.MODEL, "per_group": PER_GROUP})


@tool
def write_ranking_report(ctx: ToolContext, execute_notebook: bool = True, retrain_every_days: int = 30) -> ToolOutput:
    """Write the ranking report (leaderboard, test metrics with CIs against the baselines, NDCG by group
    size, the worst groups, what drives the score), the model card, the monitoring plan (score drift,
    NDCG per labelled batch) and a notebook that re-creates the split and the test score.

    Args:
        execute_notebook: run the notebook now (refits the chosen model once more).
        retrain_every_days: the monitoring plan's retraining schedule.
    """
    import nbformat

    from dsagent.tools.model_io import load_model
    from dsagent.tools.ranking import monitoring
    from dsagent.tools.ranking.task import predict

    rec = _spec(ctx)
    ev = read_json(ctx.artifacts_dir / paths.EVALUATION)
    if not ev or ev.get("task") != "ranking":
        raise ToolError("evaluate_ranking must run first")
    board = read_json(ctx.artifacts_dir / paths.LEADERBOARD) or []
    goal = ctx.answers.get("goal") or f"rank rows of each {rec['group_column']} by {rec['target']}"
    artifact_path(ctx, paths.REPORT).write_text(report.report_md(rec, board, ev, goal), encoding="utf-8")
    artifact_path(ctx, paths.MODEL_CARD).write_text(report.model_card_md(rec, ev), encoding="utf-8")
    df = _data(ctx)
    lab, _, _ = RankingTask.labelled(df, rec)
    tr, te = lab.iloc[rec["split"]["train_rows"]], lab.iloc[rec["split"]["test_rows"]]
    model, manifest = load_model(ctx.artifacts_dir / paths.MODEL)
    plan = monitoring.build_plan(rec, ev, tr, predict(model, manifest, te)["score"].to_numpy(),
                                 int(ctx.answers.get("retrain_every_days") or retrain_every_days))
    _write(ctx, paths.MONITORING, plan)
    artifact_path(ctx, paths.MONITORING_MD).write_text(monitoring.plan_markdown(plan), encoding="utf-8")
    session = read_json(ctx.session_dir / "session.json") or {}
    nb = report.notebook(rec, session.get("data_path") or str(ctx.data_path), session.get("data_sha256"), ev["model"],
                         ev["test"]["ndcg"], ev.get("max_fit_rows"), ev.get("params"))
    executed = False
    if execute_notebook:
        from dsagent.tools.notebook_kernel import execute

        execute(nb, str(ctx.artifacts_dir), timeout_cell=max(30.0, ctx.seconds_left()), timeout_total=max(60.0, ctx.seconds_left()))
        executed = True
    nbformat.write(nb, artifact_path(ctx, paths.NOTEBOOK))
    files = {"report": paths.REPORT, "model_card": paths.MODEL_CARD, "notebook": paths.NOTEBOOK,
             "monitoring": paths.MONITORING, "monitoring_md": paths.MONITORING_MD}
    return ToolOutput(summary={"written": list(files.values()), "notebook_executed": executed}, files=files)
