"""One ruleset version, one committed state: one bump per transaction, one snapshot per build.

The PostgreSQL tests run real threads with their own connections (``transaction=True``): a
builder and writers that commit while it reads.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import override_settings
from pytest_django import DjangoCaptureOnCommitCallbacks

from flags import documents, services
from flags.delivery import pubsub
from flags.models import Environment, Flag, FlagState, Project

WRITERS = 3
BUILDERS = 3
RACE_SECONDS = 2.5
VARIANTS = 5


class RolledBackError(Exception):
    """Makes an atomic block roll back."""


def _version(environment: Environment) -> int:
    return int(Environment.objects.values_list("ruleset_version", flat=True).get(pk=environment.pk))


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.get(flag=flag, environment=environment)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The change notices sent after commit, as (environment id, version)."""
    notices: list[tuple[int, int]] = []
    monkeypatch.setattr(
        pubsub,
        "publish_ruleset_changed",
        lambda environment_id, version: notices.append((environment_id, version)),
    )
    return notices


@pytest.fixture
def own_channel() -> Iterator[None]:
    """Notices of committed changes stay off the channel other test runs listen to."""
    with override_settings(FLAGSHIP_CHANNEL_PREFIX=f"flagship-test-{uuid.uuid4().hex[:12]}"):
        yield


# --- Writes: one transaction, one bump ---------------------------------------------------------


def test_bump__several_services_in_one_transaction__version_moves_once_and_announced_once(
    string_flag: Flag,
    staging: Environment,
    published: list[tuple[int, int]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # Given banner-text in staging
    state = _state(string_flag, staging)
    before = _version(staging)
    # When one transaction switches it on, changes its default and adds two rules
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.flag_toggle(state=state, enabled=True, actor=None)
        services.flag_state_update(state=state, actor=None, default_serve={"variant": "sale"})
        for country in ("DE", "FR"):
            services.rule_create(
                state=state,
                serve={"variant": "new"},
                conditions=[{"attribute": "country", "operator": "in", "values": [country]}],
            )
    # Then staging moved once, and that version was announced once
    assert _version(staging) == before + 1
    assert published == [(staging.pk, before + 1)]


def test_bump__separate_transactions__each_moves_the_version(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout in staging
    state = _state(boolean_flag, staging)
    before = _version(staging)
    # When it is switched on, then off, each in its own transaction
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.flag_toggle(state=state, enabled=False, actor=None)
    # Then each change has its version
    assert _version(staging) == before + 2


def test_bump__the_savepoint_that_bumped_rolled_back__a_later_write_bumps_again(
    string_flag: Flag,
    staging: Environment,
    published: list[tuple[int, int]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # Given banner-text in staging
    state = _state(string_flag, staging)
    before = _version(staging)
    # When, in one transaction, a switch-on is rolled back to its savepoint and the default
    # serve is then changed
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with suppress(RolledBackError), transaction.atomic():
            services.flag_toggle(state=state, enabled=True, actor=None)
            raise RolledBackError
        assert _version(staging) == before  # the bump went with its savepoint
        services.flag_state_update(state=state, actor=None, default_serve={"variant": "sale"})
    # Then the change that stayed moved the version once, and was announced
    stored = _state(string_flag, staging)
    assert (stored.enabled, stored.default_serve) == (False, {"variant": "sale"})
    assert _version(staging) == before + 1
    assert published == [(staging.pk, before + 1)]


def test_bump__a_savepoint_rolled_back_after_the_bump__still_one_bump(
    string_flag: Flag,
    staging: Environment,
    published: list[tuple[int, int]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # Given banner-text in staging
    state = _state(string_flag, staging)
    before = _version(staging)
    # When one transaction switches it on, has a rule refused (rolled back to its savepoint),
    # then changes the default serve
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.flag_toggle(state=state, enabled=True, actor=None)
        with suppress(RolledBackError), transaction.atomic():
            services.rule_create(state=state, serve={"variant": "new"})
            raise RolledBackError
        services.flag_state_update(state=state, actor=None, default_serve={"variant": "sale"})
    # Then the version moved once for the whole transaction, announced once
    assert not state.rules.exists()
    assert _version(staging) == before + 1
    assert published == [(staging.pk, before + 1)]


def test_bump__several_environments__each_moves_once(
    project: Project, string_flag: Flag, published: list[tuple[int, int]]
) -> None:
    # Given every environment's version
    environments = list(project.environments.order_by("order"))
    before = {environment.pk: _version(environment) for environment in environments}
    # When one transaction changes a variant's value (every environment) and then the default
    # serve in staging
    staging = project.environments.get(key="staging")
    with transaction.atomic():
        services.variant_update(
            variant=string_flag.variants.get(key="sale"), actor=None, value="Spring sale!"
        )
        services.flag_state_update(
            state=_state(string_flag, staging), actor=None, default_serve={"variant": "sale"}
        )
    # Then each environment moved once
    assert {environment.pk: _version(environment) for environment in environments} == {
        pk: version + 1 for pk, version in before.items()
    }


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_bump__committed_transaction__one_bump_and_one_notice_with_the_final_version(
    string_flag: Flag, staging: Environment, published: list[tuple[int, int]], own_channel: None
) -> None:
    # Given banner-text in staging, outside any test transaction (the real commit path)
    state = _state(string_flag, staging)
    before = _version(staging)
    # When a transaction is rolled back, and the next one makes three changes
    with suppress(RolledBackError), transaction.atomic():
        services.flag_toggle(state=state, enabled=True, actor=None)
        raise RolledBackError
    with transaction.atomic():
        services.flag_toggle(state=state, enabled=True, actor=None)
        services.flag_state_update(state=state, actor=None, default_serve={"variant": "sale"})
        services.rule_create(state=state, serve={"variant": "new"})
    # Then the rolled-back one left no version and no notice; the committed one moved it once
    assert _version(staging) == before + 1
    assert published == [(staging.pk, before + 1)]


# --- Reads: one build, one committed state -----------------------------------------------------


def _after_version_query(action: Callable[[], None]) -> Callable[..., Any]:
    """A query wrapper running ``action`` once, right after the query reading the version."""
    done = threading.Event()

    def wrapper(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        result = execute(sql, *args)
        if "ruleset_version" in sql and not done.is_set():
            done.set()
            action()
        return result

    return wrapper


def _toggle_in_another_thread(state: FlagState, wait: float) -> threading.Thread:
    """Switch ``state`` on from another thread (its own connection); wait up to ``wait`` s."""

    def toggle() -> None:
        try:
            services.flag_toggle(state=state, enabled=True, actor=None)
        finally:
            connection.close()

    thread = threading.Thread(target=toggle)
    thread.start()
    thread.join(wait)
    return thread


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_environment_ruleset__a_change_commits_between_its_queries__the_state_at_its_version(
    boolean_flag: Flag, staging: Environment, own_channel: None
) -> None:
    # Given new-checkout off in staging at version V
    state = _state(boolean_flag, staging)
    version = _version(staging)
    writers: list[threading.Thread] = []
    # When a switch-on commits right after the build read the version
    with connection.execute_wrapper(
        _after_version_query(lambda: writers.append(_toggle_in_another_thread(state, 10)))
    ):
        document = documents.environment_ruleset(staging)
    # Then the change committed meanwhile (as V + 1), and the document is the state at V
    assert not writers[0].is_alive()
    assert _version(staging) == version + 1
    assert (document["version"], document["flags"]["new-checkout"]["enabled"]) == (version, False)


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_environment_ruleset__in_a_callers_transaction__no_change_commits_under_it(
    boolean_flag: Flag, staging: Environment, own_channel: None
) -> None:
    # Given new-checkout off in staging at version V
    state = _state(boolean_flag, staging)
    version = _version(staging)
    writers: list[threading.Thread] = []
    # When the build runs in a caller's transaction (READ COMMITTED), and a switch-on is tried
    # right after the build read the version
    with (
        transaction.atomic(),
        connection.execute_wrapper(
            _after_version_query(lambda: writers.append(_toggle_in_another_thread(state, 1)))
        ),
    ):
        document = documents.environment_ruleset(staging)
    writers[0].join(10)
    # Then the document is the state at V, and the switch-on committed after it, as V + 1
    assert (document["version"], document["flags"]["new-checkout"]["enabled"]) == (version, False)
    assert _version(staging) == version + 1
    assert _state(boolean_flag, staging).enabled is True


def _expected_flag(writer: int, step: int) -> dict[str, Any]:
    """What writer ``writer``'s flag holds after its step ``step`` (0: as created)."""
    if step == 0:
        return {"enabled": False, "default_serve": {"variant": "v0"}, "rules": []}
    return {
        "enabled": step % 2 == 1,
        "default_serve": {"variant": f"v{step % VARIANTS}"},
        "rules": [
            {
                "conditions": [
                    {"attribute": "step", "operator": "in", "values": [f"{writer}-{step}"]}
                ],
                "serve": {"variant": f"v{(step + 1) % VARIANTS}"},
            }
        ],
    }


def _seen_flag(document: dict[str, Any]) -> dict[str, Any]:
    """A flag of a document, as ``_expected_flag`` writes it (rule ids left out)."""
    return {
        "enabled": document["enabled"],
        "default_serve": document["default_serve"],
        "rules": [
            {"conditions": rule.get("conditions", []), "serve": rule["serve"]}
            for rule in document.get("rules", [])
        ],
    }


class Race:
    """Writers and builders on their own threads and connections, and what each recorded."""

    def __init__(self, staging: Environment, flags: list[Flag]) -> None:
        self.staging = staging
        self.flags = flags
        self.commits: list[tuple[int, int, int]] = []  # (version, writer, step)
        self.documents: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self, seconds: float, commits: int = 6) -> None:
        """Run every writer and ``BUILDERS`` builders together for ``seconds``.

        On a loaded machine, longer (up to four times) until ``commits`` commits happened.
        """
        threads = [threading.Thread(target=self.write, args=(w,)) for w in range(len(self.flags))]
        threads += [threading.Thread(target=self.build) for _ in range(BUILDERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 4 * seconds
        time.sleep(seconds)
        while len(self.commits) < commits and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stop.set()
        for thread in threads:
            thread.join(30)

    def write(self, writer: int) -> None:
        """Replace the flag's switch, default and only rule in one transaction, again and again.

        Each step notes the version it commits as: the row's, read after its own update.
        """
        try:
            state = _state(self.flags[writer], self.staging)
            step = 0
            while not self.stop.is_set():
                step += 1
                expected = _expected_flag(writer, step)
                with transaction.atomic():
                    services.flag_state_update(
                        state=state,
                        actor=None,
                        enabled=expected["enabled"],
                        default_serve=expected["default_serve"],
                    )
                    for rule in list(state.rules.all()):
                        services.rule_delete(rule=rule, actor=None)
                    services.rule_create(
                        state=state,
                        serve=expected["rules"][0]["serve"],
                        conditions=expected["rules"][0]["conditions"],
                    )
                    version = _version(self.staging)
                self.commits.append((version, writer, step))
        except BaseException as error:
            self.errors.append(error)
        finally:
            connection.close()

    def build(self) -> None:
        """Build staging's document again and again."""
        try:
            while not self.stop.is_set():
                self.documents.append(documents.environment_ruleset(self.staging))
        except BaseException as error:
            self.errors.append(error)
        finally:
            connection.close()

    def wrong(self) -> list[tuple[int, int, dict[str, Any], dict[str, Any]]]:
        """Each flag of a document that is not its writer's last step committed by its version.

        As (document version, writer, seen, expected).
        """
        wrong = []
        for document in self.documents:
            for writer in range(len(self.flags)):
                steps = sorted(
                    (version, step)
                    for version, w, step in self.commits
                    if w == writer and version <= document["version"]
                )
                expected = _expected_flag(writer, steps[-1][1] if steps else 0)
                seen = _seen_flag(document["flags"][f"flag-{writer}"])
                if seen != expected:
                    wrong.append((document["version"], writer, seen, expected))
        return wrong


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_builds_racing_writers__every_document_is_the_committed_state_at_its_version(
    own_channel: None,
) -> None:
    # Given one string flag per writer in staging
    project = services.project_create(key="race", name="Race")
    staging = project.environments.get(key="staging")
    flags = [
        services.flag_create(
            project=project,
            key=f"flag-{writer}",
            name=f"Flag {writer}",
            kind=Flag.Kind.STRING,
            variants=[(f"v{n}", f"value {n}") for n in range(VARIANTS)],
        )
        for writer in range(WRITERS)
    ]
    start = _version(staging)
    race = Race(staging, flags)
    # When writers and builders run together for a while
    race.run(RACE_SECONDS)
    # Then nothing failed, and the race happened (commits, documents of several versions)
    assert race.errors == []
    assert len(race.commits) >= 6
    assert len({document["version"] for document in race.documents}) >= 4
    # Every document labelled N holds exactly the writes committed up to N
    wrong = race.wrong()
    assert wrong[:3] == [], f"{len(wrong)} of {len(race.documents) * WRITERS} flag documents"
    # Documents of the same version are identical
    first: dict[int, dict[str, Any]] = {}
    for document in race.documents:
        assert first.setdefault(document["version"], document) == document
    # And each transaction moved the version exactly once
    assert sorted(version for version, _, _ in race.commits) == list(
        range(start + 1, start + len(race.commits) + 1)
    )
