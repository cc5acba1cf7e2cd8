"""Prometheus metrics, request ids and the last-resort 500, as plain ASGI middleware."""

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churn.serving.protocol import BODY_TIMED_OUT, request_id_of

log = logging.getLogger("churn.serving")


class Metrics:
    """Prometheus metrics on a registry of this app's own (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "churn_requests_total", "HTTP requests", ["path", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "churn_request_seconds",
            "Request latency",
            ["path"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.predictions = Counter(
            "churn_predictions_total", "Predictions by label", ["label"], registry=self.registry
        )
        # kinds: http_<status>, validation, internal, and, outside the app,
        # client_disconnect, header_timeout, body_timeout, header_too_large, bad_request
        # (a head h11 refuses), connection_refused
        self.errors = Counter(
            "churn_errors_total", "Errors by kind", ["kind"], registry=self.registry
        )


class Observe:
    """ASGI middleware: request id, Prometheus counts and latency, and the last-resort 500.

    Plain ASGI rather than ``@app.middleware``, whose wrapper runs the app in a task
    of its own and passes the response through a memory stream.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request, tag it with its id, count it by route and status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(Request(scope).headers.get("x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = [0]  # the status sent; 0 until the response has started

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:  # gone before its body was read: nobody to answer
            if not scope["state"].get(BODY_TIMED_OUT):  # a timeout is counted where it fires
                self.metrics.errors.labels("client_disconnect").inc()
                log.info("request %s: client disconnected before sending its body", request_id)
        except Exception:  # the last line of defence: no stack trace reaches the client
            log.exception("request %s failed", request_id)
            self.metrics.errors.labels("internal").inc()
            if status[0]:  # too late for another answer: let the server drop the connection
                raise
            body = {"detail": "internal error", "request_id": request_id}
            await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:  # counted even when the client went away (no status sent: "none")
            path = route_path(scope)
            # A body timeout's 408 is written past the app, which saw only a disconnect.
            sent = status[0] or (408 if scope["state"].get(BODY_TIMED_OUT) else "none")
            self.metrics.requests.labels(path, str(sent)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)


def route_path(scope: Scope) -> str:
    """The route's path template, for the API's routes and Starlette's (the docs pages).

    Never the request's own path: a label per URL a client makes up would grow the
    metrics without bound.
    """
    route = scope.get("route")
    if route is not None:
        return route.path
    endpoint = scope.get("endpoint")
    for candidate in getattr(scope.get("app"), "routes", ()):
        if endpoint is not None and getattr(candidate, "endpoint", None) is endpoint:
            return candidate.path
    return "unmatched"
