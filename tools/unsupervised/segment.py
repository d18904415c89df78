"""Segmentation: candidates, the choice of the number of segments, and the shipped model.

Candidates are KMeans, a Gaussian mixture and (on small data) Ward agglomerative clustering for
every k in the user's range, plus scikit-learn's HDBSCAN, which finds its own k. Each is scored on
silhouette (separation), Calinski-Harabasz, stability (adjusted Rand index between the candidate
and refits on bootstrap resamples) and the gap statistic (how much tighter the partition is than
KMeans with the same k on uniform noise in the data's bounding box); the report shows all four.

The number of segments: silhouette, Calinski-Harabasz and stability all favour k=2 whenever two
groups lie closer to each other than to the rest (a coarse split is always clean and stable: iris
and digits both came out at 2 on the best mean rank of the four scores). So k is the larger of
  1. the best mean rank's k plus the segments hidden inside its segments: each segment is tested
     with the gap statistic (Tibshirani, Walther & Hastie 2001) on the segment alone: split in two
     by KMeans, it must tighten more than a split of uniform noise in the segment's bounding box
     does, by SPLIT_SE standard errors of the noise's own spread (more for the halves, tested
     again); a round (Gaussian-like) segment never passes, since a split tightens noise more;
  2. the k of KMeans's best silhouette, which the ranks of Calinski-Harabasz and stability outvote
     when the data holds many small segments (digits).
Among the candidates at that k the best mean rank wins, near-ties (within NEAR_TIE) to the more
stable, then the simpler method. No label is read at any point.

The shipped model predicts on raw rows: KMeans and the mixture predict themselves; the others
cannot assign new rows, so a nearest-neighbour classifier trained on their labels ships instead.
Segment ids are renumbered by size (0 is the largest); HDBSCAN's noise is segment -1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from dsagent.tools.registry import ToolError
from dsagent.tools.unsupervised.prep import as_matrix, build_preprocessor, feature_columns, left_out

DEFAULT_RANGE = (2, 8)
SELECTION_ROWS = 2000  # silhouette is quadratic in rows: choose k on a sample this size
AGGLOMERATIVE_ROWS = 2000  # Ward's memory is quadratic too: only on data this small
BOOTSTRAPS = 3
METHODS = ("kmeans", "gmm", "agglomerative", "hdbscan")
MAX_NOISE = 0.3  # an HDBSCAN result that calls more than this share noise is not a segmentation
GAP_REFERENCES = 3  # uniform reference sets per k for the gap statistic (Tibshirani et al. use more; 3 keeps it cheap)
NEAR_TIE = 0.05  # rank scores this close are a tie: the more stable candidate wins
SPLIT_REFERENCES = 20  # uniform reference sets per segment split test
SPLIT_SE = 3.0  # a split must beat noise by this many standard errors (a 75-row Gaussian blob reached 2.4)
MIN_SPLIT_ROWS = 20  # a segment smaller than this is not tested for a split


def segment_range(answer: Any, n_rows: int) -> tuple[int, int]:
    lo, hi = DEFAULT_RANGE
    if answer:
        values = [int(v) for v in (answer if isinstance(answer, (list, tuple)) else [answer])]
        lo, hi = (values[0], values[0]) if len(values) == 1 else (min(values), max(values))
    if lo < 2:
        raise ToolError(f"n_segments must be at least 2, not {lo}; give a range such as [2, 8]")
    hi = min(hi, max(2, n_rows // 10))  # at least ~10 rows per segment
    if lo > hi:
        raise ToolError(f"{n_rows} rows are too few for {lo} segments of ~10 rows each; lower n_segments")
    return lo, hi


def make_clusterer(method: str, k: int, n_rows: int, seed: int) -> Any:
    """The unfitted estimator of a candidate (the notebook prints its repr to re-create it)."""
    if method == "kmeans":
        return KMeans(n_clusters=k, n_init=4, random_state=seed)
    if method == "gmm":
        return GaussianMixture(n_components=k, covariance_type="diag", n_init=2, random_state=seed)
    if method == "agglomerative":
        return AgglomerativeClustering(n_clusters=k, linkage="ward")
    if method == "hdbscan":
        return HDBSCAN(min_cluster_size=max(5, n_rows // 50), copy=True)
    raise KeyError(method)


def _fit_labels(method: str, k: int, Z: np.ndarray, seed: int) -> tuple[np.ndarray, Any]:
    est = make_clusterer(method, k, len(Z), seed)
    labels = est.fit_predict(Z)
    return np.asarray(labels), est


def _assign(labels: np.ndarray, Z_fit: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Labels for the rows of Z by their nearest centroid of a fit on Z_fit (methods that cannot predict)."""
    ids = [c for c in np.unique(labels) if c >= 0]
    if not ids:
        return np.full(len(Z), -1)
    centroids = np.vstack([Z_fit[labels == c].mean(axis=0) for c in ids])
    d = ((Z[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(ids)[d.argmin(axis=1)]


def stability(method: str, k: int, Z: np.ndarray, labels: np.ndarray, seed: int, n: int = BOOTSTRAPS) -> float:
    """Mean adjusted Rand index between `labels` and refits on bootstrap resamples, all rows assigned."""
    rng = np.random.default_rng(seed + 1)
    scores = []
    for b in range(n):
        idx = rng.integers(0, len(Z), len(Z))
        boot, est = _fit_labels(method, k, Z[idx], seed + 1 + b)
        again = est.predict(Z) if method in ("kmeans", "gmm") else _assign(boot, Z[idx], Z)
        scores.append(adjusted_rand_score(labels, again))
    return float(np.mean(scores))


def log_dispersion(Z: np.ndarray, labels: np.ndarray) -> float:
    """log of the pooled within-segment sum of squares per row (noise rows, -1, left out: per row so
    that HDBSCAN's fewer rows do not look tighter)."""
    w = sum(float(((Z[labels == c] - Z[labels == c].mean(axis=0)) ** 2).sum()) for c in np.unique(labels) if c >= 0)
    return float(np.log(max(w / max(int((labels >= 0).sum()), 1), 1e-12)))


def reference_dispersion(Z: np.ndarray, ks: list[int], seed: int, n: int = GAP_REFERENCES) -> dict[int, float]:
    """Mean log dispersion of KMeans at each k on uniform noise in Z's bounding box: the gap
    statistic's yardstick (what k segments would buy on data with no segments at all)."""
    rng = np.random.default_rng(seed + 7)
    lo, hi = Z.min(axis=0), Z.max(axis=0)
    refs = [rng.uniform(lo, hi, Z.shape) for _ in range(n)]
    return {k: float(np.mean([log_dispersion(R, KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(R)) for R in refs]))
            for k in ks}


def _rank01(values: list[float]) -> np.ndarray:
    """0 (worst) .. 1 (best) by rank; ties share a rank."""
    v = np.asarray(values, dtype=float)
    order = pd.Series(v).rank(method="min").to_numpy()
    return (order - 1) / max(len(v) - 1, 1)


def splits_found(Z: np.ndarray, seed: int, budget: int, depth: int = 0) -> int:
    """How many more segments the gap statistic finds inside Z (one segment): 0 when a 2-means
    split of Z tightens it no more than it tightens uniform noise in Z's bounding box (by SPLIT_SE
    standard errors, times 1 + depth: the halves are smaller, more of them are tested, and a box
    reference flatters an elongated half, so a deeper split needs stronger evidence); else 1 plus
    what each half hides, at most `budget`."""
    if budget <= 0 or len(Z) < MIN_SPLIT_ROWS or not np.ptp(Z, axis=0).any():
        return 0
    halves = KMeans(n_clusters=2, n_init=4, random_state=seed).fit_predict(Z)
    rng = np.random.default_rng(seed + 11)
    one = np.zeros(len(Z), dtype=int)
    w1, w2 = [], []  # log dispersion of each uniform reference set, whole and split in two
    for _ in range(SPLIT_REFERENCES):
        R = rng.uniform(Z.min(axis=0), Z.max(axis=0), Z.shape)
        w1.append(log_dispersion(R, one))
        w2.append(log_dispersion(R, KMeans(n_clusters=2, n_init=2, random_state=seed).fit_predict(R)))
    gap1 = float(np.mean(w1)) - log_dispersion(Z, one)  # gap(k) = E[log W_k(noise)] - log W_k(Z)
    gap2 = float(np.mean(w2)) - log_dispersion(Z, halves)
    if gap2 - SPLIT_SE * (1 + depth) * float(np.std(w2)) * np.sqrt(1 + 1 / SPLIT_REFERENCES) <= gap1:
        return 0
    found = 1
    for h in (0, 1):
        found += splits_found(Z[halves == h], seed, budget - found, depth + 1)
    return min(found, budget)


def _best_ranked(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The best mean rank; among near-ties the most stable, the smaller k, then the method that
    assigns new rows itself (the same partition is often found by several methods)."""
    top = max(c["rank_score"] for c in rows)
    near = [c for c in rows if c["rank_score"] >= top - NEAR_TIE]
    return sorted(near, key=lambda c: (-c["stability"], c["k"], METHODS.index(c["method"])))[0]


def choose(candidates: list[dict[str, Any]], split_k=None) -> dict[str, Any]:
    """The candidate to ship. k is the larger of (a) the best mean rank of silhouette,
    Calinski-Harabasz, stability and gap, plus the segments `split_k` (candidate -> extra segments)
    finds inside that candidate's segments, and (b) the k of KMeans's best silhouette (many small segments,
    digits: the ranks of Calinski-Harabasz and stability favour 2 there). Among the candidates at
    that k, the best mean rank."""
    ok = [c for c in candidates if c.get("silhouette") is not None]
    if not ok:
        raise ToolError("no clustering candidate produced at least two segments; check that the features vary")
    ranks = (_rank01([c["silhouette"] for c in ok]) + _rank01([c["calinski_harabasz"] for c in ok])
             + _rank01([c["stability"] for c in ok]) + _rank01([c["gap"] for c in ok])) / 4
    for c, r in zip(ok, ranks):
        c["rank_score"] = round(float(r), 4)
    ranked = _best_ranked(ok)
    extra = int(split_k(ranked)) if split_k is not None else 0
    # Silhouette on KMeans's partitions only: it rewards compact, separated segments, KMeans's own aim,
    # while a mixture can split off a few outlying rows with a high silhouette that describes almost
    # nothing (digits: a 2-component mixture scored 0.34, every KMeans partition 0.10 to 0.12).
    compact = [c for c in ok if c["method"] == "kmeans"] or ok
    by_silhouette = max(compact, key=lambda c: (c["silhouette"], -c["k"]))["k"]
    wanted = max(ranked["k"] + extra, by_silhouette)
    k = min(sorted({c["k"] for c in ok}), key=lambda v: (abs(v - wanted), -v))  # the nearest scored k
    best = _best_ranked([c for c in ok if c["k"] == k])
    return {**best, "k_by_rank": ranked["k"], "splits_found": extra, "k_by_silhouette": by_silhouette}


@dataclass
class Fitted:
    model: Any
    labels: np.ndarray  # segment per training row (renumbered)
    record: dict[str, Any]
    Z: np.ndarray = field(repr=False)


class ClusteringTask:
    """What a TaskType owns for segmentation: fit and choose, predict, prediction columns."""

    kind = "clustering"
    prediction_columns = ("segment", "segment_distance")

    def __init__(self, answers: dict[str, Any], seed: int = 0):
        self.answers = answers
        self.seed = seed

    def excluded(self, columns: list[str]) -> list[str]:
        return left_out(self.answers, columns)

    def fit(self, df: pd.DataFrame, deadline: float | None = None, progress=lambda m, f=None: None) -> Fitted:
        from threadpoolctl import threadpool_limits

        # Many small fits: OpenMP threads cost more than they give here (10x slower on a busy 2-core machine).
        with threadpool_limits(1):
            return self._fit(df, deadline, progress)

    def _fit(self, df: pd.DataFrame, deadline: float | None, progress) -> Fitted:
        groups = feature_columns(df, self.excluded(list(df.columns)))
        X = df[groups["numeric"] + groups["categorical"]]
        pre = build_preprocessor(groups).fit(X)
        Z_all = as_matrix(pre, X)
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(len(Z_all), SELECTION_ROWS, replace=False)) if len(Z_all) > SELECTION_ROWS else np.arange(len(Z_all))
        Z = Z_all[sample]
        lo, hi = segment_range(self.answers.get("n_segments"), len(Z_all))
        methods = ["kmeans", "gmm"] + (["agglomerative"] if len(Z_all) <= AGGLOMERATIVE_ROWS else [])
        # KMeans at every k first (cheap, and it covers the whole range); the budget may cut what follows.
        plan = [(m, k) for m in methods for k in range(lo, hi + 1)] + [("hdbscan", 0)]
        reference = reference_dispersion(Z, list(range(lo, hi + 1)), self.seed)
        candidates: list[dict[str, Any]] = []
        labelled: dict[tuple[str, int], np.ndarray] = {}  # each scored candidate's labels on the selection rows
        for i, (method, k) in enumerate(plan):
            if deadline is not None and time.time() > deadline and method != "kmeans":
                candidates.append({"method": method, "k": int(k), "silhouette": None, "skipped": "time budget spent"})
                continue
            progress(f"{method} k={k or 'auto'}", i / len(plan))
            t0 = time.perf_counter()
            labels, _ = _fit_labels(method, k, Z, self.seed)
            row: dict[str, Any] = {"method": method, "k": int(k), "silhouette": None}
            kept = labels >= 0
            found = len(set(labels[kept].tolist()))
            if method == "hdbscan":
                row["k"] = found
                row["noise_share"] = round(float(1 - kept.mean()), 4)
                if not (lo <= found <= hi) or row["noise_share"] > MAX_NOISE:
                    row["skipped"] = f"found {found} segments and {row['noise_share']:.0%} noise"
                    candidates.append(row)
                    continue
            if found < 2:
                row["skipped"] = "fewer than two segments"
                candidates.append(row)
                continue
            row["silhouette"] = round(float(silhouette_score(Z[kept], labels[kept], random_state=self.seed)), 4)
            row["calinski_harabasz"] = round(float(calinski_harabasz_score(Z[kept], labels[kept])), 2)
            row["stability"] = round(stability(method, row["k"], Z, labels, self.seed), 4)
            row["gap"] = round(reference[row["k"]] - log_dispersion(Z[kept], labels[kept]), 4)
            row["fit_s"] = round(time.perf_counter() - t0, 3)
            candidates.append(row)
            labelled[(method, row["k"])] = labels

        def split_k(coarse: dict[str, Any]) -> int:  # segments the gap statistic finds inside the coarse ones
            labels, found = labelled[(coarse["method"], coarse["k"])], 0
            for seg in sorted(set(labels[labels >= 0].tolist())):
                found += splits_found(Z[labels == seg], self.seed, hi - coarse["k"] - found)
            return found

        best = choose(candidates, split_k)
        model, labels, label_map = self._final(best, pre, X, Z_all)
        centroids = [Z_all[labels == s].mean(axis=0).tolist() for s in range(best["k"])]
        # What the notebook's refit must reproduce: the partition the saved model gives the training rows
        # (1.0 for KMeans/mixtures; a nearest-neighbour model may disagree on a few border rows).
        shipped = self.predict(model, {"label_map": label_map, "centroids": centroids}, X)["segment"]
        record = {"task": self.kind, "agreement": round(float(adjusted_rand_score(labels, shipped)), 12), "method": best["method"], "k": best["k"], "range": [lo, hi],
                  "selection_rows": int(len(Z)), "candidates": candidates, "chosen": best, "features": groups,
                  "label_map": label_map, "centroids": centroids}
        return Fitted(model=model, labels=labels, record=record, Z=Z_all)

    def _final(self, best: dict[str, Any], pre, X: pd.DataFrame, Z: np.ndarray):
        """The shipped Pipeline refit on every row, its labels renumbered by size, and the map
        from the estimator's own labels to segment ids."""
        raw, est = _fit_labels(best["method"], best["k"], Z, self.seed)
        kept = raw[raw >= 0]
        by_size = [int(c) for c in pd.Series(kept).value_counts().index]
        remap = {old: new for new, old in enumerate(by_size)} | {-1: -1}
        labels = np.asarray([remap[int(v)] for v in raw])
        if best["method"] in ("kmeans", "gmm"):
            model = Pipeline([("prep", pre), ("model", est)])
            n_internal = best["k"]
            label_map = [remap.get(i, -1) for i in range(n_internal)]
        else:  # cannot assign new rows itself: a nearest-neighbour classifier learns its segments
            knn = KNeighborsClassifier(n_neighbors=5, algorithm="brute").fit(Z, labels)
            model = Pipeline([("prep", pre), ("model", knn)])
            label_map = None
        return model, labels, label_map

    @staticmethod
    def predict(model, manifest: dict[str, Any], X: pd.DataFrame) -> pd.DataFrame:
        """`segment` and `segment_distance` (Euclidean distance, in the model's standardised feature
        space, from the row to its segment's centre: large means a poor fit to any segment)."""
        Z = np.asarray(model[:-1].transform(X), dtype=float)
        raw = np.asarray(model[-1].predict(Z))
        label_map = manifest.get("label_map")
        seg = np.asarray([label_map[int(v)] for v in raw]) if label_map else raw.astype(int)
        centroids = np.asarray(manifest["centroids"], dtype=float)
        dist = np.full(len(Z), np.nan)
        inside = seg >= 0
        dist[inside] = np.sqrt(((Z[inside] - centroids[seg[inside]]) ** 2).sum(axis=1))
        return pd.DataFrame({"segment": seg.astype(int), "segment_distance": dist}, index=X.index)
