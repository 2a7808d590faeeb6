"""Placeholder until the delivery package lands: ``advance`` and ``announce`` of today's modules."""

from __future__ import annotations

import importlib
import logging

from flags import documents, rulesets
from flags.models import Environment
from flags.versions import advance

logger = logging.getLogger(__name__)


def announce(environment_ids: list[int]) -> None:
    """After commit: shared cache version, this process, the streams, then the document."""
    events = importlib.import_module("flags.events")
    local = importlib.import_module("flags.evaluation.local")
    logger.info("ruleset.changed", extra={"environments": environment_ids})
    for environment_id in environment_ids:
        try:
            environment = Environment.objects.get(pk=environment_id)
            version = environment.ruleset_version
            rulesets.announce_version(environment_id, version)
        except Exception:
            logger.exception("ruleset.version_not_announced", extra={"environment": environment_id})
            continue
        local.heard(environment_id, version)
        try:
            events.publish_ruleset_changed(environment_id, version)
        except Exception:
            logger.exception("ruleset.not_published", extra={"environment": environment_id})
        if rulesets.ruleset_ttl() > 0:
            try:
                document = documents.environment_ruleset(environment)
                if int(document["version"]) >= version:
                    rulesets.put_document(environment_id, document)
            except Exception:
                logger.exception("ruleset.cache_not_rebuilt", extra={"environment": environment_id})


__all__ = ["advance", "announce"]
