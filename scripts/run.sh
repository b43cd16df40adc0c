#!/usr/bin/env bash
# Starts the Celery worker (with beat: the sweeper) in the background and the
# web server in the foreground; Ctrl-C stops both.
set -euo pipefail
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
PY=.venv/bin/python
VAR=${CFM_VAR_DIR:-var}
mkdir -p "$VAR/log"
# The logs are appended to: what happened before a restart stays readable.
for log in worker prepare-worker; do echo "--- make run, $(date -u +%FT%TZ)" >>"$VAR/log/$log.log"; done
# Two workers, each in a process group of its own (job control on for these
# commands), so that stopping them reaches their pools and the embedded beat:
# one for inspections and the sweepers (with beat), one for Prepare jobs, which
# can run for hours and must not hold up an inspection.
set -m
.venv/bin/celery -A cfm worker -B -Q celery -n "inspect@%h" --loglevel=INFO --concurrency=2 \
  --schedule="$VAR/celerybeat-schedule" >>"$VAR/log/worker.log" 2>&1 &
WORKERS=($!)
.venv/bin/celery -A cfm worker -Q cfm-prepare -n "prepare@%h" --loglevel=INFO --concurrency=1 \
  >>"$VAR/log/prepare-worker.log" 2>&1 &
WORKERS+=($!)
set +m
# A warm shutdown waits for running jobs (a Prepare can take hours), and the
# embedded beat has been seen to hang while shutting down: give the groups
# 6 s, then kill them. Nothing is lost: jobs are acknowledged late and hold
# leases, so the sweeper re-queues what was cut short.
stop_worker() {
  trap - EXIT INT TERM
  local pid alive
  for pid in "${WORKERS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 60); do
    alive=0
    for pid in "${WORKERS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${WORKERS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap stop_worker EXIT INT TERM
broker="embedded (filesystem, $VAR/broker)"; [ -n "${REDIS_URL:-}" ] && broker="$REDIS_URL"
db="SQLite ($VAR/cfm.sqlite3, WAL)"; [ -n "${DATABASE_URL:-}" ] && db="${DATABASE_URL%%@*}@…"
cat <<MSG

  cfm is running:  http://$HOST:$PORT/
  log in as:       demo / demo-password-cfm   (admin: same user)
  database:        $db
  broker:          $broker
  worker logs:     $VAR/log/worker.log (inspections), $VAR/log/prepare-worker.log (Prepare)
  Ctrl-C stops the web server and the workers.

MSG
exec_server() { $PY manage.py runserver "$HOST:$PORT" --noreload; }
exec_server
