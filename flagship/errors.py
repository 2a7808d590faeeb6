"""RFC 9457 problem details for every API error (placeholder until the handler lands)."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Delegate to DRF for now."""
    return drf_exception_handler(exc, context)
