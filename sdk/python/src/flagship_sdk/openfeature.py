"""An OpenFeature provider backed by a :class:`~flagship_sdk.FlagShipClient`.

Install the extra (``pip install "flagship-sdk[openfeature]"``) and register the provider::

    from openfeature import api

    from flagship_sdk.openfeature import FlagShipProvider

    api.set_provider(FlagShipProvider(base_url="https://flags.example.com", sdk_key="fss_..."))
    client = api.get_client()
    enabled = client.get_boolean_value("new-checkout", False)

Only this module imports ``openfeature``; ``import flagship_sdk`` never does.

Mapping (docs/sdk-python.md has the full table):

- Context: the OpenFeature ``targeting_key`` becomes the ``targetingKey`` attribute (the default
  bucket-by attribute of docs/ruleset-format.md) and wins over an attribute of that name; the other
  attributes are passed as they are, with ``datetime`` values as RFC 3339 strings (a naive datetime
  is taken as UTC) and tuples as lists.
- Reasons: FlagShip's reasons are OpenFeature's, except ``PREREQUISITE_FAILED``, reported as
  ``DEFAULT`` with ``flag_metadata["prerequisiteFailed"] = True`` (and ``"prerequisite"``, the
  parent flag, when the client reports it), like FlagShip's OFREP endpoints.
- Forward compatibility: when evaluation passed over a rule disabled by a condition this SDK
  cannot use (a newer server's operator or value), the reason stays what it is (``DEFAULT``,
  ``TARGETING_MATCH``...) and ``flag_metadata`` holds ``problem`` (its code, e.g.
  ``unknown_operator``) and ``problemPath`` (the condition's path in the ruleset).
- Types: a flag's value must match the resolver: a boolean is never a number, an integer flag may
  be read as a float (the value is converted), a float flag read as an integer is
  ``TYPE_MISMATCH``, ``resolve_object_details`` needs a JSON object or array. On any error the
  default is returned with reason ``ERROR`` and the error code.
- Events: client notices become provider events: ``ready`` → ``PROVIDER_READY``, ``changed`` →
  ``PROVIDER_CONFIGURATION_CHANGED`` (with ``flags_changed``), ``stale`` → ``PROVIDER_STALE``,
  ``error`` → ``PROVIDER_ERROR`` while the client has no data, ``PROVIDER_STALE`` when it still
  has data to evaluate with.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypedDict, TypeVar, Unpack

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderFatalError, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.hook import Hook
from openfeature.provider import AbstractProvider, Metadata

from . import ClientEvent, ClientStatus, EvaluationDetails, FlagShipClient

__all__ = ["DEFAULT_INIT_TIMEOUT", "PROVIDER_NAME", "ClientOptions", "FlagShipProvider"]

logger = logging.getLogger("flagship_sdk")

PROVIDER_NAME: Final = "FlagShip"
DEFAULT_INIT_TIMEOUT: Final = 10.0
TARGETING_KEY: Final = "targetingKey"
PREREQUISITE_FAILED: Final = "PREREQUISITE_FAILED"

_REASONS: Final[Mapping[str, Reason]] = {
    "STATIC": Reason.STATIC,
    "DEFAULT": Reason.DEFAULT,
    "TARGETING_MATCH": Reason.TARGETING_MATCH,
    "SPLIT": Reason.SPLIT,
    "DISABLED": Reason.DISABLED,
    "ERROR": Reason.ERROR,
    PREREQUISITE_FAILED: Reason.DEFAULT,
}
_ERROR_CODES: Final[Mapping[str, ErrorCode]] = {code.value: code for code in ErrorCode}

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of :class:`~flagship_sdk.FlagShipClient`.

    ``base_url`` and ``sdk_key`` are required when the provider builds the client.
    """

    base_url: str
    sdk_key: str
    mode: Literal["auto", "local", "remote"]
    timeout: float
    stream: bool
    poll_interval: float
    bootstrap: str | os.PathLike[str] | Mapping[str, Any] | None
    offline: bool
    backup_path: str | os.PathLike[str] | None
    remote_cache_ttl: float
    send_evaluation_counts: bool
    counts_interval: float
    max_backoff: float
    logger: logging.Logger | None


class _Mismatch:
    """The value does not fit the resolver's type."""


_MISMATCH: Final = _Mismatch()


class FlagShipProvider(AbstractProvider):
    """OpenFeature provider evaluating flags with a :class:`~flagship_sdk.FlagShipClient`.

    Pass an existing client (``FlagShipProvider(client)``; the host keeps owning it and
    :meth:`shutdown` leaves it open), or the client's keyword arguments
    (``FlagShipProvider(base_url=..., sdk_key=...)``; the provider owns that client and closes it
    on :meth:`shutdown`).

    :meth:`initialize` waits at most ``init_timeout`` seconds for the client's first data; without
    it, it raises ``ProviderNotReadyError`` (OpenFeature sets the provider's status to ``ERROR``
    and evaluations answer the default with ``PROVIDER_NOT_READY``) and the provider turns
    ``READY`` by itself once the data arrives. ``hooks`` are returned by
    :meth:`get_provider_hooks`.
    """

    def __init__(
        self,
        client: FlagShipClient | None = None,
        *,
        init_timeout: float = DEFAULT_INIT_TIMEOUT,
        hooks: Sequence[Hook] = (),
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__()
        if client is None:
            if "base_url" not in options or "sdk_key" not in options:
                raise TypeError("FlagShipProvider needs a FlagShipClient, or base_url and sdk_key")
            client = FlagShipClient(**options)
            self._owns_client = True
        elif options:
            raise TypeError("pass either a FlagShipClient or the options to build one, not both")
        else:
            self._owns_client = False
        self._client = client
        self._init_timeout = init_timeout
        self._hooks = list(hooks)
        self._lock = threading.Lock()
        self._initializing = False
        self._degraded = False  # STALE or ERROR was reported and no READY since
        self._unsubscribe: Callable[[], None] | None = None
        self._metadata = Metadata(name=PROVIDER_NAME)

    @property
    def client(self) -> FlagShipClient:
        """The FlagShip client this provider evaluates with."""
        return self._client

    def get_metadata(self) -> Metadata:
        """The provider's metadata (its name, ``"FlagShip"``)."""
        return self._metadata

    def get_provider_hooks(self) -> list[Hook]:
        """The hooks given to the constructor."""
        return list(self._hooks)

    # Life cycle ----------------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Wait (at most ``init_timeout`` seconds) until the client holds flag data.

        Raises ``ProviderNotReadyError`` when it does not by then (OpenFeature then reports
        ``PROVIDER_ERROR``; a later ``PROVIDER_READY`` follows when the data arrives), and
        ``ProviderFatalError`` when the client is closed.
        """
        del evaluation_context  # FlagShip evaluates per call; there is nothing to prepare
        with self._lock:
            self._initializing = True
            if self._unsubscribe is None:
                self._unsubscribe = self._client.add_listener(self._on_client_event)
        try:
            if self._client.status == ClientStatus.CLOSED:
                raise ProviderFatalError("the FlagShip client is closed")
            self._client.wait_until_ready(self._init_timeout)
        finally:
            with self._lock:
                self._initializing = False
                ready = self._client.ready
                # Not ready: OpenFeature reports ERROR; the next client notice turns it READY.
                self._degraded = not ready
        if not ready:
            raise ProviderNotReadyError(
                f"FlagShip has no flag data after {self._init_timeout:g} s "
                f"(client status {self._client.status}); it turns ready when data arrives"
            )

    def shutdown(self) -> None:
        """Stop forwarding the client's events; close the client when the provider built it."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        if self._owns_client:
            self._client.close()

    def _on_client_event(self, event: ClientEvent) -> None:
        """Turn a client notice into the provider event OpenFeature expects."""
        with self._lock:
            if self._initializing:
                # initialize() reports the outcome itself (READY, or ERROR on timeout).
                return
            # READY is emitted only as a recovery: initialize() already reported the first one
            # (the client's own first "ready" may arrive just after initialize() returned).
            if event.type == "ready":
                recovered = self._degraded
            elif event.type == "changed":
                recovered = self._degraded and self._client.status == ClientStatus.READY
            else:
                recovered = False
            self._degraded = event.type in ("stale", "error") or (self._degraded and not recovered)
        metadata: dict[str, bool | str | int | float] = {}
        if event.version is not None:
            metadata["version"] = event.version
        if recovered:
            self.emit_provider_ready(ProviderEventDetails(message=event.message, metadata=metadata))
        if event.type == "changed":
            flags_changed = list(event.flags_changed) if event.flags_changed is not None else None
            self.emit_provider_configuration_changed(
                ProviderEventDetails(
                    flags_changed=flags_changed, message=event.message, metadata=metadata
                )
            )
        elif event.type == "stale" or (event.type == "error" and self._client.ready):
            # The client still evaluates with the data it has: OpenFeature's STALE, not ERROR.
            self.emit_provider_stale(ProviderEventDetails(message=event.message, metadata=metadata))
        elif event.type == "error":
            self.emit_provider_error(
                ProviderEventDetails(
                    message=event.message, error_code=ErrorCode.GENERAL, metadata=metadata
                )
            )

    # Resolution ----------------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Resolve a boolean flag (any other value is ``TYPE_MISMATCH``)."""
        return self._resolve(flag_key, default_value, evaluation_context, _boolean, "a boolean")

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        """Resolve a string flag (any other value is ``TYPE_MISMATCH``)."""
        return self._resolve(flag_key, default_value, evaluation_context, _string, "a string")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        """Resolve an integer (a float or a boolean value is ``TYPE_MISMATCH``)."""
        return self._resolve(flag_key, default_value, evaluation_context, _integer, "an integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Resolve a number as a float (an integer value is converted; a boolean is not)."""
        return self._resolve(flag_key, default_value, evaluation_context, _float, "a number")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        """Resolve a JSON object or array (a copy: the caller may change it freely)."""
        return self._resolve(
            flag_key, default_value, evaluation_context, _object, "a JSON object or array"
        )

    def _resolve(
        self,
        flag_key: str,
        default_value: T,
        evaluation_context: EvaluationContext | None,
        convert: Callable[[Any], T | _Mismatch],
        expected: str,
    ) -> FlagResolutionDetails[T]:
        context = _client_context(evaluation_context)
        if isinstance(context, str):
            return _error(default_value, ErrorCode.INVALID_CONTEXT, context)
        try:
            details = self._client.evaluate(flag_key, default_value, context)
        except Exception as error:  # the client never raises; this keeps the promise regardless
            logger.exception("flagship.openfeature.evaluate_failed", extra={"flag": flag_key})
            return _error(default_value, ErrorCode.GENERAL, f"evaluation failed: {error}")
        metadata = _flag_metadata(details)
        if details.error_code is not None or details.reason == "ERROR":
            code = _ERROR_CODES.get(details.error_code or "", ErrorCode.GENERAL)
            return _error(default_value, code, details.error_message, metadata)
        value = convert(details.value)
        if isinstance(value, _Mismatch):
            return _error(
                default_value,
                ErrorCode.TYPE_MISMATCH,
                f"flag {flag_key!r} holds {_describe(details.value)}, not {expected}",
                metadata,
            )
        return FlagResolutionDetails(
            value=value,
            reason=_REASONS.get(details.reason, details.reason),
            variant=details.variant,
            flag_metadata=metadata,
        )


def _error(  # noqa: UP047  # the SDK supports Python 3.11: no PEP 695 type parameters
    default_value: T,
    code: ErrorCode,
    message: str | None,
    metadata: Mapping[str, bool | int | float | str] | None = None,
) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=code,
        error_message=message,
        flag_metadata=metadata or {},
    )


def _flag_metadata(details: EvaluationDetails) -> dict[str, bool | int | float | str]:
    """The metadata of a resolution: ``rule``, ``version`` and the notes below.

    For a failed prerequisite ``prerequisiteFailed`` and ``prerequisite``; when evaluation passed
    over a condition the SDK cannot use, ``problem`` (its code) and ``problemPath``.
    """
    metadata: dict[str, bool | int | float | str] = {}
    if details.rule is not None:
        metadata["rule"] = details.rule
    if details.version is not None:
        metadata["version"] = details.version
    problem = details.problem
    if problem is not None:
        metadata["problem"] = problem.code
        metadata["problemPath"] = problem.path
    if details.reason == PREREQUISITE_FAILED:
        metadata["prerequisiteFailed"] = True
        parent = details.prerequisite
        if isinstance(parent, str):
            metadata["prerequisite"] = parent
    return metadata


# Context ----------------------------------------------------------------------------------


def _client_context(evaluation_context: EvaluationContext | None) -> dict[str, Any] | str:
    """The FlagShip context for an OpenFeature one, or why it cannot be one (a message)."""
    if evaluation_context is None:
        return {}
    attributes: object = evaluation_context.attributes
    if not isinstance(attributes, Mapping):
        return "the evaluation context's attributes must be a mapping"
    context: dict[str, Any] = {}
    for name, value in attributes.items():
        if not isinstance(name, str):
            return f"attribute names must be strings, not {type(name).__name__}"
        context[name] = _attribute(value)
    targeting_key: object = evaluation_context.targeting_key
    if targeting_key is not None:
        if not isinstance(targeting_key, str):
            return f"the targeting key must be a string, not {type(targeting_key).__name__}"
        context[TARGETING_KEY] = targeting_key
    return context


def _attribute(value: Any) -> Any:
    """An OpenFeature attribute value as FlagShip's context holds it (JSON-like)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(name): _attribute(item) for name, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_attribute(item) for item in value]
    return value


# Values -----------------------------------------------------------------------------------


def _boolean(value: Any) -> bool | _Mismatch:
    return value if isinstance(value, bool) else _MISMATCH


def _string(value: Any) -> str | _Mismatch:
    return value if isinstance(value, str) else _MISMATCH


def _integer(value: Any) -> int | _Mismatch:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _MISMATCH


def _float(value: Any) -> float | _Mismatch:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _MISMATCH
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return _MISMATCH
    return number if math.isfinite(number) else _MISMATCH


def _object(value: Any) -> ObjectValue | _Mismatch:
    if isinstance(value, Mapping | list):
        # Results are shared between evaluations: never hand out the engine's own object.
        copied: ObjectValue = copy.deepcopy(value)
        return copied
    return _MISMATCH


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
