"""Promotion: a flag's targeting copied from one environment to another, as stored and as served."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts import roles
from accounts.tests.factories import make_user
from flags import documents, services
from flags.delivery.changes import Kind
from flags.errors import PermissionDeniedError
from flags.history import as_of
from flags.models import ChangeEvent, Environment, Flag, FlagState, Segment
from flagship_sdk.engine import Ruleset

from .api_clients import client_for

URL = "/api/v1/projects/demo/promote/"


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.select_related("environment", "flag").get(
        flag=flag, environment=environment
    )


def _targeting(state: FlagState) -> tuple[Any, ...]:
    """What a promotion copies, without ids: rules, prerequisites, default serve, off variant."""
    config = as_of.current(_state(state.flag, state.environment))
    rules = tuple(
        (
            rule.description,
            rule.segment_ids,
            rule.rollout,
            rule.bucket_by,
            repr(rule.serve),
            tuple(
                repr({k: v for k, v in condition.spec().items() if k != "id"})
                for condition in rule.conditions
            ),
        )
        for rule in config.rules
    )
    return rules, config.prerequisites, repr(config.default_serve), config.off_variant_id


def _version(environment: Environment) -> int:
    return Environment.objects.values_list("ruleset_version", flat=True).get(pk=environment.pk)


@pytest.fixture
def targeted(string_flag: Flag, staging: Environment, beta_testers: Segment) -> FlagState:
    """banner-text in staging: on, two rules (a segment; a 30 % rollout of Germans), a default."""
    state = _state(string_flag, staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(
        state=state, serve={"variant": "new"}, segments=[beta_testers], description="Beta"
    )
    services.rule_create(
        state=state,
        serve={"variant": "sale"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE", "AT"]}],
        rollout=30_000,
    )
    services.flag_state_update(
        state=_state(string_flag, staging), actor=None, default_serve={"variant": "none"}
    )
    return _state(string_flag, staging)


def test_preview__staging_to_production__shows_the_change_writes_nothing(
    targeted: FlagState, production: Environment
) -> None:
    # Given staging's targeting and an untouched production
    flag = targeted.flag
    version = _version(production)
    events = ChangeEvent.objects.count()
    # When the promotion is previewed
    [preview] = services.promotion_preview(
        flags=[flag], source=targeted.environment, target=production
    )
    # Then it shows production's document now and with staging's two rules, off as it is
    assert preview.changes
    assert preview.before is not None
    assert "rules" not in preview.before
    assert len(preview.after["rules"]) == 2
    assert preview.after["enabled"] is False
    # And nothing was written
    assert (_version(production), ChangeEvent.objects.count()) == (version, events)
    assert _state(flag, production).rules.count() == 0


def test_promote__release_manager__target_serves_the_source_targeting_once(
    targeted: FlagState, production: Environment
) -> None:
    # Given a release manager and staging's targeting
    manager = make_user(username="rm", role=roles.RELEASE_MANAGER)
    flag = targeted.flag
    version = _version(production)
    # When he promotes the flag to production
    [promoted] = services.flags_promote(
        flags=[flag], source=targeted.environment, target=production, actor=manager
    )
    # Then production stores staging's targeting, keeps its own switch (off), and moved once
    target = _state(flag, production)
    assert _targeting(target) == _targeting(targeted)
    assert target.enabled is False
    assert _version(production) == version + 1
    # And one rules.changed event says who and why, with what production served before
    event = ChangeEvent.objects.filter(kind=Kind.RULES_CHANGED).latest("occurred_at")
    assert (event.actor_name, event.reason, event.flags) == (
        "rm",
        "Promoted from Staging",
        [flag.key],
    )
    assert event.before == promoted.before
    # And history rows of the new rules carry the reason
    rule = target.rules.first()
    assert rule is not None
    assert rule.history.latest().history_change_reason == "Promoted from Staging"


def test_promote__again__nothing_changes_no_event_no_version(
    targeted: FlagState, production: Environment
) -> None:
    # Given a flag already promoted
    flag = targeted.flag
    services.flags_promote(flags=[flag], source=targeted.environment, target=production, actor=None)
    version, events = _version(production), ChangeEvent.objects.count()
    # When it is promoted again
    promoted = services.flags_promote(
        flags=[flag], source=targeted.environment, target=production, actor=None
    )
    # Then nothing changed: no promotion reported, no event, no version
    assert promoted == []
    assert (_version(production), ChangeEvent.objects.count()) == (version, events)


def test_promote__target_had_more_rules__extras_go_and_kept_rules_keep_their_ids(
    targeted: FlagState, production: Environment
) -> None:
    # Given production with three rules of its own
    flag = targeted.flag
    prod = _state(flag, production)
    for variant in ("new", "sale", "none"):
        services.rule_create(state=prod, serve={"variant": variant}, actor=None)
    ids = list(prod.rules.order_by("order").values_list("pk", flat=True))
    # When staging's two rules are promoted over them
    services.flags_promote(flags=[flag], source=targeted.environment, target=production, actor=None)
    # Then production has staging's two rules, in the first two rules' places (same ids)
    target = _state(flag, production)
    assert _targeting(target) == _targeting(targeted)
    assert list(target.rules.order_by("order").values_list("pk", flat=True)) == ids[:2]


def test_promote__editor_into_protected__refused_nothing_written(
    targeted: FlagState, production: Environment, project: Any
) -> None:
    # Given an editor
    editor = make_user(username="ed", role=roles.EDITOR)
    flag = targeted.flag
    version = _version(production)
    # When she promotes into production: Then it is refused, and production is unchanged
    with pytest.raises(PermissionDeniedError):
        services.flags_promote(
            flags=[flag], source=targeted.environment, target=production, actor=editor
        )
    assert _version(production) == version
    assert _state(flag, production).rules.count() == 0
    # And into development (unprotected) she may
    development = project.environments.get(key="development")
    services.flags_promote(
        flags=[flag], source=targeted.environment, target=development, actor=editor
    )
    assert _targeting(_state(flag, development)) == _targeting(targeted)


def test_promote__with_the_switch__every_context_served_alike(
    targeted: FlagState, production: Environment, boolean_flag: Flag
) -> None:
    # Given staging's targeting for banner-text and new-checkout switched on in staging
    services.flag_toggle(state=_state(boolean_flag, targeted.environment), enabled=True, actor=None)
    flags = [targeted.flag, boolean_flag]
    # When every flag is promoted with its switch
    services.flags_promote(
        flags=flags,
        source=targeted.environment,
        target=production,
        actor=None,
        include_switch=True,
    )
    # Then both environments serve every flag alike to 2 000 contexts
    source = Ruleset.from_dict(documents.environment_ruleset(targeted.environment))
    target = Ruleset.from_dict(
        documents.environment_ruleset(Environment.objects.get(pk=production.pk))
    )
    rng = random.Random(12)
    for n in range(2_000):
        context = {
            "targetingKey": f"user-{n}",
            "country": rng.choice(["DE", "AT", "FR", "US"]),
            "email": rng.choice(["a@example.com", "b@shop.test"]),
        }
        for flag in flags:
            left, right = source.evaluate(flag.key, context), target.evaluate(flag.key, context)
            assert (left.value, left.variant) == (right.value, right.variant), (flag.key, context)


def test_promote__same_environment_or_other_project__refused(
    targeted: FlagState,
) -> None:
    # Given another project's environment
    other = services.project_create(key="other", name="Other").environments.get(key="staging")
    # When a flag is promoted onto itself or across projects: Then it is refused
    for target, code in (
        (targeted.environment, "same_environment"),
        (other, "invalid_environment"),
    ):
        with pytest.raises(ValidationError) as refused:
            services.promotion_preview(
                flags=[targeted.flag], source=targeted.environment, target=target
            )
        assert refused.value.code == code


# --- API --------------------------------------------------------------------------------------


def test_api_dry_run__viewer__sees_the_change_nothing_written(
    targeted: FlagState, production: Environment
) -> None:
    # Given a viewer
    client = client_for("viewer", production)
    version = _version(production)
    # When she previews promoting staging to production
    response = client.post(
        URL, {"source": "staging", "target": "production", "dry_run": True}, format="json"
    )
    # Then she sees banner-text would change, and nothing was written
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["dry_run"], [p["flag"] for p in body["promotions"]]) == (True, ["banner-text"])
    assert len(body["promotions"][0]["after"]["rules"]) == 2
    assert _version(production) == version


@pytest.mark.parametrize(
    ("caller", "status"),
    [("viewer", 403), ("editor", 403), ("release_manager", 200), ("server_key", 403)],
)
def test_api_promote__roles(
    targeted: FlagState, production: Environment, caller: str, status: int
) -> None:
    # Given a caller
    client = client_for(caller, production)
    # When it promotes banner-text into protected production
    response = client.post(
        URL,
        {"source": "staging", "target": "production", "flags": ["banner-text"]},
        format="json",
    )
    # Then only a release manager may; the others change nothing
    assert response.status_code == status, response.content
    promoted = _state(targeted.flag, production).rules.count() == 2
    assert promoted is (status == 200)


def test_api_promote__unknown_flag_or_environment__400_or_404(
    targeted: FlagState, production: Environment
) -> None:
    # Given a release manager
    client = client_for("release_manager", production)
    # When a flag or an environment is unknown: Then 400 naming the flag, or 404
    response = client.post(
        URL, {"source": "staging", "target": "production", "flags": ["nope"]}, format="json"
    )
    assert response.status_code == 400
    assert "nope" in str(response.json())
    response = client.post(URL, {"source": "staging", "target": "mars"}, format="json")
    assert response.status_code == 404
    response = client.post(URL, {"source": "staging", "target": "staging"}, format="json")
    assert response.status_code == 400


# --- Admin ------------------------------------------------------------------------------------


def test_admin_promote__release_manager__preview_then_confirm_stores_staging_targeting(
    targeted: FlagState, production: Environment, client: Any
) -> None:
    # Given a release manager on production's state page
    manager = make_user(username="rm", role=roles.RELEASE_MANAGER)
    client.force_login(manager)
    prod = _state(targeted.flag, production)
    page = client.get(f"/admin/flags/flagstate/{prod.pk}/change/")
    url = f"/admin/flags/flagstate/{prod.pk}/promote/"
    assert url in page.content.decode()
    # When he previews staging's targeting there
    preview = client.get(url, {"source": "staging"})
    # Then the preview shows the change and nothing is written yet
    html = preview.content.decode()
    assert preview.status_code == 200
    assert 'data-testid="promote-preview"' in html
    assert 'data-testid="confirm-promote"' in html
    assert prod.rules.count() == 0
    # When he confirms with a reason
    done = client.post(
        f"{url}?source=staging", {"version": str(prod.version), "reason": "Tested in staging"}
    )
    # Then production stores staging's targeting, switch untouched, with his reason
    assert done.status_code == 302
    target = _state(targeted.flag, production)
    assert _targeting(target) == _targeting(targeted)
    assert target.enabled is False
    event = ChangeEvent.objects.filter(kind=Kind.RULES_CHANGED).latest("occurred_at")
    assert (event.actor_name, event.reason) == ("rm", "Tested in staging")


def test_admin_promote__stale_preview__refused_nothing_written(
    targeted: FlagState, production: Environment, client: Any
) -> None:
    # Given a preview shown at production's version, then someone toggles production
    client.force_login(make_user(username="rm", role=roles.RELEASE_MANAGER))
    prod = _state(targeted.flag, production)
    shown = prod.version
    services.flag_toggle(state=prod, enabled=True, actor=None)
    # When the preview is confirmed
    url = f"/admin/flags/flagstate/{prod.pk}/promote/?source=staging"
    page = client.post(url, {"version": str(shown), "reason": "late"})
    # Then it is refused on the page, and production's rules are unchanged
    assert page.status_code == 200
    assert 'data-testid="promote-problem"' in page.content.decode()
    assert _state(targeted.flag, production).rules.count() == 0


def test_admin_promote__editor_into_protected__403(
    targeted: FlagState, production: Environment, client: Any
) -> None:
    # Given an editor; When she opens the promotion into production: Then 403
    client.force_login(make_user(username="ed", role=roles.EDITOR))
    prod = _state(targeted.flag, production)
    assert client.get(f"/admin/flags/flagstate/{prod.pk}/promote/").status_code == 403
