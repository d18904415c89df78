"""The wheel must carry one package, dsagent (agent/, tools/, personas/*.md), and its console script must start.

Setuptools' automatic discovery refuses this flat layout and a narrowed `find` can silently drop
`tools`; this test builds the wheel, installs it (without dependencies: no network) into a clean
venv, and runs `dsagent --help` and `dsagent tools` from outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_runs(tmp_path):
    dist = tmp_path / "dist"
    # Built from a copy: a build/ folder left in the checkout by an older layout would leak stale
    # packages into the wheel.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "sessions", "*.egg-info",
                                                              "__pycache__", "benchmarks", "docs"))
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("dsagent-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("dsagent/cli.py", "dsagent/backends/autopilot.py", "dsagent/tools/registry.py",
                     "dsagent/tools/train.py", "dsagent/personas/data-scientist.md", "dsagent/personas/ml-engineer.md"):
        assert required in names, required
    # One import package: embedded in-process, dsagent must not shadow a host's `agent` or `tools`.
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"dsagent"}, top_level

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
    where = subprocess.run([str(py), "-c", "import dsagent.tools; from dsagent import run_task; "
                            "print(dsagent.__file__, dsagent.tools.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stderr[-2000:]
    assert str(ROOT) not in where.stdout and "site-packages" in where.stdout
    for name in ("agent", "tools", "personas"):  # nothing else the wheel could have installed
        gone = subprocess.run([str(py), "-c", f"import {name}"], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert gone.returncode != 0, f"the wheel installed a top-level {name!r} package"


def test_editable_install_imports_the_same_names():
    """The checkout's editable install maps agent/, tools/ and personas/ into `dsagent` too."""
    code = ("import dsagent, dsagent.tools.train, dsagent.backends.autopilot, dsagent.personas; "
            "from dsagent import run_task, Assistant, as_anthropic_tool; "
            "from importlib import resources; "
            "print(sorted(p.name for p in resources.files('dsagent.personas').iterdir() if p.name.endswith('.md')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "data-scientist.md" in proc.stdout
