"""Who is asking, and what they may do: the REST API's permissions, asked per field.

The view authenticates with DRF's authenticators (JWT, admin tokens, environment keys, the
admin's session), so a caller is exactly who they would be on ``/api/v1/``. Management fields
need a person or an admin token with the model permission REST's ``ModelPermissions`` would ask
for; environment keys get ``permission_denied`` there, as on every management endpoint, and may only
``evaluate`` (client keys: client-visible flags, values only, never rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from accounts.models import ApiKey
from flags.api.permissions import ModelPermissions

from .errors import failure

# The REST permission verbs: reading is ``view``, every write here is ``change``.
VIEW = "view"
CHANGE = "change"


@dataclass
class Context:
    """What every resolver gets as ``info.context``: the request and its authenticated caller."""

    request: HttpRequest
    response: HttpResponse
    user: Any
    auth: Any

    @property
    def environment_key(self) -> ApiKey | None:
        """The server or client key that authenticated the request, if one did."""
        auth = self.auth
        if isinstance(auth, ApiKey) and auth.kind != ApiKey.Kind.ADMIN:
            return auth
        return None


def context_of(info: Info[Any, Any]) -> Context:
    """``info.context``, typed."""
    context: Context = info.context
    return context


def person(info: Info[Any, Any]) -> Any:
    """The person (or admin token's owner) calling; refused as REST refuses environment keys."""
    context = context_of(info)
    if context.environment_key is not None:
        # REST's code for an environment key on a management endpoint, in clearer words.
        raise failure(
            "permission_denied",
            "Environment keys may only evaluate: this needs a person's credentials or an admin "
            "token.",
            status=403,
        )
    user = context.user
    if user is None or not user.is_authenticated:
        raise failure(
            "not_authenticated", "Authentication credentials were not provided.", status=401
        )
    return user


def require(info: Info[Any, Any], model: type[Model], verb: str = VIEW) -> Any:
    """The calling person, who must hold ``<app>.<verb>_<model>`` (as REST's ModelPermissions)."""
    user = person(info)
    meta = model._meta
    if not user.has_perm(f"{meta.app_label}.{verb}_{meta.model_name}"):
        raise failure("permission_denied", ModelPermissions.message, status=403)
    return user


class Requires(FieldExtension):
    """A field of a related model that needs that model's view permission too."""

    def __init__(self, model: type[Model]) -> None:
        super().__init__()
        self.model = model

    def resolve(self, next_: Any, source: Any, info: Info[Any, Any], **kwargs: Any) -> Any:
        """Check, then resolve as usual (prefetched by the optimizer)."""
        require(info, self.model)
        return next_(source, info, **kwargs)
