"""`dsagent serve`: a real server process on 127.0.0.1 and a real HTTP client (httpx2, brought by anthropic).

One server (on a copy of the shared offline run's session, so its traffic log is this module's
own) answers every test here: starting one costs a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx  # anthropic and mcp bring httpx2 (the httpx successor, same API)
import numpy as np
import pandas as pd
import pytest

from dsagent.cli import main

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "penguins.csv"
MAX_BODY_MB = 0.05  # ~52 KB: the oversize test needs only a small body
PROBA = ["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]


def _start(session: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "dsagent.cli", "serve", str(session), "--port", "0", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("serving ") and " on http://" in line:
            url = line.split(" on ", 1)[1].split()[0]
            return proc, url
    proc.kill()
    raise AssertionError(f"server did not start: {''.join(seen)[-2000:]}")


@pytest.fixture(scope="module")
def served(offline_run, tmp_path_factory):
    session = tmp_path_factory.mktemp("served") / "session"
    shutil.copytree(offline_run.session_dir, session)
    proc, url = _start(session, "--max-body-mb", str(MAX_BODY_MB))
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, session, proc
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _rows(n: int = 40, seed: int = 5) -> pd.DataFrame:
    return pd.read_csv(DATA).sample(n, random_state=seed)


def test_predict_matches_dsagent_predict_for_csv_and_json(served, tmp_path, capsys):
    client, session, _ = served
    rows = _rows()
    rows["comment"] = "extra"  # an extra column: ignored with the same warning as predict
    src, out = tmp_path / "rows.csv", tmp_path / "out.csv"
    rows.to_csv(src, index=False)
    assert main(["predict", str(session), str(src), "-o", str(out), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    expected = pd.read_csv(out)

    as_csv = client.post("/predict", content=src.read_bytes(), headers={"content-type": "text/csv"})
    as_json = client.post("/predict", content=rows.to_json(orient="records"), headers={"content-type": "application/json"})
    for response in (as_csv, as_json):
        assert response.status_code == 200, response.text
        body = response.json()
        got = pd.DataFrame(body["predictions"])
        assert list(got.columns) == ["prediction", *PROBA] == list(expected.columns)
        assert body["rows"] == len(rows)
        assert got["prediction"].tolist() == expected["prediction"].tolist()  # same rows, same order
        np.testing.assert_allclose(got[PROBA].to_numpy(), expected[PROBA].to_numpy(), rtol=1e-9, atol=1e-12)
        assert body["warnings"] == cli["warnings"] and any("comment" in w for w in body["warnings"])
        assert body["fallback_rows"] == []


def test_malformed_bodies_get_a_4xx_and_the_server_keeps_answering(served):
    client, _, _ = served
    good = _rows(5).to_csv(index=False)
    cases = [
        ("application/json", b"{not json", 422, "not valid JSON"),
        ("application/json", b'{"a": 1}', 422, "not a table"),
        ("application/json", b"[1, 2]", 422, "not an object"),
        ("text/csv", pd.read_csv(io.StringIO(good)).drop(columns=["island"]).to_csv(index=False).encode(), 422, "island"),
        ("text/csv", b"", 422, "empty"),
        ("application/xml", b"<rows/>", 415, "Content-Type"),
        ("text/csv", ("x" * 60_000).encode(), 413, "limit"),
    ]
    for content_type, body, status, words in cases:
        r = client.post("/predict", content=body, headers={"content-type": content_type})
        assert r.status_code == status, (content_type, body[:40], r.text)
        detail = r.json()["detail"]
        assert words in detail and "\n" not in detail and "Traceback" not in detail, detail
    # a body over the limit sent without a declared length (chunked) is refused as well
    chunked = client.post("/predict", content=iter([b"a,b\n"] + [b"1,2\n" * 5000] * 4), headers={"content-type": "text/csv"})
    assert chunked.status_code == 413
    assert client.get("/health").json() == {"status": "ok"}
    assert client.post("/predict", content=good, headers={"content-type": "text/csv"}).status_code == 200


def test_predict_can_explain_each_row_like_dsagent_explain(served, tmp_path, capsys):
    client, session, _ = served
    rows = _rows(8, seed=9)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["explain", str(session), str(tmp_path / "rows.csv"), "-o", str(tmp_path / "out.csv"), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    expected = pd.read_csv(tmp_path / "out.csv")
    r = client.post("/predict?explain=true", content=rows.to_csv(index=False), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["explanation"]["method"] == cli["method"] and len(body["explanations"]) == 8
    got = pd.DataFrame(body["explanations"])
    contribs = [c for c in expected.columns if c.startswith("contrib_")]
    assert list(got.filter(like="contrib_").columns) == contribs
    np.testing.assert_allclose(got[["base_value", *contribs]].to_numpy(), expected[["base_value", *contribs]].to_numpy(),
                               rtol=1e-6, atol=1e-9)
    assert "explanations" not in client.post("/predict", content=rows.to_csv(index=False),
                                             headers={"content-type": "text/csv"}).json()


def test_metadata_ready_and_openapi(served):
    client, session, _ = served
    meta = client.get("/metadata").json()
    session_meta = json.loads((session / "session.json").read_text())
    manifest = json.loads((session / "artifacts" / "model" / "manifest.json").read_text())
    assert meta["task"] == "multiclass" and meta["target"] == "species" and meta["metric"] == manifest["metric"]
    assert meta["training_data_sha256"] == session_meta["data_sha256"]
    assert meta["version"] == manifest["sha256"][:12] and meta["model"] == manifest["model"]
    assert meta["model_version"] == "v1" and meta["fallback"] == "Adelie"  # the answers key of the shared run
    assert [c["name"] for c in meta["input_schema"]["columns"]] == [c["name"] for c in manifest["input_schema"]["columns"]]
    assert client.get("/ready").json()["ready"] is True
    spec = client.get("/openapi.json").json()
    assert "/predict" in spec["paths"] and "text/csv" in spec["paths"]["/predict"]["post"]["requestBody"]["content"]


def test_metrics_parse_as_prometheus_text(served):
    from prometheus_client.parser import text_string_to_metric_families

    client, _, _ = served
    client.post("/predict", content=_rows(7, seed=1).to_csv(index=False), headers={"content-type": "text/csv"})
    client.post("/predict", content=b"[1]", headers={"content-type": "application/json"})
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(family, suffix=""):
        return [s for s in families[family].samples if s.name == family + suffix]

    requests = {(s.labels["endpoint"], s.labels["status"]): s.value for s in samples("dsagent_requests", "_total")}
    assert requests[("/predict", "200")] >= 1 and requests[("/predict", "422")] >= 1
    errors = {(s.labels["endpoint"], s.labels["status"]): s.value for s in samples("dsagent_request_errors", "_total")}
    assert errors[("/predict", "422")] >= 1 and ("/predict", "200") not in errors
    latency_count = {s.labels["endpoint"]: s.value for s in samples("dsagent_request_latency_seconds", "_count")}
    assert latency_count["/predict"] >= 2
    rows = samples("dsagent_rows_scored", "_total")[0].value
    by_class = {s.labels["prediction"]: s.value for s in samples("dsagent_predictions", "_total")}
    assert rows >= 7 and sum(by_class.values()) == rows and set(by_class) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert samples("dsagent_fallback_rows", "_total")[0].value == 0


def test_monitor_from_log_flags_drift_in_served_traffic(served, tmp_path):
    client, session, _ = served
    since = pd.Timestamp.now(tz="UTC").isoformat()
    drifted = pd.read_csv(DATA).sample(200, replace=True, random_state=2)
    drifted["bill_length_mm"] = drifted["bill_length_mm"] * 1.6
    drifted["flipper_length_mm"] = drifted["flipper_length_mm"] + 40
    drifted["body_mass_g"] = drifted["body_mass_g"] * 1.8
    for start in range(0, len(drifted), 50):
        chunk = drifted.iloc[start:start + 50]
        assert client.post("/predict", content=chunk.to_csv(index=False), headers={"content-type": "text/csv"}).status_code == 200

    from dsagent.tools.traffic import served_rows

    deadline = time.monotonic() + 15  # the log is flushed every 2 s
    while time.monotonic() < deadline:
        try:
            if len(served_rows(session, since)) >= len(drifted):
                break
        except Exception:
            pass
        time.sleep(0.3)
    logged = served_rows(session, since)
    assert len(logged) == len(drifted) and "species" in logged.columns  # labels sent along are kept

    cmd = [sys.executable, "-m", "dsagent.cli", "monitor", str(session), "--from-log", "--since", since, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode in (3, 4), proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] != "ok" and report["rows"] == len(drifted)
    assert report["features"]["flipper_length_mm"]["status"] == "alert"


def test_bad_model_and_monitor_usage_are_one_line_errors(offline_run, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nowhere"), "--port", "0"]) == 2
    assert main(["monitor", offline_run.session_dir]) == 2  # neither a file nor --from-log
    assert main(["monitor", offline_run.session_dir, "--from-log", "--since", "yesterday"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "no model or session" in err[0] and "--from-log" in err[1] and "ISO" in err[2]


def test_rows_the_model_cannot_score_get_the_fallback_and_are_counted(offline_run):
    """A model that raises on one row: the rest of the batch is still scored, that row gets the
    fallback answer (the answers key `fallback` of the shared run: Adelie), is listed, and the
    model card says what such rows get."""
    from dsagent.tools.service import ServedModel

    card = Path(offline_run.artifacts["model_card"]).read_text()
    assert "When the model cannot score a row" in card and "`Adelie`" in card
    served = ServedModel(offline_run.session_dir, log=False)
    assert served.metadata()["fallback"] == "Adelie"
    real = served.model

    class Choking:  # the real pipeline, except on one bill length
        def predict_proba(self, X):
            if (X["bill_length_mm"] == 99.9).any():
                raise ValueError("cannot score this row")
            return real.predict_proba(X)

    rows = _rows(6)
    rows.iloc[2, rows.columns.get_loc("bill_length_mm")] = 99.9
    expected = json.loads(served.score(rows.drop(index=rows.index[2]).to_csv(index=False).encode(), "csv")["predictions_json"])
    served.model = Choking()
    result = served.score(rows.to_csv(index=False).encode(), "csv")
    predictions = json.loads(result["predictions_json"])
    assert result["fallback_rows"] == [2] and result["rows"] == 6
    assert predictions[2]["prediction"] == "Adelie" and predictions[2]["proba_Adelie"] is None
    assert [p for i, p in enumerate(predictions) if i != 2] == expected


def test_an_unusable_fallback_is_noted_and_answered_as_null():
    from dsagent.tools.fallback import normalize

    assert normalize("Emperor", "multiclass", ["Adelie", "Gentoo"])[0] is None
    assert "not one of the classes" in normalize("Emperor", "multiclass", ["Adelie", "Gentoo"])[1]
    assert normalize(1.0, "binary", ["0", "1"]) == ("1", None)
    assert normalize("2.5", "regression", None) == (2.5, None)


def test_the_log_frame_is_assembled_at_flush_not_in_the_request(tmp_path):
    """A request hands the log a builder; the frame is built by the flush (off the request's path)."""
    from dsagent.tools.traffic import TrafficLog, read_traffic

    built: list[int] = []
    log = TrafficLog(tmp_path)
    log.append(lambda: built.append(1) or pd.DataFrame({"a": [1, 2]}), n_rows=2)
    assert built == []
    log.flush()
    assert built == [1] and read_traffic(tmp_path)["a"].tolist() == [1, 2]
