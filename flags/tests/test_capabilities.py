"""FlagShip's own flags (``flags.capabilities``): the system project, answers, capabilities.

What is asserted is what the world sees: the rows the migration stored, the status and body of
the stream, the deliveries and steps the worker leaves waiting, the refusal of a new change
request, and the pages and API answers each role gets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.tests.factories import make_user
from flags import capabilities, services
from flags.delivery import compiled, pubsub, versions
from flags.errors import CapabilityDisabledError
from flags.models import (
    ChangeRequest,
    Environment,
    Flag,
    FlagState,
    Project,
    ScheduledStep,
    WebhookDelivery,
)
from flags.worker import Worker
from flagship.faults import wait_until

from .caching import caching
from .evaluation_data import issue, issue_admin
from .receiver import Receiver
from .system_project import ensure_system_project, remove_system_project, switch, system_state

STREAM = "/api/v1/stream"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def _reading_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The version is read on every call (a change committed in the test is seen at once).

    Each test's rollback hands the system environment's versions out again with other contents:
    nothing compiled by an earlier test is kept.
    """
    monkeypatch.setattr(capabilities, "POLL_SECONDS", 0.0)
    compiled.clear()
    versions.clear()


@pytest.fixture
def system(db: None) -> Project:
    """FlagShip's own project, as the migration made it."""
    return ensure_system_project()


@pytest.fixture
def root(db: None) -> User:
    """A superuser."""
    return User.objects.create_superuser("root", "root@example.com", "x-not-used-x")


# --- The system project and the answers -------------------------------------------------------


def test_migration__system_project__one_environment_and_every_flag_on_but_preview(
    system: Project,
) -> None:
    # Given the migrated database
    # When the system project's rows are read
    environment = system.environments.get()
    rows = FlagState.objects.filter(flag__project=system).values_list("flag__key", "enabled")
    states = dict(rows)
    # Then it is the one system project, with production and a boolean flag per capability
    assert (system.key, system.system, Project.objects.filter(system=True).count()) == (
        "flagship",
        True,
        1,
    )
    assert (environment.key, environment.protected) == ("production", True)
    assert set(Flag.objects.filter(project=system).values_list("kind", flat=True)) == {"boolean"}
    assert states == {
        "stream": True,
        "webhooks": True,
        "scheduled-changes": True,
        "change-requests": True,
        "admin-preview": False,
    }
    # Then the engine's answers are those of the flags
    answers = {key: capabilities.enabled(key) for key in capabilities.CAPABILITIES}
    assert answers == states


def test_enabled__flag_switched_off_then_on__answers_follow(system: Project, root: User) -> None:
    # Given every capability on
    assert capabilities.enabled(capabilities.STREAM) is True
    # When an administrator switches the stream off
    switch(capabilities.STREAM, on=False, actor=root)
    # Then the stream is off, the others still on
    assert capabilities.enabled(capabilities.STREAM) is False
    assert capabilities.enabled(capabilities.WEBHOOKS) is True
    # When it is switched on again
    switch(capabilities.STREAM, on=True, actor=root)
    # Then it is on
    assert capabilities.enabled(capabilities.STREAM) is True


def test_enabled__no_system_project__every_default(db: None) -> None:
    # Given an installation whose system project is gone
    remove_system_project()
    # When each capability is asked for
    answers = {key: capabilities.enabled(key) for key in capabilities.CAPABILITIES}
    # Then each answers its default (everything on but the preview)
    assert answers == {key: c.default for key, c in capabilities.CAPABILITIES.items()}


def test_enabled__database_and_cache_fail__last_answers_then_defaults(
    system: Project, root: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a process that knows the stream is off
    switch(capabilities.STREAM, on=False, actor=root)
    assert capabilities.enabled(capabilities.STREAM) is False

    def down(*args: object) -> Any:
        raise OperationalError("connection refused")

    # When the version and the ruleset can no longer be read
    monkeypatch.setattr(versions, "known_version", down)
    monkeypatch.setattr(compiled, "compiled_for", down)
    # Then the last answers stand
    assert capabilities.enabled(capabilities.STREAM) is False
    # When a process that never loaded them asks (the project is found, nothing else)
    capabilities.clear()
    # Then each capability answers its default
    assert capabilities.enabled(capabilities.STREAM) is True


@pytest.mark.requires_redis
def test_enabled__warm_process__no_query_and_no_redis_command(
    system: Project, django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a process whose versions are pushed through Redis, asked once already
    with caching(str(settings.REDIS_URL)):
        versions.listen()
        assert wait_until(pubsub.subscribed, timeout=5)
        assert capabilities.enabled(capabilities.STREAM) is True
        assert capabilities.enabled(capabilities.STREAM) is True  # the version is recorded
        commands: list[object] = []
        original: Any = redis.Redis.execute_command

        def counted(self: redis.Redis, *args: Any, **options: Any) -> Any:
            commands.append(args[0])
            return original(self, *args, **options)

        monkeypatch.setattr(redis.Redis, "execute_command", counted)
        # When every capability is asked for many times
        with django_assert_num_queries(0):
            for _ in range(100):
                for key in capabilities.CAPABILITIES:
                    capabilities.enabled(key)
        # Then no query ran and no Redis command was sent
        assert commands == []


# --- The stream ---------------------------------------------------------------------------------


def test_stream__switched_off__503_problem_then_back_on__200(system: Project, root: User) -> None:
    # Given a server key of some product's environment
    project = services.project_create(key="demo", name="Demo")
    secret = issue(project.environments.get(key="staging"), ApiKey.Kind.SERVER)
    client = Client()
    # When the stream is switched off and a client connects
    switch(capabilities.STREAM, on=False, actor=root)
    response = client.get(STREAM, headers={"X-API-Key": secret})
    # Then it gets 503 with a problem body naming the capability
    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert response["Retry-After"] == "30"
    body = json.loads(response.content)
    assert (body["status"], body["code"], body["instance"]) == (503, "capability_disabled", STREAM)
    # When it is switched on again
    switch(capabilities.STREAM, on=True, actor=root)
    response = client.get(STREAM, headers={"X-API-Key": secret})
    # Then the stream answers (over WSGI: the current version once)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"


# --- The worker ---------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback."""
    with Receiver() as running:
        yield running


def test_worker__webhooks_off__deliveries_wait__on__sent(
    system: Project, root: User, receiver: Receiver
) -> None:
    # Given a webhook and a change that wrote a delivery for it
    project = services.project_create(key="demo", name="Demo")
    services.webhook_create(project=project, name="ops", url=receiver.url())
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    state = flag.states.get(environment__key="staging")
    services.flag_toggle(state=state, enabled=True, actor=None)
    # When webhooks are switched off and the worker drains
    switch(capabilities.WEBHOOKS, on=False, actor=root)
    attempted = Worker(concurrency=1).drain()
    # Then nothing was sent and every delivery waits, pending
    assert attempted == 0
    assert receiver.received == []
    statuses = set(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses == {WebhookDelivery.Status.PENDING}
    # When they are switched on again
    switch(capabilities.WEBHOOKS, on=True, actor=root)
    Worker(concurrency=1).drain()
    # Then the waiting deliveries left
    assert len(receiver.received) >= 1
    assert not WebhookDelivery.objects.filter(
        webhook__project=project, status=WebhookDelivery.Status.PENDING
    ).exists()


def test_worker__scheduled_changes_off__due_step_waits__on__runs(
    system: Project, root: User
) -> None:
    # Given a step that is due
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    state = flag.states.get(environment__key="staging")
    change = services.schedule_create(
        state=state,
        steps=[services.StepSpec(at=timezone.now() + timedelta(seconds=1), action="enable")],
        actor=None,
    )
    time.sleep(1.1)
    # When scheduled changes are switched off and the worker drains
    switch(capabilities.SCHEDULED_CHANGES, on=False, actor=root)
    worker = Worker(concurrency=1)
    worker.drain()
    # Then the step waits and the flag is still off
    assert change.steps.get().status == ScheduledStep.Status.PENDING
    assert FlagState.objects.get(pk=state.pk).enabled is False
    # When they are switched on again
    switch(capabilities.SCHEDULED_CHANGES, on=True, actor=root)
    worker.drain()
    # Then the step ran
    assert change.steps.get().status == ScheduledStep.Status.DONE
    assert FlagState.objects.get(pk=state.pk).enabled is True


# --- Change requests ----------------------------------------------------------------------------


def test_change_requests_off__proposal_refused__approvals_not_bypassed(
    system: Project, root: User, editor: User
) -> None:
    # Given a production that takes change requests
    project = services.project_create(key="demo", name="Demo")
    production = project.environments.get(key="production")
    services.environment_update(environment=production, required_approvals=1, actor=root)
    production.refresh_from_db()
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    state = flag.states.get(environment=production)
    # When change requests are switched off and an editor proposes a change
    switch(capabilities.CHANGE_REQUESTS, on=False, actor=root)
    with (
        pytest.raises(CapabilityDisabledError) as refused,
        services.proposing(environment=production, actor=editor, title="On"),
    ):
        services.flag_toggle(state=state, enabled=True, actor=editor)
    # Then it is refused with its code, nothing is stored and the flag did not change
    assert refused.value.code == "capability_disabled"
    assert ChangeRequest.objects.count() == 0
    assert FlagState.objects.get(pk=state.pk).enabled is False


def test_change_requests_off__api_proposal__503_capability_disabled(
    system: Project, root: User
) -> None:
    # Given a production that takes change requests and an administrator's token
    project = services.project_create(key="demo", name="Demo")
    production = project.environments.get(key="production")
    services.environment_update(environment=production, required_approvals=1, actor=root)
    services.flag_create(project=project, key="new-checkout", name="New checkout")
    token = issue_admin(root)
    switch(capabilities.CHANGE_REQUESTS, on=False, actor=root)
    # When a change is proposed through the API
    response = Client().post(
        "/api/v1/projects/demo/flags/new-checkout/environments/production/toggle/",
        data=json.dumps({"enabled": True}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    # Then it is refused as switched off, and nothing changed
    assert response.status_code == 503, response.content
    assert json.loads(response.content)["code"] == "capability_disabled"
    assert ChangeRequest.objects.count() == 0
    assert FlagState.objects.get(flag__key="new-checkout", environment=production).enabled is False


# --- Who sees the system project ----------------------------------------------------------------


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["Viewer", "Editor", "Release manager"])
def test_admin__not_an_administrator__system_project_hidden_and_refused(
    system: Project, role: str
) -> None:
    # Given a person with a role below Administrator, and a product project
    services.project_create(key="demo", name="Demo")
    client = _signed_in(make_user(username="person", role=role))
    stream = system_state(capabilities.STREAM)
    # When they open the project list, the flag list of the system project and its pages
    projects = client.get(reverse("admin:flags_project_changelist")).content.decode()
    flags = client.get(
        reverse("admin:flags_flag_changelist"), {"project": system.key}
    ).content.decode()
    lists = [
        client.get(reverse(f"admin:flags_{model}_changelist")).content.decode()
        for model in ("environment", "flagstate", "rule", "segment", "changeevent")
    ]
    project_page = client.get(reverse("admin:flags_project_change", args=[system.pk]))
    flag_page = client.get(reverse("admin:flags_flag_change", args=[stream.flag_id]))
    state_page = client.get(reverse("admin:flags_flagstate_change", args=[stream.pk]))
    # Then the product project is listed and the system project nowhere
    assert "Demo" in projects
    assert "FlagShip (system)" not in projects
    assert "FlagShip (system)" not in flags
    assert "scheduled-changes" not in flags
    assert not [page for page in lists if "FlagShip (system)" in page]
    # Then its pages are refused (Django's "doesn't exist" redirect)
    assert [project_page.status_code, flag_page.status_code, state_page.status_code] == [
        302,
        302,
        302,
    ]


@pytest.mark.parametrize("who", ["superuser", "Administrator"])
def test_admin__administrator__sees_and_switches_the_stream_off(system: Project, who: str) -> None:
    # Given an administrator (a superuser, or the Administrator role)
    if who == "superuser":
        person = User.objects.create_superuser("root", "root@example.com", "x-not-used-x")
    else:
        person = make_user(username="person", role=who)
    client = _signed_in(person)
    stream = system_state(capabilities.STREAM)
    # When they open the system project's flags and switch the stream off (confirming)
    flags = client.get(
        reverse("admin:flags_flag_changelist"), {"project": system.key}
    ).content.decode()
    toggle = reverse("admin:flags_flag_toggle", args=[stream.flag_id, stream.environment_id])
    response = client.post(toggle, {"enabled": "false", "confirmed": "yes"})
    states = client.get(reverse("admin:flags_flagstate_changelist")).content.decode()
    # Then the lists showed every capability and the project, and the stored state is off
    assert all(key in flags for key in capabilities.CAPABILITIES)
    assert "FlagShip (system)" in states
    assert response.status_code == 302, response.content[:500]
    assert FlagState.objects.get(pk=stream.pk).enabled is False
    assert capabilities.enabled(capabilities.STREAM) is False


@pytest.mark.parametrize(
    ("role", "listed", "detail"),
    [("Viewer", False, 404), ("Editor", False, 404), ("Administrator", True, 200)],
)
def test_api__system_project__administrators_only(
    system: Project, role: str, listed: bool, detail: int
) -> None:
    # Given a person's admin token
    person = make_user(username="person", role=role)
    headers = {"Authorization": f"Bearer {issue_admin(person)}"}
    client = Client()
    # When they list projects and ask for the system project and its flags
    keys = [p["key"] for p in client.get("/api/v1/projects/", headers=headers).json()["results"]]
    one = client.get(f"/api/v1/projects/{system.key}/", headers=headers)
    flags = client.get(f"/api/v1/projects/{system.key}/flags/", headers=headers)
    # Then only an administrator sees it
    assert (system.key in keys) is listed
    assert (one.status_code, flags.status_code) == (detail, detail)


def test_dashboard__system_project__not_among_the_products(system: Project, root: User) -> None:
    # Given a product project
    services.project_create(key="demo", name="Demo")
    # When a superuser opens the admin's index
    page = _signed_in(root).get(reverse("admin:index")).content.decode()
    # Then the product is summarised and the system project is not
    assert "Demo" in page
    assert "FlagShip (system)" not in page
    assert Environment.objects.filter(project=system).exists()


def test_audit__system_flag_switched__only_administrators_read_it(
    system: Project, root: User, viewer: User
) -> None:
    # Given an administrator's switch of the stream, and an editor's toggle in a product
    switch(capabilities.STREAM, on=False, actor=root)
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    services.flag_toggle(
        state=flag.states.get(environment__key="staging"), enabled=True, actor=None
    )
    # When a viewer and the administrator read the audit feed and the admin's audit page
    feeds = {}
    pages = {}
    for person in (viewer, root):
        client = _signed_in(person)
        rows = client.get("/api/v1/audit/", {"page_size": 100}).json()["results"]
        feeds[person.username] = [(row["model"], row["user"]) for row in rows]
        pages[person.username] = client.get(reverse("admin:audit")).content.decode()
    refused = _signed_in(viewer).get("/api/v1/audit/", {"project": system.key})
    # Then the administrator's switch is in the administrator's feed only
    assert ("flagstate", "root") in feeds["root"]
    assert ("flagstate", "root") not in feeds["viewer"]
    assert ("flagstate", None) in feeds["viewer"]
    assert "FlagShip (system)" in pages["root"]
    assert "FlagShip (system)" not in pages["viewer"]
    assert refused.status_code == 404
