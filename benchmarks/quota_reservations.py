"""What the quota's account lock costs: reservations per second and latency
when many requests hit one account at once (they queue on its row lock)
and when they are spread over many accounts (they do not).

Runs against the database DATABASE_URL names (PostgreSQL is the one that
matters: SQLite serialises every writer anyway) in a throwaway test
database, with real threads, one connection each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cfm .venv/bin/python benchmarks/quota_reservations.py \
        [--threads 16] [--per-thread 25]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402


def run(label, threads, per_thread, target):
    from cfm.quota import services

    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    outcomes = {"ok": 0, "refused": 0}

    def worker(i):
        actor, reg = target(i)
        barrier.wait()
        mine = []
        for j in range(per_thread):
            t0 = time.perf_counter()
            try:
                services.deployment_request(user=actor.user, registration=reg, space=actor.space,
                                            serving_name=f"b_{i}_{j}")
                key = "ok"
            except services.DeploymentRefused:
                key = "refused"
            mine.append(time.perf_counter() - t0)
            with lock:
                outcomes[key] += 1
        with lock:
            latencies.extend(mine)
        connection.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
    print(f"{label:<34} {len(latencies):>5} requests  {len(latencies) / wall:>7.0f}/s  "
          f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  ok {outcomes['ok']}  refused {outcomes['refused']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--per-thread", type=int, default=25)
    args = parser.parse_args()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from quotafactory import make_actor, make_registration

        from cfm.quota import services

        make_password("x")  # warm the hasher once, outside the timings
        print(f"database: {connection.vendor}, {args.threads} threads x {args.per_thread} reservations")
        one = make_actor("bench_one")
        services.ledger_adjust(user=one.user, account=one.account, units=10_000, reason="benchmark")
        one_reg = make_registration(one.account)
        run("one account (all on one row lock)", args.threads, args.per_thread, lambda i: (one, one_reg))

        actors = [make_actor(f"bench_{i}") for i in range(args.threads)]
        for a in actors:
            services.ledger_adjust(user=a.user, account=a.account, units=10_000, reason="benchmark")
        regs = [make_registration(a.account) for a in actors]
        run("one account per thread (no contention)", args.threads, args.per_thread,
            lambda i: (actors[i], regs[i]))

        full = make_actor("bench_full")
        full_reg = make_registration(full.account)
        run("a full account (refusals)", args.threads, args.per_thread, lambda i: (full, full_reg))
        check = services.ledger_verify(account=one.account)
        print(f"ledger balances after the runs: {check.ok} ({check.ledger_used} units)")
    finally:
        connection.close()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
