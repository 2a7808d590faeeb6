"""manage.py seed_scale: a project at scale, in bulk, read by the timeline and the audit page."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from bench.admin.seed import MANAGER, TAGS, catalogue
from flags.history.feed import audit_rows
from flags.models import Environment, Flag, FlagState, Project, Rule

pytestmark = pytest.mark.django_db


def seed_scale(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_scale", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_seed_scale__small_counts__creates_what_it_says() -> None:
    # When a small project is seeded
    out, err = seed_scale("--flags", "40", "--history", "900", "--project", "big")

    # Then it has 3 environments, 40 flags with a state in each, tags, rules, and the history
    project = Project.objects.get(key="big")
    assert list(
        Environment.objects.filter(project=project).order_by("order").values_list("key", flat=True)
    ) == ["development", "staging", "production"]
    assert Flag.objects.filter(project=project).count() == 40
    assert FlagState.objects.filter(flag__project=project).count() == 120
    assert Flag.objects.filter(project=project, tags__name__in=TAGS).exists()
    assert Rule.objects.filter(state__flag__project=project).exists()
    assert audit_rows(project_id=project.pk).count() >= 900
    seeded = catalogue("big")
    assert seeded.flags == 40
    assert seeded.history_rows >= 900
    # And it said so, with progress bars on stderr
    assert "Project big: 40 flags, 120 states" in out
    assert "Flags [" in err
    assert "History [" in err


def test_seed_scale__history_rows__read_by_the_timeline_and_the_audit_page() -> None:
    # Given a seeded project
    seed_scale("--flags", "20", "--history", "600")
    seeded = catalogue("scale")
    client = Client()
    client.force_login(User.objects.get(username=MANAGER))

    # When the busiest flag's timeline and the audit page filtered by it are read
    timeline = client.get(f"/admin/flags/flag/{seeded.busiest_flag_id}/history/")
    audit = client.get(f"/admin/audit/?project={seeded.project_id}&flag={seeded.busiest_flag_key}")

    # Then both list the people's changes (seeded as alice ... frank)
    assert timeline.status_code == 200
    assert audit.status_code == 200
    assert audit_rows(flag_id=seeded.busiest_flag_id).count() > 10
    for response in (timeline, audit):
        page = response.content.decode()
        assert any(name in page for name in ("alice", "bob", "carol", "dave", "erin", "frank"))


def test_seed_scale__project_exists__refuses_and_writes_nothing() -> None:
    # Given a seeded project
    seed_scale("--flags", "5", "--history", "0")
    flags = Flag.objects.count()
    history = audit_rows().count()

    # When it is seeded again / Then the command refuses, and nothing was added
    with pytest.raises(CommandError, match='Project "scale" exists already'):
        seed_scale("--flags", "5", "--history", "0")
    assert Flag.objects.count() == flags
    assert audit_rows().count() == history


def test_seed_scale__bad_counts__refused() -> None:
    with pytest.raises(CommandError, match="--flags must be 1 or more"):
        seed_scale("--flags", "0")
