"""RankingTask: what `task: ranking` owns between the data and the saved model: validating the
target and the group column, the relevance grades, the feature columns, the group-aware split,
cross-validation of the candidates, the one-time test evaluation and scoring rows for predict."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from dsagent.tools.ranking import metrics, models, split
from dsagent.tools.registry import ToolError

DEFAULT_K = 10
MAX_GRADE = 31  # XGBoost's NDCG gain 2^grade - 1 is only defined up to grade 31
MAX_GRADES = 5  # a continuous relevance (a rating with decimals, a dwell time) is binned into this many grades
SEARCH_ROWS = 20_000  # cross-validation on more training rows than this uses a sample of whole groups
ID_SHARE = 0.5  # a text column with more distinct values than this share of rows is an id or free text
# A candidate replaces the best library-default ranker only when a one-sided paired randomization
# test over the training groups (out-of-fold NDCG@k, sign flips of the per-group differences) puts
# its gain beyond chance at this level: the default is the floor, not a rival on equal terms.
ALPHA = 0.05


@dataclass
class RankingSpec:
    target: str
    group_column: str
    k: int = DEFAULT_K
    relevance_threshold: float | None = None  # in grades; None: the middle grade and up
    drop_columns: list[str] = field(default_factory=list)

    @classmethod
    def from_answers(cls, a: dict[str, Any]) -> "RankingSpec":
        if not a.get("target"):
            raise ToolError("ranking needs a relevance column: pass --target COL (a graded or 0/1 relevance)")
        if not a.get("group_column"):
            raise ToolError("ranking needs the query/user/session column: set group_column in the answers file "
                            "(the rows ranked together)")
        k = a.get("k") or a.get("rank_k") or DEFAULT_K
        return cls(a["target"], a["group_column"], int(k), a.get("relevance_threshold"),
                   list(a.get("drop_columns") or a.get("id_columns") or []))


def grades_of(y: pd.Series) -> tuple[np.ndarray, dict[str, Any]]:
    """Relevance grades the rankers can learn: non-negative whole numbers up to 31 stay as they are;
    anything else is mapped to ordered grades (distinct values in order, or MAX_GRADES quantile bins
    when there are more than 32 of them)."""
    v = y.to_numpy(dtype=float)
    if np.all(v >= 0) and np.all(v == np.round(v)) and v.max() <= MAX_GRADE:
        return v, {"mapping": "as given"}
    uniq = np.unique(v)
    if len(uniq) <= MAX_GRADE + 1:
        return np.searchsorted(uniq, v).astype(float), {"mapping": "distinct values in order",
                                                         "values": [float(u) for u in uniq]}
    bins = pd.qcut(pd.Series(v), MAX_GRADES, labels=False, duplicates="drop").to_numpy(dtype=float)
    return bins, {"mapping": f"{int(bins.max()) + 1} quantile bins of {y.name}"}


def default_threshold(g: np.ndarray) -> float:
    """The smallest grade at or above the middle of the range: 1 for 0/1 labels, 2 for 0-4, 3 for 1-5."""
    lo, hi = float(np.min(g)), float(np.max(g))
    uniq = np.unique(g)
    return float(uniq[uniq >= (lo + hi) / 2][0])


def feature_columns(df: pd.DataFrame, spec: RankingSpec) -> tuple[list[str], list[str], list[str]]:
    """(categorical, numeric, dropped-with-reason): the group id and the target are never features;
    text columns that identify rows are dropped."""
    cat, num, dropped = [], [], []
    for c in df.columns:
        if c in (spec.target, spec.group_column) or c in spec.drop_columns:
            continue
        s = df[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            num.append(c)
        elif pd.api.types.is_datetime64_any_dtype(s):
            dropped.append(f"{c}: a timestamp")
        elif s.nunique() > ID_SHARE * len(s):
            dropped.append(f"{c}: mostly unique text (an id or free text)")
        else:
            cat.append(c)
    return cat, num, dropped


def group_ndcg(tables: list[pd.DataFrame]) -> pd.Series:
    """NDCG@k per group (groups without a relevant row left out) from one candidate's fold tables."""
    scored = metrics.scored_groups(pd.concat(tables, ignore_index=True))
    return scored.set_index("group")["ndcg"].dropna()


def vs_default(scored: list[dict[str, Any]], oof: dict[str, pd.Series], seed: int = 0) -> None:
    """Record on each learned row that is not a library default how it compares with the best default
    (the rows sorted best first), group by group on out-of-fold NDCG@k: the mean gain, the groups it
    wins and loses, and the p-value of a one-sided paired randomization test (the test information
    retrieval uses to compare two rankers over queries). Paired by group, because groups differ far
    more from one another than the candidates do; a randomization test, because with a discrete
    per-group metric (NDCG@1 is 0 or 1) few groups differ and a normal approximation overstates
    the evidence (travelmode: 4 wins, 0 losses in 168 travellers is 2.0 standard errors, p = 1/16)."""
    from scipy.stats import permutation_test

    defaults = [r["name"] for r in scored if r["name"] in models.DEFAULTS and r["name"] in oof]
    if not defaults:
        return
    base = oof[defaults[0]]
    for r in scored:
        if r.get("baseline") or r["name"] in models.DEFAULTS or r["name"] not in oof:
            continue
        d = (oof[r["name"]] - base).dropna()
        if len(d) < 2:
            continue
        moved = d[d != 0].to_numpy()  # a tie carries no sign to flip (exact test when 2^len fits the resamples)
        p = 1.0 if len(moved) == 0 else float(permutation_test(
            (moved,), np.mean, permutation_type="samples", alternative="greater", n_resamples=4095, vectorized=True,
            random_state=seed).pvalue)
        r["vs_default"] = {"default": defaults[0], "gain": float(d.mean()), "wins": int((d > 0).sum()),
                           "losses": int((d < 0).sum()), "groups": int(len(d)), "p": round(p, 4)}


def clears_default(row: dict[str, Any]) -> bool:
    """Whether a row beats the best default beyond chance (no comparison recorded: nothing to hold it back)."""
    v = row.get("vs_default")
    return v is None or v["p"] < ALPHA


def default_first(learned: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The learned rows (best CV first) with those that do not beat the best library default beyond
    chance moved behind it, and why when that changes the first. A tuned ranker is the best of many
    trials scored on the same folds, so its CV score is optimistic as well (travelmode: the best of
    54 trials led LightGBM's default by 0.024 on 168 training travellers)."""
    ordered = sorted(learned, key=lambda r: (not clears_default(r), -r["cv_ndcg"]))
    top = learned[0]
    if ordered[0] is top:
        return ordered, ""
    v = top["vs_default"]
    trials = f" (the best of {top['trials']} tuning trials on these folds)" if top.get("trials", 1) > 1 else ""
    return ordered, (f"{top['name']}{trials} leads the library default {v['default']} on CV by {v['gain']:.4f} NDCG@k, "
                     f"not beyond chance: {v['wins']} groups better, {v['losses']} worse of {v['groups']} (paired "
                     f"randomization test p = {v['p']:.3g}, needs < {ALPHA:g}); {ordered[0]['name']} ships")


class RankingTask:
    def __init__(self, spec: RankingSpec):
        self.spec = spec

    # -- define -----------------------------------------------------------------------------
    def define(self, df: pd.DataFrame, seed: int) -> dict[str, Any]:
        s = self.spec
        for col, what in ((s.target, "relevance (--target)"), (s.group_column, "group_column")):
            if col not in df.columns:
                raise ToolError(f"{what} {col!r} is not a column of the data; columns: {', '.join(map(str, df.columns[:20]))}")
        y = df[s.target]
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise ToolError(f"relevance column {s.target!r} must hold numbers (0/1, or grades such as 0-4 or ratings)")
        labelled = df[y.notna() & df[s.group_column].notna()]
        if labelled.empty:
            raise ToolError(f"no row has both a relevance ({s.target!r}) and a group ({s.group_column!r})")
        if labelled[s.target].min() < 0:
            raise ToolError(f"relevance column {s.target!r} has negative values; relevance is 0 (not relevant) or more")
        sizes = labelled.groupby(s.group_column).size()
        multi = sizes[sizes >= 2]
        if len(multi) < 5:
            raise ToolError(f"only {len(multi)} group(s) of {s.group_column!r} have two or more rows; ranking needs at "
                            "least 5 groups to split and cross-validate (is group_column the query/user column?)")
        if s.k < 1:
            raise ToolError(f"k must be a positive number of top positions, not {s.k}")
        g, mapping = grades_of(labelled[s.target])
        if len(np.unique(g)) < 2:
            raise ToolError(f"relevance column {s.target!r} has a single value; nothing to rank by")
        threshold = s.relevance_threshold if s.relevance_threshold is not None else default_threshold(g)
        cat, num, dropped = feature_columns(labelled, s)
        if not cat and not num:
            raise ToolError("no feature columns are left besides the target and the group; add the columns that describe "
                            "each row (item price, query-item similarity, ...)")
        groups = labelled[s.group_column].astype(str).to_numpy()
        train, test = split.test_split(groups, seed)
        notes = [f"{int((sizes < 2).sum())} group(s) with a single row kept: they have nothing to rank and do not count "
                 "in the metrics"] if (sizes < 2).any() else []
        return {"task": "ranking", "target": s.target, "group_column": s.group_column, "k": s.k, "drop_columns": s.drop_columns,
                "relevance_threshold": float(threshold), "grades": mapping, "categorical": cat, "numeric": num,
                "dropped": dropped, "rows": int(len(labelled)), "unlabelled_rows_dropped": int(len(df) - len(labelled)),
                "n_groups": int(len(sizes)), "group_size": {"median": float(sizes.median()), "max": int(sizes.max())},
                "relevant_share": float(np.mean(g >= threshold)), "seed": seed, "notes": notes,
                "split": {"kind": "GroupShuffleSplit", "test_share": split.TEST_SHARE,
                          "train_rows": train.tolist(), "test_rows": test.tolist(),
                          "train_groups": int(len(np.unique(groups[train]))), "test_groups": int(len(np.unique(groups[test])))}}

    @staticmethod
    def labelled(df: pd.DataFrame, spec_record: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The labelled rows (in file order, as define saw them), their grades and their group ids."""
        t, gcol = spec_record["target"], spec_record["group_column"]
        lab = df[df[t].notna() & df[gcol].notna()].reset_index(drop=True)
        g, _ = grades_of(lab[t])
        return lab, g, lab[gcol].astype(str).to_numpy()

    # -- cross-validation ---------------------------------------------------------------------
    def cross_validate(self, df: pd.DataFrame, rec: dict[str, Any], seed: int, budget_s: float,
                       progress: Callable[[str], None] = lambda m: None) -> list[dict[str, Any]]:
        """Every candidate on the same GroupKFold folds of the training rows; a leaderboard by
        mean NDCG@k (baselines included). Candidates that do not fit in the budget are listed as skipped."""
        lab, g, groups = self.labelled(df, rec)
        tr = np.asarray(rec["split"]["train_rows"])
        large = len(tr) > SEARCH_ROWS
        if large:  # large data: the ranking of candidates needs far fewer rows than the final fit
            tr = tr[split.sample_groups(groups[tr], SEARCH_ROWS, seed)]
            progress(f"searching on {len(tr):,} training rows ({len(np.unique(groups[tr]))} whole groups)")
        X, gt, grp = lab.iloc[tr].reset_index(drop=True), g[tr], groups[tr]
        # A small budget or large data: three folds (each fit costs a fifth less than with five, and
        # tuning gets more trials; on large data three folds still hold ~50 groups each)
        cv = split.folds(grp, seed, split.MAX_FOLDS if budget_s >= 30 and not large else 3)
        start, board, unit_s = time.monotonic(), [], []  # seconds per unit of RELATIVE_COST, per finished candidate
        oof: dict[str, pd.Series] = {}  # each candidate's NDCG@k per training group, out of fold

        def needs(name: str) -> float:  # projected from the finished candidates by relative cost
            return float(np.median(unit_s)) * models.RELATIVE_COST.get(name, 1.0) if unit_s else 0.0

        def attempt(name: str) -> None:
            # The baselines and the library-default rankers are always fitted on every fold (the
            # floor the search must clear); the others only when their projected time still fits.
            if models.cannot_fit(name, grp):
                board.append({"name": name, "skipped": models.cannot_fit(name, grp)})
                return
            tried = any(not r["baseline"] for r in board if "skipped" not in r)
            always = name in models.BASELINES or name in models.DEFAULTS
            if not always and tried and time.monotonic() - start + needs(name) > budget_s:
                board.append({"name": name, "skipped": f"time budget ({budget_s:.0f}s) spent"
                                                       + (f": needs ~{needs(name):.0f}s" if needs(name) else "")})
                return
            t0, fold_scores, tables = time.monotonic(), [], []
            for i, (a, b) in enumerate(cv):
                if fold_scores and not always and time.monotonic() - start > budget_s:
                    break  # the budget ran out inside this candidate (large data): see below
                fitted = models.fit(name, X.iloc[a], gt[a], grp[a], rec["categorical"], rec["numeric"], rec["k"],
                                    rec["relevance_threshold"], seed)
                tables.append(metrics.per_group(gt[b], fitted.score(X.iloc[b], seed + i), grp[b], rec["k"],
                                                rec["relevance_threshold"]))
                fold_scores.append(metrics.summarize(tables[-1]))
            oof[name] = group_ndcg(tables)
            if len(fold_scores) < len(cv) and tried:  # a later candidate on fewer folds would not compare fairly
                board.append({"name": name, "skipped": f"time budget ({budget_s:.0f}s) spent after {len(fold_scores)} "
                                                       f"of {len(cv)} folds"})
                return
            row = self._row(name, fold_scores, time.monotonic() - t0, cv)
            if not row["baseline"]:
                unit_s.append(row["seconds"] * len(cv) / len(fold_scores) / models.RELATIVE_COST.get(name, 1.0))
            progress(f"{name}: NDCG@{rec['k']} {row['cv_ndcg']:.4f}")
            board.append(row)

        for name in models.candidate_names(large):
            attempt(name)
        late = models.late_names(large)  # tried after tuning, with the time it leaves them
        left = budget_s - (time.monotonic() - start) - sum(needs(n) for n in late)
        board += self._tune(board, X, gt, grp, cv, rec, seed, left, progress, oof)
        for name in late:
            attempt(name)
        scored = sorted((r for r in board if "skipped" not in r), key=lambda r: -r["cv_ndcg"])
        vs_default(scored, oof, seed)
        return scored + [r for r in board if "skipped" in r]

    @staticmethod
    def _row(name: str, fold_scores: list[dict[str, float]], seconds: float, cv: list) -> dict[str, Any]:
        """A leaderboard row: the mean of each metric over the folds that finished."""
        row = {"name": name, "family": name, "baseline": name in models.BASELINES, "seconds": round(seconds, 2),
               "folds": len(fold_scores), "fit_rows": int(np.mean([len(a) for a, _ in cv[:len(fold_scores)]]))}
        for m in metrics.METRIC_NAMES:
            vals = [f[m] for f in fold_scores]
            row[f"cv_{m}"] = float(np.nanmean(vals))
            if m == "ndcg":  # also as cv_mean / cv_std, the leaderboard columns every task shows
                row["cv_ndcg_std"] = row["cv_std"] = float(np.nanstd(vals))
                row["cv_mean"] = row["cv_ndcg"]
        return row

    def _tune(self, board: list[dict[str, Any]], X, gt, grp, cv, rec: dict[str, Any], seed: int, left_s: float,
              progress: Callable[[str], None], oof: dict[str, pd.Series]) -> list[dict[str, Any]]:
        """Optuna on each ranker family whose default finished, within `left_s`: the better default's
        family first with 60% of it (the other takes what remains); a family whose default needed
        more than a third of its share is not tuned (too few trials to search)."""
        from dsagent.tools.ranking import tune

        rows = {r["name"]: r for r in board if "skipped" not in r}
        order = sorted((n for n in models.DEFAULTS if n in rows), key=lambda n: -rows[n]["cv_ndcg"])
        out, end = [], time.monotonic() + left_s
        for i, default in enumerate(order):
            family = models.FAMILY[default]
            name = models.TUNED[family]
            share = (end - time.monotonic()) * (0.6 if i == 0 and len(order) > 1 else 1.0)
            if share < 3 * rows[default]["seconds"]:
                left = f"{share:.0f}s left for tuning" if share > 0 else "spent before tuning"
                out.append({"name": name, "skipped": f"time budget {left}; one {default} cross-validation takes "
                                                     f"{rows[default]['seconds']:.0f}s"})
                continue
            best = tune.tune(family, X, gt, grp, cv, rec, seed, share, progress)
            if best is None:
                out.append({"name": name, "skipped": f"no tuning trial finished in {share:.0f}s"})
                continue
            oof[name] = group_ndcg(best["fold_tables"])
            out.append(self._row(name, [metrics.summarize(t) for t in best["fold_tables"]], best["seconds"], cv)
                       | {"family": family, "params": best["params"], "trials": best["trials"]})
        return out

    # -- evaluation ---------------------------------------------------------------------------
    @staticmethod
    def affordable_rows(board: list[dict[str, Any]], chosen: str, seconds: float) -> int | None:
        """The training rows a fit of `chosen` can take in `seconds`, from its cross-validation time
        (fits grow about linearly in rows); None when nothing was measured."""
        row = next((r for r in board if r["name"] == chosen and "skipped" not in r), None)
        if row is None or not row.get("fit_rows") or row["seconds"] <= 0:
            return None
        return int(seconds / (row["seconds"] / max(row["folds"], 1)) * row["fit_rows"])

    @staticmethod
    def choose(board: list[dict[str, Any]], n_train: int, seconds: float) -> tuple[str, str]:
        """The best cross-validated model that can be fitted on every training row in `seconds`;
        when none can, the one that affords the largest share of them (a ranker fitted on a small
        sample loses to a pointwise model fitted on all rows). A candidate that does not beat the best
        library-default ranker beyond noise comes after it (default_first). Baselines only when
        nothing else ran."""
        scored = [r for r in board if "skipped" not in r]
        learned = [r for r in scored if not r.get("baseline")]
        if not learned:
            return scored[0]["name"], "no learned candidate finished its cross-validation"
        learned, demoted = default_first(learned)
        share = {r["name"]: min(1.0, (RankingTask.affordable_rows(board, r["name"], seconds) or n_train) / max(n_train, 1))
                 for r in learned}
        full = [r["name"] for r in learned if share[r["name"]] >= 1.0]
        if full and full[0] == learned[0]["name"]:
            return full[0], demoted or "best cross-validated NDCG@k"
        if full:
            return full[0], (f"{learned[0]['name']} comes first on cross-validated NDCG@k but cannot be fitted on every "
                             f"training row in the time left; {full[0]} can")
        name = max(learned, key=lambda r: share[r["name"]])["name"]
        return name, f"no candidate can be fitted on every training row in the time left; {name} affords the largest share"

    def evaluate(self, df: pd.DataFrame, rec: dict[str, Any], board: list[dict[str, Any]], chosen: str,
                 seed: int, seconds_left: float = float("inf"), max_fit_rows: int | None = None,
                 params: dict[str, Any] | None = None) -> tuple[dict[str, Any], models.Fitted, pd.DataFrame]:
        """Fit the chosen model and the baselines on the training rows and score the untouched test
        groups once: means with bootstrap CIs over groups, NDCG by group size, the worst groups.
        `max_fit_rows` caps the fit at that many rows of whole training groups (seeded: the notebook
        draws the same ones). A tuned ranker's settings come from its leaderboard row, or `params`
        (the notebook, which has no leaderboard). The pointwise model and the default rankers are
        compared too when each refit (from its CV time) fits in a fifth of `seconds_left`."""
        lab, g, groups = self.labelled(df, rec)
        tr, te = np.asarray(rec["split"]["train_rows"]), np.asarray(rec["split"]["test_rows"])
        assert not set(groups[tr]) & set(groups[te]), "a group is on both sides of the split"
        n_train = len(tr)
        if max_fit_rows is not None and max_fit_rows < len(tr):
            tr = tr[split.sample_groups(groups[tr], max_fit_rows, seed)]
        k, thr = rec["k"], rec["relevance_threshold"]
        per_row = {r["name"]: r["seconds"] / max(r["folds"], 1) / max(r.get("fit_rows", 1), 1)
                   for r in board if "skipped" not in r}
        params = next((r.get("params") for r in board if r["name"] == chosen and "skipped" not in r), None) or params
        compared = [chosen] + [n for n in (*models.DEFAULTS, "pointwise", *models.BASELINES) if n != chosen and n in per_row
                               and (n in models.BASELINES or 1.5 * per_row[n] * len(tr) < seconds_left / 5)]
        results, fitted_chosen, table_chosen = {}, None, None
        for name in compared:
            fitted = models.fit(name, lab.iloc[tr], g[tr], groups[tr], rec["categorical"], rec["numeric"], k, thr, seed,
                                params if name == chosen else None)
            score = fitted.score(lab.iloc[te], seed)
            table = metrics.per_group(g[te], score, groups[te], k, thr)
            results[name] = metrics.summarize(table, n_boot=1000 if name == chosen else 0, seed=seed)
            if name == chosen:
                fitted_chosen, table_chosen = fitted, table
        worst = metrics.scored_groups(table_chosen).sort_values(["ndcg", "size"], ascending=[True, False]).head(10)
        base = results.get("single_feature") or results.get("random") or {}
        ev = {"task": "ranking", "model": chosen, "params": params, "metric": f"ndcg@{k}", "k": k, "relevance_threshold": thr,
              # the fields every task's evaluation carries (run result, chat, about)
              "test_score": results[chosen]["ndcg"], "test_ci": results[chosen].get("ndcg_ci"),
              "baseline_score": base.get("ndcg"), "greater_is_better": True,
              "test_rows": int(len(te)), "test": results[chosen], "compared": results,
              "fit_rows": int(len(tr)), "train_rows": int(n_train), "max_fit_rows": max_fit_rows,
              "by_group_size": metrics.by_group_size(table_chosen),
              "worst_groups": worst.to_dict(orient="records"),
              "single_feature": ({"feature": fitted_chosen.feature, "sign": fitted_chosen.sign}
                                 if chosen == "single_feature" else None),
              "importances": models.importances(fitted_chosen)}
        return ev, fitted_chosen, table_chosen


def rank_within(groups, score) -> np.ndarray:
    """1 for the highest score of its group; ties keep the input order (as the metrics do)."""
    frame = pd.DataFrame({"g": np.asarray(groups), "s": -np.asarray(score, dtype=float)})
    return frame.groupby("g", sort=False)["s"].rank(method="first").astype(int).to_numpy()


def predict(model: dict[str, Any], manifest: dict[str, Any], X: pd.DataFrame) -> pd.DataFrame:
    """`score` and `rank` within the group for each input row, same index and order."""
    out = pd.DataFrame(index=X.index)
    if len(X) == 0:
        return out.assign(score=pd.Series(dtype=float), rank=pd.Series(dtype=int))
    fitted = models.Fitted.from_dict(model)
    score = fitted.score(X, manifest.get("seed", 0))
    out["score"] = score
    out["rank"] = rank_within(X[manifest["group_column"]].astype(str).to_numpy(), score)
    return out
