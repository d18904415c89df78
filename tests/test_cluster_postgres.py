"""A shared Optuna study in a real PostgreSQL server (tests/pg_server.py starts and stops it), tuned
by a real LocalCluster from the real CLI in a subprocess: both workers' trials land in one study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import pg_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


@pytest.fixture(scope="module")
def pg_url():
    try:
        with pg_server.postgres() as url:
            yield url
    except pg_server.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")


def test_cluster_tuning_writes_both_workers_trials_into_one_postgres_study(pg_url, tmp_path):
    """`cluster: local:2` and `tuning_storage: postgresql://...` as given to a session (the answers
    keys behind --cluster / --tuning-storage): dsagent starts the LocalCluster, its sandboxed tool
    worker creates the study in the server and both Dask workers run trials into it. (A whole
    `dsagent run` takes ~55 s here and skips tuning under a small budget; the CLI flags map to these
    same keys, tests/test_cluster.py checks that.)"""
    import optuna

    from dsagent.answers import Answers
    from dsagent.sandbox.landlock import landlock_abi
    from dsagent.tasks import DirectSession

    ds = DirectSession(tmp_path / "sessions", EXAMPLE, roots=[EXAMPLE.parent], time_budget=60,
                       answers=Answers(target="species", cluster="local:2", tuning_storage=pg_url))
    try:
        assert ds.call("define_task", {"target": "species"})["ok"]
        result = ds.call("tune_model", {"family": "linear", "n_trials": 4})
        meta = json.loads((ds.session.dir / "session.json").read_text())
        landlock = ds.runner.worker.layers.get("landlock", {})
    finally:
        ds.close()
    assert result["ok"], result.get("error")
    summary = json.loads(result["content"])
    assert meta["tuning_storage"] == pg_url and summary["trials"] == {"complete": 4}
    assert pg_url in summary["study"]
    # The study lives in the server, not in the session: four complete trials, two from each worker.
    storage = optuna.storages.RDBStorage(pg_url)
    names = optuna.get_all_study_names(storage)
    assert len(names) == 1, names
    trials = optuna.load_study(study_name=names[0], storage=storage).trials
    ran_on = [t.user_attrs.get("worker") for t in trials]
    assert len(ran_on) == 4 and len(set(ran_on)) == 2 and all(ran_on.count(w) == 2 for w in set(ran_on)), ran_on
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert summary["cluster"]["trials_by_worker"] == {w: 2 for w in set(ran_on)}
    # Where Landlock has network rules, the sandboxed tool worker could reach only the scheduler's,
    # the workers' and the database's ports (tests/test_layers.py shows another port is refused).
    if landlock.get("active") and landlock_abi() >= 4:
        ports = sorted({int(a.rsplit(":", 1)[1]) for a in [meta["cluster"]["scheduler"], *set(ran_on), pg_url.split("/")[2]]})
        assert f"TCP connect only to ports {','.join(map(str, ports))}" in landlock["reason"], landlock


@pytest.mark.parametrize("url, hide_driver, says", [
    ("postgresql://u@127.0.0.1:1/db", True, "the PostgreSQL driver psycopg is not installed; pip install 'dsagent[postgres]'"),
    ("postgres://u@127.0.0.1:1/db", False, "write the URL as postgresql://"),
])
def test_an_unusable_postgres_url_is_one_line_of_bad_input(url, hide_driver, says, tmp_path):
    """No server needed: the URL is refused before a session exists (exit 2, one line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_CLUSTER"))}
    if hide_driver:  # a psycopg that cannot be imported, ahead of the installed one
        (tmp_path / "hide").mkdir()
        (tmp_path / "hide" / "psycopg.py").write_text("raise ImportError('hidden by the test')\n")
        env["PYTHONPATH"] = str(tmp_path / "hide")
    done = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "species",
                           "--backend", "offline", "--tuning-storage", url, "--sessions-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
