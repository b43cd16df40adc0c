#!/usr/bin/env python
"""Django's command-line utility for cfm."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - reads the settings now: a bad CFM_ value is one line, not a traceback
    except ImproperlyConfigured as exc:
        sys.exit(f"cfm: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
