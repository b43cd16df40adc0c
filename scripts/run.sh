#!/usr/bin/env bash
# Starts the Celery worker (with beat: the sweeper) in the background and the
# web server in the foreground; Ctrl-C stops both.
set -euo pipefail
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
PY=.venv/bin/python
VAR=${CFM_VAR_DIR:-var}
mkdir -p "$VAR/log"
# The worker runs in a process group of its own (job control on for this one
# command), so that stopping it reaches its pool and its embedded beat too.
set -m
.venv/bin/celery -A cfm worker -B --loglevel=INFO --concurrency=2 \
  --schedule="$VAR/celerybeat-schedule" >"$VAR/log/worker.log" 2>&1 &
WORKER=$!
set +m
# A warm shutdown waits for running jobs (a Prepare can take hours), and the
# embedded beat has been seen to hang while shutting down: give the group
# 10 s, then kill it. Nothing is lost: jobs are acknowledged late and hold
# leases, so the sweeper re-queues what was cut short.
stop_worker() {
  trap - EXIT INT TERM
  kill -TERM -- "-$WORKER" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 -- "-$WORKER" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$WORKER" 2>/dev/null || true
}
trap stop_worker EXIT INT TERM
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
