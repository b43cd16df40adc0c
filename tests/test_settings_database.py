"""SQLite named by DATABASE_URL (as the test worker and an operator may name
it) gets the same options as the default SQLite: WAL, IMMEDIATE transactions
and a busy timeout, without which a web process and a worker writing at once
fail with "database is locked" (seen: deployments tracked concurrently on the
worker failed with an internal error)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def database_settings(env: dict) -> dict:
    code = ("import json, django; django.setup(); from django.conf import settings; "
            "d = settings.DATABASES['default']; print(json.dumps({'ENGINE': d['ENGINE'], 'NAME': str(d['NAME']), "
            "'OPTIONS': d.get('OPTIONS', {})}))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("CFM_") and k != "DATABASE_URL"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**base, "DJANGO_SETTINGS_MODULE": "cfm.settings", "PYTHONPATH": str(ROOT), **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sqlite_from_database_url_has_the_default_sqlites_options(tmp_path):
    default = database_settings({"CFM_VAR_DIR": str(tmp_path)})
    named = database_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/other.sqlite3"})
    assert named["ENGINE"] == default["ENGINE"] == "django.db.backends.sqlite3"
    assert named["NAME"] == f"{tmp_path}/other.sqlite3"
    assert named["OPTIONS"] == default["OPTIONS"]
    assert default["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "busy_timeout" in default["OPTIONS"]["init_command"]
