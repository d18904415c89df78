"""The wheel must carry agent/, tools/ and personas/*.md, and its console script must start.

Setuptools' automatic discovery refuses this flat layout and a narrowed `find` can silently drop
`tools`; this test builds the wheel, installs it (without dependencies: no network) into a clean
venv, and runs `dsagent --help` and `dsagent tools` from outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_runs(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("dsagent-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("agent/cli.py", "agent/backends/autopilot.py", "tools/registry.py", "tools/train.py",
                     "personas/data-scientist.md", "personas/ml-engineer.md"):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    # Dependencies come from the project's environment; the project source itself must not be
    # importable (cwd is outside the checkout and only site-packages are on the path).
    deps = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    pth = next((env_dir / "lib").glob("python*/site-packages"))
    (pth / "zz_project_deps.pth").write_text(str(deps) + "\n")  # appended after the wheel's own files
    exe = env_dir / "bin" / "dsagent"
    for args in (["--help"], ["tools"]):
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
    where = subprocess.run([str(py), "-c", "import agent, tools; print(agent.__file__, tools.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env)
    assert str(ROOT) not in where.stdout and "site-packages" in where.stdout
