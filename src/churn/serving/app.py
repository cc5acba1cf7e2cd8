"""``churn serve``: the prediction service (FastAPI on uvicorn) for the pipeline's model.

It serves exactly what evaluate scored: ``models/model.pkl`` (or a released
version, ``MODEL_REF=churn-model@vX.Y.Z``), whose md5 must match the one
``dvc.lock`` records before it is unpickled. The request schema is built from
the resolved data contract, so the API checks the same types, ranges and
categories as prepare. Settings come from the environment (see
:class:`churn.serving.settings.Settings`).
"""

import errno
import fcntl
import gc
import logging
import os
import random
import signal
import socket
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from churn.core import entry
from churn.core.contract import DECISION, SCORE, Contract
from churn.core.errors import ChurnError, clip
from churn.serving.metrics import Metrics, Observe
from churn.serving.model import Loaded, load
from churn.serving.model import contract as model_contract
from churn.serving.parsing import (
    count_customers,
    customer_model,
    customer_slices,
    each_name_once,
    fast_decoder,
    fast_rows,
    is_identity,
    is_json,
    read_loosely,
    read_shape,
    request_model,
    to_frame,
    wide_customers,
)
from churn.serving.protocol import limited_protocol, log_config
from churn.serving.settings import Settings, load_settings

VALIDATE_SLICE = 50  # customers pydantic validates at once (its errors are kept per call)

log = logging.getLogger("churn.serving")
EXTRA = "extra_forbidden"  # pydantic's type for a member the model does not have


class Prediction(BaseModel):
    """One customer's answer."""

    churn_probability: float
    churn: bool


class PredictResponse(BaseModel):
    """The answer to POST /v1/predict (documented; built without this model for speed)."""

    model_version: str
    request_id: str
    threshold: float
    predictions: list[Prediction]


class Service:
    """What the endpoints do; the app only routes to it."""

    def __init__(self, settings: Settings, contract: Contract, loaded: Loaded | None) -> None:
        self.settings = settings
        self.contract = contract
        self.loaded = loaded
        self.customer = customer_model(contract)
        self.request_model = request_model(contract, self.customer)
        self.fast = fast_decoder(contract, settings.max_batch)
        self.nullable = [i for i, col in enumerate(contract.columns.values()) if col.nullable]
        self.metrics = Metrics()
        self.sampler = random.Random()  # noqa: S311 (sampling for monitoring, not security)
        self.in_flight = 0  # predictions admitted and not yet answered (event loop only)
        self.reading = BodyBudget(settings.max_concurrent * settings.body_limit)

    def current(self) -> Loaded:
        """The loaded model, or 503."""
        if self.loaded is None:
            raise HTTPException(503, "model not loaded")
        return self.loaded

    def model_info(self) -> dict[str, Any]:
        """Version, commit, metrics, threshold, decision policy and the input schema."""
        current = self.current()
        return {
            "version": current.version,
            "commit": current.commit,
            "md5": current.md5,
            "threshold": current.threshold,
            "decision": current.decision,
            "metrics": current.metrics,
            "max_batch": self.settings.max_batch,
            "input_schema": TypeAdapter(self.customer).json_schema(),
        }

    def parse(self, body: bytes) -> list[tuple]:
        """The customers of a raw JSON body as tuples in contract order, or a 413 or 422.

        Both parsers read the bytes directly (no ``json.loads`` first). The fast one
        answers for the usual, well-formed batch (it stops at the first customer it
        refuses, and builds no errors); the pydantic model, which the OpenAPI
        document shows, decides everything else and names each bad field. It only
        runs on a batch counted to be within MAX_BATCH: its errors cost memory per
        customer, and 200,000 empty customers are a 300 KB body.
        """
        rows = self.parse_fast(body)
        if rows is not None:
            return rows
        self.check_batch(count_customers(body) or 0)  # strict JSON: counted without parsing
        shape = read_shape(body)  # before any value is built
        if shape is not None:
            self.check_names(shape.names)
            self.check_nested(shape.nested)
        loose = read_loosely(body)
        if loose is not None:
            self.check_members(loose.members)
            if loose.customers is not None:
                self.check_batch(len(loose.customers))  # as pydantic would count: the last
            self.check_repeated(loose.members - loose.names)
            if loose.customers is not None:
                self.check_fields(loose.customers)
        return self.parse_checked(body)

    def check_batch(self, size: int) -> None:
        """413 for a batch over MAX_BATCH."""
        if size > self.settings.max_batch:
            raise HTTPException(413, f"batch of {size} exceeds MAX_BATCH={self.settings.max_batch}")

    def check_members(self, members: int) -> None:
        """422 for a request object with more members than MAX_ERRORS: one error, not each."""
        limit = self.settings.max_errors
        if members > limit:
            error = {
                "loc": ("body",),
                "msg": f"Extra inputs are not permitted ({members} members; only 'customers')",
                "type": EXTRA,
            }
            raise RequestValidationError([error])

    def check_names(self, names: list[str]) -> None:
        """422 naming the top-level members besides ``customers``, their values never read."""
        self.check_members(len(names))  # so at most MAX_ERRORS of them are named
        unknown = [name for name in names if name != "customers"]
        if unknown:
            errors = [
                {"loc": ("body", name), "msg": "Extra inputs are not permitted", "type": EXTRA}
                for name in unknown
            ]
            raise RequestValidationError(errors)

    def check_nested(self, nested: list[tuple[tuple[Any, ...], str]]) -> None:
        """422 naming customers that are arrays and fields that hold arrays or objects."""
        if nested:
            limit = self.settings.max_errors
            errors = [
                {"loc": ("body", "customers", *where), "msg": msg, "type": "invalid_type"}
                for where, msg in nested[:limit]
            ]
            raise RequestValidationError(with_rest(errors, len(nested), limit))

    def check_repeated(self, repeated: int) -> None:
        """422 for a request object with a name written twice: the last would win unseen."""
        if repeated:
            error = {
                "loc": ("body",),
                "msg": f"Extra inputs are not permitted ({repeated} repeated names)",
                "type": EXTRA,
            }
            raise RequestValidationError([error])

    def check_fields(self, customers: list[Any]) -> None:
        """422 naming each customer with more members than the contract has fields, once each."""
        wide = wide_customers(customers, self.contract.columns)
        if not wide:
            return
        errors = [_wide_error(i, names, repeated) for i, names, repeated in wide]
        raise RequestValidationError(
            with_rest(errors[: self.settings.max_errors], len(wide), self.settings.max_errors)
        )

    def parse_fast(self, body: bytes) -> list[tuple] | None:
        """Msgspec's reading of the body, or None where it refuses (pydantic then decides)."""
        if self.fast is None:
            return None
        try:
            customers = self.fast.decode(body).customers
        except (msgspec.MsgspecError, ValueError, RecursionError):  # ValueError: not UTF-8
            return None
        rows, present = fast_rows(customers, self.nullable)
        if not each_name_once(body, present):
            return None
        return rows

    def parse_checked(self, body: bytes) -> list[tuple]:
        """Pydantic's reading of the body, or a 422 naming the first MAX_ERRORS bad fields.

        ``VALIDATE_SLICE`` customers at a time, each slice their bytes as written: pydantic
        keeps every error of a call, each with its input, and 1,000 customers of unknown
        fields alone (3.8 MB) cost 245 MB of them in one call. The errors, their order
        and their count are the whole body's.
        """
        slices = customer_slices(body, VALIDATE_SLICE)
        if slices is None:
            return self.parse_whole(body)
        limit = self.settings.max_errors
        errors: list[dict[str, Any]] = []
        total = 0
        customers: list[Any] = []
        for start, part in slices:
            try:
                customers += self.request_model.model_validate_json(part).customers
            except ValidationError as err:
                if _unreadable(err):
                    # Bytes msgspec cut around but pydantic cannot read (not UTF-8, an
                    # integer of 5,000 digits): the whole body is one error, where it is.
                    return self.parse_whole(body)
                total += err.error_count()
                errors += body_errors(err, limit - len(errors), start)
        if total:
            raise RequestValidationError(with_rest(errors, total, limit))
        return self.rows(customers)

    def parse_whole(self, body: bytes) -> list[tuple]:
        """The whole body in one pydantic call: its 422, capped, or its customers."""
        try:
            customers = self.request_model.model_validate_json(body).customers
        except ValidationError as err:
            limit = self.settings.max_errors
            raise RequestValidationError(
                with_rest(body_errors(err, limit), err.error_count(), limit)
            ) from None
        return self.rows(customers)

    def rows(self, customers: list[Any]) -> list[tuple]:
        """Validated customers as tuples in the contract's column order."""
        names = list(self.contract.columns)  # a missing nullable field is absent: None
        return [tuple(row.get(name) for name in names) for row in customers]

    def predict_body(self, body: bytes, request_id: str) -> bytes:
        """The JSON answer to a raw ``/v1/predict`` body."""
        self.current()  # 503 before any parsing
        return orjson.dumps(self.predict(self.parse(body), request_id))

    def predict(self, customers: list[tuple], request_id: str) -> dict[str, Any]:
        """Probabilities and labels at the pipeline's threshold."""
        current = self.current()
        self.check_batch(len(customers))
        frame = to_frame(customers, self.contract)
        proba = current.model.predict_proba(frame)[:, 1]
        flags = proba >= current.threshold
        self.log_sample(frame, proba)
        churned = int(flags.sum())
        self.metrics.predictions.labels("churn").inc(churned)
        self.metrics.predictions.labels("stay").inc(len(flags) - churned)
        return {
            "model_version": current.version,
            "request_id": request_id,
            "threshold": current.threshold,
            "predictions": [
                {SCORE: p, DECISION: f} for p, f in zip(proba.tolist(), flags.tolist(), strict=True)
            ],
        }

    def log_sample(self, frame: pd.DataFrame, proba: np.ndarray) -> None:
        """Append the sampled rows to the prediction log (a no-op unless configured)."""
        rate, path = self.settings.log_sample_rate, self.settings.prediction_log
        if not path or rate <= 0:
            return
        keep = [i for i in range(len(frame)) if self.sampler.random() < rate]
        if not keep:
            return
        sampled = frame.iloc[keep].assign(**{SCORE: proba[keep]})
        # Each float as the shortest text that reads back to it (NaN and None as null):
        # pandas' to_json kept 10 digits, and 1.7976931348623157e308 read back as inf.
        lines = b"".join(msgspec.json.encode(row) + b"\n" for row in sampled.to_dict("records"))
        try:
            append_whole(path, lines)  # locked: one batch at a time, from any thread or process
        except OSError as err:  # the log is for monitoring: the answer still goes out
            self.metrics.errors.labels("prediction_log").inc()
            log.warning("PREDICTION_LOG %s: %d rows not logged (%s)", path, len(keep), err)


def append_whole(path: str, data: bytes) -> None:
    """Append ``data`` to the regular file ``path`` whole, or not at all; never wait for it.

    Opened without blocking: a FIFO put in the log's place after start-up held the writer,
    and with it every prediction, until a reader came (and SIGTERM could not stop the
    server). A write cut short (a full disk, a size limit) is taken back: a half line made
    the whole log unreadable to churn monitor. The file is locked meanwhile, so the bytes
    taken back are this write's, whichever process appends beside it.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)  # and with it the lock


def _wide_error(i: int, unknown: list[str], repeated: int) -> dict[str, Any]:
    """One error for a customer with too many members: its unknown and its repeated names."""
    counts = [f"{len(unknown)} unknown fields"] if unknown else []
    counts += [f"{repeated} repeated names"] if repeated else []
    return {
        "loc": ("body", "customers", i, *unknown[:1]),
        "msg": f"Extra inputs are not permitted ({', '.join(counts)})",
        "type": EXTRA,
    }


def body_errors(err: ValidationError, limit: int, first: int = 0) -> list[dict[str, Any]]:
    """The first ``limit`` errors of ``err``, ``body`` prefixed to their path.

    ``first``: the index in the body of the first customer of the slice ``err`` is of.
    An error answer stays small whatever the body: at most MAX_BATCH customers
    reach pydantic, each with at most as many fields as the contract has.
    """
    if limit <= 0:
        return []
    return [
        {**e, "loc": ("body", *_shifted(e["loc"], first))}
        for e in err.errors(include_url=False, include_input=False)[:limit]
    ]


def _unreadable(err: ValidationError) -> bool:
    """Whether pydantic could not read the JSON at all (one ``json_invalid`` error)."""
    return err.error_count() == 1 and err.errors(include_url=False)[0]["type"] == "json_invalid"


def _shifted(loc: tuple[Any, ...], first: int) -> tuple[Any, ...]:
    """A path under ``customers`` with its customer's index moved by ``first``."""
    if first and len(loc) > 1 and loc[0] == "customers" and isinstance(loc[1], int):
        return ("customers", loc[1] + first, *loc[2:])
    return loc


def with_rest(errors: list[dict[str, Any]], total: int, limit: int) -> list[dict[str, Any]]:
    """``errors`` (the first ``limit``), then one entry counting the ``total - limit`` left out."""
    if total > limit:
        errors.append(
            {
                "loc": ("body",),
                "msg": f"and {total - limit} more errors ({total} in all; MAX_ERRORS={limit})",
                "type": "too_many_errors",
            }
        )
    return errors


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    request.app.state.service.metrics.errors.labels(f"http_{exc.status_code}").inc()
    body = {"detail": exc.detail, "request_id": request.state.request_id}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    request.app.state.service.metrics.errors.labels("validation").inc()
    # A field name in a path is the client's text (an unknown field's): clipped as any echo.
    detail = [
        {
            "loc": [clip(p) if isinstance(p, str) else p for p in e["loc"]],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail, "request_id": request.state.request_id}, status_code=422)


# Answers sent before the body is read: the connection is closed, or what is left of the
# body would be read as the next request.
CLOSE = {"Connection": "close"}


class BodyBudget:
    """The bytes of request bodies being read, over all connections, and their limit.

    Each connection may hold a body of up to MAX_BODY_BYTES for up to BODY_TIMEOUT:
    MAX_CONNECTIONS clients sending 4 MB and stopping held 4 GB. A body that would pass
    the budget (MAX_CONCURRENT bodies) is refused with 503 instead. The event loop
    alone reads bodies, so the count needs no lock.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes held; 503 (and the connection closed) past the limit."""
        if self.held + size > self.limit:
            raise HTTPException(
                503,
                f"busy: request bodies being read would pass {self.limit} bytes "
                "(MAX_CONCURRENT x MAX_BODY_BYTES)",
                headers={"Retry-After": "1", **CLOSE},
            )
        self.held += size

    def give(self, size: int) -> None:
        """``size`` bytes are no longer held by a body being read."""
        self.held -= size


async def read_body(request: Request, limit: int, budget: BodyBudget) -> bytes:
    """The request body, or 413 as soon as it is known to be over ``limit`` bytes."""
    too_large = HTTPException(413, f"request body exceeds MAX_BODY_BYTES={limit}", headers=CLOSE)
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():  # a chunked body has no length to check first
            if size + len(chunk) > limit:
                raise too_large
            budget.take(len(chunk))
            size += len(chunk)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        budget.give(size)  # once read, a body is one of MAX_CONCURRENT being parsed


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, and the id to find the request in the logs."""

    detail: str | list[dict[str, Any]]  # a message, or for a 422 one entry per bad field
    request_id: str


ERRORS = {
    400: "a malformed request, named (a bad Content-Length, no Host header, a refused CORS "
    "preflight)",
    408: "the body did not arrive within BODY_TIMEOUT (the connection is closed)",
    413: "batch over MAX_BATCH, or body over MAX_BODY_BYTES",
    415: "content-type is not application/json (or missing), or the body is compressed",
    422: "a field's type, range or category, unknown or missing fields, bad JSON",
    431: "request line and headers over MAX_HEADER_BYTES (the connection is closed)",
    500: "unexpected error; the details are only in the server's log",
    503: "model not loaded, or MAX_CONCURRENT predictions in flight (see Retry-After)",
}


class JsonCors(CORSMiddleware):
    """Starlette's CORS, whose refused preflight is an error answer like every other.

    Starlette's is a plain-text 400 ("Disallowed CORS origin"): no request id, not counted.
    """

    def __init__(self, app: Any, metrics: Metrics, **options: Any) -> None:
        super().__init__(app, **options)
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """A preflight answered here (refused: in JSON, counted); anything else as Starlette's."""
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        preflight = (
            headers is not None
            and scope["method"] == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )
        if not preflight:
            await super().__call__(scope, receive, send)
            return
        answer = self.preflight_response(request_headers=headers)
        if answer.status_code != 200:
            self.metrics.errors.labels(f"http_{answer.status_code}").inc()
            body = {
                "detail": bytes(answer.body).decode(),
                "request_id": scope["state"]["request_id"],
            }
            answer = JSONResponse(body, status_code=answer.status_code)
        await answer(scope, receive, send)


def _predict_route(app: FastAPI, service: Service) -> None:
    """``POST /v1/predict``: reads the raw body and validates it in one pass.

    FastAPI would json.loads the body, then validate the Python objects: twice the
    work on a 1,000-customer batch. The schema is still the request model's, given
    to the OpenAPI document by :func:`_openapi`, so the docs and fuzzers see it.
    """
    settings = service.settings

    async def predict(request: Request) -> Response:
        """Churn probability and label for each customer (at most MAX_BATCH)."""
        types = request.headers.getlist("content-type")  # two would leave the choice to us
        if len(types) != 1 or not is_json(types[0]):
            raise HTTPException(
                415, "content-type must be application/json (UTF-8: no other charset), given once"
            )
        if not is_identity(request.headers.getlist("content-encoding")):
            raise HTTPException(
                415,
                "content-encoding must be identity: send the JSON uncompressed",
                headers={"Accept-Encoding": "identity"},  # RFC 9110: the codings accepted
            )
        # Reading costs the loop little and is bounded (MAX_BODY_BYTES, BODY_TIMEOUT,
        # MAX_CONNECTIONS); counted from the start, 16 clients that never finish a body
        # would hold every slot for BODY_TIMEOUT.
        body = await read_body(request, settings.body_limit, service.reading)
        # Shed load rather than queue it: a request past the limit is answered at
        # once, before any parsing, so the admitted ones keep their latency.
        if service.in_flight >= settings.max_concurrent:
            raise HTTPException(
                503,
                f"busy: MAX_CONCURRENT={settings.max_concurrent} predictions in flight",
                headers={"Retry-After": "1"},
            )
        service.in_flight += 1
        try:
            # Off the event loop: parsing and scoring a batch is milliseconds of CPU.
            answer = await run_in_threadpool(service.predict_body, body, request.state.request_id)
        finally:
            service.in_flight -= 1
        return Response(answer, media_type="application/json")

    schema = {"$ref": "#/components/schemas/PredictRequest"}
    app.add_api_route(
        "/v1/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        responses={
            code: {"description": text, "model": ErrorBody} for code, text in ERRORS.items()
        },
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
        },
    )


def _openapi(app: FastAPI, body_model: type[BaseModel]) -> Any:
    """FastAPI's OpenAPI document plus the request model the predict route reads itself."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            body = body_model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update({**body.pop("$defs", {}), "PredictRequest": body})
            app.openapi_schema = document
        return app.openapi_schema

    return openapi


def _get(app: FastAPI, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
    """A GET route, and HEAD on the same path (RFC 9110: a GET resource answers HEAD too).

    uvicorn sends a HEAD answer's head only; the HEAD twin stays out of the OpenAPI document.
    """
    app.add_api_route(path, endpoint, methods=["GET"], **kwargs)
    app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)


def create_app(settings: Settings | None = None, loaded: Loaded | None = None) -> FastAPI:
    """The FastAPI app; ``loaded`` skips loading (tests), otherwise the lifespan loads."""
    settings = settings or load_settings()
    contract = loaded.contract if loaded else model_contract(settings)
    service = Service(settings, contract, loaded)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if service.loaded is None:
            service.loaded = load(settings)  # a ChurnError here stops the server starting
            log.info("loaded %s (md5 %s)", service.loaded.version, service.loaded.md5)
        yield

    # No redirect for a trailing slash: Starlette's would echo the client's Host header.
    app = FastAPI(title="churn", version="1", lifespan=lifespan, redirect_slashes=False)
    app.state.service = service
    if settings.cors_origins:
        app.add_middleware(
            JsonCors,
            metrics=service.metrics,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after"],
        )
    app.add_middleware(Observe, metrics=service.metrics)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)

    _get(app, "/health", lambda: {"status": "ok"}, summary="Liveness")
    _get(
        app,
        "/ready",
        lambda: {"status": "ready", "model_version": service.current().version},
        summary="Readiness: 200 once the model is loaded, 503 before",
    )
    _get(app, "/v1/model", service.model_info)
    _predict_route(app, service)
    _get(
        app,
        "/metrics",
        lambda: Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST),
        summary="Prometheus metrics",
    )
    app.openapi = _openapi(app, service.request_model)  # type: ignore[method-assign]
    return app


def check_listen(host: str, port: int) -> None:
    """One line, before any loading, if the service could not listen on HOST:PORT.

    uvicorn would find out only after loading the model, log its own error and exit 3.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise ChurnError(f"HOST {clip(host)!r}: not a host name or address ({err})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as err:
            raise ChurnError(
                f"HOST {clip(host)!r}, PORT {port}: cannot listen ({err.strerror})"
            ) from None


def main() -> int:
    """Load and check the model, then run uvicorn; a bad model is one line and exit 1.

    Stopped as every command is: Ctrl-C 130 (one line), SIGTERM 143, SIGHUP 129, each
    after uvicorn's graceful shutdown (:func:`serve_until_stopped`).
    """
    import uvicorn

    settings = load_settings()
    check_listen(settings.host, settings.port)
    app = create_app(settings, loaded=load(settings))
    errors = app.state.service.metrics.errors
    protocol = limited_protocol(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
        count=lambda kind: errors.labels(kind).inc(),
    )
    # The model and the libraries live as long as the process: keep the cyclic
    # collector from walking them again after every few thousand allocations.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=log_config(),
        http=protocol,  # h11 with read deadlines (churn.serving.protocol)
        # HTTP only. uvicorn[standard] brings a WebSocket library, and a POST with
        # "Upgrade: websocket" went to it: no answer for 30 s. Without one, uvicorn
        # answers such a request as plain HTTP.
        ws="none",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keepalive_timeout,
    )
    return serve_until_stopped(uvicorn.Server(config))


def serve_until_stopped(server: Any) -> int:
    """Run ``server`` until a stop signal, shut it down gracefully; the command's status.

    uvicorn handles SIGINT and SIGTERM itself, then raises them again: a Ctrl-C so raised
    was lost in its event loop (exit 0, silently), and SIGHUP, which it does not handle,
    raised through the loop (a traceback, no shutdown). Each one now asks uvicorn to
    stop, and the status is the signal's: 130 with one line, 143, 129.
    """
    caught: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        caught.append(signum)
        server.handle_exit(signum, None)  # graceful; a second Ctrl-C forces it

    previous = {sig: signal.signal(sig, stop) for sig in entry.STOP_SIGNALS}
    try:
        server.run()  # uvicorn's own handlers stand in for ours meanwhile, then call them
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not caught:
        return 0
    return entry.interrupted() if caught[0] == signal.SIGINT else 128 + caught[0]
