"""`manage.py check --deploy` is clean with the production environment the
README documents (finding 3 of issue 11), and the HTTPS settings follow
DEBUG unless set."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The README's "Production" section, as an operator sets it.
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k3Jd9-p0Qw_xZ7vB2nL5mR8tY1uC4eF6gH0iJ3kL5mN7oP9qR2sT4uV6wX8yZ0aB",
    "ALLOWED_HOSTS": "cfm.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://cfm.example.com",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Nothing of this test process's own: CFM_ settings, and the async escape hatch the browser tests set
    clean = {k: v for k, v in os.environ.items()
             if (not k.startswith("CFM_") or k == "CFM_VAR_DIR") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean.pop("DEBUG", None)
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**clean, **env})


def test_check_deploy_is_clean_with_the_documented_production_env():
    proc = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_debug_turns_the_https_defaults_off():
    script = ("from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
              "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, getattr(s, 'SECURE_PROXY_SSL_HEADER', None))")
    prod = _manage("shell", "-c", script, env=PRODUCTION_ENV)
    assert prod.stdout.splitlines()[-1].split() == ["True", "31536000", "True", "True",
                                                     "('HTTP_X_FORWARDED_PROTO',", "'https')"]
    dev = _manage("shell", "-c", script, env={**PRODUCTION_ENV, "DEBUG": "1"})
    assert dev.stdout.splitlines()[-1].split() == ["False", "0", "False", "False", "None"]


def test_a_bad_proxy_header_stops_the_start():
    proc = _manage("check", env={**PRODUCTION_ENV, "CFM_PROXY_SSL_HEADER": "X Forwarded: proto"})
    assert proc.returncode != 0 and "CFM_PROXY_SSL_HEADER" in proc.stderr


def test_healthz_is_not_redirected_but_pages_are(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True
    from django.test import Client

    c = Client()  # a new handler: SecurityMiddleware reads the setting when it is built
    assert c.get("/healthz").status_code in (200, 503)
    r = c.get("/catalog/")
    assert r.status_code == 301 and r["Location"].startswith("https://")
