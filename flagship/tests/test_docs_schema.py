"""docs/architecture.md's database diagram matches the models: every concrete model of the flags
and accounts apps is an entity, every relation between them a line, and nothing else is drawn.
"""

from __future__ import annotations

import re

from django.apps import apps
from django.db import models

from flagship.tests.markdown import fenced_blocks, read

ARCHITECTURE = "docs/architecture.md"
APPS = ("flags", "accounts")
_ENTITY = re.compile(r"^\s*(\w+)\s*\{\s*$", re.MULTILINE)
_CARDINALITY = r"(?:\|\||\|o|o\||\}o|o\{|\}\||\|\{)"
_RELATION = re.compile(
    rf"^\s*(\w+)\s+{_CARDINALITY}(?:--|\.\.){_CARDINALITY}\s+(\w+)\s*:", re.MULTILINE
)


def _diagram() -> str:
    (diagram,) = [
        block for block in fenced_blocks(read(ARCHITECTURE), "mermaid") if "erDiagram" in block
    ]
    return diagram


def _models() -> dict[str, type[models.Model]]:
    """The concrete models the diagram must show, by name (history tables are described apart)."""
    found: dict[str, type[models.Model]] = {}
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            if model.__name__.startswith("Historical"):  # django-simple-history's copies
                continue
            found[model.__name__] = model
    return found


def _relations(shown: dict[str, type[models.Model]]) -> set[frozenset[str]]:
    """Pairs of shown models related by a foreign key, one-to-one or many-to-many field."""
    pairs: set[frozenset[str]] = set()
    for name, model in shown.items():
        for field in model._meta.get_fields():
            if field.auto_created or not field.is_relation or field.related_model is None:
                continue
            other = getattr(field.related_model, "__name__", "")
            if other in shown:
                pairs.add(frozenset({name, other}))
    return pairs


def test_er_diagram__against_the_models__shows_every_model_and_no_other() -> None:
    # Given the diagram's entities and the apps' concrete models
    entities = set(_ENTITY.findall(_diagram()))
    shown = _models()
    # When compared
    # Then each model is drawn, and each drawn entity is a model
    assert (sorted(set(shown) - entities), sorted(entities - set(shown))) == ([], [])
    assert {"Project", "FlagState", "ApiKey", "User"} <= entities


def test_er_diagram__against_the_models__draws_every_relation_and_no_other() -> None:
    # Given the diagram's relationship lines and the models' relation fields
    drawn = {frozenset(pair) for pair in _RELATION.findall(_diagram())}
    expected = _relations(_models())
    # When compared
    # Then each relation is drawn once, and each line is a relation
    assert (sorted(map(sorted, expected - drawn)), sorted(map(sorted, drawn - expected))) == (
        [],
        [],
    )


def test_history_tables__of_the_shown_models__belong_to_shown_models() -> None:
    # Given the history models django-simple-history adds to the apps
    historical = [
        model
        for label in APPS
        for model in apps.get_app_config(label).get_models()
        if model.__name__.startswith("Historical")
    ]
    # When each is traced to the model it records, by name ("HistoricalRule", and
    # "HistoricalRule_segments" for the history of a many-to-many field)
    recorded = {model.__name__.removeprefix("Historical").split("_")[0] for model in historical}
    # Then each records a model of the diagram (the page says they are left out, not forgotten)
    assert historical
    assert recorded <= set(_models())
