"""Input and output serializers of the current user and API keys (secrets shown once)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from rest_framework import serializers

from flags.api.serializers.base import StrictInputSerializer

from ..models import ApiKey, User

# The permissions a client needs to know to show or hide actions.
PERMISSIONS_THAT_MATTER = (
    "flags.view_flag",
    "flags.add_flag",
    "flags.change_flag",
    "flags.change_flagstate",
    "flags.change_protected_environment",
    "flags.add_segment",
    "flags.change_segment",
    "flags.delete_segment",
    "flags.add_tag",
    "flags.add_project",
    "flags.change_project",
    "flags.add_environment",
    "flags.change_environment",
    "accounts.change_user",
)


class MeOutputSerializer(serializers.ModelSerializer[User]):
    """The caller: who they are, their roles and what they may do."""

    roles = serializers.SerializerMethodField()
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ("username", "email", "first_name", "last_name", "roles", "permissions")
        read_only_fields = fields

    def get_roles(self, user: User) -> list[str]:
        """The role groups the user is in."""
        return sorted(group.name for group in Group.objects.filter(user=user))

    def get_permissions(self, user: User) -> list[str]:
        """Which of the permissions that matter to a client the user holds."""
        return [name for name in PERMISSIONS_THAT_MATTER if user.has_perm(name)]


class ApiKeyOutputSerializer(serializers.ModelSerializer[ApiKey]):
    """A key without its secret: ``lookup`` is its public identifier."""

    environment = serializers.SerializerMethodField()
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "lookup",
            "name",
            "kind",
            "environment",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        )
        read_only_fields: tuple[str, ...] = fields

    def get_environment(self, key: ApiKey) -> str | None:
        """The environment's key (environment keys only)."""
        return key.environment.key if key.environment is not None else None


class IssuedApiKeyOutputSerializer(ApiKeyOutputSerializer):
    """A key just issued, with its secret: the only time the secret is shown."""

    secret = serializers.SerializerMethodField()

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = (*ApiKeyOutputSerializer.Meta.fields, "secret")
        read_only_fields = fields

    def get_secret(self, key: ApiKey) -> str:
        """The secret, passed in the context by the view that issued the key."""
        secret: str = self.context["secret"]
        return secret


class EnvironmentKeyInputSerializer(StrictInputSerializer):
    """A new environment key: its name and kind."""

    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=[ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT])
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TokenInputSerializer(StrictInputSerializer):
    """A new admin token: its name and, optionally, when it expires."""

    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
