"""``FlagShipClient``: evaluate flags locally from a synchronised ruleset, or remotely.

Local mode (server keys) downloads ``GET /api/v1/ruleset``, compiles it off the hot path and swaps
one reference; evaluations read that reference and call the engine, nothing else. The change stream
(``GET /api/v1/stream``) says when to download again; while it is down the client polls. Remote mode
(client keys) asks ``POST /api/v1/evaluate`` per context and caches the answers briefly.

No public method raises: failures are logged and answered with the default and an error code.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Literal, Self

from ..engine import EvaluationResult, Reason, Ruleset, RulesetProblem
from .counts import CountsSender, EvaluationCounter
from .details import ClientErrorCode, ClientEvent, ClientStatus, EvaluationDetails, EventType
from .sse import SSEEvent, StreamFollower
from .statics import IsEnabled, StaticFlags
from .store import (
    Snapshot,
    changed_flags,
    compile_snapshot,
    load_bootstrap,
    read_backup,
    write_backup,
)
from .transport import Backoff, Transport, TransportError

# Exponential backoff: the first retry waits up to BASE_BACKOFF seconds (tests lower it).
BASE_BACKOFF = 0.5
RULESET_PATH: Final = "/api/v1/ruleset"
EVALUATE_PATH: Final = "/api/v1/evaluate"
# Remote mode: how many contexts' answers are kept (least recently used go first).
REMOTE_CACHE_SIZE = 1024
# Local mode: how many evaluation details are cached per ruleset for ``evaluate``.
DETAILS_CACHE_SIZE = 10_000
# A download answered with an older version than the stream announced is retried this many times,
# CATCH_UP_DELAY, 2 x CATCH_UP_DELAY, ... seconds later (150 ms in all).
CATCH_UP_ATTEMPTS = 5
CATCH_UP_DELAY = 0.01
# At most this many problems of one ruleset are logged one by one; the rest are counted.
MAX_LOGGED_PROBLEMS = 20

Mode = Literal["auto", "local", "remote"]
DataSource = Literal["none", "server", "bootstrap", "backup"]
Kind = Literal["boolean", "string", "number", "json"]
Listener = Callable[[ClientEvent], None]


def _matches(kind: Kind | None, value: Any, flag_kind: str | None) -> bool:
    """Whether a served value suits the getter (``flag_kind`` is known in local mode only)."""
    if kind is None:
        return True
    if kind == "boolean":
        return type(value) is bool
    if kind == "string":
        return type(value) is str
    if kind == "number":
        return type(value) in (int, float)
    return flag_kind is None or flag_kind == "json"


class _RemoteAnswer:
    """One context's answer from ``POST /api/v1/evaluate``."""

    __slots__ = ("expires", "flags", "version")

    def __init__(self, flags: Mapping[str, Any], version: int | None, expires: float) -> None:
        self.flags = flags
        self.version = version
        self.expires = expires


class FlagShipClient:
    """FlagShip's SDK client; no public method raises (failures give the default and a code)."""

    #: ``is_enabled(key, context=None, default=False) -> bool``: whether a boolean flag is on for
    #: ``context`` (``default`` on any error). An instance attribute (a closure): static flags are
    #: answered from a table without evaluating (``flagship_sdk.client.statics``).
    is_enabled: IsEnabled

    def __init__(  # noqa: PLR0915  # one flat list of settings and initial state
        self,
        base_url: str,
        sdk_key: str,
        *,
        mode: Mode = "auto",
        timeout: float = 5.0,
        stream: bool = True,
        poll_interval: float = 30.0,
        bootstrap: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        offline: bool = False,
        backup_path: str | os.PathLike[str] | None = None,
        remote_cache_ttl: float = 1.0,
        send_evaluation_counts: bool = True,
        counts_interval: float = 60.0,
        max_backoff: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        # Hot-path state first: evaluations read these attributes only.
        self._ruleset: Ruleset | None = None
        self._counter: EvaluationCounter | None = None
        self._cells: dict[tuple[str, str | None], itertools.count[int]] | None = None
        self._details_cache: dict[int, tuple[EvaluationResult, EvaluationDetails]] = {}
        self._statics = StaticFlags(self._is_enabled)
        self.is_enabled = self._statics.is_enabled

        self._logger = logger or logging.getLogger("flagship_sdk")
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._backup_path = backup_path
        self._remote_cache_ttl = remote_cache_ttl
        self._max_backoff = max_backoff
        self._use_stream = stream

        self._state_lock = threading.RLock()
        self._download_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._snapshot: Snapshot | None = None
        self._status = ClientStatus.NOT_READY
        self._data_source: DataSource = "none"
        self._ready_event = threading.Event()
        self._ready_or_closed = threading.Event()
        self._closed = False
        self._last_event_id: str | None = None
        # The version and problems last logged, so a ruleset installed again is not logged again.
        self._problems_logged: tuple[int, tuple[RulesetProblem, ...]] | None = None

        # Synchronisation thread state (guarded by _cond).
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._next_at: float | None = None
        self._failing = False
        self._stream_up = False
        self._announced = 0  # the newest version the stream announced
        self._catch_up_attempts = 0
        self._sync_backoff = Backoff(BASE_BACKOFF, max_backoff)
        self.requests = 0  # requests this client made (diagnostics)

        # Remote mode.
        self._remote_cache: OrderedDict[str, _RemoteAnswer] = OrderedDict()
        self._remote_lock = threading.Lock()
        self._breaker_until = 0.0
        self._breaker_backoff = Backoff(BASE_BACKOFF, max_backoff)
        self._remote_version: int | None = None

        self._sync_thread: threading.Thread | None = None
        self._follower: StreamFollower | None = None
        self._sender: CountsSender | None = None
        self._transport: Transport | None = None

        chosen: object = mode
        if chosen not in ("auto", "local", "remote"):
            self._logger.error("flagship.client.invalid_mode: %r, using auto", chosen)
            mode = "auto"
        given_key: object = sdk_key
        if not isinstance(given_key, str):
            self._logger.error("flagship.client.invalid_sdk_key: not a string; working offline")
            sdk_key, offline = "", True
        if mode == "auto":
            mode = "remote" if sdk_key.startswith("fsc_") else "local"
        self._offline = offline
        self._remote = mode == "remote" and not offline
        self.mode: Literal["local", "remote"] = "remote" if self._remote else "local"

        if not offline:
            try:
                self._transport = Transport(base_url, sdk_key, timeout)
            except Exception as error:  # ValueError, or a base_url that is not even a string
                self._logger.error("flagship.client.invalid_base_url: %s; working offline", error)
                self._offline = True

        if not self._remote:
            if bootstrap is not None:
                self._load_bootstrap(bootstrap)
            if self._offline and self._snapshot is None and backup_path is not None:
                self._load_backup()
            if self._offline and self._snapshot is None:
                self._logger.warning("flagship.client.offline_without_data")
            if send_evaluation_counts and not self._offline:
                self._counter = EvaluationCounter()
                self._cells = self._counter.cells
                self._statics.attach(self._counter)
        elif bootstrap is not None:
            self._logger.warning("flagship.client.bootstrap_ignored: remote mode")

        if not self._offline:
            try:
                self._start(counts_interval)
            except Exception:  # e.g. RuntimeError: can't start new thread
                self._logger.exception("flagship.client.start_failed")

    # ------------------------------------------------------------------ lifecycle

    def _start(self, counts_interval: float) -> None:
        transport = self._transport
        assert transport is not None  # noqa: S101  # online clients have a transport
        self._next_at = time.monotonic()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name="flagship-sdk-sync", daemon=True
        )
        self._sync_thread.start()
        if self._use_stream:
            self._follower = StreamFollower(
                transport,
                on_event=self._on_stream_event,
                on_state=self._on_stream_state,
                backoff=Backoff(BASE_BACKOFF, self._max_backoff),
                logger=self._logger,
                last_event_id=self._stream_resume_id,
            )
            self._follower.start()
        if self._counter is not None:
            self._sender = CountsSender(self._counter, transport, counts_interval, self._logger)
            self._sender.start()

    def close(self) -> None:
        """Stop the background threads (joined for at most ``timeout`` each), send counts."""
        try:
            with self._state_lock:
                if self._closed:
                    return
                self._closed = True
                self._status = ClientStatus.CLOSED
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self._ready_or_closed.set()
            if self._follower is not None:
                self._follower.stop(self._timeout)
            thread = self._sync_thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(self._timeout)
            if self._sender is not None:
                self._sender.stop(self._timeout)
        except Exception:
            self._logger.exception("flagship.client.close_failed")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ state

    @property
    def ready(self) -> bool:
        """Whether real data (server, bootstrap or backup) is loaded."""
        return self._ready_event.is_set()

    @property
    def status(self) -> ClientStatus:
        """``NOT_READY``, ``READY``, ``STALE`` or ``CLOSED``."""
        return self._status

    @property
    def ruleset_version(self) -> int | None:
        """The version of the data held (local: the ruleset's; remote: the last answer's)."""
        if self._remote:
            return self._remote_version
        snapshot = self._snapshot
        return snapshot.version if snapshot is not None else None

    @property
    def data_source(self) -> DataSource:
        """Where the data held came from."""
        return self._data_source

    @property
    def streaming(self) -> bool:
        """Whether the change stream is connected (changes arrive pushed, not polled)."""
        return self._stream_up

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait until data is loaded; False on timeout (or when closed without data)."""
        try:
            self._ready_or_closed.wait(timeout)
        except Exception:
            self._logger.exception("flagship.client.wait_failed")
        return self._ready_event.is_set()

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback`` with every ``ClientEvent``; returns a function that unsubscribes."""
        with self._state_lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._state_lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def _emit(
        self,
        type_: EventType,
        message: str | None = None,
        flags_changed: tuple[str, ...] | None = None,
    ) -> None:
        event = ClientEvent(type_, self.ruleset_version, message, flags_changed)
        with self._state_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                self._logger.exception("flagship.client.listener_failed")

    def _set_status(self, status: ClientStatus, message: str | None = None) -> None:
        """Change the status and tell listeners about a change to READY or STALE."""
        with self._state_lock:
            if self._closed or self._status == status:
                return
            self._status = status
        if status == ClientStatus.STALE:
            self._emit("stale", message)
        elif status == ClientStatus.READY:
            self._emit("ready")

    # ------------------------------------------------------------------ local data

    def _load_bootstrap(self, bootstrap: str | os.PathLike[str] | Mapping[str, Any]) -> None:
        try:
            snapshot = compile_snapshot(load_bootstrap(bootstrap), None, "bootstrap")
        except (OSError, ValueError, RecursionError) as error:
            self._logger.error("flagship.client.bootstrap_invalid: %s", error)
            return
        self._install(snapshot, ClientStatus.READY)

    def _load_backup(self) -> bool:
        path = self._backup_path
        if path is None:
            return False
        try:
            snapshot = read_backup(path)
        except FileNotFoundError:
            return False
        except (OSError, ValueError, RecursionError) as error:
            self._logger.error("flagship.client.backup_invalid: %s", error)
            return False
        current = self._snapshot
        if current is not None and current.version >= snapshot.version:
            return False
        self._install(snapshot, ClientStatus.READY if self._offline else ClientStatus.STALE)
        self._logger.warning("flagship.client.using_backup: version %s", snapshot.version)
        return True

    def _install(self, snapshot: Snapshot, status: ClientStatus) -> None:
        """Swap in a new ruleset (one reference for the hot path) and tell listeners."""
        with self._state_lock:
            old = self._snapshot
            self._snapshot = snapshot
            self._details_cache = {}
            self._ruleset = snapshot.ruleset
            self._data_source = snapshot.source  # type: ignore[assignment]
            first = not self._ready_event.is_set()
        self._statics.install(snapshot.ruleset)
        self._log_problems(snapshot)
        self._ready_event.set()
        self._ready_or_closed.set()
        if first:
            with self._state_lock:
                if not self._closed:
                    self._status = status
            self._emit("ready" if status == ClientStatus.READY else "stale")
            return
        self._set_status(status)
        if old is None or old.version != snapshot.version or old.document != snapshot.document:
            previous = old.document if old is not None else None
            self._emit("changed", flags_changed=changed_flags(previous, snapshot.document))

    def _log_problems(self, snapshot: Snapshot) -> None:
        """Log what the engine read past in a ruleset: once per version, never per evaluation."""
        problems = snapshot.ruleset.problems
        logged = (snapshot.version, problems)
        with self._state_lock:
            if not problems or self._problems_logged == logged:
                return
            self._problems_logged = logged
        for problem in problems[:MAX_LOGGED_PROBLEMS]:
            self._logger.warning(
                "flagship.client.ruleset_problem: version %s, %s at %s: %s",
                snapshot.version,
                problem.code,
                problem.path,
                problem.message,
                extra={"problem_code": problem.code, "problem_path": problem.path},
            )
        if len(problems) > MAX_LOGGED_PROBLEMS:
            self._logger.warning(
                "flagship.client.ruleset_problems_truncated: version %s, %s more problems",
                snapshot.version,
                len(problems) - MAX_LOGGED_PROBLEMS,
            )

    def _sync_failed(self, message: str) -> None:
        self._logger.warning("flagship.client.sync_failed: %s", message)
        if self._ready_event.is_set():
            self._set_status(ClientStatus.STALE, message)
            return
        self._emit("error", message)  # each attempt (paced by the backoff) while not ready

    def _download(self, timeout: float | None = None) -> bool:
        """Download the ruleset once (local) or probe the server (remote). True on success."""
        if self._remote:
            return self._remote_fetch("{}", timeout) is not None
        transport = self._transport
        if transport is None:
            return False
        with self._download_lock:
            snapshot = self._snapshot
            headers: dict[str, str] = {}
            if snapshot is not None and snapshot.etag and snapshot.source != "bootstrap":
                headers["If-None-Match"] = snapshot.etag
            self.requests += 1
            try:
                answer = transport.request("GET", RULESET_PATH, headers=headers, timeout=timeout)
            except TransportError as error:
                return self._download_failed(str(error))
            if answer.status == 304 and snapshot is not None:
                with self._state_lock:
                    self._data_source = "server"
                self._set_status(ClientStatus.READY)
                return True
            if answer.status != 200:
                return self._download_failed(f"GET {RULESET_PATH}: status {answer.status}")
            try:
                new = compile_snapshot(answer.json(), answer.headers.get("etag"), "server")
            except (ValueError, RecursionError) as error:
                return self._download_failed(f"GET {RULESET_PATH}: invalid ruleset: {error}")
            self._install(new, ClientStatus.READY)
            if self._backup_path is not None:
                try:
                    write_backup(self._backup_path, new)
                except (OSError, ValueError, TypeError) as error:
                    self._logger.error("flagship.client.backup_failed: %s", error)
            return True

    def _download_failed(self, message: str) -> bool:
        if self._snapshot is None or self._snapshot.source == "bootstrap":
            self._load_backup()
        self._sync_failed(message)
        return False

    def refresh(self, timeout: float | None = None) -> bool:
        """Download now (remote mode: ask the server now); True when the data is current."""
        try:
            if self._offline or self._closed:
                return False
            if self._remote:
                with self._remote_lock:
                    self._remote_cache.clear()
                    self._breaker_until = 0.0
            return self._download(timeout)
        except Exception:
            self._logger.exception("flagship.client.refresh_failed")
            return False

    # ------------------------------------------------------------------ background sync

    def _sync_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._next_at is not None and now >= self._next_at:
                        break
                    self._cond.wait(None if self._next_at is None else self._next_at - now)
                if self._stopping:
                    return
                self._next_at = None
            try:
                ok = self._download()
            except Exception:  # a bug: log it, keep the thread alive, retry with backoff
                self._logger.exception("flagship.client.sync_crashed")
                ok = False
            with self._cond:
                if ok:
                    self._failing = False
                    self._sync_backoff.reset()
                    held = self.ruleset_version
                    if (
                        not self._remote
                        and held is not None
                        and held < self._announced
                        and self._catch_up_attempts < CATCH_UP_ATTEMPTS
                    ):
                        # The stream announced a newer version than the server process that
                        # answered had applied (each FlagShip process learns of a change a few
                        # milliseconds apart): ask again shortly.
                        self._catch_up_attempts += 1
                        self._retry_at(time.monotonic() + CATCH_UP_DELAY * self._catch_up_attempts)
                    elif not self._stream_up and not self._remote and self._next_at is None:
                        self._next_at = time.monotonic() + self._poll_interval
                else:
                    self._failing = True
                    self._retry_at(time.monotonic() + self._sync_backoff.next_delay())

    def _retry_at(self, when: float) -> None:
        """Schedule a download at ``when`` unless one is due earlier (holding ``_cond``)."""
        if self._next_at is None or when < self._next_at:
            self._next_at = when

    def _schedule_now(self) -> None:
        with self._cond:
            self._next_at = time.monotonic()
            self._cond.notify_all()

    def _on_stream_state(self, up: bool) -> None:
        with self._cond:
            self._stream_up = up
            if not up and not self._remote and self._next_at is None:
                self._next_at = time.monotonic() + self._poll_interval
            elif up and not self._failing:
                self._next_at = None
            self._cond.notify_all()

    def _stream_resume_id(self) -> str | None:
        if self._last_event_id:
            return self._last_event_id
        version = self.ruleset_version
        return str(version) if version is not None else None

    def _on_stream_event(self, event: SSEEvent) -> None:
        if event.type not in ("ruleset", "message"):
            return
        if event.id:
            self._last_event_id = event.id
        version: int | None = None
        try:
            data = json.loads(event.data)
            if isinstance(data, dict) and type(data.get("version")) is int:
                version = data["version"]
        except ValueError:
            self._logger.warning("flagship.stream.bad_event: %r", event.data[:200])
        held = self.ruleset_version
        if version is not None and held is not None and version <= held:
            return
        if version is not None:
            with self._cond:
                self._announced = max(self._announced, version)
                self._catch_up_attempts = 0
        if self._remote:
            with self._remote_lock:
                self._remote_cache.clear()
            return
        self._schedule_now()

    # ------------------------------------------------------------------ remote mode

    def _remote_fetch(self, canonical: str, timeout: float | None = None) -> _RemoteAnswer | None:
        transport = self._transport
        if transport is None or self._closed:
            return None
        self.requests += 1
        try:
            answer = transport.request(
                "POST",
                EVALUATE_PATH,
                raw_body=f'{{"context":{canonical}}}'.encode(),
                timeout=timeout,
            )
            if answer.status != 200:
                raise TransportError(f"POST {EVALUATE_PATH}: status {answer.status}")
            document = answer.json()
            flags = document.get("flags") if isinstance(document, dict) else None
            if not isinstance(flags, dict):
                raise TransportError(f"POST {EVALUATE_PATH}: no flags in the answer")
            version = document.get("version")
            version = version if type(version) is int else None
        except (TransportError, ValueError) as error:
            with self._remote_lock:
                self._breaker_until = time.monotonic() + self._breaker_backoff.next_delay()
            self._sync_failed(str(error))
            return None
        entry = _RemoteAnswer(flags, version, time.monotonic() + self._remote_cache_ttl)
        with self._remote_lock:
            cache = self._remote_cache
            cache[canonical] = entry
            cache.move_to_end(canonical)
            while len(cache) > REMOTE_CACHE_SIZE:
                cache.popitem(last=False)
            self._breaker_backoff.reset()
            self._breaker_until = 0.0
            self._remote_version = version
            first = not self._ready_event.is_set()
            if first:
                self._data_source = "server"
        if first:
            self._ready_event.set()
            self._ready_or_closed.set()
        self._set_status(ClientStatus.READY)
        return entry

    def _remote_answer(self, canonical: str) -> _RemoteAnswer | None:
        now = time.monotonic()
        with self._remote_lock:
            entry = self._remote_cache.get(canonical)
            if entry is not None:
                self._remote_cache.move_to_end(canonical)
                if entry.expires > now:
                    return entry
            if now < self._breaker_until:
                return entry
        return self._remote_fetch(canonical) or entry

    def _remote_details(
        self, key: Any, default: Any, context: Any, kind: Kind | None
    ) -> EvaluationDetails:
        name = key if isinstance(key, str) else repr(key)
        if context is None:
            context = {}
        if not isinstance(context, Mapping):
            return _error(name, default, ClientErrorCode.INVALID_CONTEXT, "not a mapping", None)
        try:
            canonical = json.dumps(
                dict(context), sort_keys=True, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError) as error:
            return _error(name, default, ClientErrorCode.INVALID_CONTEXT, str(error), None)
        entry = self._remote_answer(canonical)
        if entry is None:
            code = (
                ClientErrorCode.GENERAL if self._transport else ClientErrorCode.PROVIDER_NOT_READY
            )
            return _error(name, default, code, "the server could not be reached", None)
        return self._remote_flag(name, default, entry.flags.get(name), entry.version, kind)

    def _remote_flag(
        self, name: str, default: Any, served: Any, version: int | None, kind: Kind | None
    ) -> EvaluationDetails:
        if not isinstance(served, dict):
            return _error(name, default, ClientErrorCode.FLAG_NOT_FOUND, None, version)
        error_code = served.get("error_code")
        if error_code:
            return _error(name, default, str(error_code), None, version)
        value = served.get("value")
        if not _matches(kind, value, None):
            return _error(name, default, ClientErrorCode.TYPE_MISMATCH, _mismatch(kind), version)
        variant, rule = served.get("variant"), served.get("rule")
        return EvaluationDetails(
            key=name,
            value=value,
            variant=variant if isinstance(variant, str) else None,
            reason=str(served.get("reason") or Reason.DEFAULT),
            rule=rule if isinstance(rule, str) else None,
            version=version,
        )

    # ------------------------------------------------------------------ evaluation

    def _details(
        self, key: Any, default: Any, context: Any, kind: Kind | None
    ) -> EvaluationDetails:
        """The general evaluation path: any mode, any error, any getter."""
        try:
            if self._remote:
                return self._remote_details(key, default, context, kind)
            name = key if isinstance(key, str) else repr(key)
            ruleset = self._ruleset
            if ruleset is None:
                self._count(name, None)
                return _error(
                    name, default, ClientErrorCode.PROVIDER_NOT_READY, "no data yet", None
                )
            result = ruleset.evaluate(key, context)
            if result.error_code is not None:
                self._count(name, None)
                return _error(name, default, result.error_code, None, ruleset.version)
            if not _matches(kind, result.value, ruleset.kind(key)):
                self._count(name, None)
                return _error(
                    name, default, ClientErrorCode.TYPE_MISMATCH, _mismatch(kind), ruleset.version
                )
            self._count(name, result.variant)
            return _from_result(result, ruleset.version)
        except Exception as error:
            self._logger.exception("flagship.client.evaluation_failed")
            name = key if isinstance(key, str) else repr(key)
            return _error(name, default, ClientErrorCode.GENERAL, repr(error), None)

    def _count(self, key: str, variant: str | None) -> None:
        counter = self._counter
        if counter is not None:
            counter.record(key, variant)

    def _is_enabled(
        self, key: str, context: Mapping[str, Any] | None = None, default: bool = False
    ) -> bool:
        """``is_enabled`` for every flag that is not static (and for every error)."""
        ruleset = self._ruleset
        if ruleset is not None:
            try:
                result = ruleset.evaluate(key, context)
                value = result.value
                if value is True or value is False:
                    cells = self._cells
                    if cells is not None:
                        try:
                            next(cells[key, result.variant])
                        except KeyError:
                            self._count(key, result.variant)
                    return value is True
            except Exception:  # noqa: S110  # the general path below logs and answers
                pass
        value = self._details(key, default, context, "boolean").value
        return value if type(value) is bool else bool(value)

    def get_string(self, key: str, default: str, context: Mapping[str, Any] | None = None) -> str:
        """A string flag's value for ``context`` (``default`` on any error or another kind)."""
        ruleset = self._ruleset
        if ruleset is not None:
            try:
                result = ruleset.evaluate(key, context)
                value = result.value
                if type(value) is str:
                    counter = self._counter
                    if counter is not None:
                        counter.record(key, result.variant)
                    return value
            except Exception:  # noqa: S110  # the general path below logs and answers
                pass
        served: str = self._details(key, default, context, "string").value
        return served

    def get_number(
        self, key: str, default: float, context: Mapping[str, Any] | None = None
    ) -> int | float:
        """A number flag's value for ``context`` (``default`` on any error or another kind)."""
        ruleset = self._ruleset
        if ruleset is not None:
            try:
                result = ruleset.evaluate(key, context)
                value = result.value
                if type(value) is int or type(value) is float:
                    counter = self._counter
                    if counter is not None:
                        counter.record(key, result.variant)
                    return value
            except Exception:  # noqa: S110  # the general path below logs and answers
                pass
        served: int | float = self._details(key, default, context, "number").value
        return served

    def get_json(self, key: str, default: Any, context: Mapping[str, Any] | None = None) -> Any:
        """A json flag's value for ``context`` (``default`` on any error or another kind).

        The value is shared between evaluations: treat it as read-only.
        """
        return self._details(key, default, context, "json").value

    def evaluate(
        self,
        key: str,
        default: Any,
        context: Mapping[str, Any] | None = None,
        *,
        kind: Kind | None = None,
    ) -> EvaluationDetails:
        """Evaluate one flag with details. ``kind`` checks the value's type (``TYPE_MISMATCH``)."""
        ruleset = self._ruleset
        if ruleset is not None and kind is None:
            try:
                result = ruleset.evaluate(key, context)
                entry = self._details_cache.get(id(result))
                if entry is not None and entry[0] is result:
                    details = entry[1]
                elif result.error_code is None:
                    details = _from_result(result, ruleset.version)
                    cache = self._details_cache
                    if len(cache) >= DETAILS_CACHE_SIZE:
                        cache = self._details_cache = {}
                    cache[id(result)] = (result, details)
                else:
                    return self._details(key, default, context, kind)
                cells = self._cells
                if cells is not None:
                    try:
                        next(cells[key, result.variant])
                    except KeyError:
                        self._count(key, result.variant)
                return details
            except Exception:  # noqa: S110  # the general path below logs and answers
                pass
        return self._details(key, default, context, kind)

    def evaluate_all(
        self, context: Mapping[str, Any] | None = None
    ) -> dict[str, EvaluationDetails]:
        """Evaluate every flag for ``context`` (``{}`` while no data is loaded)."""
        try:
            if self._remote:
                return self._remote_all(context)
            ruleset = self._ruleset
            if ruleset is None:
                return {}
            version = ruleset.version
            answers: dict[str, EvaluationDetails] = {}
            cache = self._details_cache
            cells = self._cells
            for key, result in ruleset.evaluate_all(context).items():
                entry = cache.get(id(result))
                if entry is not None and entry[0] is result:
                    answers[key] = entry[1]
                elif result.error_code is not None:
                    answers[key] = _error(key, None, result.error_code, None, version)
                else:
                    answers[key] = details = _from_result(result, version)
                    if len(cache) < DETAILS_CACHE_SIZE:
                        cache[id(result)] = (result, details)
                if cells is not None:
                    try:
                        next(cells[key, result.variant])
                    except KeyError:
                        self._count(key, result.variant)
            return answers
        except Exception:
            self._logger.exception("flagship.client.evaluation_failed")
            return {}

    def _remote_all(self, context: object) -> dict[str, EvaluationDetails]:
        if context is None:
            context = {}
        if not isinstance(context, Mapping):
            return {}
        try:
            canonical = json.dumps(
                dict(context), sort_keys=True, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError):
            return {}
        entry = self._remote_answer(canonical)
        if entry is None:
            return {}
        return {
            str(key): self._remote_flag(str(key), None, served, entry.version, None)
            for key, served in entry.flags.items()
        }


def _mismatch(kind: Kind | None) -> str:
    return f"the flag's value is not of kind {kind}"


def _error(
    key: str, default: Any, code: str, message: str | None, version: int | None
) -> EvaluationDetails:
    return EvaluationDetails(
        key=key,
        value=default,
        variant=None,
        reason=Reason.ERROR,
        error_code=code,
        error_message=message,
        version=version,
    )


def _from_result(result: EvaluationResult, version: int) -> EvaluationDetails:
    return EvaluationDetails(
        key=result.key,
        value=result.value,
        variant=result.variant,
        reason=result.reason,
        rule=result.rule,
        version=version,
        prerequisite=result.prerequisite,
        problem=result.problem,
    )
