"""Promotion through the API: flags' targeting copied into another environment."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from ... import services
from ...models import Environment, Flag, FlagState
from ..mixins import ProjectScopedMixin
from ..permissions import ModelPermissions
from ..serializers.change_requests import change_request_field
from .change_requests import ACCEPTED_RESPONSE, accepted


class PromotionInputSerializer(serializers.Serializer[Any]):
    """What to promote: environments by key, flags by key (all live flags when left out)."""

    # DRF's metaclass takes declared fields off the class, so "source" does not replace
    # Field.source at run time; mypy only sees the class body.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="The environment to copy from (key)."
    )
    target = serializers.CharField(help_text="The environment to copy into (key).")
    flags = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_empty=False,
        help_text="Flag keys; every live flag of the project when left out.",
    )
    include_switch = serializers.BooleanField(
        default=False, help_text="Copy the on/off switch too (by default the target's stays)."
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Show what would change, change nothing."
    )
    change_request = change_request_field()


class PromotionSerializer(serializers.Serializer[Any]):
    """One flag: its document in the target now and after the promotion."""

    flag = serializers.CharField()
    changes = serializers.BooleanField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField()


class PromotionResultSerializer(serializers.Serializer[Any]):
    """The promotion's flags, and whether it was only a preview."""

    source = serializers.CharField()  # type: ignore[assignment]  # as in the input serializer
    target = serializers.CharField()
    dry_run = serializers.BooleanField()
    promotions = PromotionSerializer(many=True)


class PromotionView(ProjectScopedMixin, GenericAPIView[Any]):
    """Copy rules, prerequisites, default serve and off variant between environments.

    Editors promote into unprotected environments, Release managers into protected ones; a dry
    run needs only to read flags. Into an environment that takes change requests, a promotion
    (by an Editor or up) becomes one: 202 Accepted with the change request.
    """

    permission_classes = (ModelPermissions,)
    permission_model = FlagState
    serializer_class = PromotionInputSerializer
    filter_backends = ()

    def check_permissions(self, request: Request) -> None:
        """A dry run reads (``view_flagstate``); a promotion changes (``change_flagstate``)."""
        data = request.data if isinstance(request.data, dict) else {}
        dry = str(data.get("dry_run", "")).lower() in {"true", "1"} or data.get("dry_run") is True
        self.permission_actions = {None: "view" if dry else "change"}
        super().check_permissions(request)

    @extend_schema(
        operation_id="flags_promote",
        summary="Promote flags' targeting from one environment to another",
        request=PromotionInputSerializer,
        responses={200: PromotionResultSerializer, 202: ACCEPTED_RESPONSE},
        examples=[
            OpenApiExample(
                "Preview staging to production",
                request_only=True,
                value={"source": "staging", "target": "production", "dry_run": True},
            )
        ],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Preview (``dry_run``) or promote; the flags whose target changes (or would)."""
        data = PromotionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = data.validated_data
        project = self.get_project()
        source = get_object_or_404(Environment, project=project, key=given["source"])
        target = get_object_or_404(Environment, project=project, key=given["target"])
        live = Flag.objects.filter(project=project, archived=False).order_by("key")
        if "flags" in given:
            wanted = set(given["flags"])
            flags = list(live.filter(key__in=wanted))
            missing = sorted(wanted - {flag.key for flag in flags})
            if missing:
                raise serializers.ValidationError(
                    {"flags": [f"No live flag {key} in this project." for key in missing]},
                    code="unknown_flag",
                )
        else:
            flags = list(live)
        if given["dry_run"]:
            promotions = [
                p
                for p in services.promotion_preview(
                    flags=flags,
                    source=source,
                    target=target,
                    include_switch=given["include_switch"],
                )
                if p.changes
            ]
        elif target.needs_change_requests:
            text = given.get("change_request") or {}
            change_request = services.promotion_propose(
                flags=flags,
                source=source,
                target=target,
                actor=request.user,
                include_switch=given["include_switch"],
                title=text.get("title", ""),
                description=text.get("description", ""),
            )
            if change_request is not None:
                return accepted(request, change_request)
            promotions = []  # the target already serves what the source does
        else:
            promotions = services.flags_promote(
                flags=flags,
                source=source,
                target=target,
                actor=request.user,
                include_switch=given["include_switch"],
            )
        return Response(
            PromotionResultSerializer(
                {
                    "source": source.key,
                    "target": target.key,
                    "dry_run": given["dry_run"],
                    "promotions": [
                        {"flag": p.flag, "changes": p.changes, "before": p.before, "after": p.after}
                        for p in promotions
                    ],
                }
            ).data
        )
