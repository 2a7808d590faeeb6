"""Structured logs: every logger, ours, Django's and libraries', through one structlog renderer.

``LOGGING`` (``flagship/settings.py``) gives the console handler :func:`formatter`, a structlog
``ProcessorFormatter``: a stdlib record becomes an event dictionary (its message as ``event``, its
``extra`` as keys), gains the timestamp, level, logger name and request id, has its exception
rendered as a traceback field, loses every secret (:func:`redact`), and is written as one JSON line
(``DJANGO_LOG_FORMAT=json``, the production default) or a readable console line (``console``).

The request id lives in a context variable set by ``flagship.middleware.RequestIdMiddleware``. A
thread does not inherit context variables, so code that hands a request's work to another thread
wraps it in :func:`in_current_context` (``flagship.health`` does); ``transaction.on_commit``
callbacks run in the request's own thread and need nothing.

This module imports nothing of Django's or FlagShip's: ``LOGGING`` loads it before apps are ready.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

JSON: Final = "json"
CONSOLE: Final = "console"
FORMATS: Final = (JSON, CONSOLE)
REDACTED: Final = "[REDACTED]"
NO_REQUEST: Final = "-"

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NO_REQUEST)

Renderer = Callable[[WrappedLogger, str, EventDict], str | bytes]


# --- The request id -----------------------------------------------------------------------------
def current_request_id() -> str:
    """The id of the request being handled, ``-`` outside a request."""
    return _request_id.get()


def set_request_id(request_id: str) -> None:
    """Make ``request_id`` the id of every line this context logs from now on."""
    _request_id.set(request_id)


def in_current_context[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """``function`` bound to a copy of the caller's context: give it to a thread acting for us.

    A new thread starts with empty context variables; lines it logs inside the returned callable
    carry the caller's request id (and any other context variable).
    """
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.run(function, *args, **kwargs)

    return run


class RequestIdFilter(logging.Filter):
    """Add ``request_id`` to every log record (configured on the handlers in LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current request id unless the record names one; never drops a record."""
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def add_request_id(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Processor: the request id, unless the line names its own (``extra={"request_id": ...}``)."""
    event_dict.setdefault("request_id", current_request_id())
    return event_dict


# --- Redaction ----------------------------------------------------------------------------------
# Keys whose values are never logged, whatever they hold (compared lower-cased, "-" as "_", so
# "Authorization", "HTTP_X_API_KEY" and "set-cookie" match). Keys ending in "_id" (api_key_id) and
# "_hint" (a webhook secret's last characters) name no secret.
_SENSITIVE_KEY: Final = re.compile(
    r"password|passwd|secret|token|authorization|cookie|api_?key|session|csrf|signature"
    r"|^access$|^refresh$|^jwt$|^credentials?$"
)
_HARMLESS_SUFFIXES: Final = ("_id", "_ids", "_hint", "_count")
# Values that look like one of our secrets wherever they appear (a message, SQL, a traceback):
# API keys and admin tokens (accounts.keys: fss_/fsc_/fsa_ + 44 letters and digits), webhook
# signing secrets (flags.webhooks.secrets: whsec_ + base64), JWTs (three base64url parts, the
# first a JSON object: "eyJ"), credentials after an auth scheme, passwords in URLs, and the values
# of password=, token=... pairs (query strings, form bodies). Character classes exclude quotes and
# backslashes, so replacing inside a rendered JSON line keeps it valid JSON. One pattern, so a
# line is scanned once.
_SECRET_TEXT: Final = re.compile(
    r"\bfs[sca]_[A-Za-z0-9]{8,}"
    r"|\bwhsec_[A-Za-z0-9+/]{8,}={0,2}"
    r"|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|(?P<scheme>\b(?i:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|(?P<url>://[^:/@\s\"'\\]*:)[^@\s\"'\\/]+@"
    r"|(?P<pair>\b(?i:password|passwd|secret|token|api_?key|access|refresh)=)[^&\s\"'\\]+"
)


def _mask(match: re.Match[str]) -> str:
    scheme, url, pair = match.group("scheme", "url", "pair")
    if scheme is not None:
        return scheme + REDACTED
    if url is not None:
        return f"{url}{REDACTED}@"
    if pair is not None:
        return pair + REDACTED
    return REDACTED


# Substrings (lower-cased) one of which every match of _SECRET_TEXT holds: most lines hold none,
# and looking for them is some fifty times cheaper than running the pattern over the line.
_TRIGGERS: Final = (
    "fss_",
    "fsc_",
    "fsa_",
    "whsec_",
    "eyj",
    "bearer",
    "basic",
    "token",
    "://",
    "password=",
    "passwd=",
    "secret=",
    "key=",
    "access=",
    "refresh=",
)


def redact_text(text: str) -> str:
    """``text`` with every value that looks like a secret replaced by ``[REDACTED]``."""
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    return _SECRET_TEXT.sub(_mask, text)


@functools.lru_cache(maxsize=1024)
def is_sensitive_key(key: str) -> bool:
    """Whether a field named ``key`` may hold a secret (its value is then never logged)."""
    name = key.lower().replace("-", "_")
    return not name.endswith(_HARMLESS_SUFFIXES) and _SENSITIVE_KEY.search(name) is not None


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _redacted(value: Any) -> Any:
    """``value`` with sensitive keys' values replaced at any depth (text is masked later)."""
    if type(value) in _SCALARS:  # most values: skip the slower isinstance checks
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_sensitive_key(str(key)) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(item) for item in value]
    return value


def redact(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Processor: the values of sensitive keys replaced, at any depth.

    Secret-shaped text is masked after rendering, over the whole line (``_RedactedRenderer``).
    Most lines (the access line among them) hold scalars under harmless keys only: those are
    answered as they came, after one look at each key and value.
    """
    for key, value in event_dict.items():
        if type(value) not in _SCALARS or is_sensitive_key(str(key)):
            break
    else:
        return event_dict
    return {
        key: REDACTED if is_sensitive_key(str(key)) else _redacted(value)
        for key, value in event_dict.items()
    }


class _RedactedRenderer:
    """The renderer, then the secret-shaped text masked over the whole line.

    One pass covers every value, a value's ``repr`` (the JSON renderer's fallback) and the
    traceback alike.
    """

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        line = self.renderer(logger, method, event_dict)
        return redact_text(line.decode() if isinstance(line, bytes) else line)


# --- Tidying ------------------------------------------------------------------------------------
# What every LogRecord has: anything else on a record came from ``extra`` (or a filter).
_RECORD_ATTRIBUTES: Final = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime"}
)
# Keys the line itself uses: an extra of that name is kept with a trailing "_".
_OWN_KEYS: Final = frozenset({"event", "level", "logger", "timestamp", "exception"})


def add_extras(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Processor: a stdlib record's ``extra`` as keys (``extra={"step": 2}`` gives ``step``)."""
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                event_dict[f"{key}_" if key in _OWN_KEYS else key] = value
    return event_dict


# Extras libraries pass that are objects, not data: Django's request (its repr holds the query
# string), runserver's timestamp, uvicorn's colour-coded copy of the message.
_DROPPED_EXTRAS: Final = ("request", "server_time", "color_message")


def drop_objects(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Processor: drop library extras that are objects rather than data (see above)."""
    for key in _DROPPED_EXTRAS:
        if key in event_dict and not isinstance(event_dict[key], str | int | float | bool):
            del event_dict[key]
    return event_dict


# --- Assembly -----------------------------------------------------------------------------------
def _pre_chain() -> list[Processor]:
    """What every line gets before rendering, whether logged through stdlib or structlog."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(fmt: str) -> Renderer:
    if fmt == JSON:
        return structlog.processors.JSONRenderer(sort_keys=False)
    return structlog.dev.ConsoleRenderer(
        colors=sys.stderr.isatty(),
        exception_formatter=structlog.dev.plain_traceback,
        pad_level=False,
    )


def formatter(fmt: str = JSON) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of LOGGING's handlers: JSON lines (``json``) or console lines (``console``).

    Also points structlog's own loggers (``structlog.get_logger``) at the stdlib handlers, so
    both kinds of call come out the same way.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    configure_structlog()
    pre_chain = [*_pre_chain(), add_extras]
    renderer = _RedactedRenderer(_renderer(fmt))
    last_steps: list[Processor] = [redact, renderer]
    return StructuredFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            add_request_id,
            drop_objects,
            structlog.processors.StackInfoRenderer(),
            # The traceback as text in an "exception" field: JSON keeps it on one line.
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        plain_chain=[
            *pre_chain,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            add_request_id,
            drop_objects,
            *last_steps,
        ],
        last_steps=last_steps if fmt == JSON else None,
    )


class StructuredFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's ``ProcessorFormatter``, with a shorter way for a plain stdlib record.

    A record logged through the standard library with no arguments, exception or stack (the
    access log's ``request.finished`` line on every request, and most other lines) goes through
    the same processors, minus the two that only act on exceptions and stacks, without the copy of
    the record ``ProcessorFormatter.format`` makes first (it is never modified here) and without
    the second formatting pass of ``logging.Formatter`` (the message is the line). The line is the
    same (``flagship/tests/test_logging.py`` compares both ways on a range of records); any other
    record takes structlog's own way.
    """

    def __init__(
        self,
        *args: Any,
        plain_chain: list[Processor],
        last_steps: list[Processor] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.plain_chain = plain_chain
        # The chain's redaction and rendering, for a line given as its finished fields
        # (write_direct); None: this formatter renders no such line directly.
        self.last_steps = last_steps

    def format(self, record: logging.LogRecord) -> str:
        """The record's line."""
        if (
            record.args
            or record.exc_info
            or record.exc_text
            or record.stack_info
            or type(record.msg) is not str
            or "_logger" in record.__dict__  # structlog's own call: its event dictionary
        ):
            return super().format(record)
        method = record.levelname.lower()
        line: Any = {"event": record.msg, "_record": record, "_from_structlog": False}
        for processor in self.plain_chain:
            line = processor(None, method, line)
        return cast(str, line)


def write_direct(logger: logging.Logger, event: str, fields: dict[str, Any]) -> bool:
    """Write ``logger``'s INFO line ``event`` with ``fields`` straight to its handler, if it can.

    The way of the access log's ``request.finished`` line, one per request: the line a
    ``logger.info(event, extra=fields)`` call would write, without the ``LogRecord``, the
    handler's filters and the processors that only read a record. It can when the record would
    reach exactly one handler, ``LOGGING``'s console handler (a plain ``StreamHandler`` with the
    request id filter and a :func:`formatter`), and ``fields`` use none of the line's own keys;
    else it writes nothing and answers False, and the caller logs the usual way (so a handler
    added by a test, an operator's file handler or a filter sees the record as always).
    The caller has checked ``logger.isEnabledFor(logging.INFO)``.
    ``flagship/tests/test_logging.py`` compares both ways' lines.
    """
    handler = _only_handler(logger)
    if handler is None or not _OWN_KEYS.isdisjoint(fields) or "request_id" in fields:
        return False
    formatter = handler.formatter
    assert isinstance(formatter, StructuredFormatter)  # noqa: S101  # _only_handler checked
    assert formatter.last_steps is not None  # noqa: S101  # _only_handler checked
    line: Any = structlog.contextvars.merge_contextvars(None, "info", {"event": event})
    line["logger"] = logger.name
    line["level"] = "info"
    line["timestamp"] = _utc_now().isoformat().replace("+00:00", "Z")
    line.update(fields)
    line["request_id"] = current_request_id()  # RequestIdFilter's, after the extras
    for step in formatter.last_steps:
        line = step(None, "info", line)
    try:
        handler.acquire()
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        finally:
            handler.release()
    except Exception:  # as Handler.emit: a broken stream never fails a request
        return False  # the usual way then reports it (Handler.handleError)
    return True


def _only_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler an INFO record of ``logger`` reaches, if it is LOGGING's console one."""
    if logger.disabled or logger.filters:
        return None
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if (
        type(found) is not logging.StreamHandler
        or found.level > logging.INFO
        or not isinstance(found.formatter, StructuredFormatter)
        or found.formatter.last_steps is None
        or len(found.filters) != 1
        or type(found.filters[0]) is not RequestIdFilter
    ):
        return None
    return found


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def configure_structlog() -> None:
    """Send structlog's own loggers through the stdlib handlers (idempotent)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_pre_chain(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
