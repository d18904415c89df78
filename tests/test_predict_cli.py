"""`dsagent predict`: one row per input row in order, schema checks, refusal of unsafe model files."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.cli import main
from dsagent.tools.serving import escape_cells

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "penguins.csv"


def test_one_row_per_input_row_in_order(offline_run, tmp_path, capsys):
    raw = pd.read_csv(DATA)
    shuffled = raw.sample(frac=1.0, random_state=3)
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    shuffled.to_csv(src, index=False)
    assert main(["predict", offline_run.session_dir, str(src), "-o", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    preds = pd.read_csv(out)
    assert info["rows"] == len(preds) == len(raw)
    assert list(preds.columns) == ["prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
    np.testing.assert_allclose(preds.filter(like="proba_").sum(axis=1), 1.0, atol=1e-6)
    # order: the prediction for each input row is the model's answer for that row
    agree = (preds["prediction"].to_numpy() == shuffled["species"].to_numpy()).mean()
    assert agree > 0.9
    assert "species" in " ".join(info["warnings"]) or info["warnings"] == []  # the target column is not "extra"


def test_missing_column_is_a_clear_error(offline_run, tmp_path, capsys):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.read_csv(DATA).drop(columns=["bill_length_mm"]).head(5).to_csv(src, index=False)
    assert main(["predict", offline_run.session_dir, str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bill_length_mm" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_extra_columns_warn_and_unseen_categories_do_not_crash(offline_run, tmp_path, capsys):
    rows = pd.read_csv(DATA).head(6).copy()
    rows["comment"] = "=HYPERLINK(\"http://x\")"
    rows.loc[0, "island"] = "Atlantis"
    rows.loc[1, "sex"] = "unknown"
    rows["bill_depth_mm"] = rows["bill_depth_mm"].astype(object)
    rows.loc[2, "bill_depth_mm"] = "oops"  # text in a numeric column
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    rows.to_csv(src, index=False)
    assert main(["predict", offline_run.session_dir, str(src), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "ignoring 1 column" in err and "comment" in err
    assert "Atlantis" in err and "not numbers" in err
    preds = pd.read_csv(out)
    assert len(preds) == 6 and preds["prediction"].notna().all()


def test_pickle_and_tampered_models_are_refused(offline_run, tmp_path, capsys):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.read_csv(DATA).head(3).to_csv(src, index=False)
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps({"x": 1}))
    assert main(["predict", str(pkl), str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and "refuse" in err and "Traceback" not in err

    copy = tmp_path / "session"
    shutil.copytree(offline_run.session_dir, copy)
    model = copy / "artifacts" / "model" / "model.skops"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0x01
    model.write_bytes(bytes(data))
    assert main(["predict", str(copy), str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "sha256" in err and not out.exists()


def test_unknown_model_reference_is_bad_input(tmp_path, capsys):
    assert main(["predict", "no-such-session", str(DATA), "-o", str(tmp_path / "o.csv"), "--sessions-dir", str(tmp_path)]) == 2
    assert "no model or session" in capsys.readouterr().err


def test_formula_cells_are_escaped_but_numbers_are_not():
    frame = pd.DataFrame({"prediction": ["=1+2", "-1", "+A1", "@SUM(A1)", "ok", "-2.5e3"], "p": [-1.0, 2, 3, 4, 5, 6]})
    safe = escape_cells(frame)
    assert safe["prediction"].tolist() == ["'=1+2", "-1", "'+A1", "'@SUM(A1)", "ok", "-2.5e3"]
    assert safe["p"].tolist() == [-1.0, 2, 3, 4, 5, 6]
