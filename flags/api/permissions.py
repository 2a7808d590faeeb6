"""Who may call the management API: people and their admin tokens, by their roles' permissions.

Environment keys (server and client) are for SDKs and are refused on every management endpoint;
reads need the model's ``view_`` permission and writes its ``add_``/``change_``/``delete_`` one.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts.models import ApiKey

ACTION_OF_METHOD = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def is_environment_key(request: Request) -> bool:
    """Whether a server or client key authenticated the request."""
    auth = request.auth
    return isinstance(auth, ApiKey) and auth.kind != ApiKey.Kind.ADMIN


class PersonRequired(BasePermission):
    """A signed-in person or an admin token; environment keys get 403, nobody at all 401."""

    message = "The management API needs a person's credentials or an admin token."
    code = "person_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        """Refuse environment keys and anonymous callers."""
        if is_environment_key(request):
            return False
        return bool(request.user and request.user.is_authenticated)


class ModelPermissions(PersonRequired):
    """``PersonRequired`` plus the Django model permission the method (or action) needs.

    Views name ``permission_model`` and may map actions to permission verbs through
    ``permission_actions`` (e.g. ``{"archive": "change"}``).
    """

    message = "Your role does not allow this."
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        """Check the caller's model permission for this request."""
        if not super().has_permission(request, view):
            return False
        model: type[Model] = view.permission_model
        verb = getattr(view, "permission_actions", {}).get(getattr(view, "action", None))
        if verb is None:
            verb = ACTION_OF_METHOD.get(request.method or "", "change")
        meta = model._meta
        return bool(request.user.has_perm(f"{meta.app_label}.{verb}_{meta.model_name}"))


def is_read(request: Request) -> bool:
    """Whether the request only reads."""
    return request.method in SAFE_METHODS
