"""--cluster and --tuning-storage against real Dask clusters started by the tests (processes on
127.0.0.1), the real sandboxed tool worker and the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from dsagent.answers import Answers  # noqa: E402
from dsagent.tools.cluster import VERSIONS_OVERRIDE_ENV, parse_cluster, versions  # noqa: E402
from dsagent.tools.cluster_tune import shares  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


def start_cluster(n: int, env: dict[str, str] | None = None):
    return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None, env=env or {})


def cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_CLUSTER"))}
    return subprocess.run([sys.executable, "-m", "dsagent.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**base, **(env or {})}, timeout=timeout)


def test_tuning_trials_run_on_both_workers_into_one_shared_study(tmp_path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from dsagent.tasks import DirectSession

    journal = tmp_path / "shared" / "study.log"
    journal.parent.mkdir()
    with start_cluster(2) as lc:
        workers = set(lc.scheduler_info["workers"])
        # The direct-call session (MCP's direct tools) with the cluster given as an answer; the study
        # file must lie under a data root (its directory becomes writable in the sandbox).
        ds = DirectSession(tmp_path / "sessions", EXAMPLE, roots=[EXAMPLE.parent, journal.parent], time_budget=60,
                           answers=Answers(target="species", cluster=lc.scheduler_address,
                                           tuning_storage=f"journal://{journal}"))
        try:
            assert ds.call("define_task", {"target": "species"})["ok"]
            result = ds.call("tune_model", {"family": "linear", "n_trials": 4})
            layers = ds.runner.worker.layers
        finally:
            ds.close()
        # A scripted run given the cluster records it, and says in session.json that the tool
        # worker's network is not confined (it must reach the scheduler).
        from dsagent.runtime import Run, RunOptions

        run = Run(RunOptions(data=EXAMPLE, target="species", backend="offline", sessions_dir=tmp_path / "runs",
                             cluster=lc.scheduler_address))
        run.close()
        meta = json.loads((run.session.dir / "session.json").read_text())
        assert meta["cluster"] == {"given": lc.scheduler_address, "scheduler": lc.scheduler_address}
        assert not any("network" in info.get("confines", []) for info in meta["sandbox"].values())
        assert any("network NOT confined" in info.get("reason", "") for info in meta["sandbox"].values())
    assert result["ok"], result.get("error")
    summary = json.loads(result["content"])
    assert summary["trials"] == {"complete": 4}
    assert str(journal) in summary["study"]
    # The shared journal holds the study: four trials, two from each worker of the cluster.
    study = optuna.load_study(study_name=optuna.get_all_study_names(JournalStorage(JournalFileBackend(str(journal))))[0],
                              storage=JournalStorage(JournalFileBackend(str(journal))))
    ran_on = [t.user_attrs.get("worker") for t in study.trials]
    assert len(ran_on) == 4 and set(ran_on) == workers and all(ran_on.count(w) == 2 for w in workers)
    assert summary["cluster"]["trials_by_worker"] == {w: 2 for w in workers}
    # A valid leaderboard row for the tuned model, scored out of fold.
    board = json.loads((ds.session.artifacts_dir / "leaderboard.json").read_text())
    board = board if isinstance(board, list) else board.get("rows", board.get("leaderboard"))
    row = next(r for r in board if r["name"] == "linear_tuned")
    assert row["cv_mean"] == pytest.approx(study.best_value, rel=1e-6) and row["trials"] == 4
    # The tool worker had to reach the scheduler: its layers say the network was not confined.
    assert not any("network" in info.get("confines", []) for info in layers.values())


def test_doctor_shows_a_local_cluster_and_its_workers():
    proc = cli("doctor", "--cluster", "local:1", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cluster = json.loads(proc.stdout)["cluster"]
    assert cluster["scheduler"].startswith("tcp://127.0.0.1:") and len(cluster["workers"]) == 1
    worker = cluster["workers"][0]
    assert worker["memory_limit"] > 0 and worker["threads"] == 1
    assert worker["versions"]["xgboost"] == versions()["xgboost"] and not cluster["mismatches"]


def test_doctor_refuses_a_worker_with_another_xgboost():
    # The worker reports versions through dsagent.tools.cluster.versions(), whose env var
    # DSAGENT_TEST_REPORT_VERSIONS is a test hook: a real worker process that says it has another xgboost.
    with start_cluster(1, env={VERSIONS_OVERRIDE_ENV: "xgboost=0.0.1"}) as lc:
        proc = cli("doctor", "--cluster", lc.scheduler_address)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "xgboost 0.0.1" in lines[0] and "same xgboost, scikit-learn and dsagent versions" in lines[0]
    assert "xgboost 0.0.1" in proc.stdout  # the workers were listed before the refusal


@pytest.mark.parametrize("args, env, says", [
    (["--cluster", "yarn://somewhere"], {}, "not an address dsagent understands"),
    ([], {"DSAGENT_CLUSTER": "spark"}, "not an address dsagent understands"),
    (["--tuning-storage", "ftp://host/study"], {}, "unknown scheme 'ftp'"),
])
def test_bad_cluster_or_storage_is_bad_input(args, env, says, tmp_path):
    proc = cli("run", str(EXAMPLE), "--target", "species", "--backend", "offline", "--sessions-dir", str(tmp_path),
               *args, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())  # checked before a session exists


@pytest.mark.parametrize("given, says", [(Answers(cluster="local:0"), "at least 1 worker"),
                                         (Answers(tuning_storage="/no/such/dir/study.log"), "does not exist")])
def test_answers_naming_an_unusable_cluster_or_storage_are_bad_input(given, says):
    from dsagent.answers import BadInput
    from dsagent.runtime import cluster_settings

    with pytest.raises(BadInput, match=says):
        cluster_settings(given)


def test_a_study_file_outside_the_mcp_roots_is_refused(tmp_path):
    # Its directory would become writable in the sandbox: a client confined to roots may not pick it.
    from dsagent.answers import BadInput
    from dsagent.runtime import cluster_settings

    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(BadInput, match="outside the allowed data roots"):
        cluster_settings(Answers(tuning_storage=str(tmp_path / "elsewhere" / "s.log")), roots=[tmp_path / "root"])
    assert cluster_settings(Answers(tuning_storage=str(tmp_path / "root" / "s.log")), roots=[tmp_path / "root"])[1] == \
        f"journal://{tmp_path / 'root' / 's.log'}"


def test_addresses_and_trial_shares():
    assert parse_cluster("local") == ("local", 2) and parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("tcp", "tcp://10.0.0.5:8786")
    assert shares(4, 2) == [2, 2] and shares(5, 2) == [3, 2] and shares(1, 3) == [1, 0, 0] and shares(None, 2) == [None, None]
