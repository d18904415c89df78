"""`dsagent serve`: a saved model behind HTTP (FastAPI on uvicorn).

POST /predict (JSON records or CSV), GET /health /ready /metadata /metrics, and the OpenAPI page
(/docs, /openapi.json); a forecast model answers POST /forecast instead (the served class its task
type names: dsagent.tools.forecast.service). This module is only the web layer: it reads bodies
(refusing oversize ones with 413 before they are in memory), maps bad input to a 4xx with a
one-line reason, and counts things for Prometheus. Scoring, schema checks and the traffic log are dsagent.tools.service,
so no pandas or scikit-learn is imported here.

With --workers N > 1, uvicorn starts N processes that each load the model (`app_from_env`) and
share one listening socket; Prometheus metrics then go through prometheus_client's multiprocess
mode so /metrics sums all workers whichever one answers.

A session's server can move to another model version while it runs: `POST /admin/version`
with {"version": "v2"}, accepted from this machine only (the loopback address). No request is
dropped: see dsagent.tools.service. With N workers, the one that takes the switch writes the
version's name to a file they share (`Follower`), and every worker reads it before its next
request and switches too.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from dsagent.answers import BadInput

DEFAULT_MAX_BODY_MB = 32.0
ENV_CONFIG = "DSAGENT_SERVE_CONFIG"  # how the parent hands its options to worker processes
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "text/tab-separated-values")
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "application/json-lines")

PREDICT_BODY = {  # the body is read raw (size limit, CSV); this tells the OpenAPI page what it takes
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                             "example": [{"column": "value"}]},
        "text/csv": {"schema": {"type": "string"}, "example": "column_a,column_b\n1,x\n"},
    },
}
FORECAST_BODY = {  # optional: no body forecasts from the history the model saved
    "required": False,
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                             "example": [{"time": "2024-01-01", "series": "a", "target": 1.0}]},
        "text/csv": {"schema": {"type": "string"}, "example": "time,series,target\n2024-01-01,a,1.0\n"},
    },
}
FORECAST_PARAMS = [
    {"name": "horizon", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
     "description": "steps ahead (default and maximum: the trained horizon)"},
    {"name": "series", "in": "query", "required": False, "schema": {"type": "array", "items": {"type": "string"}},
     "description": "keep these series ids (several series columns: values joined by ' | ')"},
]
EXPLAIN_PARAM = {"name": "explain", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
                 "description": "add `explanations` (per-row feature contributions) and `explanation` (the method)"}


class Metrics:
    def __init__(self, multiprocess: bool, classes: list[Any] | None):
        # Multiprocess mode: values live in files under PROMETHEUS_MULTIPROC_DIR and are summed at
        # scrape time, so the metrics are not registered anywhere (registry=None).
        self.multiprocess = multiprocess
        self.registry = None if multiprocess else CollectorRegistry()
        reg = {"registry": self.registry}
        self.requests = Counter("dsagent_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], **reg)
        self.errors = Counter("dsagent_request_errors", "requests answered with a 4xx or 5xx", ["endpoint", "status"], **reg)
        self.latency = Histogram("dsagent_request_latency_seconds", "request latency", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, **reg)
        self.rows = Counter("dsagent_rows_scored", "rows scored by the model or the fallback", **reg)
        self.fallback = Counter("dsagent_fallback_rows", "rows the model could not score (fallback answer)", **reg)
        # Prediction distribution: a count per class (classifiers) or a histogram (regression).
        self.classes = classes
        if classes:
            self.predicted = Counter("dsagent_predictions", "predictions by class", ["prediction"], **reg)
        else:
            self.predicted = Histogram("dsagent_prediction_value", "predicted values", **reg)

    def observe_predictions(self, labels: list[Any]) -> None:
        if self.classes:
            for label in labels:
                self.predicted.labels(prediction=str(label)).inc()
        else:
            for value in labels:
                if value is not None:
                    self.predicted.observe(float(value))

    def exposition(self) -> bytes:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (declared length or
    bytes received), so an oversize upload is never held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f"the body is {int(declared):,} bytes, over the limit of {limit:,}; "
                                         "send fewer rows per request (or raise --max-body-mb)")
        except ValueError:
            raise HTTPException(400, "the Content-Length header is not a number") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is over the limit of {limit:,} bytes; send fewer rows per request "
                                     "(or raise --max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


def _body_format(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in JSON_TYPES or kind.endswith("+json"):
        return "json"
    if kind in CSV_TYPES:
        return "csv"
    raise HTTPException(415, f"unsupported Content-Type {kind or '(none)'!r}; send application/json (an array of "
                             "records) or text/csv (a header row and rows)")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class Follower:
    """--workers N: keeps this worker on the version named in a file all workers share.

    Checking costs one stat() per request (the file's inode and mtime change with every switch,
    since it is replaced, never rewritten). A worker switches before answering its first request
    after the file changed; requests already in flight finish on the version they started on."""

    def __init__(self, served, path: str):
        import asyncio

        self.served, self.path, self.lock = served, path, asyncio.Lock()
        self.seen: tuple[int, int] | None = None  # a worker uvicorn restarts catches up on its first request

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    async def sync(self) -> None:
        if self._stamp() == self.seen:
            return
        async with self.lock:  # one switch per change, however many requests arrive meanwhile
            stamp = self._stamp()
            if stamp == self.seen:
                return
            with open(self.path, encoding="utf-8") as fh:
                name = fh.read().strip()
            if name and name != self.served.model_version:
                try:
                    await run_in_threadpool(self.served.switch, name)
                except Exception as exc:  # the worker that published it loaded it fine; keep answering
                    print(f"warning: worker {os.getpid()} could not switch to {name}: {_one_line(exc)}",
                          file=sys.stderr, flush=True)
            self.seen = stamp

    def publish(self, name: str) -> None:
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(name)
        os.replace(tmp, self.path)
        self.seen = self._stamp()


def create_app(served, *, max_body_bytes: int, multiprocess: bool = False, switch_file: str | None = None) -> FastAPI:
    """The app around one loaded `dsagent.tools.service.ServedModel`."""
    from dsagent.tools.registry import ToolError

    metrics = Metrics(multiprocess, served.manifest.get("classes"))
    follower = Follower(served, switch_file) if switch_file else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if served.log is not None:
            served.log.start()
        try:
            yield
        finally:  # graceful shutdown (Ctrl-C, SIGTERM): the last requests reach the log
            if served.shadow is not None:
                served.shadow.close()
            if served.log is not None:
                served.log.close()

    app = FastAPI(title="dsagent serve", version=served.version or "unknown", lifespan=lifespan,
                  description=f"{served.manifest.get('model')} predicting {served.manifest.get('target')!r} "
                              f"({served.manifest.get('task')}). Same columns and checks as `dsagent predict`.")

    @app.middleware("http")
    async def count(request: Request, call_next):
        start = time.perf_counter()
        if follower is not None:
            await follower.sync()
        try:
            response = await call_next(request)
            status = response.status_code
        except Exception:  # never reached for handled errors; a bug still gets a clean 500
            response, status = JSONResponse({"detail": "internal error while answering; see the server log"}, 500), 500
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "other")  # unmatched paths share one label (bounded cardinality)
        metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)
        metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
        if status >= 400:
            metrics.errors.labels(endpoint=endpoint, status=str(status)).inc()
        return response

    @app.exception_handler(HTTPException)
    async def one_line_error(request: Request, exc: HTTPException):
        return JSONResponse({"detail": _one_line(exc.detail)}, status_code=exc.status_code)

    @app.post("/predict", openapi_extra={"requestBody": PREDICT_BODY, "parameters": [EXPLAIN_PARAM]},
              summary="score rows: one prediction per row, in order (plus proba_<class> for classifiers; "
                      "?explain=true adds per-row contributions)")
    async def predict(request: Request) -> Response:
        fmt = _body_format(request.headers.get("content-type"))
        body = await _read_body(request, max_body_bytes)
        try:
            explain = request.query_params.get("explain", "false").lower() in ("1", "true", "yes")
            result = await run_in_threadpool(served.score, body, fmt, explain)
        except ToolError as exc:  # unreadable body, missing columns, no rows: the caller's to fix
            raise HTTPException(422, _one_line(exc)) from None
        except Exception as exc:
            raise HTTPException(500, f"could not score the rows ({type(exc).__name__}: "
                                     f"{_one_line(exc)[:200]})") from None
        metrics.rows.inc(result["rows"])
        metrics.fallback.inc(len(result["fallback_rows"]))
        metrics.observe_predictions(result.pop("labels"))
        records = result.pop("predictions_json")
        head = json.dumps(result, default=str)
        return Response(f'{head[:-1]}, "predictions": {records}}}', media_type="application/json")

    if "/forecast" in getattr(served, "routes", ()):
        _forecast_route(app, served, metrics, max_body_bytes)

    @app.post("/admin/version", summary="answer with another version of the session's model (loopback only)")
    async def switch_version(request: Request) -> dict[str, Any]:
        from dsagent.tools.service import SwitchRefused

        if (request.client.host if request.client else None) not in LOOPBACK:
            raise HTTPException(403, "switching versions is allowed from this machine only (127.0.0.1)")
        try:
            wanted = json.loads(await _read_body(request, 4096) or b"{}").get("version")
        except (ValueError, AttributeError):
            wanted = None
        if not isinstance(wanted, str):
            raise HTTPException(422, 'send {"version": "v2"} (a version from `dsagent models SESSION`)')
        try:
            switched = await run_in_threadpool(served.switch, wanted)
            if follower is not None:  # the other workers follow before their next request
                follower.publish(wanted)
            return switched
        except SwitchRefused as exc:
            raise HTTPException(409, _one_line(exc)) from None
        except ToolError as exc:  # an unknown version or a model file that fails its checks
            raise HTTPException(404, _one_line(exc)) from None

    @app.get("/health", summary="the process is up")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/ready", summary="the model is loaded and can score")
    async def ready() -> Response:
        if served.model is None:
            return JSONResponse({"ready": False}, status_code=503)
        return JSONResponse({"ready": True, "model": served.manifest.get("model"), "version": served.version,
                             "model_version": served.model_version})

    @app.get("/metadata", summary="model, version, task, metric, input schema, training data hash")
    async def metadata() -> dict[str, Any]:
        return served.metadata()

    @app.get("/metrics", summary="Prometheus text format")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


def _forecast_route(app: FastAPI, served, metrics: Metrics, max_body_bytes: int) -> None:
    """POST /forecast for a forecast model (dsagent.tools.forecast.service.ForecastService)."""
    from dsagent.tools.registry import ToolError

    @app.post("/forecast", openapi_extra={"requestBody": FORECAST_BODY, "parameters": FORECAST_PARAMS},
              summary="forecast the steps after each series' history: one record per series and step with prediction, "
                      "lower_80, upper_80, lower_95, upper_95")
    async def forecast(request: Request) -> Response:
        body = await _read_body(request, max_body_bytes)
        fmt = _body_format(request.headers.get("content-type")) if body.strip() else None
        try:
            result = await run_in_threadpool(served.forecast, body, fmt, request.query_params.get("horizon"),
                                             request.query_params.getlist("series"))
        except ToolError as exc:  # a horizon beyond the trained one, a bad history, an unknown series
            raise HTTPException(422, _one_line(exc)) from None
        except Exception as exc:
            raise HTTPException(500, f"could not forecast ({type(exc).__name__}: {_one_line(exc)[:200]})") from None
        metrics.rows.inc(result["rows"])
        metrics.observe_predictions(result.pop("labels"))
        records = result.pop("forecasts_json")
        head = json.dumps(result, default=str)
        return Response(f'{head[:-1]}, "forecasts": {records}}}', media_type="application/json")


def _load(config: dict[str, Any]):
    from dsagent.tools.service import open_served

    return open_served(config["model"], log=config["log"], version=config.get("version"), shadow=config.get("shadow"))


def app_from_env() -> FastAPI:
    """uvicorn's factory in each worker process (--workers > 1)."""
    config = json.loads(os.environ[ENV_CONFIG])
    return create_app(_load(config), max_body_bytes=config["max_body_bytes"], multiprocess=True,
                      switch_file=config.get("switch_file"))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY. Without it, a kept-alive connection waits ~40 ms
    # per response (Nagle's algorithm against the client's delayed ACK): asyncio sets it only on
    # sockets it sees as TCP, and a socket handed over by fd (--workers) does not look like one.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInput(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port "
                       "(0 picks a free one) or --host") from None
    # Listening now: a client that connects as soon as the address is printed waits in the
    # backlog until uvicorn accepts, instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(model_ref: str, *, host: str, port: int, workers: int, log: bool, max_body_mb: float,
          version: str | None = None, shadow: str | None = None) -> int:
    import uvicorn

    if workers < 1:
        raise BadInput("--workers must be at least 1")
    if max_body_mb <= 0:
        raise BadInput("--max-body-mb must be positive")
    config = {"model": model_ref, "log": log, "max_body_bytes": int(max_body_mb * (1 << 20)), "version": version,
              "shadow": shadow}
    served = _load(config)  # in this process first: a bad model is exit 2 before anything listens
    sock = _bind(host, port)
    where = f"http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}"
    # The bound address goes out first, on its own line: with --port 0 it is how callers learn the port.
    named = f"{served.model_version}, " if served.model_version else ""
    print(f"serving {served.manifest.get('model')} (version {named}{served.version}) on {where} "
          f"(docs at {where}/docs){'' if served.log is not None else '; traffic log off'}"
          f"{f'; shadow {served.shadow.name} scores every request, logged only' if served.shadow else ''}",
          file=sys.stderr, flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("warning: listening beyond this machine with no authentication; put it behind a proxy that has some",
              file=sys.stderr, flush=True)
    if workers == 1:
        app = create_app(served, max_body_bytes=config["max_body_bytes"])
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10))
        server.run(sockets=[sock])
        return 0
    del served  # each worker loads its own copy
    with tempfile.TemporaryDirectory(prefix="dsagent-serve-") as shared:
        metrics_dir = os.path.join(shared, "metrics")
        os.mkdir(metrics_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        config["switch_file"] = os.path.join(shared, "version")
        os.environ[ENV_CONFIG] = json.dumps(config)
        uvicorn.run("dsagent.serve:app_from_env", factory=True, fd=sock.fileno(), workers=workers,
                    log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    return 0
