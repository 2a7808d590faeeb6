"""History entries as a page shows them to one person: with the links that person may follow.

People link to their admin page only for those who may view or change users (anyone else would
meet a 403 page); flags link to their page for those who may view flags, while the flag exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from ..models import Flag
from .entries import Entry

VIEW_FLAGS = "flags.view_flag"
VIEW_PEOPLE = ("accounts.view_user", "accounts.change_user")


@dataclass(frozen=True)
class HistoryRow:
    """An entry with the links this viewer may follow (None: shown as plain text)."""

    entry: Entry
    user_url: str | None
    flag_url: str | None


def history_links(request: HttpRequest, found: Sequence[Entry]) -> list[HistoryRow]:
    """Entries with their links, for ``request``'s person (one query tells which flags exist)."""
    user = request.user
    people = any(user.has_perm(permission) for permission in VIEW_PEOPLE)
    flag_ids = {entry.flag_id for entry in found if entry.flag_id is not None}
    live: set[int] = set()
    if flag_ids and user.has_perm(VIEW_FLAGS):
        live = set(Flag.objects.filter(pk__in=flag_ids).values_list("pk", flat=True))
    return [
        HistoryRow(
            entry=entry,
            user_url=reverse("admin:accounts_user_change", args=[entry.user_id])
            if people and entry.user_id is not None and entry.username is not None
            else None,
            flag_url=reverse("admin:flags_flag_change", args=[entry.flag_id])
            if entry.flag_id in live
            else None,
        )
        for entry in found
    ]
