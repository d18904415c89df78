"""A third-party package adds a model family through entry points, with no edit to dsagent:
installed into a temp venv (reusing this environment's packages), `dsagent tools` lists it with
its package and `dsagent run` trains it through the autopilot."""

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugins" / "dsagent-knn"


def _plugin_venv(tmp_path: Path) -> Path:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    site = next((env_dir / "lib").glob("python*/site-packages"))
    deps = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    # addsitedir (not a plain path line) also runs that directory's .pth files: dsagent's editable install.
    (site / "zz_project_deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    python = env_dir / "bin" / "python"
    # A regular (not editable) install from a copy: the sandboxed worker sees site-packages, not the
    # checkout's examples/, and the build leaves nothing in the source tree.
    source = shutil.copytree(PLUGIN, tmp_path / "plugin")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", str(source)], check=True, capture_output=True, cwd=tmp_path)
    return python


def test_installed_family_plugin_is_listed_and_trained(tmp_path):
    python = _plugin_venv(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    listing = subprocess.run([str(python), "-m", "dsagent.cli", "tools"], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=60)
    assert listing.returncode == 0, listing.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines() if line.startswith("  ")}
    assert rows["knn"] == "dsagent-knn" and rows["xgboost"] == "dsagent"

    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    data = tmp_path / "blobs.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")}).to_csv(data, index=False)
    run = subprocess.run([str(python), "-m", "dsagent.cli", "run", str(data), "--target", "y", "--backend", "offline",
                          "--time-budget", "20", "--max-trials", "1", "--sessions-dir", str(tmp_path / "s"), "--json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    board = json.loads((Path(result["session_dir"]) / "artifacts" / "leaderboard.json").read_text())
    knn = next((r for r in board if r["family"] == "knn"), None)
    assert knn is not None, (board, run.stderr[-3000:])
    assert knn["cv_mean"] > 0.9  # roc_auc on a linearly separable pair of blobs
