#!/usr/bin/env bash
# Starts the Celery worker (with beat: the sweeper) in the background and the
# web server in the foreground; Ctrl-C stops both.
set -euo pipefail
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
PY=.venv/bin/python
VAR=${CFM_VAR_DIR:-var}
mkdir -p "$VAR/log"
.venv/bin/celery -A cfm worker -B --loglevel=INFO --concurrency=2 \
  --schedule="$VAR/celerybeat-schedule" >"$VAR/log/worker.log" 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM
broker="embedded (filesystem, $VAR/broker)"; [ -n "${REDIS_URL:-}" ] && broker="$REDIS_URL"
db="SQLite ($VAR/cfm.sqlite3, WAL)"; [ -n "${DATABASE_URL:-}" ] && db="${DATABASE_URL%%@*}@…"
cat <<MSG

  cfm is running:  http://$HOST:$PORT/
  log in as:       demo / demo-password-cfm   (admin: same user)
  database:        $db
  broker:          $broker   (worker log: $VAR/log/worker.log)
  Ctrl-C stops the web server and the worker.

MSG
exec_server() { $PY manage.py runserver "$HOST:$PORT" --noreload; }
exec_server
