"""Benchmark: generate one month's invoice for an agent with 50,000 bookings; report time and peak memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parkgate .venv/bin/python bench/invoices.py [--bookings 50000]

Works in a throwaway database next to DATABASE_URL's (`<name>_bench_invoices`, created, migrated and dropped; keep
it with --keep). Seeds the agent's bookings and their ledger postings with bulk inserts (as the booking receivers
would post them: receivable, revenue, commission), then times `agent_invoices_generate` for the month, with
progress on stderr. Memory: the process's RSS before, during (each progress line) and at peak (seeding runs in a
child process so it does not count); --tracemalloc adds the Python heap (flat = it does not grow with the number
of bookings; compare --bookings 10000), at a large cost in time. Target: under 60 s.
The last line is one JSON object.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Steal, bench_database_url, log, recreate_database  # noqa: E402  (after the path is set)

TARGET_SECONDS = 60
MONTH = date(2026, 10, 1)
VAT_RATE = Decimal("0.2000")


def seed(n: int, batch: int = 5000) -> int:
    """The agent, a car park, n bookings sold in MONTH and their ledger postings; returns the agent's id."""
    from apps.accounting import chart, vat
    from apps.accounting.ledger import account_ids
    from apps.accounting.models import LedgerLine, LedgerTransaction
    from apps.agents.models import Agent
    from apps.bookings.models import Booking, Customer
    from apps.carparks.models import CarPark

    carpark = CarPark.objects.create(code="BENCH", name="Bench", capacity=100_000, currency="GBP")
    agent = Agent.objects.create(code="bench", name="Bench Agent", commission_rate=Decimal("0.15"))
    ids = account_ids()
    start = datetime(MONTH.year, MONTH.month, 1, 8, tzinfo=UTC)
    done = 0
    while done < n:
        size = min(batch, n - done)
        customers = Customer.objects.bulk_create(Customer(name=f"Customer {done + i}") for i in range(size))
        bookings = Booking.objects.bulk_create(
            Booking(
                reference=f"PG-B{done + i:07d}",
                carpark=carpark,
                agent=agent,
                agent_ref=f"BX-{done + i}",
                customer=customer,
                arrival=start + timedelta(minutes=done + i),
                departure=start + timedelta(days=7, minutes=done + i),
                source="api",
                price=Decimal("40.00") + (done + i) % 50,
                currency="GBP",
            )
            for i, customer in enumerate(customers)
        )
        txns = LedgerTransaction.objects.bulk_create(
            LedgerTransaction(
                date=MONTH + timedelta(days=(b.pk % 28)),
                kind="booking",
                currency="GBP",
                memo=f"{b.reference} sold",
                carpark=carpark,
                booking=b,
            )
            for b in bookings
        )
        lines = []
        for b, txn in zip(bookings, txns, strict=True):
            commission = (b.price * agent.commission_rate).quantize(Decimal("0.01"))
            sale, cut = vat.split(b.price, VAT_RATE), vat.split(commission, VAT_RATE)  # as the services post them

            def line(code, amount, txn=txn, b=b, **dims):
                return LedgerLine(transaction=txn, account_id=ids[code], amount=amount, booking=b, **dims)

            lines += [
                line(chart.BOOKING_RECEIVABLES, b.price),
                line(chart.PARKING_REVENUE, -sale.net, vat_rate=VAT_RATE),
                line(chart.OUTPUT_VAT, -sale.vat, vat_rate=VAT_RATE),
                line(chart.COMMISSION_EXPENSE, cut.net, agent=agent, vat_rate=VAT_RATE),
                line(chart.INPUT_VAT, cut.vat, agent=agent, vat_rate=VAT_RATE),
                line(chart.COMMISSION_PAYABLE, -commission, agent=agent, vat_rate=VAT_RATE),
            ]
        LedgerLine.objects.bulk_create(lines)
        done += size
        log(f"  seeded {done:>6}/{n} bookings")
    return agent.pk


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def seed_main(n: int) -> None:
    """Child process: migrate and seed (so the parent's memory figures are the invoice run's alone)."""
    from django.core.management import call_command
    from django.db import connection, transaction

    log("Migrating...")
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    with transaction.atomic():
        seed(n)
    log(f"Seeded {n} bookings in {time.perf_counter() - t0:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have, over a month of bookings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2000, help="rows per streamed chunk and per bulk insert")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python's heap (slows the run several times)"
    )
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.seed_only:  # the child
        setup_django(os.environ["DATABASE_URL"])
        seed_main(args.bookings)
        return

    admin_url, url, name = bench_database_url(os.environ.get("DATABASE_URL", ""), "invoices")
    recreate_database(admin_url, name)
    log(f"Database {name}: seeding {args.bookings} bookings in a child process...")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--seed-only", "--bookings", str(args.bookings)],
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )
    seed_seconds = time.perf_counter() - t0
    setup_django(url)
    from django.db import connection

    from apps.accounting import selectors
    from apps.accounting.invoices import agent_invoices_generate
    from apps.agents.models import Agent

    try:
        agent_id = Agent.objects.get(code="bench").pk
        rss_before = current_rss_mib()
        log(f"Generating {MONTH:%Y-%m}'s invoice (process RSS before: {rss_before:.0f} MiB)...")

        def progress(done: int) -> None:
            heap = ""
            if tracemalloc.is_tracing():
                current, peak = tracemalloc.get_traced_memory()
                heap = f"  python heap {current / 2**20:5.1f} MiB (peak {peak / 2**20:.1f})"
            log(
                f"  {done:>6}/{args.bookings} lines  {time.perf_counter() - started:6.1f} s  "
                f"RSS {current_rss_mib():6.1f} MiB{heap}"
            )

        if args.tracemalloc:
            tracemalloc.start()
        started, steal = time.perf_counter(), Steal()
        invoices = agent_invoices_generate(
            agent_id=agent_id, month=MONTH, issued_on=date(2026, 11, 2), batch_size=args.batch, progress=progress
        )
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        [invoice] = invoices
        balanced = selectors.trial_balance().balanced
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        log(
            f"{invoice.number}: {invoice.line_count} lines, total {invoice.total} {invoice.currency} "
            f"in {seconds:.1f} s; process peak RSS {rss_peak:.0f} MiB "
            f"(before: {rss_before:.0f}); ledger balanced: {balanced}"
        )
        result = {
            "bench": "invoices",
            "bookings": args.bookings,
            "lines": invoice.line_count,
            "seconds": round(seconds, 2),
            "seed_seconds": round(seed_seconds, 2),
            "tracemalloc": args.tracemalloc,
            "python_heap_peak_mib": round(peak / 2**20, 1) if args.tracemalloc else None,
            "rss_before_mib": round(rss_before),
            "rss_peak_mib": round(rss_peak),
            "balanced": balanced,
            "steal": steal.share(),
            "target_seconds": TARGET_SECONDS,
            "ok": seconds < TARGET_SECONDS and balanced and invoice.line_count == args.bookings,
        }
    finally:
        connection.close()
        if not args.keep:
            recreate_database(admin_url, name, drop_only=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
