"""Behaviour every management view shares: the version header and domain errors as API errors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import APIView

from .. import capabilities
from ..errors import (
    CapabilityDisabledError,
    FlagShipError,
    InUseError,
    NotFoundError,
    PermissionDeniedError,
    StaleVersionError,
)
from ..history import feed as history
from ..models import Project
from .serializers.history import ChangeOutputSerializer

VERSION_HEADER = "API-Version"


class DomainConflict(exceptions.APIException):
    """409: the object is in use (``flags.errors.InUseError``)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"
    default_detail = "The object is in use."


class PreconditionFailed(exceptions.APIException):
    """412: the object changed since the caller read it."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "stale_version"
    default_detail = "The object changed since you loaded it."


class PreconditionRequired(exceptions.APIException):
    """428: a write that must say which version it changes did not."""

    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_code = "precondition_required"
    default_detail = "Send If-Match with the ETag you read."


class CapabilityDisabled(exceptions.APIException):
    """503: the capability is switched off by FlagShip's own flags."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "capability_disabled"
    default_detail = "This capability is switched off on this FlagShip."


def as_api_exception(exc: Exception) -> Exception:
    """Turn Django and domain errors into DRF's, keeping their codes; others pass through.

    The project-wide handler formats DRF exceptions as problem details; translating here keeps
    these views' statuses right whatever that handler knows about domain errors.
    """
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, NotFoundError):
        return exceptions.NotFound(exc.message, code=exc.code)
    if isinstance(exc, PermissionDeniedError):
        return exceptions.PermissionDenied(exc.message, code=exc.code)
    if isinstance(exc, StaleVersionError):
        return PreconditionFailed(exc.message, code=exc.code)
    if isinstance(exc, InUseError):
        return DomainConflict(exc.message, code=exc.code)
    if isinstance(exc, CapabilityDisabledError):
        return CapabilityDisabled(exc.message, code=exc.code)
    if isinstance(exc, FlagShipError):
        return exceptions.APIException(exc.message, code=exc.code)
    return exc


class ManagementViewMixin(APIView):
    """Sets ``API-Version`` (unless a middleware already did) and maps domain errors."""

    def handle_exception(self, exc: Exception) -> Response:
        """Let DRF handle domain errors as the equivalent API exceptions."""
        return super().handle_exception(as_api_exception(exc))

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """Add the version header (idempotent: a value already set is kept)."""
        response = super().finalize_response(request, response, *args, **kwargs)
        if VERSION_HEADER not in response:
            version = getattr(request, "version", None) or "v1"
            response[VERSION_HEADER] = version
        return response


class ProjectScopedMixin(ManagementViewMixin):
    """Views under ``projects/{project}/``: the project comes from the URL, by key."""

    _project: Project | None = None

    def get_project(self) -> Project:
        """The project named in the URL (404 when there is none, or hidden from the caller).

        FlagShip's own project (``flags.capabilities``) exists only for administrators.
        """
        if self._project is None:
            projects = capabilities.visible(Project.objects.all(), self.request.user, "")
            self._project = get_object_or_404(projects, key=self.kwargs["project"])
        return self._project


class HistoryMixin(ManagementViewMixin):
    """Renders merged history rows as a paginated list of changes."""

    def history_response(self, rows: QuerySet[Any]) -> Response:
        """One page of changes."""
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(rows, self.request, view=self)
        changes = history.render(page or [])
        data = ChangeOutputSerializer(changes, many=True).data
        return paginator.get_paginated_response(data)
