"""The flag list: one project at a time, one column per environment with its on/off control.

The toggle contract (a browser test depends on it):

- a person who may change the environment gets ``data-testid="toggle-<flag>-<environment>"`` with
  ``aria-pressed`` "true"/"false" and the text On/Off: in an unprotected environment a submit
  button in its own POST form (CSRF token, hidden ``enabled`` = the new value); in a protected one,
  or to turn off a flag that other live flags require there, a link to the confirmation page;
- anyone else gets ``<span data-testid="state-<flag>-<environment>" aria-disabled="true">On|Off``,
  whose title says why ("Release managers only"), as does the column's heading (or, for someone
  who may change no flag at all, a note above the list);
- after either, an enabled state says what it serves: ``data-testid="serves-<flag>-<environment>"``
  with "serves on", "30 % + 2 rules", "split 50/50", or "⚠ serves off" (class ``fs-warning``)
  when it is on but can only serve its off variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from weakref import WeakKeyDictionary

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from .. import selectors, words
from ..models import Environment, Flag, FlagState, Project
from ..stale import Stale
from ..staleness import stale_in, stale_verdicts
from .base import FLAGSTATE_CHANGE, can_change_environment, visible

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices

PROTECTED_MARK = format_html('<sup class="fs-protected" title="{}">protected</sup>', "protected")
PROJECT_PARAM = "project"
ENVIRONMENT_PARAM_PREFIX = "in_"


@dataclass(frozen=True)
class ListScope:
    """The project whose flags are listed, and its environments (the columns), in order."""

    project: Project | None
    environments: list[Environment]


_scopes: WeakKeyDictionary[HttpRequest, ListScope] = WeakKeyDictionary()


def list_scope(request: HttpRequest) -> ListScope:
    """The chosen project (the first by name when none is chosen), read once per request."""
    scope = _scopes.get(request)
    if scope is None:
        projects = visible(request, selectors.project_list(), "")
        project = selectors.project_get(request.GET.get(PROJECT_PARAM), among=projects)
        environments = selectors.environment_list(project) if project is not None else []
        scope = ListScope(project=project, environments=environments)
        _scopes[request] = scope
    return scope


class ProjectFilter(admin.SimpleListFilter):
    """One project at a time (the columns are its environments); the first by name by default."""

    title = "project"
    parameter_name = PROJECT_PARAM

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: type[Any], model_admin: Any
    ) -> None:
        self.scope = list_scope(request)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Every project this person may see."""
        projects = visible(request, selectors.project_list(), "")
        return [(project.key, project.name) for project in projects]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The chosen project's flags."""
        if self.scope.project is None:
            return queryset
        return queryset.filter(project=self.scope.project)

    def choices(self, changelist: ChangeList) -> Iterator[_ListFilterChoices]:
        """No "All": columns only make sense within one project."""
        chosen = self.scope.project.key if self.scope.project is not None else None
        for key, title in self.lookup_choices:
            yield {
                "selected": key == chosen,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: key}, [ENVIRONMENT_PARAM_PREFIX]
                ),
                "display": title,
            }


class ArchivedFilter(admin.SimpleListFilter):
    """Live flags by default; archived ones on request."""

    title = "archived"
    parameter_name = "archived"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Live, archived, or both."""
        return [("no", "Live"), ("yes", "Archived"), ("all", "All")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Live unless asked otherwise."""
        value = self.value()
        if value == "all":
            return queryset
        return queryset.filter(archived=value == "yes")

    def choices(self, changelist: ChangeList) -> Iterator[_ListFilterChoices]:
        """The "Live" choice is selected when nothing is chosen."""
        chosen = self.value() or "no"
        for key, title in self.lookup_choices:
            yield {
                "selected": key == chosen,
                "query_string": changelist.get_query_string({self.parameter_name: key}),
                "display": title,
            }


_stale_on_page: WeakKeyDictionary[HttpRequest, dict[int, Stale]] = WeakKeyDictionary()


def remember_page(request: HttpRequest, flags: Iterable[Flag]) -> None:
    """Judge the flags of the page shown (the badges): their stored stale inputs, one query."""
    _stale_on_page[request] = stale_verdicts(list(flags))


class StaleFilter(admin.SimpleListFilter):
    """Stale flags only (``flags.stale``: FLAGSHIP_STALE_DAYS per lifecycle), or all."""

    title = "staleness"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Stale, or not stale."""
        return [("yes", "Stale"), ("no", "Not stale")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The chosen project's stale (or not stale) flags.

        An SQL filter on the stored stale inputs (``flags.staleness``); flags changed since they
        were computed are judged live.
        """
        value = self.value()
        if value not in ("yes", "no"):
            return queryset
        project = list_scope(request).project
        if project is None:
            return queryset.none() if value == "yes" else queryset
        scope = Flag.objects.filter(project=project)
        stale = stale_in(scope)
        if value == "yes":
            return queryset.filter(stale)
        return queryset.exclude(pk__in=scope.filter(stale).values("pk"))


def stale_column(request: HttpRequest) -> Callable[[Flag], SafeString]:
    """The list_display column with a "stale" badge on stale flags (its title says why)."""

    def column(flag: Flag) -> SafeString:
        page = _stale_on_page.get(request)
        found = (page if page is not None else stale_verdicts([flag])).get(flag.pk)
        if found is None:
            return format_html("{}", "")
        return format_html(
            '<span class="fs-tag fs-stale" data-testid="stale-{}" title="{}">stale</span>',
            flag.key,
            f"{found.reason} Stale since {found.since:%Y-%m-%d}.",
        )

    column.__name__ = "stale_badge"
    return admin.display(description="stale")(column)


class TagFilter(admin.RelatedFieldListFilter):
    """Tags, with flags that have none called "untagged" (not "-")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.empty_value_display = mark_safe("untagged")


def environment_filter(environment: Environment) -> type[admin.SimpleListFilter]:
    """A filter "in <environment>: On / Off" for one column."""

    class EnvironmentStateFilter(admin.SimpleListFilter):
        title = environment.name
        parameter_name = f"{ENVIRONMENT_PARAM_PREFIX}{environment.key}"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [("on", "On"), ("off", "Off")]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            value = self.value()
            if value not in ("on", "off"):
                return queryset
            return queryset.filter(
                states__environment_id=environment.pk, states__enabled=value == "on"
            )

    return EnvironmentStateFilter


def locked_reason(user: Any, environment: Environment) -> str:
    """Why ``user`` may not change flags in ``environment`` ("" when they may)."""
    if can_change_environment(user, environment):
        return ""
    if user.has_perm(FLAGSTATE_CHANGE):
        return "Release managers only"
    return "Read-only: your role cannot change flags"


def state_summary(state: FlagState) -> words.StateSummary:
    """What a prefetched state serves (``selectors.flag_list`` outlines its rules)."""
    rules = [
        {
            "conditions": getattr(rule, "condition_count", 0),
            "segments": getattr(rule, "segment_count", 0),
            "rollout": rule.rollout,
            "serve": rule.serve,
        }
        for rule in selectors.listed_rules(state)
    ]
    return words.state_summary(
        enabled=state.enabled,
        off_variant=state.off_variant.key,
        rules=rules,
        default_serve=state.default_serve,
    )


def environment_column(request: HttpRequest, environment: Environment) -> Callable[[Flag], str]:
    """The list_display column of one environment, rendering each flag's control or badge."""
    locked = locked_reason(request.user, environment)
    token = get_token(request) if not locked else ""
    filters = urlencode({"_changelist_filters": request.GET.urlencode()}) if request.GET else ""
    toggle_url = toggle_urls(environment, filters)

    def column(flag: Flag) -> SafeString:
        state = next(
            (s for s in selectors.listed_states(flag) if s.environment_id == environment.pk), None
        )
        if state is None:
            return format_html("{}", "—")
        dependents = [
            prerequisite.state.flag.key
            for prerequisite in selectors.listed_dependents(flag)
            if prerequisite.state.environment_id == environment.pk
        ]
        return state_control(
            flag=flag,
            environment=environment,
            enabled=state.enabled,
            summary=state_summary(state),
            locked=locked,
            csrf_token=token,
            url=toggle_url(flag.pk),
            dependents=dependents,
        )

    column.__name__ = f"environment_{environment.pk}"
    # Someone who cannot change flags anywhere is told once, above the list; a column says why
    # only when it is closed to someone who may change the others.
    note = locked if locked and request.user.has_perm(FLAGSTATE_CHANGE) else ""
    described = admin.display(
        description=format_html(
            '<i class="fs-dot" style="background:{}"></i>{}{}{}',
            environment.color,
            environment.name,
            PROTECTED_MARK if environment.protected else "",
            format_html(
                '<span class="fs-locked-note" id="locked-{}">{}</span>', environment.key, note
            )
            if note
            else "",
        )
    )(column)
    return described


_ANY_FLAG = 987654321  # stands for the flag's id in the one URL toggle_urls reverses


def toggle_urls(environment: Environment, filters: str) -> Callable[[int], str]:
    """The toggle URL in ``environment`` of a flag by id, the list's ``filters`` as its query.

    ``reverse()`` once per column, not per cell (a 100-row page has 300 cells): the ids are
    formatted into the URL it returned.
    """
    url = reverse("admin:flags_flag_toggle", args=[_ANY_FLAG, environment.pk])
    head, _, tail = url.partition(f"/{_ANY_FLAG}/")
    if filters:
        tail = f"{tail}?{filters}"
    return lambda flag_id: f"{head}/{flag_id}/{tail}"


def state_control(
    *,
    flag: Flag,
    environment: Environment,
    enabled: bool,
    summary: words.StateSummary,
    locked: str,
    csrf_token: str,
    url: str,
    dependents: list[str],
) -> SafeString:
    """One cell of the toggle contract (see the module docstring), and what the state serves.

    ``url``: the flag's toggle URL in ``environment`` (:func:`toggle_urls`).
    """
    label = "On" if enabled else "Off"
    css = "fs-on" if enabled else "fs-off"
    serves = _serves(flag, environment, summary)
    if locked:
        return format_html(
            '<span class="fs-state fs-locked {}" data-testid="state-{}-{}" aria-disabled="true" '
            'title="{}">{}</span>{}',
            css,
            flag.key,
            environment.key,
            locked,
            label,
            serves,
        )
    pressed = "true" if enabled else "false"
    title = f"Turn {flag.key} {'off' if enabled else 'on'} in {environment.name}"
    if environment.protected or (enabled and dependents):
        why = "asks for confirmation"
        if enabled and dependents:
            why = f"required by {', '.join(dependents)}: asks for confirmation"
        return format_html(
            '<a class="fs-toggle {}" href="{}" role="button" aria-pressed="{}" '
            'data-testid="toggle-{}-{}" title="{} ({})">{}</a>{}',
            css,
            url,
            pressed,
            flag.key,
            environment.key,
            title,
            why,
            label,
            serves,
        )
    return format_html(
        '<form class="fs-toggle-form" method="post" action="{}">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<input type="hidden" name="enabled" value="{}">'
        '<button type="submit" class="fs-toggle {}" aria-pressed="{}" data-testid="toggle-{}-{}" '
        'title="{}">{}</button></form>{}',
        url,
        csrf_token,
        "false" if enabled else "true",
        css,
        pressed,
        flag.key,
        environment.key,
        title,
        label,
        serves,
    )


def _serves(flag: Flag, environment: Environment, summary: words.StateSummary) -> SafeString:
    """The cell's "· serves on" / "· 30 % + 2 rules" (a warning when on serves only off)."""
    if summary.text == "Off":
        return format_html("{}", "")
    text = summary.text.removeprefix("On · ")
    return format_html(
        '<span class="fs-serves{}" data-testid="serves-{}-{}" title="{}">'
        '<span aria-hidden="true">· </span>{}</span>',
        " fs-warning" if summary.warning else "",
        flag.key,
        environment.key,
        summary.detail,
        f"⚠ {text}" if summary.warning else text,
    )
