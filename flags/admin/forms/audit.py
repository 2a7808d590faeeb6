"""The audit page's filters (project, environment, flag, person, dates), as the feed takes them."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from ...history.feed import flag_id_for_key
from ...models import Environment, Flag, Project

FLAG_SUGGESTIONS = 500  # flag keys offered while typing, within the chosen project


class AuditFilterForm(forms.Form):
    """Narrow the audit log; every field is optional and an empty form shows every change."""

    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"), required=False, empty_label="All projects"
    )
    environment = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    flag = forms.CharField(
        required=False,
        max_length=100,
        label="Flag key",
        widget=forms.TextInput(
            attrs={"list": "audit-flag-keys", "autocomplete": "off", "placeholder": "any flag"}
        ),
    )
    actor = forms.CharField(
        required=False,
        max_length=150,
        label="Changed by",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "username"}),
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, hidden_project_id: int | None = None, **kwargs: Any) -> None:
        """Offer the chosen project's environments (every project's, grouped, when none is).

        ``hidden_project_id`` (FlagShip's own project, for whoever may not see it) is not offered.
        """
        super().__init__(*args, **kwargs)
        environments = Environment.objects.select_related("project").order_by(
            "project__name", "order", "key"
        )
        if hidden_project_id is not None:
            project_field = self.fields["project"]
            if isinstance(project_field, forms.ModelChoiceField):
                projects = Project.objects.exclude(pk=hidden_project_id).order_by("name")
                project_field.queryset = projects
            environments = environments.exclude(project_id=hidden_project_id)
        chosen = self._chosen_project_id()
        if chosen is not None:
            environments = environments.filter(project_id=chosen)
        groups: dict[str, list[tuple[int, str]]] = {}
        for environment in environments:
            groups.setdefault(environment.project.name, []).append(
                (environment.pk, environment.name)
            )
        choices: list[Any] = [("", "All environments")]
        if chosen is not None:
            choices += [choice for group in groups.values() for choice in group]
        else:
            choices += list(groups.items())
        field = self.fields["environment"]
        assert isinstance(field, forms.TypedChoiceField)  # noqa: S101  # declared above
        field.choices = choices

    def _chosen_project_id(self) -> int | None:
        try:
            return int(self.data.get("project", ""))
        except (TypeError, ValueError):
            return None

    def clean(self) -> dict[str, Any]:
        """Resolve the flag key and the username; the dates must make a range."""
        cleaned = super().clean() or {}
        project: Project | None = cleaned.get("project")
        environment = self._environment(cleaned.get("environment"), project)
        cleaned["environment_obj"] = environment
        if project is None and environment is not None:
            project = environment.project
        cleaned["flag_id"] = self._flag(cleaned.get("flag") or "", project)
        cleaned["user_id"] = self._person(cleaned.get("actor") or "")
        since, until = cleaned.get("since"), cleaned.get("until")
        if since is not None and until is not None and since > until:
            self.add_error("until", "Choose a date on or after the first one.")
        return cleaned

    def _environment(
        self, environment_id: int | None, project: Project | None
    ) -> Environment | None:
        if environment_id is None:
            return None
        environment = (
            Environment.objects.select_related("project").filter(pk=environment_id).first()
        )
        if environment is None:
            self.add_error("environment", "Choose an environment from the list.")
        elif project is not None and environment.project_id != project.pk:
            self.add_error("environment", f"{environment.name} is not an environment of {project}.")
            return None
        return environment

    def _flag(self, key: str, project: Project | None) -> int | None:
        """The flag's id: within the project (deleted flags too), or the one project having it."""
        key = key.strip()
        if not key:
            return None
        if project is not None:
            flag_id = flag_id_for_key(project.pk, key)
            if flag_id is None:
                self.add_error("flag", f"There is no flag {key} in {project}.")
            return flag_id
        found = list(Flag.objects.filter(key=key).values_list("pk", flat=True)[:2])
        if not found:
            self.add_error("flag", f"There is no flag {key}; choose a project for deleted ones.")
            return None
        if len(found) > 1:
            self.add_error("flag", f"Several projects have a flag {key}: choose the project.")
            return None
        return found[0]

    def _person(self, username: str) -> int | None:
        username = username.strip()
        if not username:
            return None
        users = get_user_model()._default_manager.filter(username=username)
        user_id = users.values_list("pk", flat=True).first()
        if user_id is None:
            self.add_error("actor", f"Nobody is called {username}.")
        return user_id

    def filters(self) -> dict[str, Any]:
        """The valid form as ``flags.history.feed.audit_rows`` arguments (dates: whole days)."""
        cleaned = self.cleaned_data
        project = cleaned.get("project")
        environment = cleaned.get("environment_obj")
        return {
            "project_id": project.pk if project is not None else None,
            "environment_id": environment.pk if environment is not None else None,
            "flag_id": cleaned.get("flag_id"),
            "user_id": cleaned.get("user_id"),
            "since": _start_of(cleaned.get("since")),
            "until": _start_of(cleaned["until"] + timedelta(days=1))
            if cleaned.get("until")
            else None,
        }

    def flag_suggestions(self) -> list[str]:
        """Flag keys of the chosen project, for the key box to offer (none without a project)."""
        chosen = self._chosen_project_id()
        if chosen is None:
            return []
        keys = Flag.objects.filter(project_id=chosen).order_by("key").values_list("key", flat=True)
        return list(keys[:FLAG_SUGGESTIONS])


def _start_of(day: date | None) -> datetime | None:
    """Midnight at the start of ``day``, in the current time zone."""
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))
