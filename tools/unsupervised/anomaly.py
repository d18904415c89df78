"""Anomaly detection: detectors, the threshold, and an honest evaluation when labels exist.

Detectors: IsolationForest, LocalOutlierFactor in novelty mode (so the shipped model scores new
rows), EllipticEnvelope (robust covariance) where the data fits it (few features, many rows, a
covariance that is not singular), and a robust z-score baseline (the largest |x - median| / MAD
over the features). Every detector's `anomaly_score` is "higher = more unusual".

No label is used to fit or to choose. IsolationForest ships by default (it is the most reliable
of the four across data); another detector replaces it only when it agrees clearly more (by
CLEAR_MARGIN, Spearman) with the consensus of all detectors' ranks, a label-free choice. A near-tie
in agreement says nothing about which ranks the real anomalies better (breast cancer: LOF 0.959
against IsolationForest's 0.955, yet LOF's average precision was 0.06 lower), so it keeps the default.
A known-anomaly column, when the user names it (`anomaly_label`), only scores the chosen detector on a held-out quarter of the rows
the fit never saw: ROC-AUC, average precision and precision@k. Its values never touch the split
either (a seeded random split), so permuting them changes no model and no score.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import Pipeline

from dsagent.tools.registry import ToolError
from dsagent.tools.unsupervised.prep import as_matrix, build_preprocessor, feature_columns, left_out

HOLDOUT = 0.25
RATE_BOUNDS = (0.005, 0.1)
DEFAULT_DETECTOR = "isolation_forest"
CLEAR_MARGIN = 0.02  # agreement (Spearman with the consensus) another detector needs over the default


class RobustZScore(OutlierMixin, BaseEstimator):
    """The baseline: a row is as unusual as its most unusual feature, |x - median| / (1.4826 MAD).

    Plain state (two float arrays), so skops rebuilds it without running code: it is on
    dsagent.tools.model_io.TRUSTED_TYPES."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.median_ = np.nanmedian(X, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(X - self.median_), axis=0)
        spread = np.nanstd(X, axis=0)
        # One-hot columns have MAD 0: fall back to their standard deviation (or 1) so a rare level counts, finitely.
        self.scale_ = np.where(mad > 1e-9, mad, np.where(spread > 1e-9, spread, 1.0))
        self.n_features_in_ = X.shape[1]
        return self

    def score_samples(self, X):
        z = np.abs((np.asarray(X, dtype=float) - self.median_) / self.scale_)
        return -np.nanmax(z, axis=1)

    def predict(self, X):
        return np.where(self.score_samples(X) < -3.5, -1, 1)


def _detectors(n_rows: int, n_features: int, seed: int) -> dict[str, Any]:
    found: dict[str, Any] = {
        "isolation_forest": IsolationForest(n_estimators=200, random_state=seed),
        "local_outlier_factor": LocalOutlierFactor(n_neighbors=min(20, max(2, n_rows // 10)), novelty=True, algorithm="brute"),
        "robust_zscore": RobustZScore(),
    }
    if n_features <= 20 and n_rows >= 10 * n_features:
        found["elliptic_envelope"] = EllipticEnvelope(random_state=seed)
    return found


def choose_detector(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The default detector unless another agrees with the consensus by CLEAR_MARGIN more."""
    scored = [r for r in rows if "agreement" in r]
    best = max(scored, key=lambda r: (r["agreement"], r["detector"] == DEFAULT_DETECTOR))
    default = next((r for r in scored if r["detector"] == DEFAULT_DETECTOR), None)
    if default is not None and best["agreement"] < default["agreement"] + CLEAR_MARGIN:
        return default
    return best


def label_positive(values: pd.Series) -> np.ndarray:
    """1 for a known anomaly. Numbers and booleans: non-zero / True; text: the rarer value."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return (pd.to_numeric(values, errors="coerce").fillna(0) != 0).to_numpy().astype(int)
    text = values.astype(str)
    rare = text.value_counts().index[-1]
    return (text == rare).to_numpy().astype(int)


def estimate_rate(scores: np.ndarray) -> float:
    """Share of rows far in the score's upper tail (median + 3 robust SDs), within RATE_BOUNDS."""
    med = float(np.median(scores))
    mad = 1.4826 * float(np.median(np.abs(scores - med))) or float(np.std(scores)) or 1.0
    return float(np.clip(np.mean(scores > med + 3 * mad), *RATE_BOUNDS))


def evaluate(y: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict[str, Any]:
    k = int(y.sum())
    out: dict[str, Any] = {"rows": int(len(y)), "known_anomalies": k}
    if k == 0 or k == len(y):
        out["note"] = "the held-out part holds only one class of the label: ROC-AUC and AP are undefined"
        return out
    top = np.argsort(-scores, kind="stable")[:k]
    out.update(roc_auc=round(float(roc_auc_score(y, scores)), 4), average_precision=round(float(average_precision_score(y, scores)), 4),
               precision_at_k=round(float(y[top].mean()), 4), k=k, base_rate=round(float(y.mean()), 4))
    if threshold is not None:
        flagged = scores >= threshold
        out.update(flagged=int(flagged.sum()), recall_at_threshold=round(float(y[flagged].sum() / k), 4),
                   precision_at_threshold=round(float(y[flagged].mean()), 4) if flagged.any() else None)
    return out


@dataclass
class Fitted:
    model: Any
    scores: np.ndarray  # anomaly_score of every row (fit rows and held-out rows)
    record: dict[str, Any]
    fit_rows: np.ndarray = field(repr=False)


class AnomalyTask:
    """What a TaskType owns for anomaly detection: fit and choose, predict, prediction columns."""

    kind = "anomaly"
    prediction_columns = ("anomaly_score", "is_anomaly")

    def __init__(self, answers: dict[str, Any], seed: int = 0):
        self.answers = answers
        self.seed = seed
        self.label = answers.get("anomaly_label")

    def excluded(self, columns: list[str]) -> list[str]:
        return left_out(self.answers, columns) + ([self.label] if self.label else [])

    def split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, held-out rows): a seeded random split when a label is there to evaluate on."""
        if not self.label or n < 40:
            return np.arange(n), np.arange(0)
        order = np.random.default_rng(self.seed).permutation(n)
        cut = int(round(n * (1 - HOLDOUT)))
        return np.sort(order[:cut]), np.sort(order[cut:])

    def fit(self, df: pd.DataFrame, deadline: float | None = None, progress=lambda m, f=None: None) -> Fitted:
        if self.label and self.label not in df.columns:
            raise ToolError(f"anomaly_label {self.label!r} is not a column of the data")
        groups = feature_columns(df, self.excluded(list(df.columns)))
        X = df[groups["numeric"] + groups["categorical"]]
        fit_rows, held = self.split(len(df))
        pre = build_preprocessor(groups).fit(X.iloc[fit_rows])
        Z_fit = as_matrix(pre, X.iloc[fit_rows])
        detectors = _detectors(len(fit_rows), Z_fit.shape[1], self.seed)
        scored: dict[str, np.ndarray] = {}
        fitted: dict[str, Any] = {}
        rows: list[dict[str, Any]] = []
        for i, (name, det) in enumerate(detectors.items()):
            if deadline is not None and time.time() > deadline and scored:
                break
            progress(name, i / len(detectors))
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():  # MinCovDet's determinant notes on near-singular data: the fit still holds
                    warnings.simplefilter("ignore", RuntimeWarning)
                    det.fit(Z_fit)
                scored[name] = -np.asarray(det.score_samples(Z_fit), dtype=float)
                fitted[name] = det
                rows.append({"detector": name, "fit_s": round(time.perf_counter() - t0, 3)})
            except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. a singular covariance: not this data's detector
                rows.append({"detector": name, "skipped": str(exc).splitlines()[0][:160]})
        ranks = {n: pd.Series(s).rank(pct=True).to_numpy() for n, s in scored.items()}
        consensus = np.mean(list(ranks.values()), axis=0)
        for row in rows:
            if row["detector"] in ranks:
                row["agreement"] = round(float(spearmanr(ranks[row["detector"]], consensus).statistic), 4)
        chosen = choose_detector(rows)
        name = chosen["detector"]
        model = Pipeline([("prep", pre), ("model", fitted[name])])
        fit_scores = scored[name]
        rate = self.answers.get("expected_anomaly_rate")
        rate_source = "answer"
        if rate is None:
            rate, rate_source = estimate_rate(fit_scores), "estimated"
        threshold = float(np.quantile(fit_scores, 1 - float(rate)))
        scores = -np.asarray(model.score_samples(X), dtype=float)
        record: dict[str, Any] = {
            "task": self.kind, "method": name, "detectors": rows, "chosen": chosen, "features": groups,
            "expected_anomaly_rate": float(rate), "rate_source": rate_source, "threshold": threshold,
            "n_fit": int(len(fit_rows)), "n_encoded_features": int(Z_fit.shape[1]), "n_holdout": int(len(held)), "label": self.label,
            "flagged_share_fit": round(float(np.mean(fit_scores >= threshold)), 4),
            "agreement": 1.0,  # the saved model flags exactly these rows: what the notebook's refit must match
        }
        if self.label and len(held):
            y = label_positive(df[self.label].iloc[held])
            record["evaluation"] = evaluate(y, scores[held], threshold)
            # Every detector on the same held-out rows, for the report: a comparison, not a choice.
            Z_held = as_matrix(pre, X.iloc[held])
            record["detector_evaluation"] = {n: evaluate(y, -np.asarray(d.score_samples(Z_held), dtype=float), None)
                                             for n, d in fitted.items()}
        return Fitted(model=model, scores=scores, record=record, fit_rows=fit_rows)

    @staticmethod
    def predict(model, manifest: dict[str, Any], X: pd.DataFrame) -> pd.DataFrame:
        """`anomaly_score` (higher = more unusual) and `is_anomaly` at the threshold chosen in training."""
        scores = -np.asarray(model.score_samples(X), dtype=float)
        return pd.DataFrame({"anomaly_score": scores, "is_anomaly": scores >= float(manifest["threshold"])}, index=X.index)
