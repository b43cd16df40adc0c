from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "cfm.accounts"
    label = "accounts"
    verbose_name = "Accounts"
