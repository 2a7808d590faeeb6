"""The fixtures build a working project (a guard for every other test of the app)."""

from __future__ import annotations

from flags import documents, services
from flags.models import Environment, Flag, Segment
from flagship_sdk.engine import Ruleset


def test_project_fixture__built__evaluates_through_the_snapshot(
    boolean_flag: Flag, production: Environment, beta_testers: Segment
) -> None:
    state = boolean_flag.states.get(environment=production)
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(state=state, serve={"variant": "on"}, segments=[beta_testers])
    ruleset = Ruleset.from_dict(documents.environment_ruleset(production), strict=True)
    result = ruleset.evaluate("new-checkout", {"targetingKey": "u", "email": "a@example.com"})
    assert (result.value, result.reason) == (True, "TARGETING_MATCH")
