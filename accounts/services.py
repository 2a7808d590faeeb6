"""Writes to API keys: issue (the secret is returned once) and revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from flags.delivery.changes import Kind
from flags.models import Environment
from flags.services.common import announce

from . import keys
from .models import ApiKey, User


@transaction.atomic
def api_key_issue(
    *,
    kind: str,
    name: str,
    environment: Environment | None = None,
    user: User | None = None,
    expires_at: datetime | None = None,
    actor: Any | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key; return it and its secret, which is never stored or shown again.

    A scope that does not fit the kind (an admin token needs a user, a server or client key an
    environment) is refused by the model's validation, next to the field to fix.
    """
    if kind not in keys.PREFIXES:
        raise ValidationError({"kind": "Choose server, client or admin."}, code="invalid_kind")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose a time in the future."})
    secret, lookup, secret_hash = keys.new_secret(kind)
    key = ApiKey(
        kind=kind,
        name=name,
        lookup=lookup,
        secret_hash=secret_hash,
        environment=environment,
        user=user,
        expires_at=expires_at,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    key.full_clean()
    if getattr(actor, "is_authenticated", False):
        key._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
    key.save()
    _announce(Kind.API_KEY_ISSUED, key, actor)
    return key, secret


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Any | None = None) -> ApiKey:
    """Revoke a key at once (idempotent)."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        if getattr(actor, "is_authenticated", False):
            key._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
        key.save(update_fields=["revoked_at"])
        _announce(Kind.API_KEY_REVOKED, key, actor)
    return key


@transaction.atomic
def api_key_rename(*, key: ApiKey, name: str, actor: Any | None = None) -> ApiKey:
    """Rename a key (the only field that changes after issuing), with history and an event."""
    stored = ApiKey.objects.select_for_update().get(pk=key.pk)
    if stored.name == name:
        return stored
    stored.name = name
    stored.full_clean()
    if getattr(actor, "is_authenticated", False):
        stored._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
    stored.save(update_fields=["name"])
    _announce(Kind.API_KEY_RENAMED, stored, actor)
    key.name = name
    return stored


def _announce(kind: Kind, key: ApiKey, actor: Any | None) -> None:
    """The key's change event: its name, kind and lookup prefix, never its secret."""
    environment = key.environment
    announce(
        kind,
        actor=actor,
        project_id=environment.project_id if environment is not None else None,
        environments=[environment.pk] if environment is not None else (),
        after={
            "id": key.pk,
            "name": key.name,
            "kind": key.kind,
            "lookup": key.lookup,
            "user": key.user.get_username() if key.user is not None else None,
            "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        },
    )
