"""Role boundaries in the admin: one test per boundary (Viewer, Editor, Release manager, Admin)."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.test.html import Element

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, Segment

from .admin_pages import attributes, find_all, nearest, page, text


def _editable(root: Element) -> list[str]:
    """Names of the controls a person could change or submit (hidden inputs and the filters of
    GET forms aside).
    """
    names = []
    for tag in ("input", "select", "textarea", "button"):
        for element, ancestors in find_all(root, tag):
            found = attributes(element)
            form = nearest(ancestors, "form")
            if form is not None and (attributes(form).get("method") or "get").lower() == "get":
                continue
            if found.get("type") != "hidden" and found.get("name"):
                names.append(str(found["name"]))
    return names


def _rule_page(client: Client, rule_id: int) -> Any:
    """A rule's page: its flag state's page, with the rule's form in place for those who may."""
    return client.get(f"/admin/flags/rule/{rule_id}/change/", follow=True)


def test_viewer__every_page__rendered_read_only(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given a viewer, and a rule in staging
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(state=state, serve={"variant": "on"}, rollout=25_000)
    client.force_login(viewer)
    urls = [
        f"/admin/flags/flag/{boolean_flag.pk}/change/",
        f"/admin/flags/flagstate/{state.pk}/change/",
        f"/admin/flags/rule/{rule.pk}/change/",
        f"/admin/flags/segment/{beta_testers.pk}/change/",
        f"/admin/flags/project/{staging.project_id}/change/",
        f"/admin/flags/environment/{staging.pk}/change/",
        f"/admin/flags/flag/{boolean_flag.pk}/history/",
    ]

    # When they open each page (a rule's opens its flag state's page)
    responses = [client.get(url, follow=True) for url in urls]

    # Then each renders without a single control to change or save anything, and the rule's
    # rollout and serve read in words
    assert [response.status_code for response in responses] == [200] * len(urls)
    assert [_editable(page(response)) for response in responses] == [[]] * len(urls)
    sentence = find_all(page(responses[2]), data_testid="rule-sentence-1")
    assert [text(element) for element, _ in sentence] == ["25 % of everyone → on"]


def test_viewer__add_pages_and_posts__403(client: Client, viewer: User, boolean_flag: Flag) -> None:
    # Given a viewer
    client.force_login(viewer)

    # When they open add pages or post a change
    responses = [
        client.get("/admin/flags/flag/add/"),
        client.get("/admin/flags/segment/add/"),
        client.post(f"/admin/flags/flag/{boolean_flag.pk}/change/", {"name": "Hacked"}),
    ]

    # Then every one is forbidden
    assert [response.status_code for response in responses] == [403, 403, 403]
    assert Flag.objects.get(pk=boolean_flag.pk).name == "New checkout"


def test_editor__staging_editable_production_read_only(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, production: Environment
) -> None:
    # Given an editor, and a rule in each environment
    rules = {
        environment.key: services.rule_create(
            state=boolean_flag.states.get(environment=environment), serve={"variant": "on"}
        )
        for environment in (staging, production)
    }
    client.force_login(editor)

    # When they open each rule's page
    unprotected = _editable(page(_rule_page(client, rules["staging"].pk)))
    protected = _editable(page(_rule_page(client, rules["production"].pk)))

    # Then staging's rule can be edited and saved in place, production's only read
    assert {"rule-serve_mode", "rule-serve_variant", "rule-rollout", "_rule_save"} <= set(
        unprotected
    )
    assert protected == []


def test_release_manager__production__editable(
    client: Client, release_manager: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given a release manager
    state = boolean_flag.states.get(environment=production)
    client.force_login(release_manager)

    # When they open new-checkout in production
    controls = _editable(page(client.get(f"/admin/flags/flagstate/{state.pk}/change/")))

    # Then it can be switched, served and saved
    assert {"enabled", "off_variant", "default_serve_mode", "default_serve_variant"} <= set(
        controls
    )
    assert "_save" in controls


def test_editor__environments__read_only_and_no_add(
    client: Client, editor: User, staging: Environment
) -> None:
    # Given an editor (environments are structural: administrators only)
    client.force_login(editor)

    # When they open an environment, its add page, and post a change
    shown = client.get(f"/admin/flags/environment/{staging.pk}/change/")
    add = client.get("/admin/flags/environment/add/")
    posted = client.post(
        f"/admin/flags/environment/{staging.pk}/change/",
        {"name": "Renamed", "color": "#000000", "order": "1"},
    )

    # Then the page is read-only and the rest forbidden
    assert _editable(page(shown)) == []
    assert (add.status_code, posted.status_code) == (403, 403)


def test_administrator__environment_add__through_environment_create(
    client: Client, administrator: User, boolean_flag: Flag
) -> None:
    # Given an administrator and a project with a flag
    client.force_login(administrator)

    # When they add an environment
    response = client.post(
        "/admin/flags/environment/add/",
        {
            "project": str(boolean_flag.project_id),
            "key": "qa",
            "name": "QA",
            "color": "#0ea5e9",
            "order": "3",
        },
    )

    # Then it exists, and the flag got a switched-off state there (environment_create)
    assert response.status_code == 302
    environment = Environment.objects.get(project_id=boolean_flag.project_id, key="qa")
    assert list(environment.states.values_list("flag__key", "enabled")) == [("new-checkout", False)]
    assert environment.history.get().history_user == administrator
