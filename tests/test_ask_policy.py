"""Ask only what changes the work: a table of (data, goal) cases, each marked with the questions the
offline autopilot should ask (an empty set: should not ask anything).

Each case goes the way a run goes: the goal in words is understood (dsagent.goal) and fills the
keys nobody gave, the profile record says what the data holds, then the autopilot builds its
questions. The test prints every over-asked and every missed question before it fails.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dsagent.backends.autopilot import AutopilotBackend
from dsagent.goal import understand

# The order questions must come in: the most decision-relevant first.
RANK = ["target", "positive_class", "cost_fn", "cost_fp", "time_column", "features_at_prediction_time",
        "sensitive_columns", "interpretability", "goal"]


def col(name: str, kind: str = "numeric", lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "kind": kind}
    if lo is not None:
        c.update(min=lo, max=hi)
    return c


DATA: dict[str, dict[str, Any]] = {
    "concrete": {"columns": [col("cement"), col("slag"), col("water"), col("superplastic"), col("age", lo=1, hi=365),
                             col("strength")], "classes": {}},
    "churn": {"columns": [col("customer_id", "id"), col("tenure"), col("monthly_charges"), col("contract", "categorical"),
                          col("signup_date", "datetime"), col("gender", "categorical"), col("churn", "categorical")],
              "classes": {"churn": ["No", "Yes"]}},
    "penguins": {"columns": [col("species", "categorical"), col("island", "categorical"), col("bill_length_mm"),
                             col("body_mass_g"), col("sex", "categorical")],
                 "classes": {"species": ["Adelie", "Chinstrap", "Gentoo"], "sex": ["female", "male"]}},
    "houses": {"columns": [col("id", "id"), col("sqft"), col("bedrooms"), col("zipcode", "categorical"),
                           col("sale_date", "datetime"), col("price")], "classes": {}},
    "loans": {"columns": [col("loan_id", "id"), col("income"), col("amount"), col("age", lo=18, hi=80),
                          col("marital_status", "categorical"), col("race", "categorical"), col("default", "categorical")],
              "classes": {"default": ["0", "1"]}},
    "fraud": {"columns": [col("txn_id", "id"), col("amount"), col("merchant", "categorical"), col("timestamp", "datetime"),
                          col("is_fraud", "categorical")], "classes": {"is_fraud": ["0", "1"]}},
    "credit": {"columns": [col("income"), col("debt"), col("status", "categorical")],
               "classes": {"status": ["approved", "rejected"]}},
    "wine": {"columns": [col("fixed_acidity"), col("alcohol"), col("quality")], "classes": {}},
    "hospital": {"columns": [col("Ethnicity", "categorical"), col("Marital Status", "categorical"), col("admit_date", "datetime"),
                             col("num_meds"), col("readmitted", "categorical")], "classes": {"readmitted": ["no", "yes"]}},
    "attrition": {"columns": [col("Age", lo=18, hi=60), col("Gender", "categorical"), col("MaritalStatus", "categorical"),
                              col("MonthlyIncome"), col("Attrition", "categorical")], "classes": {"Attrition": ["No", "Yes"]}},
    "titanic": {"columns": [col("PassengerId", "id"), col("Pclass"), col("Sex", "categorical"), col("Age", lo=0.4, hi=80),
                            col("Fare"), col("Survived", "categorical")], "classes": {"Survived": ["0", "1"]}},
    "generic": {"columns": [col("x1"), col("x2"), col("target", "categorical")], "classes": {"target": ["0", "1"]}},
    "stores": {"columns": [col("store", "categorical"), col("date", "datetime"), col("promo"), col("sales")], "classes": {}},
    "insurance": {"columns": [col("age", lo=18, hi=64), col("sex", "categorical"), col("bmi"), col("smoker", "categorical"),
                              col("charges")], "classes": {}},
    "leaky_churn": {"columns": [col("tenure"), col("signup_date", "datetime"), col("cancel_reason", "categorical"),
                                col("churn", "categorical")], "classes": {"churn": ["0", "1"]},
                    "suspects": [{"column": "cancel_reason", "score": 0.93, "drop": False}]},
}

CLEAR = "must be explainable to the regulator"
# (data, goal or None, answers given up front, the questions it should ask)
CASES: list[tuple[str, str | None, dict[str, Any], set[str]]] = [
    ("concrete", "Predict strength. Use your judgement on anything you need to ask, and keep it to 60 seconds.", {},
     {"interpretability"}),
    ("concrete", f"Predict strength; it {CLEAR}.", {}, set()),
    ("concrete", None, {"target": "strength"}, {"interpretability", "goal"}),
    ("concrete", "build me a good model", {}, {"target", "interpretability"}),
    ("concrete", "what drives strength? accuracy is all that matters", {}, set()),
    ("churn", "which customers will churn? a wasted call costs 5, a lost customer 120", {},
     {"time_column", "sensitive_columns", "interpretability"}),
    ("churn", f"which customers will churn by month? a wasted call costs 5, a lost customer 120; {CLEAR}",
     {"sensitive_columns": ["gender"]}, set()),
    ("churn", "predict churn", {}, {"cost_fn", "cost_fp", "time_column", "sensitive_columns", "interpretability"}),
    ("churn", "predict churn", {"time_column": "no", "sensitive_columns": [], "interpretability": "low"},
     {"cost_fn", "cost_fp"}),
    ("penguins", "predict species", {}, {"sensitive_columns", "interpretability"}),
    ("penguins", f"predict species, {CLEAR}", {"sensitive_columns": ["sex"]}, set()),
    ("penguins", "predict sex", {}, {"positive_class", "cost_fn", "cost_fp", "interpretability"}),
    ("penguins", f"predict sex; treat female as the positive class; {CLEAR}", {"cost_fp": 1, "cost_fn": 2}, set()),
    ("houses", f"predict price, {CLEAR}", {}, {"time_column"}),
    ("houses", f"predict price over time, {CLEAR}", {}, set()),
    ("houses", "predict price or bedrooms", {}, {"target", "time_column", "interpretability"}),
    ("loans", "predict default; a missed default costs 1000, a false alarm 50", {}, {"sensitive_columns", "interpretability"}),
    ("loans", "predict default", {"sensitive_columns": ["race"], "interpretability": "high", "cost_fp": 50, "cost_fn": 1000},
     set()),
    ("fraud", "flag fraud; a missed fraud is 10 times worse than a false alarm", {}, {"time_column", "interpretability"}),
    ("fraud", "predict is_fraud", {"time_column": "timestamp", "cost_fp": 1, "cost_fn": 10, "interpretability": "low"}, set()),
    ("fraud", None, {"target": "is_fraud", "time_column": "no"}, {"cost_fn", "cost_fp", "interpretability", "goal"}),
    ("credit", "predict status", {}, {"positive_class", "cost_fn", "cost_fp", "interpretability"}),
    ("credit", "predict status; count rejected as the positive class; only accuracy matters",
     {"cost_fp": 1, "cost_fn": 1}, set()),
    ("wine", "predict quality; accuracy is all that matters", {}, set()),
    ("wine", None, {"target": "quality"}, {"interpretability", "goal"}),
    ("hospital", f"predict readmitted; {CLEAR}", {}, {"cost_fn", "cost_fp", "time_column", "sensitive_columns"}),
    ("attrition", "which employees will leave?", {}, {"cost_fn", "cost_fp", "sensitive_columns", "interpretability"}),
    ("titanic", f"predict survived, {CLEAR}", {}, {"cost_fn", "cost_fp", "sensitive_columns"}),
    ("titanic", f"predict survived, {CLEAR}", {"cost_fp": 1, "cost_fn": 1, "sensitive_columns": []}, set()),
    ("generic", None, {}, {"target", "interpretability", "goal"}),
    ("generic", "predict the target, black box is fine", {"cost_fp": 2, "cost_fn": 1}, set()),
    ("stores", "forecast sales per store by week", {}, {"interpretability"}),
    ("stores", "predict sales, explain each prediction", {}, {"time_column"}),
    ("insurance", "predict charges, explain each prediction", {}, {"sensitive_columns"}),
    ("insurance", "predict charges, explain each prediction", {"sensitive_columns": ["sex", "age"]}, set()),
    ("leaky_churn", f"predict churn by month; a wasted call costs 5, a lost customer 120; {CLEAR}", {},
     {"features_at_prediction_time"}),
    ("leaky_churn", f"predict churn by month; a wasted call costs 5, a lost customer 120; {CLEAR}",
     {"features_at_prediction_time": ["tenure", "signup_date"]}, set()),
]


def profile_of(data: dict[str, Any], target: str | None) -> dict[str, Any]:
    """The parts of profile_data's record the questions read."""
    classes = data["classes"].get(target) if target else None
    task = None if target is None else ("regression" if classes is None else "binary" if len(classes) == 2 else "multiclass")
    tgt = {"name": target, "task": task, "classes": classes, "minority_class": classes[0] if classes else None} if target else None
    return {"columns": data["columns"], "target": tgt, "leakage_suspects": data.get("suspects", [])}


def questions_for(name: str, goal: str | None, given: dict[str, Any]) -> list[str]:
    data = DATA[name]
    answers = dict(given)
    if goal:
        answers["goal"] = goal
        understood = understand(goal, [c["name"] for c in data["columns"]]).values
        answers.update({k: v for k, v in understood.items() if k not in given})
    state = SimpleNamespace(answers=answers)
    qs = AutopilotBackend()._questions(profile_of(data, answers.get("target")), state)
    return [q["key"] for q in qs]


def test_ask_only_what_changes_the_work():
    assert len(CASES) >= 30
    over, missed, disorder = [], [], []
    for name, goal, given, expected in CASES:
        asked = questions_for(name, goal, given)
        label = f"{name} / {goal!r} / {sorted(given)}"
        over += [f"{label}: asked {k}" for k in asked if k not in expected]
        missed += [f"{label}: missed {k}" for k in sorted(expected - set(asked))]
        if asked != sorted(asked, key=RANK.index) or len(asked) > 5:
            disorder.append(f"{label}: {asked}")
    report = [f"{len(CASES)} cases: {len(over)} over-asked, {len(missed)} missed, {len(disorder)} out of order"]
    print("\n".join(report + over + missed + disorder))
    assert not over and not missed and not disorder, "\n".join(report + over + missed + disorder)


def test_an_ambiguous_goal_offers_the_columns_it_names():
    data = DATA["houses"]
    qs = AutopilotBackend()._questions(profile_of(data, None), SimpleNamespace(answers={"goal": "predict price or bedrooms"}))
    assert qs[0]["key"] == "target" and qs[0]["options"] == ["price", "bedrooms"]


def test_the_cost_questions_name_the_positive_class_once_it_is_settled():
    """"A missed positive" is ambiguous when 1 means a good loan (german_credit's credit_risk): the
    cost questions name the class define_task will count as positive, or stay generic while the
    positive class is itself still asked."""
    from dsagent.questions import plan_questions

    def asked(classes, answers=None):
        profile = {"target": {"task": "binary", "classes": classes, "minority_class": classes[0]}}
        return {q["key"]: q["question"] for q in plan_questions(profile, {"target": "credit_risk", **(answers or {})},
                                                                 limit=9)}

    q = asked(["0", "1"])
    assert "a missed credit_risk = 1 (false negative)" in q["cost_fn"] and "credit_risk = 1 wrongly" in q["cost_fp"]
    assert "credit_risk = Yes" in asked(["No", "Yes"])["cost_fn"]
    open_question = asked(["good", "poor"])
    assert "positive_class" in open_question and "a missed positive (false negative)" in open_question["cost_fn"]
    assert "credit_risk = good" in asked(["good", "poor"], {"positive_class": "good"})["cost_fn"]
