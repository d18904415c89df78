"""predict, explain, monitor and retrain on a finished session through the Python API and the
MCP server (the real `mcp.client.Client`), both thin over dsagent.lifecycle (issue 22)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pandas as pd
from mcp.client import Client

import dsagent
from dsagent.mcp_server import build_server

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "penguins.csv"
RELABEL = {"Adelie": "Gentoo", "Gentoo": "Chinstrap", "Chinstrap": "Adelie"}


def _copy(offline_run, base: Path) -> Path:
    session = base / "sessions" / Path(offline_run.session_dir).name
    shutil.copytree(offline_run.session_dir, session, ignore=shutil.ignore_patterns("traffic"))
    return session


def test_python_api_predicts_explains_monitors_and_retrains(offline_run, tmp_path):
    session = _copy(offline_run, tmp_path)
    rows = pd.read_csv(DATA).sample(15, random_state=2)
    from dsagent.tools.model_io import load_model
    from dsagent.tools.serving import predict_frame

    model, manifest = load_model(session)
    expected = predict_frame(model, manifest, rows, lambda _w: None).reset_index(drop=True)

    got = dsagent.predict(session.name, rows, sessions_dir=session.parent)
    pd.testing.assert_frame_equal(got, expected)
    why = dsagent.explain(session, rows)
    assert len(why) == 15 and why.attrs["method"] and why.filter(like="contrib_").shape[1] == len(why.attrs["features"])
    report = dsagent.monitor(session, rows)
    assert report["verdict"] in ("ok", "investigate", "retrain") and report["rows"] == 15 and "exit_code" in report

    changed = pd.read_csv(DATA)
    changed["species"] = changed["species"].map(RELABEL)
    result = dsagent.retrain(session, changed)
    assert result["status"] == "promoted" and result["exit_code"] == 0 and result["active"] == "v2"
    assert (tmp_path / "sessions" / "inputs").is_dir()  # the frame it learned from is kept
    assert (dsagent.predict(session, rows)["prediction"] == expected["prediction"].map(RELABEL)).mean() > 0.8
    # monitoring follows the promotion (v2's own plan), and version= picks the old one
    assert dsagent.monitor(session, rows)["model_version"] == "v2"
    assert dsagent.monitor(session, rows, version="v1")["model_version"] == "v1"


def test_mcp_client_predicts_explains_monitors_and_retrains(offline_run, tmp_path):
    session = _copy(offline_run, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    pd.read_csv(DATA).sample(20, random_state=3).to_csv(data / "rows.csv", index=False)
    pd.read_csv(DATA).sample(frac=1, random_state=3).to_csv(data / "same.csv", index=False)
    server = build_server([data], session.parent)

    async def go():
        async with Client(server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"predict", "explain", "monitor", "retrain"} <= names
            out = {}
            for name, args in (("predict", {"data": "rows.csv"}), ("explain", {"data": "rows.csv"}),
                               ("monitor", {"data": "rows.csv"}), ("retrain", {"data": "same.csv", "time_budget": 10})):
                result = await client.call_tool(name, {"task_id": session.name, **args})
                assert not result.is_error, (name, result.content[0].text)
                out[name] = json.loads(result.content[0].text)
            outside = await client.call_tool("predict", {"task_id": session.name, "data": str(DATA)})
            unknown = await client.call_tool("predict", {"task_id": session.name, "data": "rows.csv", "version": "v9"})
            return out, outside, unknown

    try:
        out, outside, unknown = anyio.run(go)
    finally:
        server.app.close()
    assert out["predict"]["rows"] == 20 and len(out["predict"]["predictions"]) == 20
    assert out["predict"]["model_version"] == "v1"
    assert len(out["explain"]["explanations"]) == 20 and out["explain"]["method"]
    assert out["monitor"]["rows"] == 20 and out["monitor"]["verdict"] in ("ok", "investigate", "retrain")
    assert out["retrain"]["status"] in ("promoted", "kept") and out["retrain"]["version"] == "v2"
    assert outside.is_error and "root" in outside.content[0].text
    assert unknown.is_error and "no version v9" in unknown.content[0].text
