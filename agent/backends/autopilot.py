"""The offline autopilot: a deterministic backend that follows the data-scientist workflow through
the same tools, the same validation and the same loop as Claude.

profile -> clarify (ask_user, questions tailored to what the profile found) -> define task and
test split -> baseline and candidates -> tune -> evaluate on the untouched test split -> explain
-> report and model card -> monitoring plan -> notebook -> final summary.

It profiles before asking because the profile is cheap and decides which questions matter (costs
only for a binary target, a time column only when one exists). The budget is split on purpose:
a reserve for the deliverables, then candidates, then tuning with what is left.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from dsagent.backends.time_plan import (EXTRA_MIN_S, _refit_estimate, _reserve, bag_fit_s, candidate_share,  # noqa: F401
                                       full_budget, paced_reserve, profile_pace_on, stretch, text_share, tuning_time)
from dsagent.loop import LoopState, ToolCall, Turn
from dsagent.result import named_list, written_documents
from dsagent.tools import paths
from dsagent.tools.families import tunable_names
from dsagent.tools.opt_in import (BAG_FOLDS, bagging_on, blend_room_on, refit_all_on, stacking_on,
                                    subsampled_refit_room_on)  # switches only: no ML import here
from dsagent.tools.schemas import Evaluation, Leaderboard, LeaderboardRow, TaskSpec
from dsagent.tools.task_types import SUPERVISED_STEPS, get_task_type, task_types
from dsagent.tools.unsupervised.goal import unsupervised_kind  # text matching only: no ML library

# A failure here ends the run: the define/train/evaluate steps, and the tool a task without a
# target fits with (its step after profiling).
CRITICAL = {"profile_data", "define_task", "train_models", "evaluate_model", "train_on_cluster"}

# What the autopilot says before the deliverables (a task type's step_text may say more).
STEP_TEXT = {
    "write_report": "Writing the report and model card.",
    "plan_monitoring": "Planning how to monitor the model after launch.",
    "write_notebook": "Writing and executing a notebook that re-creates the model.",
}


def _slowdown(profiled: tuple[float, float] | None = None) -> float:
    return stretch(profiled)


LINEAR_TRIALS = 16


def _search_is_subsampled(task: TaskSpec | None) -> bool:
    return task is not None and task.search_is_subsampled


def _test_cells(task: TaskSpec | None) -> float:
    """Test rows x feature columns once the task is defined (what the deliverables' cost grows with)."""
    return float(task.n_test) * float(len(task.features)) if task is not None else 0.0


def choose_model(board: list[dict[str, Any]], interpretability: str | None) -> tuple[str, str]:
    """Which candidate to ship, and why. The best by CV, unless the user said interpretability
    matters most and a linear model is within one CV standard deviation of it (a gap that size is
    mostly fold noise, and a linear model can be read coefficient by coefficient)."""
    ranked = [r for r in board if r.get("family") != "baseline"]
    if interpretability != "high" or not ranked:
        return "best", ""
    best = ranked[0]
    simple = next((r for r in ranked if r.get("family") == "linear"), None)
    if simple is None or simple is best:
        return "best", ""
    gap = abs(best["cv_mean"] - simple["cv_mean"])
    tolerance = max(best.get("cv_std") or 0.0, simple.get("cv_std") or 0.0)
    if gap <= tolerance:
        return simple["name"], (f"interpretability matters most here, and {simple['name']} is within one CV standard "
                                f"deviation of {best['name']} ({gap:.4g} <= {tolerance:.4g}), so I ship the linear model")
    return "best", (f"{best['name']} beats the interpretable {simple['name']} by {gap:.4g}, more than one CV standard "
                    "deviation, so I keep it and explain it with importance plots")


class AutopilotBackend:
    name = "offline"
    model = "autopilot"

    def __init__(self, target: str | None = None, max_trials: int | None = None):
        self.target = target
        self.max_trials = max_trials
        self._profile: tuple[float, float] | None = None  # (seconds, cells) of profile_data (see _profiled)
        self._slow = 1.0  # how much slower than the reference (or an idle) machine this one runs now (see _slowdown)
        self._tuned_second = False  # a second family tuned after a linear one (at most once)
        self._extra = ""  # the leftover round after the blend: "" -> "tuned" -> "done" (at most once)

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _done(conversation: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Latest result per tool name."""
        seen: dict[str, dict[str, Any]] = {}
        for msg in conversation:
            if msg.get("role") == "tool":
                for r in msg["results"]:
                    seen[r["name"]] = r
        return seen

    @staticmethod
    def _record(state: LoopState, result: dict[str, Any] | None) -> dict[str, Any]:
        if not result or not result.get("record"):
            return {}
        path = state.session.artifacts_dir / result["record"]
        return json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def _profiled(cls, state: LoopState, result: dict[str, Any] | None) -> tuple[float, float] | None:
        """(seconds, cells) of this run's profile_data call: the machine's pace, read from work of the
        deliverables' own kind (time_plan.stretch)."""
        if not result or not result.get("ok") or not result.get("seconds"):
            return None
        profile = cls._record(state, result)
        return float(result["seconds"]), float(profile.get("n_rows") or 0) * float(profile.get("n_cols") or 0)

    def _questions(self, profile: dict[str, Any], state: LoopState) -> list[dict[str, Any]]:
        """Only what changes the work on this data (dsagent.questions holds the policy)."""
        from dsagent.goal import understand
        from dsagent.questions import plan_questions

        target = state.answers.get("target") or self.target
        goal = state.answers.get("goal")
        columns = [c["name"] for c in profile.get("columns", [])]
        candidates = understand(goal, columns).candidates if goal and not target else []
        return plan_questions(profile, state.answers, target, candidates)

    def _say(self, text: str) -> Iterator[str]:
        yield text

    # -- the plan --------------------------------------------------------------------------
    def stream_turn(self, conversation: list[dict[str, Any]], tools, state: LoopState):
        done = self._done(conversation)
        # The run's task type: the one the answers name, else the one a goal without a target names.
        named = task_types().get(state.answers.get("task") or "")
        kind = unsupervised_kind(state.answers, self.target) if named is None else None
        own = named if named is not None and named.prediction is None else get_task_type(kind) if kind else None
        critical = CRITICAL | (own.critical_steps() if own is not None else frozenset())
        failed = [name for name, r in done.items() if not r.get("ok") and name in critical]
        if failed:
            name = failed[0]
            text = f"I have to stop: {name} failed — {done[name].get('content', '')[:400]}"
            yield text
            return Turn(text=text)
        if own is not None:  # a task that fits its own models (clustering, anomaly, forecast...): walk its steps
            return (yield from self._own_turn(own, done, state))
        if state.session.meta.get("dask"):  # data read by Dask on the cluster (the runtime decided: tools/scale.py)
            return (yield from self._cluster_turn(done, state))
        # A supervised task type's workflow (a plugin's may differ) through the core planner, else the built-in one.
        self.ORDER = list(named.steps if named is not None else SUPERVISED_STEPS)
        budget = state.time_budget
        if self._next_step(done) in ("engineer_features", "train_models"):  # measured before the search is planned
            self._profile = self._profiled(state, done.get("profile_data"))
            self._slow = _slowdown(self._profile)
        slow = self._slow
        # Read once per turn: it holds the split's row lists (1.7 MB on 225k rows). A task fitting its own
        # models (ranking) writes its own task record, not a TaskSpec.
        task = self._task(state) if named is None or named.prediction is not None else None
        cells = _test_cells(task)
        reserve = _reserve(budget, slowdown=slow, test_cells=cells)
        target = state.answers.get("target") or self.target
        step = self._next_step(done)
        call: ToolCall | None = None
        text = ""
        if step == "profile_data":
            text = "First I profile the data: column types, missing values, target balance and possible leaks."
            call = ToolCall("auto-profile", "profile_data", {"target": target} if target else {})
        elif step == "ask_user":
            questions = self._questions(self._record(state, done.get("profile_data")), state)
            if questions:
                text = "Before training, a few questions whose answers change what I build."
                call = ToolCall("auto-ask", "ask_user", {"questions": questions})
            else:
                step = "define_task"
        if step == "engineer_features":
            declared = state.answers.get("derived_features") or []
            share = candidate_share(state.seconds_left() - reserve, state.answers.get("auto_features"),
                                   _search_is_subsampled(task))
            wide = bool(task and (task.get("derived") or {}).get("select"))  # what the selection drops is reported
            text_s = text_share(task, state.seconds_left() - reserve)
            # With a text column it always runs: no time for the comparison (or no extra) is recorded, and reported, too.
            has_text = task is not None and any(k == "text" for k in task.features.values())
            if (declared or share or wide or has_text) and "engineer_features" in self._tool_names(tools):
                # Declared features are in the task already (define_task); this measures each one's CV change
                # for the report, and keeps them all: the user asked for them. Automatic candidates get a
                # share of the time and are kept only when CV on the training folds says they help.
                args = {"expressions": list(declared), "keep": "all"}
                text = (f"Measuring the {len(declared)} derived feature(s) you declared by cross-validation." if declared
                        else "The data is wide: recording which columns the selection drops." if not share else "")
                if share:
                    args.update(auto=True, time_budget_s=share)
                    text = (text + " " if text else "") + f"Trying a few generic candidate features for up to {share:.0f}s."
                if has_text:
                    args["text_budget_s"] = text_s  # 0: TF-IDF, the record says why
                if text_s:
                    text = (text + " " if text else "") + (f"Comparing sentence embeddings with TF-IDF for the text "
                                                           f"column(s) by cross-validation, for up to {text_s:.0f}s.")
                call = ToolCall("auto-engineer", "engineer_features", args)
            else:
                step = "train_models"
        if step == "define_task":
            a = state.answers
            args: dict[str, Any] = {"target": a.get("target") or target}
            if not args["target"]:
                text = ("I cannot continue without a target column or a task: pass --target COL, or --task clustering "
                        "or --task anomaly for work without a target (a goal such as 'segment these customers' says it too).")
                yield text
                return Turn(text=text)
            for key in ("task", "metric", "positive_class", "group_column"):
                if a.get(key) not in (None, "auto", ""):
                    args[key] = a[key]
            if a.get("time_column") not in (None, "", "no"):
                args["time_column"] = a["time_column"]
            drops = [c for c in (a.get("id_columns") or [])]
            if drops:
                args["drop_columns"] = drops
            text = "Now I fix the task and set aside an untouched test split before fitting anything."
            call = ToolCall("auto-task", "define_task", args)
        elif step == "train_models":
            # Most of the search time: a diverse set of candidates is what the ensemble feeds on.
            # When too little would be left to tune usefully, all of it.
            avail = state.seconds_left() - reserve
            spend = max(5.0, avail if avail < 25 else 0.6 * avail)
            if _search_is_subsampled(task):  # the final refit on every row is costly: keep room for it
                spend = max(5.0, 0.3 * avail)
            text = "Comparing a baseline with linear and tree-ensemble candidates by cross-validation."
            if state.answers.get("model_families"):
                text = ("Comparing a baseline with the model families the answers allow "
                        f"({', '.join(state.answers['model_families'])}) by cross-validation.")
            args = {"time_budget_s": round(spend, 1)}
            call = ToolCall("auto-train", "train_models", args)
        elif step == "tune_model":
            board = self._record(state, done.get("train_models")).get("leaderboard", [])
            spend = self._tuning_spend(state, board, task, budget, cells)
            tunable = [r for r in board if r["family"] in tunable_names()]
            if (spend < 8 and not self.max_trials) or spend < 3 or not tunable:
                step = "build_ensemble"
            else:
                args = {"family": tunable[0]["family"], "time_budget_s": round(spend, 1)}
                if self.max_trials:
                    args["n_trials"] = self.max_trials
                elif tunable[0]["family"] == "linear":
                    # One hyperparameter: TPE has it within ~16 trials (telco_churn: 73 trials in 25 s gained
                    # 6e-5 AUC). What is left tunes the best non-linear family next, for the ensemble.
                    args["n_trials"] = LINEAR_TRIALS
                text = f"Tuning {tunable[0]['family']}, the best family so far, with Optuna for up to {spend:.0f}s."
                call = ToolCall("auto-tune", "tune_model", args)
        if step == "build_ensemble" and not self.max_trials and not self._tuned_second:
            board = self._leaderboard(state)
            second = self._second_tuning(board)
            spend = self._tuning_spend(state, board, task, budget, cells)
            if second and spend >= 8 and "build_ensemble" in self._tool_names(tools):
                step, self._tuned_second = "", True
                text = f"Tuning {second} too, the best family after the linear model, for up to {spend:.0f}s."
                call = ToolCall("auto-tune-2", "tune_model", {"family": second, "time_budget_s": round(spend, 1)})
        if step == "build_ensemble":
            if "build_ensemble" not in self._tool_names(tools):  # tune_model blended instead
                step = "evaluate_model"
            else:
                text = ("Blending the best candidates by greedy ensemble selection on their out-of-fold predictions"
                        + (", and trying a stacked model on them." if stacking_on() else "."))
                call = self._ensemble_call(state, budget, cells, task, "auto-ensemble")
        if step == "evaluate_model" and not self.max_trials and full_budget() and self._extra != "done":
            leftover = self._leftover_turn(state, budget, cells, task, tools)
            if leftover is not None:
                step, (text, call) = "", leftover
        if step == "evaluate_model":
            board = self._leaderboard(state)
            choice, why = choose_model(board, state.answers.get("interpretability"))
            ranked = [r for r in board if r.get("family") != "baseline"] or board
            row = ranked[0] if choice == "best" and ranked else next((r for r in board if r["name"] == choice), None)
            n_train = (task.n_train if task else 0)
            seconds = state.seconds_left() - reserve
            fit_s = round(max(seconds / 2.3, 1.0), 1)  # the fit runs twice: here and in the notebook
            refit = _refit_estimate([row], n_train, top=1) if row else 0.0
            args: dict[str, Any] = {"model": choice}
            if row and row.get("family") == "xgboost" and _search_is_subsampled(task):
                # Boosting re-learns its rounds on rows the search did not see; evaluate_model picks
                # the rows and the step that fit this time.
                args["max_fit_s"] = fit_s
                text = ("Fitting the best candidate on the training rows the time budget affords, letting held-out "
                        "training rows decide its boosting rounds, and scoring the held-out test split once.")
            elif refit > fit_s:
                # evaluate_model decides how many rows that time affords (from the search's timings).
                args["max_fit_s"] = fit_s
                text = (f"Fitting the best candidate within {fit_s:g}s (all {n_train:,} training rows would take "
                        f"~{refit:.0f}s, and the fit runs twice: here and in the notebook), on fewer rows if "
                        "that is short, and scoring the held-out test split once.")
            elif not text:
                text = "Fitting the best candidate on all training rows and scoring the held-out test split once."
            text += f" {why[:1].upper()}{why[1:]}." if why else ""
            # What the plan kept for the deliverables, beside what is left: the benchmark compares it with
            # what they then took (benchmarks/automl/budget_ab.py), which is how the reserve is calibrated.
            getattr(state.session, "update", lambda **_: None)(time_plan={
                "seconds_left_at_deliverables": round(state.seconds_left(), 2), "reserve_s": round(reserve, 2),
                "final_fit_s_est": round(refit, 2), "slowdown": round(slow, 2), "paced": paced_reserve(),
                "profile_s": self._profile[0] if self._profile else None, "profile_pace": profile_pace_on(),
                "test_cells": cells, "full_budget": full_budget()})
            if bagging_on() and row and "max_fit_s" not in args:
                # Paid here and in the notebook, like one fit. Asked only when that fits the final fit's
                # time and the single fit would use every row: asking with a time limit let evaluate_model
                # cut the rows of the one fit it fell back to (the first bagged arm passed max_fit_s to every run).
                bag_s = bag_fit_s(refit)
                if bag_s <= fit_s:
                    args["bagged"] = True
                    text += f" It is fitted as a bag: {BAG_FOLDS} models on different folds of the training rows, averaged."
                else:
                    text += (f" One fit, not a bag of {BAG_FOLDS} fold models: those would take ~{bag_s:.0f}s, more than "
                             f"the {fit_s:g}s the final fit may take.")
            ratio = self._labelled_ratio(state, task)
            if ratio and row and "max_fit_s" not in args:
                # Paid here and in the notebook after the scored fit; the tuning plan kept room for it.
                single = bag_fit_s(refit) if args.get("bagged") else refit
                if single * (1 + ratio) <= fit_s:
                    args["refit_all_rows"] = True
                    text += (f" Once the test split is scored, the same model is refitted on all "
                             f"{task.n_train + task.n_test:,} labelled rows, test rows included, and that one ships "
                             "(the test score stays the one measured before the refit).")
                else:
                    text += (f" The scored model ships as it is: refitting it on every labelled row as well would take "
                             f"~{single * (1 + ratio):.1f}s in all, more than the {fit_s:g}s the final fit may take.")
            call = ToolCall("auto-eval", "evaluate_model", args)
        elif step == "explain_model":
            text = "Explaining what drives the predictions."
            call = ToolCall("auto-explain", "explain_model", {})
        elif step == "write_report":
            text = "Writing the report and model card."
            call = ToolCall("auto-report", "write_report", {})
        elif step == "plan_monitoring":
            text = "Planning how to monitor the model after launch."
            call = ToolCall("auto-monitor", "plan_monitoring", {})
        elif step == "write_notebook":
            text = "Writing and executing a notebook that re-creates the model."
            call = ToolCall("auto-notebook", "write_notebook", {"timeout_s": round(max(60.0, state.seconds_left() + 30), 0)})
        elif step == "final":
            text = self._summary(state, done)
        elif step and step not in SUPERVISED_STEPS and named is not None:  # a plugin task type's own step: its tool
            text = named.step_text.get(step) or f"Calling {step}."
            call = ToolCall(f"auto-{step}", step, named.step_args(step, target))
        if text:
            yield text
        return Turn(text=text, tool_calls=[call] if call else [], stop_reason="tool_use" if call else "end_turn")

    def _own_turn(self, tt, done: dict[str, dict[str, Any]], state: LoopState):
        """The task type's steps (e.g. profile -> fit segments -> report -> monitoring -> notebook), each
        with its step_text and step_args, then its summary."""
        order = list(tt.steps)
        taken = [order.index(name) for name in done if name in order]
        step = order[max(taken, default=-1) + 1] if max(taken, default=-1) + 1 < len(order) else "final"
        if step == "final":
            text = self._own_summary(tt, state, done)
            yield text
            return Turn(text=text)
        if step == order[1] and "ask_user" not in done:  # before the fit: only what changes it on this data
            from dsagent.questions_unsupervised import plan_questions

            questions = plan_questions(tt.name, self._record(state, done.get("profile_data")), state.answers)
            if questions:
                text = "Before fitting, a few questions whose answers change what I build."
                yield text
                return Turn(text=text, tool_calls=[ToolCall("auto-ask", "ask_user", {"questions": questions})],
                            stop_reason="tool_use")
        args = tt.step_args(step, state.answers.get("target") or self.target)
        if step == "write_notebook":
            args = {"timeout_s": round(max(60.0, state.seconds_left() + 30), 0)} | args
        if step == order[1]:  # the fit: record what the task assumed for the answers not given
            for key, note in tt.assumptions.items():
                asked = any(a.startswith(f"{key} = ") for a in state.assumptions)  # assumed at ask_user already
                if key not in state.answers and note not in state.assumptions and not asked:
                    state.assumptions.append(note)
        text = tt.step_text.get(step) or STEP_TEXT.get(step) or f"Calling {step}."
        yield text
        return Turn(text=text, tool_calls=[ToolCall(f"auto-{step}", step, args)], stop_reason="tool_use")

    def _cluster_turn(self, done: dict[str, dict[str, Any]], state: LoopState):
        """Data too large for one process, on a Dask cluster: profile with Dask, train with train_on_cluster
        (xgboost.dask on every training row, the other families on a sample; evaluation partition by
        partition; the explanation and the monitoring plan from samples), the notebook re-created on a sample, then
        the report. The in-memory steps (define_task, CV, tuning) would load the table."""
        target = state.answers.get("target") or self.target
        order = ["profile_data", "train_on_cluster", "write_notebook", "write_report"]
        step = next((name for name in order if name not in done), "final")
        if step == "final" or not target and step != "profile_data":
            ev = Evaluation.read(state.session.artifacts_dir)
            text = (f"Done on the cluster. The shipped model is {ev.model}: test {ev.metric} {ev.test_score:.4f} "
                    f"(95% CI {ev.test_ci[0]:.4f}-{ev.test_ci[1]:.4f}) vs baseline {ev.baseline_score:.4f}, chosen on the "
                    "validation rows; report.md says which model saw which rows." if ev and target else
                    "I cannot train without a target column: pass --target COL.")
            yield text
            return Turn(text=text)
        args: dict[str, Any] = {"target": target} if target else {}
        if step == "train_on_cluster":  # what is left, less ~45 s for the notebook (a kernel, a sample fit) and the report
            args["time_budget_s"] = round(max(30.0, state.seconds_left() - 45.0), 1)
        if step == "write_notebook":
            args = {"timeout_s": round(max(60.0, state.seconds_left() + 30), 0)}
        text = {"profile_data": "First I profile the data on the cluster: exact counts, approximate quantiles and distinct counts.",
                "train_on_cluster": ("Training on the cluster: XGBoost with xgboost.dask on every training row (early stopping "
                                     "on distributed validation rows), the other families on a sample that fits one worker, "
                                     "scored partition by partition on a hash split."),
                "write_notebook": ("Writing the notebook: the same split and model re-created on a sample that fits one "
                                   "process (the cluster's scores stay the ones to quote)."),
                "write_report": "Writing the report: scores, and which model saw which rows."}[step]
        yield text
        return Turn(text=text, tool_calls=[ToolCall(f"auto-{step}", step, {} if step == "write_report" else args)],
                    stop_reason="tool_use")

    def _own_summary(self, tt, state: LoopState, done: dict[str, dict[str, Any]]) -> str:
        rec = tt.summary_record(state.session.artifacts_dir, lambda step: self._record(state, done.get(step)))
        if rec is None:
            return tt.no_result
        lines = [tt.summary(rec)]
        failed = [n for n, r in done.items() if not r.get("ok")]
        if failed:
            lines.append("These steps failed and their deliverables may be missing: " + ", ".join(failed) + ".")
        lines.append(tt.closing_note)
        return " ".join(lines)

    ORDER = list(SUPERVISED_STEPS)  # the run's task type may replace it (stream_turn)

    @staticmethod
    def _tool_names(tools) -> set[str]:
        names = set()
        for t in tools or []:
            names.add(t if isinstance(t, str) else getattr(t, "name", None) or (t.get("name") if isinstance(t, dict) else None))
        return names

    def _ensemble_call(self, state: LoopState, budget: float, cells: float, task: TaskSpec | None, call_id: str) -> ToolCall:
        board = self._leaderboard(state)
        # The blend is refit member by member: cap its refit so the deliverables still fit.
        cap = max(0.0, (state.seconds_left() - _reserve(budget, 0, self._slow, cells)) / 2.3)
        if blend_room_on():  # leave the refit on every labelled row its room (opt-in: see tools/opt_in.py)
            cap /= 1 + self._labelled_ratio(state, task)
        best_refit = _refit_estimate(board, task.n_train if task else 0, top=1)
        return ToolCall(call_id, "build_ensemble", {"max_refit_s": round(max(cap, best_refit), 1)})

    def _leftover_turn(self, state: LoopState, budget: float, cells: float, task: TaskSpec | None,
                       tools) -> tuple[str, ToolCall] | None:
        """The time the deliverables' reserve does not need, once the blend is built, goes back to the
        search (issue 18: runs ended at 50-55 s of 60): the best non-linear tunable family's study
        resumes for it, then the blend and the stack are built again with the new trials. None when
        less than EXTRA_MIN_S would be left to tune (a search that used the time it was planned), and
        at most once."""
        names = self._tool_names(tools)
        if self._extra == "tuned":
            self._extra = "done"
            if "build_ensemble" not in names:
                return None
            return ("Blending again with the new trials.", self._ensemble_call(state, budget, cells, task, "auto-ensemble-2"))
        self._extra = "done"
        board = self._leaderboard(state)
        family = next((r["family"] for r in board if r["family"] in tunable_names() and r["family"] != "linear"), None)
        spend = self._tuning_spend(state, board, task, budget, cells)
        if family is None or spend < EXTRA_MIN_S or "tune_model" not in names:
            return None
        self._extra = "tuned"
        return (f"{spend:.0f}s are left beyond what the deliverables need: tuning {family} further with them.",
                ToolCall("auto-tune-more", "tune_model", {"family": family, "time_budget_s": round(spend, 1)}))

    @staticmethod
    def _labelled_ratio(state: LoopState, task: TaskSpec | None) -> float:
        """Labelled rows per training row when the shipped model is to be refitted on all of them
        (tools/refit_all.py), else 0."""
        if task is None or not task.n_train or not refit_all_on(state.answers.get("refit_all_rows")):
            return 0.0
        return (task.n_train + task.n_test) / task.n_train

    @classmethod
    def _planned_ratio(cls, state: LoopState, task: TaskSpec | None) -> float:
        """The labelled ratio the tuning plan keeps room for: none when the search ran on a
        subsample (unless subsampled_refit_room_on), since there the final fit is cut to the time or
        re-learns XGBoost's rounds and the refit on every labelled row was made on 3 of 11 such runs
        (`s16room`): the room stayed unused (9-12 s of 60 left at the end of insteval, anes_therm and
        diamonds)."""
        if _search_is_subsampled(task) and not subsampled_refit_room_on():
            return 0.0
        return cls._labelled_ratio(state, task)

    def _tuning_spend(self, state: LoopState, board: list[dict[str, Any]], task: TaskSpec | None, budget: float,
                      cells: float) -> float:
        """Seconds a tuning step may take now: the search's time left, less the room the final fit
        (and the planned refit on every labelled row) keeps (time_plan.tuning_time)."""
        spend, _ = tuning_time(board, task.n_train if task else 0, self._search_seconds(state, budget, cells),
                               self._planned_ratio(state, task), _search_is_subsampled(task))
        return spend

    def _search_seconds(self, state: LoopState, budget: float, cells: float) -> float:
        """Seconds left for tuning and blending: what the deliverables' reserve leaves, minus 2 s for
        the ensemble step."""
        return state.seconds_left() - _reserve(budget, 0, self._slow, cells) - 2.0

    @staticmethod
    def _second_tuning(board: list[dict[str, Any]]) -> str | None:
        """After the linear model was tuned (with few trials), the best other tunable family, once."""
        names = {r["name"] for r in board}
        if "linear_tuned" not in names:
            return None
        others = [r["family"] for r in board if r["family"] in tunable_names() and r["family"] != "linear"]
        return others[0] if others and f"{others[0]}_tuned" not in names else None

    @staticmethod
    def _leaderboard(state: LoopState) -> list[LeaderboardRow]:
        return Leaderboard.read(state.session.artifacts_dir)

    @staticmethod
    def _task(state: LoopState) -> TaskSpec | None:
        """task.json once define_task has run, else None."""
        return TaskSpec.read(state.session.artifacts_dir)

    def _next_step(self, done: dict[str, dict[str, Any]]) -> str:
        """The step after the furthest one taken (skipped steps stay skipped)."""
        taken = [self.ORDER.index(name) for name in done if name in self.ORDER]
        furthest = max(taken, default=-1)
        return self.ORDER[furthest + 1] if furthest + 1 < len(self.ORDER) else "final"

    def _summary(self, state: LoopState, done: dict[str, dict[str, Any]]) -> str:
        ev = Evaluation.read(state.session.artifacts_dir)
        if ev is None:
            return "The run ended without an evaluated model."
        ci = ev.test_ci
        lines = [
            f"Done. The chosen model is {ev.model}: test {ev.metric} {ev.test_score:.4f}"
            + (f" (95% CI {ci[0]:.4f}-{ci[1]:.4f})" if ci else "")
            + f" vs baseline {ev.baseline_score:.4f}.",
        ]
        refit = (getattr(ev, "refit_all_rows", None) or {}).get("rows")
        if refit:  # the score is the scored model's; say which model ships
            lines.append(f"The saved model is that configuration refitted on all {refit:,} labelled rows after the test "
                         "split was scored.")
        # The decision that ships, said where the person reads it (not the 0.5 fallback, which chose nothing).
        if ev.threshold and str(ev.threshold.get("rule")).startswith(("minimises", "maximises")):
            lines.append(f"Decision threshold {ev.threshold['threshold']:.4g}: it {ev.threshold['rule']}.")
        if ev.family == "baseline":  # the constant prediction: say why no learned model is shipped
            skipped = self._record(state, done.get("train_models")).get("skipped") or []
            lines.append("No learned model is shipped: " + ("; ".join(skipped) if skipped else "no candidate finished")
                         + (". Give the run a larger --time-budget." if any("out of time" in s for s in skipped) else "."))
        failed = [n for n, r in done.items() if not r.get("ok")]
        if failed:
            lines.append("These steps failed and their deliverables may be missing: " + ", ".join(failed) + ".")
        # Name only the files that exist: a failed write_report left no report to point to.
        art = state.session.artifacts_dir
        present = written_documents(art)
        if state.assumptions:
            where = "in the report" if paths.REPORT in present else "in session.json"
            lines.append(f"I assumed {len(state.assumptions)} answer(s) you did not give; they are listed {where}.")
        if present:
            lines.append(f"See {named_list(present)} in the session's artifacts.")
        return " ".join(lines)
