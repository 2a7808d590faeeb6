"""Change requests of a project: listed, read with their diffs, reviewed, applied, rebased.

Every role reads them. Approving and rejecting need ``flags.approve_changerequest`` (Release
managers, Administrators); applying and rebasing are for the author or a reviewer, withdrawing
for the author (``flags.services.change_requests`` decides, the views only pre-check the
propose permission). Writes into an environment that takes change requests (states, toggles,
promotions, schedules) answer 202 with :func:`accepted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from flagship import schema
from flagship.errors import PROBLEM_CONTENT_TYPE, problem

from ... import services
from ...errors import ChangeRequestConflictError
from ...models import ChangeRequest, ChangeRequestReview, FlagState, ProposedState
from ...services import change_requests as proposals
from ..mixins import ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.change_requests import (
    ChangeRequestDetailSerializer,
    ChangeRequestFilterSerializer,
    ChangeRequestSerializer,
    ReviewInputSerializer,
)

ACTION_PROBLEMS: dict[tuple[int, str], OpenApiResponse] = {
    (403, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        response=schema.PROBLEM_REF,
        description="`permission_denied`: the caller may not (review: release managers; "
        "apply and rebase: the author or a reviewer; withdraw: the author; approving one's "
        "own change only where the environment allows it).",
    ),
    (409, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        response=schema.PROBLEM_REF,
        description="`change_request_closed` (applied, rejected or withdrawn already), "
        "`not_approved` (too few approvals), or `change_request_conflict` (a flag changed "
        "since: rebase; the body's `conflicts` lists the flags).",
    ),
}
COMMENT_EXAMPLE = OpenApiExample(
    "With a comment", request_only=True, value={"comment": "Checked with support: go."}
)


def _username(user: Any) -> str | None:
    return None if user is None else str(user.get_username())


def represent(
    change_request: ChangeRequest, *, detail: bool = False, listed: Listed | None = None
) -> dict[str, Any]:
    """A change request as the API shows it (with its diffs and reviews when ``detail``).

    ``listed`` gives its flags and approvals as read for a whole page (:func:`listing`).
    """
    environment = change_request.environment
    if listed is None:
        flags = proposals.flag_keys(change_request)
        approvals = proposals.approval_count(change_request)
    else:
        flags, approvals = listed.flags[change_request.pk], listed.approvals[change_request.pk]
    body: dict[str, Any] = {
        "id": change_request.pk,
        "kind": change_request.kind,
        "title": change_request.title,
        "description": change_request.description,
        "status": change_request.status,
        "environment": environment.key,
        "flags": flags,
        "author": _username(change_request.author),
        "approvals": approvals,
        "required_approvals": environment.required_approvals,
        "created_at": change_request.created_at,
        "updated_at": change_request.updated_at,
        "closed_at": change_request.closed_at,
        "closed_by": _username(change_request.closed_by),
    }
    if not detail:
        return body
    items = []
    for item in change_request.proposed_states.select_related(
        "state__flag", "state__environment"
    ).order_by("id"):
        base, proposed, now = proposals.diff(item)
        items.append(
            {
                "flag": item.state.flag.key,
                "base_version": item.base_version,
                "version": item.state.version,
                "conflict": item.state.version != item.base_version,
                "base": base,
                "proposed": proposed,
                "now": now,
            }
        )
    body.update(
        allow_self_approval=environment.allow_self_approval,
        conflicts=[vars(conflict) for conflict in proposals.conflicts(change_request)],
        items=items,
        schedule=_schedule(change_request),
        reviews=[
            {
                "reviewer": _username(review.reviewer),
                "decision": review.decision,
                "comment": review.comment,
                "created_at": review.created_at,
            }
            for review in change_request.reviews.select_related("reviewer").order_by("id")
        ],
    )
    return body


@dataclass(frozen=True)
class Listed:
    """The flags and counted approvals of a page of change requests, by id."""

    flags: dict[int, list[str]]
    approvals: dict[int, int]


def listing(rows: Sequence[ChangeRequest]) -> Listed:
    """Flags and approvals of ``rows`` in three queries, whatever their number.

    Approvals count as ``services.change_requests.approval_count`` counts them: approving
    reviews, the author's only where the environment allows self-approval.
    """
    ids = [row.pk for row in rows]
    flags: dict[int, list[str]] = {pk: [] for pk in ids}
    for change_request_id, key in (
        ProposedState.objects.filter(change_request_id__in=ids)
        .order_by("id")
        .values_list("change_request_id", "state__flag__key")
    ):
        flags[change_request_id].append(key)
    scheduled = {row.pk: row.schedule["state"] for row in rows if row.schedule is not None}
    keys = dict(FlagState.objects.filter(pk__in=scheduled.values()).values_list("pk", "flag__key"))
    for change_request_id, state_id in scheduled.items():
        flags[change_request_id] = [keys[state_id]] if state_id in keys else []
    approvals = dict.fromkeys(ids, 0)
    by_id = {row.pk: row for row in rows}
    for change_request_id, reviewer_id in ChangeRequestReview.objects.filter(
        change_request_id__in=ids, decision=ChangeRequestReview.Decision.APPROVED
    ).values_list("change_request_id", "reviewer_id"):
        row = by_id[change_request_id]
        if reviewer_id == row.author_id and not row.environment.allow_self_approval:
            continue
        approvals[change_request_id] += 1
    return Listed(flags=flags, approvals=approvals)


def _schedule(change_request: ChangeRequest) -> dict[str, Any] | None:
    plan = change_request.schedule
    if plan is None:
        return None
    state = FlagState.objects.select_related("flag").filter(pk=plan["state"]).first()
    return {
        "flag": state.flag.key if state is not None else "",
        "note": plan.get("note", ""),
        "steps": plan.get("steps", []),
    }


def location(request: Request, change_request: ChangeRequest) -> str:
    """The change request's URL."""
    return reverse(
        "change-request-detail",
        kwargs={
            "version": getattr(request, "version", None) or "v1",
            "project": change_request.environment.project.key,
            "change_request": change_request.pk,
        },
    )


def accepted(request: Request, change_request: ChangeRequest) -> Response:
    """202 Accepted: the write became ``change_request``, at the ``Location`` given."""
    fresh = ChangeRequest.objects.select_related("environment__project", "author", "closed_by").get(
        pk=change_request.pk
    )
    return Response(
        ChangeRequestDetailSerializer(represent(fresh, detail=True)).data,
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": location(request, fresh)},
    )


# What a write into an environment that takes change requests answers with, for extend_schema.
ACCEPTED_RESPONSE = OpenApiResponse(
    response=ChangeRequestDetailSerializer,
    description="The environment takes change requests: the write became this change request "
    "(see `Location`); nothing changed yet.",
)


class ChangeRequestViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ChangeRequest],
):
    """A project's change requests, newest first."""

    permission_classes = (ModelPermissions,)
    queryset = ChangeRequest.objects.none()  # the schema's model; get_queryset() scopes
    permission_model = ChangeRequest
    # Reviews need the approve permission; apply, rebase and withdraw the propose one (the
    # services then check author or reviewer).
    permission_actions = {
        "approve": "approve",
        "reject": "approve",
        "apply": "add",
        "rebase": "add",
        "withdraw": "add",
    }
    serializer_class = ChangeRequestSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "change_request"
    filter_backends = ()

    def get_queryset(self) -> QuerySet[ChangeRequest]:
        """The project's change requests, filtered by status and environment (key)."""
        rows = (
            ChangeRequest.objects.filter(environment__project=self.get_project())
            .select_related("environment__project", "author", "closed_by")
            .order_by("-id")
        )
        if self.action != "list":
            return rows
        # An empty filter (?status=, as forms send for "any") is left out, not refused.
        params = {
            name: value for name, value in self.request.query_params.dict().items() if value.strip()
        }
        filters = ChangeRequestFilterSerializer(data=params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        if "status" in given:
            rows = rows.filter(status=given["status"])
        if "environment" in given:
            rows = rows.filter(environment__key=given["environment"])
        return rows

    def detail_response(self, change_request: ChangeRequest) -> Response:
        """The change request (re-read) in full."""
        fresh = self.get_queryset().get(pk=change_request.pk)
        return Response(ChangeRequestDetailSerializer(represent(fresh, detail=True)).data)

    @extend_schema(
        operation_id="change_requests_list",
        summary="List a project's change requests, newest first",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=list(ChangeRequest.Status.values),
                description="Only change requests in this status.",
            ),
            OpenApiParameter("environment", str, description="Only this environment's (key)."),
            OpenApiParameter("page", int, description="Page number."),
        ],
        responses={200: ChangeRequestSerializer(many=True)},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One page of change requests (without their diffs)."""
        page = self.paginate_queryset(self.get_queryset())
        rows = page if page is not None else list(self.get_queryset())
        listed = listing(rows)
        data = ChangeRequestSerializer(
            [represent(row, listed=listed) for row in rows], many=True
        ).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(
        operation_id="change_requests_retrieve",
        summary="Get a change request with its diffs, conflicts and reviews",
        responses={200: ChangeRequestDetailSerializer},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The change request in full."""
        return self.detail_response(self.get_object())

    @extend_schema(
        operation_id="change_requests_approve",
        summary="Approve a change request (release managers)",
        request=ReviewInputSerializer,
        responses={200: ChangeRequestDetailSerializer, **ACTION_PROBLEMS},
        examples=[COMMENT_EXAMPLE],
    )
    def approve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Approve through ``change_request_approve`` (again: the comment is replaced)."""
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change_request = services.change_request_approve(
            change_request=self.get_object(),
            actor=request.user,
            comment=data.validated_data["comment"],
        )
        return self.detail_response(change_request)

    @extend_schema(
        operation_id="change_requests_reject",
        summary="Reject a change request (release managers): it is closed",
        request=ReviewInputSerializer,
        responses={200: ChangeRequestDetailSerializer, **ACTION_PROBLEMS},
        examples=[COMMENT_EXAMPLE],
    )
    def reject(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Reject through ``change_request_reject``."""
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change_request = services.change_request_reject(
            change_request=self.get_object(),
            actor=request.user,
            comment=data.validated_data["comment"],
        )
        return self.detail_response(change_request)

    @extend_schema(
        operation_id="change_requests_apply",
        summary="Apply an approved change request (its author or a reviewer)",
        request=None,
        responses={200: ChangeRequestDetailSerializer, **ACTION_PROBLEMS},
    )
    def apply(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Apply through ``change_request_apply``; a conflict lists every changed flag."""
        change_request = self.get_object()
        try:
            applied = services.change_request_apply(
                change_request=change_request, actor=request.user
            )
        except ChangeRequestConflictError as error:
            return self.conflict_response(change_request, error)
        return self.detail_response(applied)

    def conflict_response(
        self, change_request: ChangeRequest, error: ChangeRequestConflictError
    ) -> Response:
        """409 ``change_request_conflict`` with the flags changed since (``conflicts``)."""
        found = proposals.conflicts(change_request)
        flags = ", ".join(conflict.flag for conflict in found)
        detail = (
            f"{flags} changed since {change_request} was proposed: rebase it, have it "
            "reviewed again, then apply it."
            if found
            else error.message
        )
        body = problem(
            self.request, status=status.HTTP_409_CONFLICT, code=error.code, detail=detail
        )
        body["conflicts"] = [vars(conflict) for conflict in found]
        return Response(body, status=status.HTTP_409_CONFLICT, content_type=PROBLEM_CONTENT_TYPE)

    @extend_schema(
        operation_id="change_requests_rebase",
        summary="Rebase a change request on its flags' current states (approvals are cleared)",
        request=None,
        responses={
            200: ChangeRequestDetailSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                response=schema.PROBLEM_REF,
                description="`invalid` with the field error `up_to_date`: nothing to rebase.",
            ),
            **ACTION_PROBLEMS,
        },
    )
    def rebase(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Rebase through ``change_request_rebase``."""
        change_request = services.change_request_rebase(
            change_request=self.get_object(), actor=request.user
        )
        return self.detail_response(change_request)

    @extend_schema(
        operation_id="change_requests_withdraw",
        summary="Withdraw a change request (its author): it is closed",
        request=None,
        responses={200: ChangeRequestDetailSerializer, **ACTION_PROBLEMS},
    )
    def withdraw(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Withdraw through ``change_request_withdraw``."""
        change_request = services.change_request_withdraw(
            change_request=self.get_object(), actor=request.user
        )
        return self.detail_response(change_request)
