"""The clarifying questions of work without a target (task clustering / anomaly): the ones a
senior data scientist asks before segmenting or flagging, each only when its answer changes the
work on this data. Stdlib only, like dsagent.questions: the profile arrives as profile_data's
JSON record.

- n_segments (clustering): a number of segments the business wants, or a range for the data to
  choose from; asked when the data is large enough for more than one candidate k.
- expected_anomaly_rate (anomaly): it sets the flagging threshold; without it the rate is
  estimated from the score distribution.
- anomaly_label (anomaly): a column of known anomalies is used only to evaluate; asked when a
  column looks like one (two values, one rare, or a flag-like name), since left unnamed it would
  be fitted on as a feature.
- features_at_prediction_time ("which columns describe the entity"): asked when some column looks
  like an outcome, a label or a known grouping rather than a trait of the rows: segments or flags
  built on it would only restate it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

DEFAULT_RANGE = [2, 8]  # dsagent.tools.unsupervised.segment.DEFAULT_RANGE (not imported: it pulls scikit-learn)
ROWS_PER_SEGMENT = 10  # segment_range keeps at least ~10 rows per segment
RARE_SHARE = 0.2  # a two-valued column whose rarer value is under this share may be a known-anomaly flag
LABELISH = re.compile(r"(^|_)(is|has|was)_|(^|_)(label|labels|class|target|outcome|result|status|flag|flagged|fraud|"
                      r"fraudulent|anomaly|anomalous|outlier|attack|fault|defect|churn|churned|default|y)(_|$)")
FEATURE_KINDS = ("numeric", "categorical", "boolean")


def _columns(profile: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in profile.get("columns", []) if isinstance(c, dict) and c.get("name") is not None]


def _rows(profile: dict[str, Any]) -> int:
    return int(profile.get("n_rows") or (profile.get("shape") or [0])[0] or 0)


def _rare_two_valued(col: dict[str, Any], n_rows: int) -> bool:
    top = col.get("top_values") or []
    if col.get("n_unique") != 2 or len(top) != 2 or not n_rows:
        return False
    return min(int(top[0][1]), int(top[1][1])) / max(n_rows - int(col.get("n_missing") or 0), 1) < RARE_SHARE


def _labelish(name: str) -> bool:
    return bool(LABELISH.search(re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")))


def label_candidates(profile: dict[str, Any]) -> list[str]:
    """Columns that may hold known anomalies: two-valued with a rare value, or a flag-like name."""
    n = _rows(profile)
    return [c["name"] for c in _columns(profile) if c.get("kind") in FEATURE_KINDS and c.get("n_unique", 0) >= 2
            and (_rare_two_valued(c, n) or (_labelish(c["name"]) and c.get("n_unique", 99) <= 20))]


def _n_segments(kind, profile, answers):
    if kind != "clustering" or _rows(profile) // ROWS_PER_SEGMENT <= DEFAULT_RANGE[0]:
        return None  # too few rows for more than two segments: there is nothing to choose
    return {"key": "n_segments",
            "question": "How many segments do you want? Give a number (e.g. [4]) if the business already works with one, "
                        "or a range (e.g. [3, 6]) for the data to choose from.",
            "why": "the number of segments is chosen by silhouette, Calinski-Harabasz and stability within this range",
            "options": ["[2, 8] (let the data choose)", "[3]", "[4]", "[5]"], "default": list(DEFAULT_RANGE)}


def _expected_rate(kind, profile, answers):
    if kind != "anomaly":
        return None
    return {"key": "expected_anomaly_rate",
            "question": "Roughly what share of rows do you expect to be anomalies (e.g. 0.01 for 1%)?",
            "why": "it sets the threshold that flags rows; without it the share is estimated from the score distribution",
            "options": ["0.01", "0.05"], "default": None}


def _anomaly_label(kind, profile, answers):
    found = label_candidates(profile) if kind == "anomaly" else []
    if not found:
        return None
    return {"key": "anomaly_label",
            "question": f"Does {' or '.join(found[:3])} mark known anomalies? If so it is used only to evaluate the "
                        "detector on held-out rows (never to fit); if not it is an ordinary feature.",
            "why": f"{found[0]} looks like a flag (two values, one rare, or its name); left unnamed it is fitted on",
            "options": found[:3] + ["none"], "default": None}


def _entity_columns(kind, profile, answers):
    """Columns that look like outcomes or labels rather than traits of the rows (not the anomaly label)."""
    label = answers.get("anomaly_label")
    suspects = [c["name"] for c in _columns(profile) if c.get("kind") in FEATURE_KINDS and c["name"] != label
                and _labelish(c["name"])]
    if kind == "anomaly" and not label:
        suspects = [s for s in suspects if s not in label_candidates(profile)[:3]]  # asked about as the label first
    if not suspects or answers.get("id_columns"):
        return None
    what = "segment" if kind == "clustering" else "check for anomalies"
    usable = [c["name"] for c in _columns(profile) if c.get("kind") in FEATURE_KINDS and c["name"] not in suspects]
    return {"key": "features_at_prediction_time",
            "question": f"Which columns describe the rows you want to {what} (the others are left out)? "
                        f"{', '.join(suspects[:3])} looks like an outcome or a label rather than a trait.",
            "why": f"built on {suspects[0]}, the {'segments' if kind == 'clustering' else 'flags'} would mostly restate it",
            "options": ["all", ", ".join(usable[:12])] if usable else ["all"], "default": "all"}


POLICY: list[Callable[..., dict[str, Any] | None]] = [_anomaly_label, _entity_columns, _n_segments, _expected_rate]


def plan_questions(kind: str, profile: dict[str, Any], answers: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions worth asking for task `kind` on this data, given what is already answered
    (segmentation and anomaly detection; other task types that fit their own models ask none here)."""
    if kind not in ("clustering", "anomaly"):
        return []
    out = []
    for rule in POLICY:
        q = rule(kind, profile, answers)
        if q is not None and q["key"] not in answers:
            out.append(q)
    return out
