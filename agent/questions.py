"""Which clarifying questions the offline autopilot asks: only those whose answer would change a
decision on this data, the most decision-relevant first, at most five at a time.

Each rule below names the decision its answer changes and the condition under which that decision
exists here. A key already answered (given, understood from the goal, or left to judgement) is
never asked. Stdlib only: the profile arrives as the JSON record profile_data wrote.

tests/test_ask_policy.py holds the table of (data, goal) cases this is measured against.
"""

from __future__ import annotations

import re
from typing import Any, Callable

# Binary labels whose positive class is conventional get no question; define_task takes the first
# of these a target has (the cost questions name it).
from dsagent.tools.target_check import CONVENTIONAL_POSITIVE

MAX_ASKED = 5

# Column names that look like a sensitive attribute (fairness is offered for them, never assumed).
SENSITIVE = re.compile(r"^(sex|gender|race|ethnic(ity)?|age|age_?group|religion|nationality|citizenship|disab(led|ility)|"
                       r"marital(_?status)?|married)$")


def _name(col: str) -> str:
    return re.sub(r"[^a-z]+", "_", str(col).lower()).strip("_")


def sensitive_columns(columns: list[str], facts: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Columns whose name says sex, gender, race, ethnicity, age, religion, nationality,
    disability or marital status ("Marital Status", "applicant_gender"). A numeric `age` counts
    only when its values could be a person's age in years (0 to 120): concrete's `age` runs to 365
    days and is no one's age."""
    out = []
    for col in columns:
        words = _name(col).split("_")
        if not (SENSITIVE.match(_name(col)) or any(SENSITIVE.match(w) for w in words) or "marital" in words):
            continue
        f = (facts or {}).get(col) or {}
        if "age" in words and isinstance(f.get("max"), (int, float)) and not 0 <= f.get("min", 0) <= f["max"] <= 120:
            continue
        out.append(col)
    return out


def _kinds(profile: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["kind"] for c in profile.get("columns", [])}


# -- one function per question: (question dict) or None when the answer would change nothing ----


def _target(profile, answers, target, candidates):
    if target:
        return None
    options = candidates or [c for c, k in _kinds(profile).items() if k not in ("id", "constant")][:12]
    why = ("your goal names several columns: " + ", ".join(candidates)) if candidates else "everything depends on it"
    return {"key": "target", "question": "Which column should the model predict?", "why": why, "options": options,
            "default": None}


def _binary(profile) -> bool:
    return (profile.get("target") or {}).get("task") == "binary"


def _positive_class(profile, answers, target, candidates):
    """Costs, the threshold and recall all count one class as positive: asked only when the labels
    leave it open (not 1/yes/true/churn ...)."""
    classes = [str(c) for c in (profile.get("target") or {}).get("classes") or []]
    if not _binary(profile) or any(c.lower() in CONVENTIONAL_POSITIVE for c in classes):
        return None
    rarer = (profile.get("target") or {}).get("minority_class")
    return {"key": "positive_class", "question": "Which class is the one to find (the positive class)?",
            "why": "costs, the decision threshold and recall all count this class", "options": classes,
            "default": str(rarer) if rarer is not None else (classes[-1] if classes else None)}


def _settled_positive(profile, answers) -> str | None:
    """The class the costs count as positive when it is already settled: given, or the conventional
    one define_task will pick (tools/target_check.py, same order); None while it is still asked."""
    if answers.get("positive_class") is not None:
        return str(answers["positive_class"])
    lowered = {str(c).lower(): str(c) for c in (profile.get("target") or {}).get("classes") or []}
    return next((lowered[n] for n in CONVENTIONAL_POSITIVE if n in lowered), None)


def _cost_fn(profile, answers, target, candidates):
    if not _binary(profile):
        return None
    # Name the class: "a missed positive" is ambiguous when 1 means a good loan (german_credit).
    pos = _settled_positive(profile, answers)
    missed = f"a missed {target} = {pos} (false negative)" if pos else "a missed positive (false negative)"
    return {"key": "cost_fn", "question": f"What does {missed} cost, relative to a false alarm?",
            "why": "sets the decision threshold", "default": 1.0}


def _cost_fp(profile, answers, target, candidates):
    if not _binary(profile):
        return None
    pos = _settled_positive(profile, answers)
    alarm = f"a false alarm (predicting {target} = {pos} wrongly: false positive)" if pos else \
        "a false alarm (false positive)"
    return {"key": "cost_fp", "question": f"What does {alarm} cost?", "why": "sets the decision threshold", "default": 1.0}


def _time_column(profile, answers, target, candidates):
    dates = [c for c, k in _kinds(profile).items() if k == "datetime" and c != target]
    if not dates:
        return None
    return {"key": "time_column", "question": f"Should the test split follow time (column {dates[0]})?",
            "why": "a random split overstates accuracy when the future differs from the past",
            "options": dates + ["no"], "default": None}


def _features_at_prediction_time(profile, answers, target, candidates):
    """Only when the profile kept a strong single-column predictor: if it is not known when a
    prediction is made, it must be left out, and only the user knows."""
    kept = [s["column"] for s in profile.get("leakage_suspects") or []
            if isinstance(s, dict) and not s.get("drop") and s.get("column") != target]
    if not kept or answers.get("id_columns"):
        return None
    return {"key": "features_at_prediction_time",
            "question": f"Is {', '.join(kept[:3])} known at the moment a prediction is made? List the columns that are "
                        "(or say all).",
            "why": f"{kept[0]} predicts the target strongly on its own; if it is only known afterwards it leaks the answer",
            "options": ["all"], "default": "all"}


def _sensitive(profile, answers, target, candidates):
    facts = {c["name"]: c for c in profile.get("columns", [])}
    found = [c for c in sensitive_columns(list(facts), facts) if c != target]
    if not found:
        return None
    return {"key": "sensitive_columns",
            "question": f"Audit the model for fairness across {', '.join(found)}? (for the report only; they are not "
                        "added to or removed from the features)",
            "why": "these columns look sensitive: the report then shows each group's score with a CI and the largest gap",
            "options": found + ["no"], "default": found}


def _interpretability(profile, answers, target, candidates):
    return {"key": "interpretability", "question": "How important is it that people can understand each prediction?",
            "why": "decides whether a simpler model is worth a small loss of accuracy",
            "options": ["low", "medium", "high"], "default": "medium"}


def _goal(profile, answers, target, candidates):
    return {"key": "goal", "question": "What decision will this model support, and how will success be measured?",
            "why": "the metric and the threshold follow from the decision",
            "default": f"predict {target or 'the target'} as accurately as possible"}


# Most decision-relevant first: without a target nothing can be built; the positive class and the
# costs move the shipped threshold; the split design moves every score; a leak moves the features;
# fairness and interpretability shape what is shipped and reported; the goal words the report.
POLICY: list[Callable[..., dict[str, Any] | None]] = [
    _target, _positive_class, _cost_fn, _cost_fp, _time_column, _features_at_prediction_time, _sensitive,
    _interpretability, _goal,
]


def plan_questions(profile: dict[str, Any], answers: dict[str, Any], target: str | None = None,
                   candidates: list[str] | None = None, limit: int = MAX_ASKED) -> list[dict[str, Any]]:
    """The questions worth asking on this data, given what is already answered."""
    target = answers.get("target") or target
    out = []
    for rule in POLICY:
        q = rule(profile, answers, target, candidates or [])
        if q is not None and q["key"] not in answers:
            out.append(q)
    return out[:limit]
