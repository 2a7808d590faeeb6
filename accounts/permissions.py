"""DRF permissions for machine callers: which kind of environment key a view accepts."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import ApiKey


def environment_key(request: Request) -> ApiKey | None:
    """The environment key (server or client) that authenticated the request, if any."""
    auth = request.auth
    if isinstance(auth, ApiKey) and auth.kind in (ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT):
        return auth
    return None


class EnvironmentKeyRequired(BasePermission):
    """Allow server and client keys (evaluation endpoints)."""

    kinds: ClassVar[tuple[str, ...]] = (ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT)
    message = "This endpoint needs an environment API key (X-API-Key)."
    code = "environment_key_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        """Whether the request carries a key of an accepted kind."""
        key = environment_key(request)
        return key is not None and key.kind in self.kinds


class ServerKeyRequired(EnvironmentKeyRequired):
    """Allow server keys only (downloading the ruleset reveals every rule)."""

    kinds: ClassVar[tuple[str, ...]] = (ApiKey.Kind.SERVER,)
    message = "This endpoint needs a server API key; client keys never see rules."
    code = "server_key_required"
