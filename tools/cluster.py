"""Dask clusters (`--cluster local[:N]|tcp://HOST:PORT`) and shared Optuna storage (`--tuning-storage`).

First slice of issue 23: the cluster runs tuning trials. `local[:N]` starts a LocalCluster of N
worker processes on 127.0.0.1 for the length of the run; `tcp://HOST:PORT` connects to a scheduler
someone already runs. Every worker must run the same xgboost, scikit-learn and dsagent as the
client (a model tuned on one version and refit on another is not the model that was scored), so
`check_versions` refuses a cluster that differs.

Dask and Optuna are imported inside the functions: without --cluster nothing here is loaded.
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from dsagent.tools.registry import ToolError

DEFAULT_LOCAL_WORKERS = 2
CONNECT_TIMEOUT_S = 15
# The packages whose versions must match between the client and every worker.
MUST_MATCH = ("dsagent", "xgboost", "scikit-learn")
REPORTED = MUST_MATCH + ("optuna", "pandas", "numpy", "dask", "distributed")
# Test hook: "package=version,..." overrides what versions() reports in this process. The tests
# start a real worker with it set to simulate a worker installed with other versions.
VERSIONS_OVERRIDE_ENV = "DSAGENT_TEST_REPORT_VERSIONS"
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")


class ClusterError(ToolError):
    """The cluster address, the cluster itself or the tuning storage cannot be used (one line)."""


# ---------------------------------------------------------------------------------------------
# Addresses and storage URLs (checked before anything starts)


def parse_cluster(value: str) -> tuple[str, int | str]:
    """("local", n_workers) or ("tcp", "tcp://host:port"). Raises ClusterError on anything else."""
    text = str(value).strip()
    m = re.fullmatch(r"local(?::(\d+))?", text)
    if m:
        n = int(m.group(1)) if m.group(1) else DEFAULT_LOCAL_WORKERS
        if n < 1:
            raise ClusterError(f"cluster {text!r}: a local cluster needs at least 1 worker; use local:N with N >= 1")
        return "local", n
    if re.fullmatch(r"tcp://[A-Za-z0-9.\-\[\]:]+:\d{1,5}", text):
        return "tcp", text
    raise ClusterError(f"cluster {text!r} is not an address dsagent understands; use local, local:N "
                       "(N worker processes on this machine) or tcp://HOST:PORT (an existing Dask scheduler)")


def parse_storage(value: str) -> tuple[str, str]:
    """("journal", absolute path) or ("rdb", url). A bare path or journal:PATH is a journal file."""
    text = str(value).strip()
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    if scheme in _RDB_SCHEMES:
        check_driver(text)
        return "rdb", text
    if scheme and scheme != "journal":
        raise ClusterError(f"tuning storage {text!r}: unknown scheme {scheme!r}; use a journal file path "
                           "(journal:///path/study.log) or a database URL (postgresql://..., sqlite:///...)")
    path = text.split("://", 1)[1] if scheme else text.removeprefix("journal:")
    if not path:
        raise ClusterError("tuning storage: empty journal path; give a file such as journal:///shared/study.log")
    p = Path(path).expanduser().absolute()
    if not p.parent.is_dir():
        raise ClusterError(f"tuning storage {text!r}: directory {p.parent} does not exist; create it "
                           "(on a file system every worker can reach) or choose another path")
    return "journal", str(p)


def check_driver(url: str) -> None:
    """A PostgreSQL URL whose driver is missing, or written postgres:// (which SQLAlchemy 2 refuses),
    is one line of bad input here rather than a traceback from inside Optuna in the tool worker."""
    scheme = url.split("://", 1)[0].lower()
    if scheme.split("+", 1)[0] == "postgres":
        raise ClusterError("tuning storage: SQLAlchemy does not accept postgres://; write the URL as postgresql://...")
    if scheme.split("+", 1)[0] != "postgresql":
        return
    driver = scheme.split("+", 1)[1] if "+" in scheme else "psycopg"  # SQLAlchemy >= 2.1's default
    module = {"psycopg": "psycopg", "psycopg2": "psycopg2", "asyncpg": "asyncpg", "pg8000": "pg8000"}.get(driver, driver)
    try:
        __import__(module)
    except ImportError:
        raise ClusterError(f"tuning storage {scheme}://...: the PostgreSQL driver {module} is not installed; "
                           "pip install 'dsagent[postgres]' (on this machine and every Dask worker)") from None


def make_storage(spec: tuple[str, str]) -> Any:
    """The Optuna storage for a parsed spec; each process (client or worker) builds its own."""
    import optuna

    kind, where = spec
    if kind == "rdb":
        return optuna.storages.RDBStorage(where)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(where))


# ---------------------------------------------------------------------------------------------
# Versions


def versions() -> dict[str, str]:
    """This process's versions of the packages that matter (the override env var is a test hook)."""
    out = {"python": platform.python_version()}
    for name in REPORTED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            # xgboost ships as xgboost-cpu here; the import name is what matters
            alt = {"xgboost": "xgboost-cpu"}.get(name)
            try:
                out[name] = metadata.version(alt) if alt else "missing"
            except metadata.PackageNotFoundError:
                out[name] = "missing"
    for item in filter(None, os.environ.get(VERSIONS_OVERRIDE_ENV, "").split(",")):
        key, _, val = item.partition("=")
        out[key.strip()] = val.strip()
    return out


def describe(client: Any) -> dict[str, Any]:
    """The scheduler, its workers (address, host, threads, memory limit, versions) and the client's
    versions, with the mismatches in MUST_MATCH listed."""
    info = client.scheduler_info()
    worker_versions = client.run(versions)
    mine = versions()
    workers, mismatches = [], []
    for address, w in sorted(info.get("workers", {}).items()):
        v = worker_versions.get(address, {})
        workers.append({"address": address, "host": w.get("host"), "threads": w.get("nthreads"),
                        "memory_limit": w.get("memory_limit"), "versions": v})
        for name in MUST_MATCH:
            if v.get(name) != mine.get(name):
                mismatches.append({"worker": address, "package": name, "worker_version": v.get(name),
                                   "client_version": mine.get(name)})
    return {"scheduler": info.get("address"), "workers": workers, "client_versions": mine, "mismatches": mismatches}


def check_versions(described: dict[str, Any]) -> None:
    bad = described["mismatches"]
    if bad:
        m = bad[0]
        more = f" (and {len(bad) - 1} more difference(s))" if len(bad) > 1 else ""
        raise ClusterError(f"cluster worker {m['worker']} has {m['package']} {m['worker_version']} but this client has "
                           f"{m['client_version']}{more}; install the same xgboost, scikit-learn and dsagent versions "
                           "on every worker (see `dsagent doctor --cluster ADDRESS`)")
    if not described["workers"]:
        raise ClusterError(f"the cluster at {described['scheduler']} has no workers; start some, then run again")


# ---------------------------------------------------------------------------------------------
# Starting and connecting


def connect(address: str) -> Any:
    """A Dask client of the session's scheduler (a tool's own connection: the run holds the cluster)."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("--cluster needs Dask: pip install 'dsagent[dask]'") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {str(exc).splitlines()[0][:200]}; "
                           "check that it still runs") from None


class Cluster:
    """A connected Dask client, and the LocalCluster behind it when dsagent started one.

    Use as a context manager; `address` is the scheduler's tcp:// address the tool worker connects to.
    """

    def __init__(self, value: str, *, worker_env: dict[str, str] | None = None):
        kind, arg = parse_cluster(value)
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ClusterError("--cluster needs Dask: pip install 'dsagent[dask]'") from None
        self.local = None
        try:
            if kind == "local":
                # One thread per worker process: trials are CPU-bound Python (the GIL) and each fold
                # already uses the cores it is given. No dashboard: nothing listens beyond the workers.
                self.local = LocalCluster(n_workers=int(arg), threads_per_worker=1, processes=True, host="127.0.0.1",
                                          dashboard_address=None, env=dict(worker_env or {}))
                self.client = Client(self.local, timeout=CONNECT_TIMEOUT_S)
            else:
                self.client = Client(str(arg), timeout=CONNECT_TIMEOUT_S)
        except ClusterError:
            raise
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {arg}: {str(exc).splitlines()[0][:200] or type(exc).__name__}; "
                               "check that it runs and the address is right") from None
        self.address = self.client.scheduler.address

    def addresses(self) -> list[str]:
        """The scheduler's and its workers' addresses now: the tool worker's TCP may reach these only."""
        return [self.address, *self.client.scheduler_info().get("workers", {})]

    def close(self) -> None:
        for thing in (getattr(self, "client", None), self.local):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing is best effort: the run's result is already saved
                    pass
        self.local = None

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
