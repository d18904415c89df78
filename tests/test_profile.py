"""tools/profile.py and its library (profile_*.py): column kinds, target checks and analysis, leakage, summary size, the tool."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.data import DataError
from dsagent.tools.paths import PROFILE
from dsagent.tools.profile import profile_data
from dsagent.tools.profile_build import build_profile, compact_summary
from dsagent.tools.profile_columns import KINDS, infer_column_kinds
from dsagent.tools.profile_target import check_target, infer_task
from dsagent.tools.registry import ToolContext, ToolOutput

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


def crafted(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array("the quick brown fox jumps over a lazy dog while customers complain about late delivery".split())
    return pd.DataFrame({
        "amount": rng.lognormal(3, 1, n),
        "age": rng.integers(18, 90, n),
        "color": pd.array(rng.choice(["red", "green", "blue"], n), dtype="str"),
        "is_member": rng.choice(["yes", "no"], n),
        "flag01": rng.integers(0, 2, n),
        "flag_bool": rng.random(n) < 0.5,
        "signup": pd.array([f"2021-{m:02d}-{d:02d}" for m, d in zip(rng.integers(1, 13, n), rng.integers(1, 29, n))], dtype="str"),
        "signup_ts": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"),
        "comment": [" ".join(rng.choice(words, 9)) for _ in range(n)],
        "row_id": rng.permutation(n) + 1,
        "CustomerId": rng.permutation(n) + 10_000,
        "token": [f"{rng.integers(0, 2**62):016x}" for _ in range(n)],
        "const": 7,
        "empty": np.full(n, np.nan),
    })


def test_kinds_on_a_crafted_frame():
    kinds = infer_column_kinds(crafted())
    assert set(kinds.values()) <= set(KINDS)
    assert kinds == {
        "amount": "numeric", "age": "numeric", "color": "categorical", "is_member": "boolean",
        "flag01": "boolean", "flag_bool": "boolean", "signup": "datetime", "signup_ts": "datetime",
        "comment": "text", "row_id": "id", "CustomerId": "id", "token": "id", "const": "constant",
        "empty": "constant",
    }


def test_kinds_of_the_bundled_example():
    df = pd.read_csv(EXAMPLE)
    kinds = infer_column_kinds(df)
    assert kinds["species"] == kinds["island"] == kinds["sex"] == "categorical"
    assert kinds["bill_length_mm"] == kinds["body_mass_g"] == "numeric"


def test_infer_task():
    assert infer_task(pd.Series(["a", "b", "a"])) == "binary"
    assert infer_task(pd.Series([0, 1, 1, None])) == "binary"
    assert infer_task(pd.Series(["a", "b", "c"])) == "multiclass"
    assert infer_task(pd.Series([1, 2, 3, 4, 5] * 4)) == "multiclass"
    assert infer_task(pd.Series(np.linspace(0, 1, 50))) == "regression"
    assert infer_task(pd.Series(np.arange(100))) == "regression"


@pytest.mark.parametrize("target, words", [
    ("Species", ["not found", "did you mean 'species'"]),
    ("specie", ["not found", "'species'"]),
    ("const", ["constant"]),
    ("one_class", ["single class"]),
    ("nothing", ["entirely missing"]),
    ("name", ["identifier"]),
])
def test_check_target_errors_are_one_line(target, words):
    n = 30
    df = pd.DataFrame({
        "species": ["a", "b", "c"] * 10, "const": [1.0] * n, "one_class": ["yes"] * (n - 2) + [None, None],
        "nothing": [None] * n, "name": [f"person {i}" for i in range(n)],
    })
    with pytest.raises(DataError) as exc:
        check_target(df, target)
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_check_target_returns_the_task():
    df = pd.read_csv(EXAMPLE)
    assert check_target(df, "species") == "multiclass"
    assert check_target(df, "sex") == "binary"
    assert check_target(df, "body_mass_g") == "regression"


def test_target_analysis_classification():
    df = pd.read_csv(EXAMPLE)
    rec = build_profile(df, None, "sex")
    t = rec["target"]
    assert t["task"] == "binary" and t["n_classes"] == 2 and t["n_missing"] == 11
    assert t["class_counts"] == {"male": 168, "female": 165}
    assert abs(t["minority_frac"] - 165 / 333) < 1e-9
    assert sorted(t["classes"]) == ["female", "male"]
    assert rec["leakage_suspects"] == []
    assert any("missing value" in w for w in rec["warnings"])


def test_target_analysis_regression_and_imbalance():
    rng = np.random.default_rng(1)
    n = 2000
    df = pd.DataFrame({"x": rng.normal(size=n), "price": rng.lognormal(0, 1.5, n),
                       "rare": np.where(rng.random(n) < 0.03, "fraud", "ok")})
    rec = build_profile(df, None, "price")
    assert rec["target"]["task"] == "regression" and rec["target"]["skew"] > 2
    assert any("skewed" in w for w in rec["warnings"])
    rec = build_profile(df, None, "rare")
    assert rec["target"]["minority_frac"] < 0.05
    assert any("imbalanced" in w for w in rec["warnings"])


def test_answered_task_overrides_inference():
    df = pd.DataFrame({"x": range(60), "y": [1, 2, 3] * 20})
    rec = build_profile(df, None, "y", task="regression")
    assert rec["target"]["task"] == "regression" and rec["target"]["inferred_task"] == "multiclass"


def test_leakage_suspects_and_drop_suggestions():
    rng = np.random.default_rng(2)
    n = 3000
    y = rng.integers(0, 2, n)
    leak = np.where(rng.random(n) < 0.01, 1 - y, y)  # a post-outcome copy of the target, 1% noise
    df = pd.DataFrame({
        "customer_id": rng.permutation(n),
        "noise": rng.normal(size=n),
        "weak": y + rng.normal(scale=2, size=n),
        "refund_amount": np.where(leak == 1, rng.uniform(5, 100, n), 0.0),
        "status_after": np.where(leak == 1, "closed", "open"),
        "dup_of_noise": None,
        "const": "x",
        "target": y,
    })
    df["dup_of_noise"] = df["noise"]
    rec = build_profile(df, None, "target")
    suspects = {d["column"]: d for d in rec["leakage_suspects"]}
    assert {"refund_amount", "status_after", "customer_id"} <= set(suspects)
    assert "noise" not in suspects and "weak" not in suspects
    assert suspects["status_after"]["score"] > 0.9
    assert suspects["customer_id"]["reason"].startswith("ID-like")
    drops = {d["column"]: d["reason"] for d in rec["drop_suggestions"]}
    assert drops["customer_id"] == "id-like" and drops["const"] == "constant"
    assert drops["dup_of_noise"] == "duplicate of noise"
    assert drops["refund_amount"].startswith("leakage suspect")
    assert rec["duplicate_columns"] == [{"column": "dup_of_noise", "duplicate_of": "noise"}]


def test_strong_column_is_flagged_but_kept():
    """Shuttle-like: a sensor that alone gets most of a 7%-positive target right is flagged, not dropped."""
    rng = np.random.default_rng(5)
    n = 4000
    y = (rng.random(n) < 0.07).astype(int)
    strong = np.where(rng.random(n) < 0.005, 1 - y, y) * 10 + rng.normal(size=n)  # 0.5% of rows on the wrong side
    df = pd.DataFrame({"sensor": strong, "other": rng.normal(size=n), "y": y})
    rec = build_profile(df, None, "y")
    suspect = {d["column"]: d for d in rec["leakage_suspects"]}["sensor"]
    assert 0.9 <= suspect["score"] < 0.97 and suspect["drop"] is False
    assert "sensor" not in {d["column"] for d in rec["drop_suggestions"]}
    assert any("'sensor'" in w and "kept" in w for w in rec["warnings"])


def test_report_says_which_leak_suspects_were_kept():
    from dsagent.tools.report_sections import _section_data

    profile = {"n_rows": 10, "n_cols": 3, "warnings": ["leakage suspect: 'a' alone predicts the target (score 0.99)"],
               "leakage_suspects": [{"column": "a", "score": 0.99, "drop": True}, {"column": "b", "score": 0.93, "drop": False}]}
    lines = "\n".join(_section_data(profile, {"dropped": [{"column": "a", "reason": "leakage suspect (score 0.99)"}]}))
    assert "`a` predicts the target almost perfectly on its own; it was left out" in lines
    assert "`b` predicts the target strongly on its own; it was kept as a feature" in lines
    assert "leakage suspect: 'a'" not in lines  # said once, by the line that also says what was done


def test_regression_leak():
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.normal(100, 20, n)
    df = pd.DataFrame({"y": y, "y_in_cents": y * 100 + rng.normal(size=n), "x": rng.normal(size=n)})
    rec = build_profile(df, None, "y")
    assert [d["column"] for d in rec["leakage_suspects"]] == ["y_in_cents"]


def test_duplicates_missing_and_outliers():
    rng = np.random.default_rng(4)
    x = rng.normal(size=1000)
    x[:10] = 50.0 + np.arange(10)
    df = pd.DataFrame({"x": x, "m": np.where(rng.random(1000) < 0.3, np.nan, 1.0) * rng.normal(size=1000)})
    df = pd.concat([df, df.iloc[100:105]], ignore_index=True)
    rec = build_profile(df)
    assert rec["duplicate_rows"] == 5
    cols = {c["name"]: c for c in rec["columns"]}
    assert cols["x"]["outlier_frac"] >= 10 / 1005
    assert 0.25 < cols["m"]["missing_frac"] < 0.35
    assert rec["target"] is None


def test_duplicate_rows_on_large_frames_use_the_exact_fast_path():
    rng = np.random.default_rng(5)
    n = 60_000
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 3, n), "c": rng.choice(["x", "y"], n)})
    df = pd.concat([df, df.iloc[:7]], ignore_index=True)
    assert build_profile(df)["duplicate_rows"] == 7 == int(df.duplicated().sum())


def test_summary_stays_small_for_500_columns():
    rng = np.random.default_rng(6)
    n = 300
    cols = {}
    for i in range(500):
        kind = i % 5
        if kind == 0:
            cols[f"a_rather_long_feature_name_number_{i}"] = rng.normal(size=n)
        elif kind == 1:
            c = rng.choice(["low", "mid", "high"], n).astype(object)
            c[rng.random(n) < 0.4] = None
            cols[f"category_{i}"] = c
        elif kind == 2:
            cols[f"skewed_{i}"] = rng.lognormal(0, 2, n)
        elif kind == 3:
            cols[f"const_{i}"] = 1
        else:
            cols[f"code_{i}"] = [f"c{j}" for j in rng.integers(0, 200, n)]
    df = pd.DataFrame(cols)
    df["target"] = rng.integers(0, 2, n)
    rec = build_profile(df, None, "target")
    summary = compact_summary(rec)
    text = json.dumps(summary)
    assert len(text) < 6000, len(text)
    assert summary["kinds"]["constant"] == 100 and summary["shape"] == [300, 501]
    assert len(rec["columns"]) == 501


def test_wide_frame_with_a_leak_profiles_quickly():
    rng = np.random.default_rng(7)
    df = pd.DataFrame(rng.normal(size=(200, 1500)), columns=[f"g{i}" for i in range(1500)])
    df["y"] = rng.integers(0, 2, 200)
    df["leak"] = df["y"] * 3.0 + rng.normal(scale=0.01, size=200)
    rec = build_profile(df, None, "y")
    assert [d["column"] for d in rec["leakage_suspects"]] == ["leak"]
    assert len(json.dumps(compact_summary(rec))) < 6000


def _ctx(tmp_path: Path, data: Path, answers: dict | None = None) -> ToolContext:
    art = tmp_path / "session" / "artifacts"
    art.mkdir(parents=True)
    return ToolContext(session_dir=art.parent, artifacts_dir=art, data_path=data, answers=answers or {},
                       roots=[str(data.parent)])


def test_profile_tool_writes_profile_json(tmp_path):
    ctx = _ctx(tmp_path, EXAMPLE)
    out = profile_data.tool_spec.invoke(ctx, {"target": "species"})
    assert isinstance(out, ToolOutput)
    assert out.files == {"profile": PROFILE}
    saved = json.loads((ctx.artifacts_dir / PROFILE).read_text())
    for key in ("n_rows", "n_cols", "load", "columns", "target", "drop_suggestions", "leakage_suspects",
                "duplicate_rows", "warnings"):
        assert key in saved and key in out.record
    assert saved["n_rows"] == 344 and saved["target"]["task"] == "multiclass"
    assert saved["load"]["format"] == "csv"
    col = saved["columns"][0]
    assert {"name", "kind", "dtype", "missing_frac", "n_unique"} <= set(col)
    assert len(json.dumps(out.summary)) < 6000
    assert out.summary["target"]["task"] == "multiclass"


def test_profile_tool_uses_the_answered_target_and_reports_bad_targets(tmp_path):
    ctx = _ctx(tmp_path, EXAMPLE, {"target": "sex"})
    out = profile_data(ctx)
    assert out.record["target"]["name"] == "sex"
    with pytest.raises(DataError) as exc:
        profile_data(ctx, target="Species")
    assert "did you mean 'species'" in str(exc.value)


def test_profile_tool_schema_is_model_facing():
    spec = profile_data.tool_spec
    schema = spec.input_schema
    assert set(schema["properties"]) == {"target"}
    assert "column to predict" in schema["properties"]["target"]["description"]
    assert "leakage" in spec.description and "Args:" not in spec.description
