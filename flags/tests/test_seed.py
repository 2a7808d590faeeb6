"""manage.py seed_demo: the demo shop, its people, generated flags; idempotent."""

from __future__ import annotations

import io
import re

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.core.management.base import OutputWrapper

from accounts import roles
from accounts.models import User
from flags import documents
from flags.management import demo
from flags.management.progress import ProgressBar
from flags.models import Environment, Flag, FlagState, Project, Variant
from flagship_sdk.engine import Ruleset

PASSWORD_VARIABLES = [
    demo.SHARED_PASSWORD_VARIABLE,
    *(person.password_variable for person in demo.USERS),
]


@pytest.fixture(autouse=True)
def no_demo_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test decides which demo password variables are set."""
    for name in PASSWORD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def seed(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def history_rows() -> int:
    return sum(
        model._default_manager.count()
        for model in apps.get_models()
        if model.__name__.startswith("Historical")
    )


def totals() -> dict[str, object]:
    return {
        "flags": Flag.objects.count(),
        "states": FlagState.objects.count(),
        "users": User.objects.count(),
        "history": history_rows(),
        "versions": sorted(Environment.objects.values_list("key", "ruleset_version")),
    }


def production_ruleset() -> Ruleset:
    production = Environment.objects.get(project__key="demo", key="production")
    return Ruleset.from_dict(documents.environment_ruleset(production), strict=True)


def test_seed_demo__run_twice__second_run_changes_nothing(db: None) -> None:
    # Given a seeded database
    first, _ = seed()
    after_first = totals()

    # When the demo is seeded again
    second, _ = seed()

    # Then nothing changed (no new rows, history or versions) and no password is shown again
    assert totals() == after_first
    for person in demo.USERS:
        assert f"User {person.username} already exists (password unchanged)." in second
    assert "Generated passwords" in first
    assert "Generated passwords" not in second
    assert "Demo flags: 0 created, 7 already existed." in second


def test_seed_demo__fresh__project_with_environments_flags_segments_and_tags(db: None) -> None:
    seed()

    project = Project.objects.get(key="demo")
    assert project.name == "Demo shop"
    assert list(project.environments.values_list("key", "protected")) == [
        ("development", False),
        ("staging", False),
        ("production", True),
    ]
    assert set(project.flags.values_list("key", "kind")) == {
        ("new-checkout", "boolean"),
        ("express-checkout", "boolean"),
        ("banner-text", "string"),
        ("search-results-per-page", "number"),
        ("checkout-config", "json"),
        ("payments-kill-switch", "boolean"),
        ("dark-mode", "boolean"),
    }
    assert set(project.segments.values_list("key", flat=True)) == {
        "beta-testers",
        "enterprise-customers",
    }
    new_checkout = project.flags.get(key="new-checkout")
    assert list(new_checkout.tags.values_list("name", flat=True)) == ["checkout"]
    assert new_checkout.owner is not None
    assert new_checkout.owner.username == "editor"
    kill_switch = project.flags.get(key="payments-kill-switch")
    assert kill_switch.lifecycle == Flag.Lifecycle.OPERATIONAL
    assert list(kill_switch.states.values_list("enabled", flat=True)) == [True, True, True]


def test_seed_demo__fresh__a_user_per_role_and_a_superuser(db: None) -> None:
    seed()

    for person in demo.USERS:
        user = User.objects.get(username=person.username)
        assert user.is_staff
        assert user.is_superuser == person.superuser
        groups = list(user.groups.values_list("name", flat=True))
        assert groups == ([person.role] if person.role else [])
    assert {person.role for person in demo.USERS} - {None} == set(roles.ROLES)


def test_seed_demo__no_passwords_configured__generated_and_printed_once(db: None) -> None:
    # When seeding with no password variables set
    out, _ = seed()

    # Then each user got a random password, printed after the warning, and it works
    printed = dict(re.findall(r"^  (\S+) +(\S+)$", out, flags=re.MULTILINE))
    assert set(printed) == {person.username for person in demo.USERS}
    assert len(set(printed.values())) == len(demo.USERS)
    for username, password in printed.items():
        assert User.objects.get(username=username).check_password(password)


def test_seed_demo__passwords_from_the_environment__used_and_not_printed(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shared demo password and one for admin alone
    monkeypatch.setenv("FLAGSHIP_DEMO_PASSWORD", "shared-demo-password")
    monkeypatch.setenv("FLAGSHIP_DEMO_ADMIN_PASSWORD", "admin-demo-password")

    # When seeding
    out, _ = seed()

    # Then the per-user variable wins, the shared one covers the rest, and neither is printed
    assert User.objects.get(username="admin").check_password("admin-demo-password")
    assert User.objects.get(username="release-manager").check_password("shared-demo-password")
    assert "shared-demo-password" not in out
    assert "admin-demo-password" not in out
    assert "Generated passwords" not in out
    assert "Created user admin (superuser), password from FLAGSHIP_DEMO_ADMIN_PASSWORD." in out
    assert "Created user viewer (Viewer), password from FLAGSHIP_DEMO_PASSWORD." in out


def test_seed_demo__existing_user__password_kept(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an existing admin with its own password
    User.objects.create_superuser("admin", "admin@example.com", "kept-password")
    monkeypatch.setenv("FLAGSHIP_DEMO_PASSWORD", "another-password")

    # When seeding
    out, _ = seed()

    # Then its password is untouched, and the output says so
    assert User.objects.get(username="admin").check_password("kept-password")
    assert "User admin already exists (password unchanged)." in out


def test_new_checkout__beta_tester__on_by_rule_1(db: None) -> None:
    # Given the seeded demo's production ruleset
    seed()
    ruleset = production_ruleset()
    state = FlagState.objects.get(flag__key="new-checkout", environment__key="production")
    first_rule = state.rules.order_by("order").first()
    assert first_rule is not None

    # When a beta tester (an @example.com address) asks
    result = ruleset.evaluate("new-checkout", {"targetingKey": "u-1", "email": "ana@example.com"})

    # Then the first rule serves on
    assert (result.value, result.variant, result.reason, result.rule) == (
        True,
        "on",
        "TARGETING_MATCH",
        str(first_rule.pk),
    )


def test_new_checkout__everyone_else__about_a_quarter_on_by_rule_2(db: None) -> None:
    # Given the seeded demo's production ruleset
    seed()
    ruleset = production_ruleset()
    state = FlagState.objects.get(flag__key="new-checkout", environment__key="production")
    rule_ids = [str(pk) for pk in state.rules.order_by("order").values_list("pk", flat=True)]

    # When 4000 people outside the beta ask
    results = [
        ruleset.evaluate("new-checkout", {"targetingKey": f"user-{n}", "email": f"{n}@shop.test"})
        for n in range(4000)
    ]

    # Then about 25 % get on from the rollout rule, and the rest the default (off)
    on = [result for result in results if result.value is True]
    assert 0.22 < len(on) / len(results) < 0.28
    assert {(result.reason, result.rule) for result in on} == {("TARGETING_MATCH", rule_ids[1])}
    assert {(r.value, r.reason) for r in results if r.value is not True} == {(False, "DEFAULT")}


def test_demo__every_environment__compiles_strictly_and_serves_as_described(db: None) -> None:
    seed()
    project = Project.objects.get(key="demo")

    for environment in project.environments.all():
        ruleset = Ruleset.from_dict(documents.environment_ruleset(environment), strict=True)
        assert len(ruleset) == 7
        assert ruleset.evaluate("payments-kill-switch", {"targetingKey": "u"}).value is True

    production = production_ruleset()
    german = production.evaluate("banner-text", {"targetingKey": "u", "country": "DE"})
    assert german.variant == "sale-de"
    assert production.evaluate("banner-text", {"targetingKey": "u", "country": "FR"}).variant == (
        "sale"
    )
    beta = {"targetingKey": "u", "email": "ana@example.com"}
    assert production.evaluate("express-checkout", beta).value is True
    legacy = production.evaluate("checkout-config", {"targetingKey": "u", "appVersion": "4.2.0"})
    assert legacy.variant == "legacy-app"
    per_page = production.evaluate("search-results-per-page", {"targetingKey": "u"})
    assert (per_page.reason, per_page.value in (20, 50)) == ("SPLIT", True)


def test_seed_demo__flags_200__bulk_flags_with_states_history_and_one_bump(db: None) -> None:
    # Given the seeded demo
    seed()
    project = Project.objects.get(key="demo")
    before = dict(project.environments.values_list("key", "ruleset_version"))
    history_before = history_rows()

    # When 200 generated flags are added
    out, err = seed("--flags", "200")

    # Then they exist with a state in every environment, history rows, and one version bump each
    generated = Flag.objects.filter(project=project, key__startswith="generated-")
    assert generated.count() == 200
    assert sorted(generated.values_list("key", flat=True))[:2] == [
        "generated-00001",
        "generated-00002",
    ]
    assert FlagState.objects.filter(flag__in=generated).count() == 600
    assert set(
        FlagState.objects.filter(flag__in=generated).values_list("environment__key", flat=True)
    ) == {
        "development",
        "staging",
        "production",
    }
    variants = Variant.objects.filter(flag__in=generated).count()
    assert history_rows() - history_before == 200 + variants + 600
    after = dict(project.environments.values_list("key", "ruleset_version"))
    assert after == {key: version + 1 for key, version in before.items()}
    assert "Generated flags: 200 created, 0 already existed." in out
    assert "Creating flags" in err
    assert "100% 200/200" in err
    # And SDKs can use them
    ruleset = production_ruleset()
    assert len(ruleset) == 207
    assert ruleset.evaluate("generated-00003", {"targetingKey": "u"}).reason == "STATIC"


def test_seed_demo__flags_again__existing_generated_flags_skipped(db: None) -> None:
    # Given a demo with 200 generated flags
    seed("--flags", "200")
    after_first = totals()

    # When the same command runs again, and then asks for 250
    out, err = seed("--flags", "200")
    assert totals() == after_first
    assert "Generated flags: 0 created, 200 already existed." in out
    assert err == ""
    out, _ = seed("--flags", "250")

    # Then only the 50 missing ones were created
    assert "Generated flags: 50 created, 200 already existed." in out
    assert Flag.objects.filter(key__startswith="generated-").count() == 250


def test_seed_demo__negative_flags__refused(db: None) -> None:
    with pytest.raises(CommandError, match="--flags"):
        seed("--flags", "-1")
    assert Flag.objects.filter(project__system=False).count() == 0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar__terminal__one_line_redrawn_per_percent() -> None:
    terminal = Terminal()
    bar = ProgressBar(200, label="Creating flags", stream=OutputWrapper(terminal))

    for _ in range(200):
        bar.advance(1)
    bar.close()

    drawn = terminal.getvalue()
    assert drawn.count("\r") == 101  # 0 %, 1 %, ... 100 %
    assert "\n" not in drawn[:-1]
    assert re.search(r"\r[^\r]*\[#{30}\] 100% 200/200 \d+\.\ds\n$", drawn)


def test_progress_bar__log__a_line_every_ten_percent() -> None:
    log = io.StringIO()
    bar = ProgressBar(1000, label="Creating flags", stream=OutputWrapper(log))

    for _ in range(10):
        bar.advance(100)
    bar.close()

    lines = log.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == [
        f"{n}%" for n in range(10, 101, 10)
    ]
