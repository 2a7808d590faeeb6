from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People and their roles."""

    name = "accounts"
    verbose_name = "Accounts"
