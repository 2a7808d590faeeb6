"""Every change form of the admin, saved unchanged, stores exactly what was stored.

The demo data (``seed_demo --flags 20``) and awkward data (flags/tests/awkward_data.py) are written;
then every object of every model registered in the admin is opened as a superuser, its change form
is sent back the way a browser sends it (flags/tests/html_forms.py) with "Save", and every stored
row (history included), every environment's ruleset document and every version must be exactly as
before: same values, same JSON types, no new history row, no version moved.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import api_key_issue
from flags import documents, services
from flags.delivery.changes import Kind
from flags.models import Environment, FlagState, Project
from flags.services import StepSpec

from .awkward_data import populate
from .html_forms import FORM_CONTENT_TYPE, encoded, forms_of, submission

STORED_APPS = ("flags", "accounts", "auth")


def stored() -> dict[str, str]:
    """Every row of FlagShip's models (history included) and every ruleset document, as JSON."""
    rows: dict[str, str] = {}
    for app_label in STORED_APPS:
        for model in apps.get_app_config(app_label).get_models(include_auto_created=True):
            values = list(model._default_manager.order_by("pk").values())
            if model is User:
                for row in values:
                    row.pop("last_login")  # signing in is not a change made by a form
            rows[model._meta.label] = json.dumps(values, sort_keys=True, default=repr)
    for environment in Environment.objects.order_by("pk"):
        document = documents.environment_ruleset(environment)
        rows[f"ruleset {environment}"] = json.dumps(document, sort_keys=True)
    return rows


def change_urls() -> list[str]:
    """The change page of every object of every model registered in the admin."""
    urls = []
    for model in admin.site._registry:
        opts = model._meta
        for pk in model._default_manager.order_by("pk").values_list("pk", flat=True):
            try:
                urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]))
            except NoReverseMatch:  # pragma: no cover - every registered model has a change page
                continue
    return urls


def save_unchanged(client: Client, url: str) -> tuple[str, Any]:
    """Open a change page (following redirects) and press its "Save" as a browser would.

    Returns what happened: "saved", or "read-only" for a page without a save button.
    """
    response = client.get(url, follow=True)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    html = response.content.decode()
    form_id = next((name for name in forms_of(html) if name.endswith("_form")), None)
    if form_id is None or 'name="_save"' not in html:
        return "read-only", response
    page_url = response.request["PATH_INFO"]
    entries = submission(html, form_id, submitter="_save")
    answer = client.post(page_url, encoded(entries), content_type=FORM_CONTENT_TYPE)
    return "saved", answer


@pytest.fixture
def everything(db: None) -> Project:
    """The demo with 20 generated flags, and awkward data in the demo project."""
    call_command("seed_demo", flags=20, verbosity=0)
    project = Project.objects.get(key="demo")
    populate(project, actor=User.objects.get(username="editor"))
    # A server key and a webhook limited to one environment and two event types (their change
    # pages are saved back like the rest), and a ramp scheduled a day ahead (its page is
    # read-only: a schedule is cancelled, never edited).
    staging = project.environments.get(key="staging")
    services.webhook_create(
        project=project,
        name="Ops  channel",
        url="https://hooks.example.com/flagship?team=ops",
        environment=staging,
        events=[Kind.FLAG_TOGGLED, Kind.RULES_CHANGED],
    )
    api_key_issue(kind="server", name="Checkout  service", environment=staging)
    tomorrow = timezone.now() + timedelta(days=1)
    services.schedule_create(
        state=FlagState.objects.get(flag__key="new-checkout", environment=staging),
        steps=[
            StepSpec(tomorrow, "rollout", 12_500),
            StepSpec(tomorrow + timedelta(hours=6), "rollout", 100_000),
        ],
        actor=None,
        note="Ramp\nsecond line",
    )
    return project


def test_every_change_form__saved_unchanged__stores_exactly_what_was_stored(
    everything: Project, client: Client
) -> None:
    # Given the demo, generated and awkward data, and a superuser in the admin
    client.force_login(User.objects.get(username="admin"))
    urls = change_urls()
    assert len(urls) > 150
    problems = []
    saved = 0
    saved_urls: list[str] = []
    before = stored()
    for url in urls:
        # When each change form is sent back unchanged
        outcome, response = save_unchanged(client, url)
        if outcome == "read-only":
            continue
        saved += 1
        saved_urls.append(url)
        # Then the save succeeds and nothing stored differs
        if response.status_code != 302:
            errors = response.context["adminform"].form.errors if response.context else ""
            problems.append(f"{url}: not saved ({response.status_code}) {errors}")
            continue
        after = stored()
        changed = sorted(name for name in before if before[name] != after[name])
        if changed:
            problems.append(f"{url}: changed {changed}")
            before = after  # the next form is judged on its own
    assert problems == [], "\n".join(problems)
    assert saved > 100
    for model in ("webhook", "apikey"):  # scheduled changes are cancelled, never edited
        assert any(f"/{model}/" in url for url in saved_urls), model
