"""uvicorn's h11 protocol with the limits uvicorn lacks: read deadlines and a connection cap.

What uvicorn already bounds is passed to it as settings (see ``app.main``): the size of
an incomplete request head (``h11_max_incomplete_event_size``: h11 refuses a buffer
over it, before parsing it) and the idle time between keep-alive requests
(``timeout_keep_alive``). The h11 parser is used, not httptools, because httptools
has no head size limit at all. What uvicorn has no setting for is added here:

- a **head deadline**: from the moment the server waits for a request (a new
  connection, or the previous answer sent) the request line and headers must be in
  within ``HEADER_TIMEOUT``. uvicorn's keep-alive timer is cancelled by any byte
  received, and a new connection has no timer at all, so an idle or trickling
  client would otherwise hold its connection (and file descriptor) for ever;
- a **body deadline**: once the head is in, the body must be in within
  ``BODY_TIMEOUT``, or the answer is 408 (or, if one was already sent, the
  connection is closed). Bytes trickling in do not extend it;
- **431** instead of a bare 400 when the head is over the limit: h11 only measures a
  head still incomplete in its buffer, so a whole head that arrived in one read is
  measured here once parsed;
- errors written past the app (400, 408, 431) in the app's JSON error body.
- a cap on open connections: past ``MAX_CONNECTIONS`` a new one is closed at once,
  before the process runs out of file descriptors.

The deadlines follow h11's view of the client (``their_state``): IDLE is "waiting
for a head", SEND_BODY "waiting for the body"; one timer per phase, armed when the
phase starts and not reset by data.
"""

import asyncio
import copy
import json
import logging
import re
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from churn.core.errors import clip

log = logging.getLogger("churn.serving")

# Set on the request's ASGI scope state when the body deadline passed, so the app
# tells a timeout from a client that went away.
BODY_TIMED_OUT = "body_timed_out"

# The longest field of an access log line: a method or a path may be as long as the head.
ACCESS_FIELD = 200

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# RFC 9112 3.2.2: the absolute-form of a request target, "http://host:port/path?query".
ABSOLUTE_FORM = re.compile(rb"https?://([^/?#]*)([^#]*)", re.IGNORECASE)


def request_id_of(header: str | None) -> str:
    """The caller's ``x-request-id`` if it is a plain token, else a fresh one.

    It is echoed in headers, JSON and logs, so anything longer or stranger is replaced.
    """
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def head_size(request: h11.Request) -> int:
    """The bytes of a parsed request line and headers (as sent, less optional whitespace)."""
    line = len(request.method) + len(request.target) + len(request.http_version) + 8
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers) + 2


def check_head(request: h11.Request, max_head: int) -> None:
    """431 for a head over the limit; 400 for a body framed two ways.

    With both Content-Length and Transfer-Encoding, h11 follows the chunking and keeps
    the connection; a proxy in front may have followed the length instead, and the
    rest of the body would be read here as the next request (RFC 9112 6.3: reject or
    close).
    """
    if head_size(request) > max_head:
        raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
    names = {name for name, _ in request.headers}
    if b"content-length" in names and b"transfer-encoding" in names:
        raise h11.RemoteProtocolError("both Content-Length and Transfer-Encoding", 400)


def origin_form(request: h11.Request) -> h11.Request:
    """The request with an absolute-form target as its path and query, its host as Host.

    RFC 9112 3.2.2: a server MUST accept the absolute-form, and then use its host in
    place of the Host header. uvicorn takes the target as the path as it is, so
    ``POST http://host/v1/predict`` would be a 404.
    """
    found = ABSOLUTE_FORM.fullmatch(request.target)
    if found is None:
        return request
    authority, rest = found.groups()
    target = rest if rest.startswith(b"/") else b"/" + rest
    headers = [(name, authority if name == b"host" else value) for name, value in request.headers]
    return h11.Request(
        method=request.method, target=target, headers=headers, http_version=request.http_version
    )


class _Connection(h11.Connection):
    """h11's connection, holding whole heads to the size limit, remembering the error status."""

    error_status = 400
    error_detail = ""

    def next_event(self) -> Any:
        """h11's next event; a protocol error's status hint (431) and words are kept.

        uvicorn answers any refused head with its fixed "Invalid HTTP request received.":
        the words say which header was at fault.
        """
        try:
            event = super().next_event()
            if isinstance(event, h11.Request):
                check_head(event, self.max_head)
                event = origin_form(event)
        except h11.RemoteProtocolError as err:
            self.error_status = err.error_status_hint
            self.error_detail = clip(str(err), 200)
            raise
        return event

    @property
    def max_head(self) -> int:
        """The largest request line plus headers taken (``MAX_HEADER_BYTES``)."""
        return self._max_incomplete_event_size


class LimitedH11Protocol(H11Protocol):
    """H11Protocol plus head and body read deadlines, 431 and a connection cap."""

    header_timeout = 10.0
    body_timeout = 30.0
    max_connections = 1000
    count: Callable[[str], None] = staticmethod(lambda kind: None)  # metrics hook

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _Connection(h11.SERVER, size)
        self.read_timer: asyncio.TimerHandle | None = None
        self.read_phase: object = None  # h11.IDLE, h11.SEND_BODY or None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept, or close at once past MAX_CONNECTIONS; then wait for a head."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.count("connection_refused")
            transport.abort()  # before any byte: no answer to write, the fd is freed now
            return
        self.sync_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self.set_phase(None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does, then follow the client into its next phase."""
        super().data_received(data)
        self.sync_deadline()

    def on_response_complete(self) -> None:
        """After an answer the next request's head is awaited (pipelined ones parsed)."""
        super().on_response_complete()
        self.sync_deadline()

    def sync_deadline(self) -> None:
        """Arm the deadline of the phase the client is in, if it changed."""
        closing = self.transport is None or self.transport.is_closing()
        state = None if closing else self.conn.their_state
        if state is not self.read_phase:
            self.set_phase(state if state in (h11.IDLE, h11.SEND_BODY) else None)

    def set_phase(self, phase: object) -> None:
        """Cancel the running deadline and start the phase's own (none outside reads)."""
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None
        self.read_phase = phase
        if phase is h11.IDLE:
            self.read_timer = self.loop.call_later(self.header_timeout, self.head_too_slow)
        elif phase is h11.SEND_BODY:
            self.read_timer = self.loop.call_later(self.body_timeout, self.body_too_slow)

    def head_too_slow(self) -> None:
        """No complete head in time: close (there is no request to answer yet)."""
        self.read_timer = None
        if not self.transport.is_closing():
            self.count("header_timeout")
            log.debug("no request head within HEADER_TIMEOUT=%gs: closed", self.header_timeout)
            self.transport.close()

    def body_too_slow(self) -> None:
        """No complete body in time: 408 if nothing was answered yet, then close."""
        self.read_timer = None
        if self.transport.is_closing():
            return
        self.count("body_timeout")
        cycle = self.cycle
        answered = cycle is None or cycle.response_started
        request_id = self.scope["state"].get("request_id") or request_id_of(None)
        # One line per timed-out request, with its id: write_error is told not to add its own.
        log.info(
            "request %s: %s %s: body not received within BODY_TIMEOUT=%gs; %s",
            request_id,
            self.scope["method"],
            self.scope["path"],
            self.body_timeout,
            "closed (an answer had started)" if answered else "408, closed",
        )
        if not answered:
            self.scope["state"][BODY_TIMED_OUT] = True
            self.write_error(408, "request body not received in time", request_id, logged=True)
            # The app sees a disconnect; what it still sends goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A head h11 refuses: 431 when it is too large (h11's hint), else 400; then close."""
        if self.conn.error_status == 431:
            self.count("header_too_large")
            self.write_error(431, "request header fields too large")
        else:
            self.count("bad_request")
            detail = self.conn.error_detail
            self.write_error(400, f"invalid HTTP request: {detail}" if detail else msg)
        self.transport.close()

    def write_error(
        self, status: int, detail: str, request_id: str | None = None, *, logged: bool = False
    ) -> None:
        """The app's JSON error body, written past the app; the connection is then closed.

        ``request_id``: the request's, when the app has seen it; else a fresh one.
        ``logged``: the caller has logged the request's fate already.
        """
        request_id = request_id or request_id_of(None)
        if not logged:
            log.info("request %s: %d %s", request_id, status, detail)
        text = json.dumps({"detail": detail, "request_id": request_id}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(text)).encode()),
            (b"connection", b"close"),
            (b"x-request-id", request_id.encode("latin-1")),
        ]
        reason = HTTPStatus(status).phrase.encode()
        for event in (
            h11.Response(status_code=status, headers=headers, reason=reason),
            h11.Data(data=text),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")


def limited_protocol(
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
    count: Callable[[str], None],
) -> type[LimitedH11Protocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with these limits."""
    return type(
        "LimitedH11Protocol",
        (LimitedH11Protocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_connections": max_connections,
            "count": staticmethod(count),
        },
    )


class ClippedAccess(logging.Filter):
    """uvicorn's access lines with each field clipped to ``ACCESS_FIELD`` characters.

    The method and the path are the client's and may each be ``MAX_HEADER_BYTES`` long;
    one request must not write that to the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Clip the string arguments; always log the line."""
        if isinstance(record.args, tuple):
            args = record.args
            record.args = tuple(clip(a, ACCESS_FIELD) if isinstance(a, str) else a for a in args)
        return True


def log_config() -> dict[str, Any]:
    """The logging configuration of uvicorn, its access lines clipped (``ClippedAccess``)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"clipped": {"()": ClippedAccess}}
    config["handlers"]["access"]["filters"] = ["clipped"]
    return config
