"""The three lists of registrations at scale: the dashboard (`/dashboard/`),
the API list (`GET /api/v1/registrations`) and the admin list
(`/admin/registry/registration/`), with one account holding 1,000, 10,000 and
100,000 registrations on PostgreSQL.

Rows are bulk-inserted server side (INSERT ... SELECT generate_series), each
with the full report JSON of a real inspection (a Llama 3.1 8B folder), so a
list that opened the JSON per row would pay for it. Each list is requested
through Django's test client (the whole middleware stack, the template or the
JSON rendering), interleaved, warm, and timed as the median of several
requests; the query count of each request is printed, and the growth from
the smallest to the largest size.

Goals (issue 12): the same query count at every size, at most 1.5x the time
from 1,000 to 100,000, and under 60 ms at 100,000.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cfm .venv/bin/python benchmarks/pages.py \\
        [--sizes 1000,10000,100000] [--requests 15]

Runs in a throwaway test database on DATABASE_URL's server (`test_<name>`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402

GOAL_RATIO = 1.5
GOAL_MS = 60.0


def real_report() -> dict:
    """The report of a real inspection (sparse Llama 3.1 8B folder, headers only)."""
    from modelfactory import llama_config, llama_tensors, make_model

    from cfm.inspection import inspect

    folder = Path(tempfile.mkdtemp(prefix="cfm-bench-pages-")) / "llama-3.1-8b"
    cfg = llama_config(max_position_embeddings=131072, rope_scaling={"rope_type": "llama3", "factor": 8.0})
    make_model(folder, cfg, llama_tensors(cfg))
    return inspect(str(folder)).to_dict()


def fill(template_id: int, start: int, stop: int) -> None:
    """Rows start..stop-1 of the account, copies of the template row with their
    own source, time and state: mostly done (ready, prepare, refused), some
    failed, a few still queued, newest last."""
    from cfm.registry.models import Registration

    table = Registration._meta.db_table
    columns = [f.column for f in Registration._meta.concrete_fields if f.column != "id"]
    overrides = {
        "source": "'bench/model-' || g",
        "created_at": "timestamp with time zone '2026-01-01' + g * interval '1 second'",
        "updated_at": "timestamp with time zone '2026-01-01' + g * interval '1 second'",
        "status": "CASE WHEN mod(g, 50) = 0 THEN 'failed' WHEN mod(g, 997) = 0 THEN 'queued' ELSE 'done' END",
        "verdict": "CASE WHEN mod(g, 50) = 0 THEN verdict WHEN mod(g, 7) = 0 THEN 'refused' "
                   "WHEN mod(g, 3) = 0 THEN 'ready' ELSE 'prepare' END",
        "configuration": "CASE WHEN mod(g, 11) = 0 THEN 'medium' ELSE 'small' END",
    }
    select = ", ".join(overrides.get(c, c) for c in columns)
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table}, "  # noqa: S608
                    f"generate_series(%s, %s) AS g WHERE id = %s", [start, stop - 1, template_id])


def vacuum() -> None:
    # Index-only scans need the visibility map: what autovacuum gives a table that has settled.
    from cfm.registry.models import Registration

    with connection.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {Registration._meta.db_table}")


def timed(client, url: str, headers: dict) -> tuple[float, float, int, int]:
    """Wall time, this process's CPU time (less disturbed by other load on the machine), queries, bytes."""
    with CaptureQueriesContext(connection) as queries:
        started, cpu = time.perf_counter(), time.process_time()
        response = client.get(url, **headers)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return elapsed, cpu, len(queries), len(response.content)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--requests", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if connection.vendor != "postgresql":
        print("pages.py measures PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2

    from actors import make_actor
    from django.test import Client

    from cfm.registry.models import Registration

    settings.ALLOWED_HOSTS = ["testserver"]
    config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        actor = make_actor("bench")
        user = actor.user
        user.is_staff = user.is_superuser = True
        user.save()
        report = real_report()
        template = Registration.objects.create(account=actor.account, created_by=user, source_kind="hub",
                                               source="bench/template", revision="main", status="done",
                                               report=report)
        print(f"PostgreSQL {connection.pg_version // 10000}, one account; each row holds a "
              f"{len(str(report)):,}-character report (verdict {template.verdict}); "
              f"median of {args.requests} warm requests per list, interleaved\n")
        web = Client()
        web.force_login(user)
        lists = {
            "dashboard": (web, "/dashboard/", {}),
            "API list": (web, f"/api/v1/registrations?account={actor.account.id}", actor.auth),
            "admin list": (web, "/admin/registry/registration/", {}),
        }
        results: dict[str, dict[int, tuple[float, float, float, int]]] = {name: {} for name in lists}
        have = 1
        print(f"{'rows':>8}  {'list':<11} {'median':>9} {'min':>8} {'max':>8} {'cpu':>8}  queries  bytes")
        for size in sizes:
            started = time.perf_counter()
            fill(template.id, have, size)
            have = size
            vacuum()
            filled = time.perf_counter() - started
            assert Registration.objects.filter(account=actor.account).count() == size
            samples: dict[str, list[float]] = {name: [] for name in lists}
            cpus: dict[str, list[float]] = {name: [] for name in lists}
            counts: dict[str, set[int]] = {name: set() for name in lists}
            sizes_seen: dict[str, int] = {}
            for _ in range(3):  # warm: connection, templates, caches
                for client, url, headers in lists.values():
                    timed(client, url, headers)
            for _ in range(args.requests):
                for name, (client, url, headers) in lists.items():
                    elapsed, cpu, n, nbytes = timed(client, url, headers)
                    samples[name].append(elapsed)
                    cpus[name].append(cpu)
                    counts[name].add(n)
                    sizes_seen[name] = nbytes
            for name in lists:
                s = samples[name]
                (n,) = counts[name] if len(counts[name]) == 1 else (max(counts[name]),)
                results[name][size] = (statistics.median(s), min(s), max(s), n)
                print(f"{size:>8,}  {name:<11} {statistics.median(s) * 1000:>7.1f}ms {min(s) * 1000:>6.1f}ms "
                      f"{max(s) * 1000:>6.1f}ms {statistics.median(cpus[name]) * 1000:>6.1f}ms  {n:>7}  "
                      f"{sizes_seen[name]:,}")
            print(f"{'':>8}  (filled in {filled:.1f} s; load average {os.getloadavg()[0]:.1f})")
        first, last = sizes[0], sizes[-1]
        print(f"\ngrowth {first:,} -> {last:,} rows (goal: same queries, <= {GOAL_RATIO}x, < {GOAL_MS:.0f} ms "
              f"at {last:,})")
        ok = True
        for name, by_size in results.items():
            t0, q0 = by_size[first][0], by_size[first][3]
            t1, q1 = by_size[last][0], by_size[last][3]
            ratio = t1 / t0
            met = q0 == q1 and ratio <= GOAL_RATIO and t1 * 1000 < GOAL_MS
            ok &= met
            print(f"  {name:<11} {t0 * 1000:6.1f} ms -> {t1 * 1000:6.1f} ms  x{ratio:.2f}   queries {q0} -> {q1}   "
                  f"{'met' if met else 'MISSED'}")
        return 0 if ok else 1
    finally:
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
