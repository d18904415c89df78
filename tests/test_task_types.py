"""Task types as plugins: the built-ins arrive through the `dsagent.task_types` entry points like a
plugin's, `dsagent tools` lists them with their package, and the CLI accepts what is installed."""

import subprocess
import sys


def test_dsagent_tools_lists_task_types_with_their_package(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dsagent.cli", "tools"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    section = out.stdout.split("task types:")[1].split("model families:")[0]
    rows = {line.split()[0]: line.split()[1] for line in section.splitlines() if line.startswith("  ")}
    assert rows == {name: "dsagent" for name in ("binary", "multiclass", "regression", "clustering", "anomaly", "forecast", "ranking")}


def test_unknown_task_is_one_line_bad_input(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,y\n1,2\n3,4\n")
    (tmp_path / "answers.yaml").write_text("task: quantile\n")
    out = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(data), "--target", "y", "--backend", "offline",
                          "--answers", str(tmp_path / "answers.yaml"), "--sessions-dir", str(tmp_path / "s")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "unknown task 'quantile'" in out.stderr and "Traceback" not in out.stderr, out.stderr
